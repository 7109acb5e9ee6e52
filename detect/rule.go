// Package detect evaluates detection rules on the record as it is written
// and records an alert event when one fires.
//
// Rules are YAML, in the spirit of Sigma: a rule selects events (match),
// groups them (group_by), and fires on a condition of its type:
//
//	new_value    the first time a group (an agent) uses a value of a field
//	             (a tool) within a history window
//	event_count  more than threshold matching events of one group within a
//	             window (once per burst: it re-arms when the count drops)
//	schedule     a matching event outside the configured days and hours, in
//	             a time zone
//
// An alert is a store event of kind "alert" naming the triggering request
// in call, with the trigger's session, agent, principal, task, upstream
// and tool, a human-readable detail, and its evidence in params (see
// AlertParams). Alerts are appended to the store, so they are chained,
// shown in the console and forwarded like any event.
//
// State is not persisted: at start the engine rebuilds it by replaying the
// matching events of the longest window its rules look back over, without
// alerting. The store is the state.
package detect

import (
	_ "embed"
	"errors"
	"fmt"
	"os"
	"regexp"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// Rule types.
const (
	TypeNewValue   = "new_value"
	TypeEventCount = "event_count"
	TypeSchedule   = "schedule"
)

// Rule is one detection rule as written in YAML.
type Rule struct {
	ID          string `yaml:"id"`
	Title       string `yaml:"title"`
	Description string `yaml:"description"`
	Type        string `yaml:"type"`     // new_value, event_count, schedule
	Severity    string `yaml:"severity"` // informational, low, medium, high, critical
	Enabled     *bool  `yaml:"enabled"`  // default true

	// Match selects the events the rule looks at: field → value or list of
	// values (any of them). Fields: kind, from, method, tool, class,
	// outcome, upstream, transport, agent, principal, session, task, and
	// of a refusal remote_addr and reason.
	Match   map[string]Values `yaml:"match"`
	GroupBy []string          `yaml:"group_by"` // fields that make a group; default [agent]

	// new_value
	Field    string   `yaml:"field"`    // the value that is new (default tool)
	History  Duration `yaml:"history"`  // a value unused this long is new again (default 30d)
	Learning Duration `yaml:"learning"` // a new group's values are learnt silently this long (default 0)

	// event_count
	Threshold int      `yaml:"threshold"` // fires when the count exceeds it
	Window    Duration `yaml:"window"`

	// schedule
	Schedule *Schedule `yaml:"schedule"`

	// Suppress keeps a rule quiet for a group this long after it fired for it.
	Suppress Duration `yaml:"suppress"`
}

// Schedule is when activity is expected.
type Schedule struct {
	Timezone string   `yaml:"timezone"` // IANA name, Local or UTC (default Local)
	Days     []string `yaml:"days"`     // mon…sun, or ranges such as mon-fri (default every day)
	Hours    []string `yaml:"hours"`    // HH:MM-HH:MM, end exclusive; 22:00-06:00 wraps midnight (default all day)
}

// Values is one value or a list of them.
type Values []string

func (v *Values) UnmarshalYAML(n *yaml.Node) error {
	switch n.Kind {
	case yaml.ScalarNode:
		*v = Values{n.Value}
		return nil
	case yaml.SequenceNode:
		var list []string
		if err := n.Decode(&list); err != nil {
			return err
		}
		*v = list
		return nil
	}
	return fmt.Errorf("line %d: want a value or a list of values", n.Line)
}

// Duration is a time.Duration written as "5m", "1h" or "30d" in YAML.
type Duration time.Duration

var daysRe = regexp.MustCompile(`^(\d+)d$`)

// ParseDuration reads Go durations and whole days ("30d").
func ParseDuration(s string) (time.Duration, error) {
	if m := daysRe.FindStringSubmatch(s); m != nil {
		n, err := strconv.Atoi(m[1])
		if err == nil && n < 100000 {
			return time.Duration(n) * 24 * time.Hour, nil
		}
	}
	if s == "0" {
		return 0, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("%q is not a duration such as 5m, 1h or 30d", s)
	}
	return d, nil
}

func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode {
		return fmt.Errorf("line %d: want a duration such as 5m or 30d", n.Line)
	}
	v, err := ParseDuration(n.Value)
	if err != nil {
		return fmt.Errorf("line %d: %v", n.Line, err)
	}
	*d = Duration(v)
	return nil
}

func (d Duration) MarshalYAML() (any, error) { return time.Duration(d).String(), nil }

// Config is the detections section of mcptrail's config:
//
//	detections:
//	  enabled: true          # default true
//	  defaults: true         # load the built-in rules (default true)
//	  disable: [mcp-outside-schedule]
//	  files: [/etc/mcptrail/rules.yaml]
//	  rules:                 # a rule with a built-in rule's id replaces it
//	    - id: mcp-outside-schedule
//	      type: schedule
//	      …
type Config struct {
	Enabled  *bool    `yaml:"enabled"`
	Defaults *bool    `yaml:"defaults"`
	Disable  []string `yaml:"disable"`
	Files    []string `yaml:"files"`
	Rules    []Rule   `yaml:"rules"`
}

//go:embed defaults.yaml
var defaultsYAML []byte

// RuleFile is the form of a rules file: a list of rules under "rules".
type RuleFile struct {
	Rules []Rule `yaml:"rules"`
}

// ParseRules reads a rules file.
func ParseRules(data []byte) ([]Rule, error) {
	dec := yaml.NewDecoder(strings.NewReader(string(data)))
	dec.KnownFields(true)
	var f RuleFile
	if err := dec.Decode(&f); err != nil {
		return nil, err
	}
	return f.Rules, nil
}

// Defaults returns the built-in rules.
func Defaults() []Rule {
	rules, err := ParseRules(defaultsYAML)
	if err != nil {
		panic("detect: defaults.yaml: " + err.Error())
	}
	return rules
}

// Load returns the rules the config enables, in order: the built-in ones
// (replaced by configured rules of the same id), then the files', then the
// inline ones; each checked. Nil when detection is off.
func (c *Config) Load() ([]Rule, error) {
	if c.Enabled != nil && !*c.Enabled {
		return nil, nil
	}
	var rules []Rule
	if c.Defaults == nil || *c.Defaults {
		rules = Defaults()
	}
	add := func(r Rule) {
		for i := range rules {
			if rules[i].ID == r.ID {
				rules[i] = r
				return
			}
		}
		rules = append(rules, r)
	}
	for _, f := range c.Files {
		data, err := os.ReadFile(f)
		if err != nil {
			return nil, fmt.Errorf("detections: %w", err)
		}
		list, err := ParseRules(data)
		if err != nil {
			return nil, fmt.Errorf("detections: %s: %v", f, err)
		}
		for _, r := range list {
			add(r)
		}
	}
	for _, r := range c.Rules {
		add(r)
	}
	disabled := map[string]bool{}
	for _, id := range c.Disable {
		disabled[id] = true
	}
	ids := map[string]bool{}
	for _, r := range rules {
		ids[r.ID] = true
	}
	for id := range disabled {
		if !ids[id] {
			return nil, fmt.Errorf("detections: disable: no rule has id %q", id)
		}
	}
	out := rules[:0]
	for _, r := range rules {
		if disabled[r.ID] || (r.Enabled != nil && !*r.Enabled) {
			continue
		}
		if _, err := compile(r); err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, nil
}

// Fields a rule can match and group on.
var fieldNames = []string{"kind", "from", "method", "tool", "class", "outcome", "upstream", "transport", "agent", "principal", "session", "task", "remote_addr", "reason"}

func knownField(f string) bool {
	for _, n := range fieldNames {
		if n == f {
			return true
		}
	}
	return false
}

var severities = map[string]bool{"informational": true, "low": true, "medium": true, "high": true, "critical": true}

var idRe = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$`)

// check validates a rule and fills its defaults.
func check(r *Rule) error {
	fail := func(format string, a ...any) error {
		id := r.ID
		if id == "" {
			id = "(no id)"
		}
		return fmt.Errorf("detection rule %s: %s", id, fmt.Sprintf(format, a...))
	}
	if !idRe.MatchString(r.ID) {
		return fail("id must be letters, digits, '.', '_' or '-'")
	}
	if r.Title == "" {
		r.Title = r.ID
	}
	if r.Severity == "" {
		r.Severity = "medium"
	}
	if !severities[r.Severity] {
		return fail("severity %q: want informational, low, medium, high or critical", r.Severity)
	}
	for f, vals := range r.Match {
		if !knownField(f) {
			return fail("match: unknown field %q (fields: %s)", f, strings.Join(fieldNames, ", "))
		}
		if len(vals) == 0 {
			return fail("match: %s has no values", f)
		}
	}
	if len(r.GroupBy) == 0 {
		r.GroupBy = []string{"agent"}
	}
	for _, f := range r.GroupBy {
		if !knownField(f) {
			return fail("group_by: unknown field %q", f)
		}
	}
	if r.Suppress < 0 {
		return fail("suppress must not be negative")
	}
	switch r.Type {
	case TypeNewValue:
		if r.Field == "" {
			r.Field = "tool"
		}
		if !knownField(r.Field) {
			return fail("field: unknown field %q", r.Field)
		}
		if r.History == 0 {
			r.History = Duration(30 * 24 * time.Hour)
		}
		if r.History < 0 || r.Learning < 0 {
			return fail("history and learning must not be negative")
		}
	case TypeEventCount:
		if r.Threshold < 1 || r.Threshold > 100000 {
			return fail("threshold %d: want 1 to 100000 (the rule fires when the count exceeds it)", r.Threshold)
		}
		if r.Window <= 0 {
			return fail("window: want a duration such as 5m")
		}
	case TypeSchedule:
		if r.Schedule == nil {
			return fail("schedule: missing (timezone, days, hours)")
		}
	case "":
		return fail("type: missing (new_value, event_count or schedule)")
	default:
		return fail("type %q: want new_value, event_count or schedule", r.Type)
	}
	return nil
}

// window is when a schedule expects activity.
type window struct {
	loc    *time.Location
	days   [7]bool
	ranges [][2]int // minutes of the day, [start, end)
}

var dayNames = map[string]time.Weekday{"sun": 0, "mon": 1, "tue": 2, "wed": 3, "thu": 4, "fri": 5, "sat": 6,
	"sunday": 0, "monday": 1, "tuesday": 2, "wednesday": 3, "thursday": 4, "friday": 5, "saturday": 6}

func parseSchedule(s *Schedule) (*window, error) {
	w := &window{}
	tz := s.Timezone
	if tz == "" {
		tz = "Local"
	}
	loc, err := time.LoadLocation(tz)
	if err != nil {
		return nil, fmt.Errorf("schedule: timezone %q: %v", tz, err)
	}
	w.loc = loc
	if len(s.Days) == 0 {
		for i := range w.days {
			w.days[i] = true
		}
	}
	for _, d := range s.Days {
		d = strings.ToLower(strings.TrimSpace(d))
		from, to, isRange := strings.Cut(d, "-")
		a, ok1 := dayNames[from]
		b, ok2 := a, true
		if isRange {
			b, ok2 = dayNames[to]
		}
		if !ok1 || !ok2 {
			return nil, fmt.Errorf("schedule: day %q: want mon…sun or a range such as mon-fri", d)
		}
		for i := a; ; i = (i + 1) % 7 {
			w.days[i] = true
			if i == b {
				break
			}
		}
	}
	if len(s.Hours) == 0 {
		w.ranges = [][2]int{{0, 24 * 60}}
	}
	for _, h := range s.Hours {
		from, to, ok := strings.Cut(strings.TrimSpace(h), "-")
		a, err1 := minuteOfDay(from)
		b, err2 := minuteOfDay(to)
		if !ok || err1 != nil || err2 != nil || a == b {
			return nil, fmt.Errorf("schedule: hours %q: want HH:MM-HH:MM such as 08:00-18:00", h)
		}
		if a < b {
			w.ranges = append(w.ranges, [2]int{a, b})
		} else { // wraps midnight
			w.ranges = append(w.ranges, [2]int{a, 24 * 60}, [2]int{0, b})
		}
	}
	return w, nil
}

func minuteOfDay(s string) (int, error) {
	h, m, ok := strings.Cut(strings.TrimSpace(s), ":")
	hh, err1 := strconv.Atoi(h)
	mm, err2 := strconv.Atoi(m)
	if !ok || err1 != nil || err2 != nil || hh < 0 || hh > 24 || mm < 0 || mm > 59 || (hh == 24 && mm != 0) {
		return 0, errors.New("bad time")
	}
	return hh*60 + mm, nil
}

// contains reports whether t is inside the schedule: on one of its days
// (in its time zone) and inside one of its hour ranges.
func (w *window) contains(t time.Time) bool {
	lt := t.In(w.loc)
	if !w.days[lt.Weekday()] {
		return false
	}
	m := lt.Hour()*60 + lt.Minute()
	for _, r := range w.ranges {
		if m >= r[0] && m < r[1] {
			return true
		}
	}
	return false
}
