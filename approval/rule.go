// Package approval holds the calls a person must approve before they run:
// rules in the config say which (by upstream, tool, class, agent,
// principal, task, time of day and a condition on the arguments in the
// rules language of rollback), and a Desk keeps each held call until
// enough approvers approve it, one denies it, or it expires. Every step is
// an event in the record. The gateway reaches it as ingest.Hooks.Approve;
// ingest never imports it.
package approval

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"path"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/mcptrail/mcptrail/rollback"
	"github.com/mcptrail/mcptrail/store"
)

// Defaults and bounds of a rule.
const (
	DefaultTimeout = 5 * time.Minute
	// MaxTimeout bounds how long a call may be held: at start the daemon
	// looks this far back for holds a restart interrupted.
	MaxTimeout   = 24 * time.Hour
	RoleOperator = "operator"
)

// RuleConfig is one rule as the config file writes it (`approvals:`).
// Every match field is optional; a rule with none matches every tools/call.
// Names match exactly or as a path.Match pattern ("write_*").
type RuleConfig struct {
	Name      string   `yaml:"name"`
	Upstream  Patterns `yaml:"upstream"`
	Tool      Patterns `yaml:"tool"`
	Class     Patterns `yaml:"class"` // read, write, delete, unknown
	Agent     Patterns `yaml:"agent"` // the agent's id or name
	Principal Patterns `yaml:"principal"`
	Task      Patterns `yaml:"task"`
	// Hours limits the rule to a time of day, "HH:MM-HH:MM" in the
	// daemon's local time; a range past midnight ("18:00-08:00") wraps.
	Hours string `yaml:"hours"`
	// When is a condition in the rules language (docs/rollback.md) over
	// args and call, e.g. "startswith(args.path, '/etc/')".
	When    string `yaml:"when"`
	Require string `yaml:"require"` // approval (the only requirement there is)
	// ApprovedBy names who may decide: the role operator (default), SSH
	// key fingerprints (SHA256:…) and local users (user:NAME).
	ApprovedBy Patterns `yaml:"approved_by"`
	Approvers  int      `yaml:"approvers"` // distinct approvals needed (default 1)
	Timeout    Duration `yaml:"timeout"`   // default 5m, at most 24h
	OnTimeout  string   `yaml:"on_timeout"`
}

// Patterns is a list of names or patterns; YAML may give one as a string.
type Patterns []string

func (p *Patterns) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind == yaml.ScalarNode {
		*p = Patterns{n.Value}
		return nil
	}
	var l []string
	if err := n.Decode(&l); err != nil {
		return err
	}
	*p = l
	return nil
}

// Duration is a time.Duration written as "30s" or "5m".
type Duration time.Duration

func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	v, err := time.ParseDuration(n.Value)
	if err != nil || n.Kind != yaml.ScalarNode {
		return fmt.Errorf("line %d: %q is not a duration such as \"5m\"", n.Line, n.Value)
	}
	*d = Duration(v)
	return nil
}

func (d Duration) MarshalYAML() (any, error) { return time.Duration(d).String(), nil }

// Rule is a compiled RuleConfig.
type Rule struct {
	RuleConfig
	upstream, tool, class, agent, principal, task names
	when                                          *rollback.Condition
	from, to                                      int // minutes of the day; from == to == -1: any time
	timeout                                       time.Duration
	approvers                                     int
	approvedBy                                    []string
}

// Policy is the compiled rules and their version.
type Policy struct {
	Rules []*Rule
	// Version is the SHA-256 (hex, 16 digits) of the rules as written: an
	// approval given under one version does not release a call held under
	// another.
	Version string
}

// Compile checks and compiles the rules; the error names the rule
// (approvals[i]) and what to fix. No rules: a nil Policy, which holds
// nothing.
func Compile(cfgs []RuleConfig) (*Policy, error) {
	if len(cfgs) == 0 {
		return nil, nil
	}
	p := &Policy{}
	for i, c := range cfgs {
		r, err := compile(c)
		if err != nil {
			return nil, &RuleError{Index: i, Field: err.field, Msg: err.msg}
		}
		if r.Name == "" {
			r.Name = "approvals[" + strconv.Itoa(i) + "]"
		}
		p.Rules = append(p.Rules, r)
	}
	b, _ := json.Marshal(cfgs)
	sum := sha256.Sum256(b)
	p.Version = hex.EncodeToString(sum[:8])
	return p, nil
}

// RuleError is a problem with approvals[Index].Field.
type RuleError struct {
	Index int
	Field string
	Msg   string
}

func (e *RuleError) Error() string { return fmt.Sprintf("approvals[%d]: %s", e.Index, e.Msg) }

type fieldErr struct{ field, msg string }

func compile(c RuleConfig) (*Rule, *fieldErr) {
	r := &Rule{RuleConfig: c, from: -1, to: -1, timeout: time.Duration(c.Timeout), approvers: c.Approvers, approvedBy: c.ApprovedBy}
	if c.Require != "approval" {
		return nil, &fieldErr{"require", fmt.Sprintf("require %q: want require: approval", c.Require)}
	}
	for _, f := range []struct {
		name string
		p    Patterns
	}{{"upstream", c.Upstream}, {"tool", c.Tool}, {"class", c.Class}, {"agent", c.Agent}, {"principal", c.Principal}, {"task", c.Task}, {"approved_by", c.ApprovedBy}} {
		for _, pat := range f.p {
			if _, err := path.Match(pat, ""); err != nil || pat == "" {
				return nil, &fieldErr{f.name, fmt.Sprintf("%s: %q is not a name or pattern", f.name, pat)}
			}
		}
	}
	for _, cl := range c.Class {
		switch cl {
		case "read", "write", "delete", "unknown":
		default:
			return nil, &fieldErr{"class", fmt.Sprintf("class %q: want read, write, delete or unknown", cl)}
		}
	}
	r.upstream, r.tool, r.class = compileNames(c.Upstream), compileNames(c.Tool), compileNames(c.Class)
	r.agent, r.principal, r.task = compileNames(c.Agent), compileNames(c.Principal), compileNames(c.Task)
	if c.When != "" {
		w, err := rollback.ParseCondition(c.When)
		if err != nil {
			return nil, &fieldErr{"when", fmt.Sprintf("when: %v", err)}
		}
		r.when = w
	}
	if c.Hours != "" {
		f, t, ok := strings.Cut(c.Hours, "-")
		from, err1 := minuteOfDay(f)
		to, err2 := minuteOfDay(t)
		if !ok || err1 != nil || err2 != nil || from == to {
			return nil, &fieldErr{"hours", fmt.Sprintf("hours %q: want HH:MM-HH:MM, e.g. 18:00-08:00", c.Hours)}
		}
		r.from, r.to = from, to
	}
	if len(r.approvedBy) == 0 {
		r.approvedBy = []string{RoleOperator}
	}
	for _, a := range r.approvedBy {
		if a != RoleOperator && !strings.HasPrefix(a, "SHA256:") && !strings.HasPrefix(a, "user:") {
			return nil, &fieldErr{"approved_by", fmt.Sprintf("approved_by %q: want operator, a key fingerprint (SHA256:…) or user:NAME", a)}
		}
	}
	if r.approvers == 0 {
		r.approvers = 1
	}
	if r.approvers < 0 || r.approvers > 16 {
		return nil, &fieldErr{"approvers", fmt.Sprintf("approvers %d: want 1 to 16 distinct approvals", r.approvers)}
	}
	if r.timeout == 0 {
		r.timeout = DefaultTimeout
	}
	if r.timeout < time.Second || r.timeout > MaxTimeout {
		return nil, &fieldErr{"timeout", fmt.Sprintf("timeout %s: want 1s to %s", r.timeout, MaxTimeout)}
	}
	if c.OnTimeout != "" && c.OnTimeout != "deny" {
		// A timeout that let the call through would make "nobody was
		// there" the same as "someone approved".
		return nil, &fieldErr{"on_timeout", fmt.Sprintf("on_timeout %q: the only choice is deny", c.OnTimeout)}
	}
	return r, nil
}

func minuteOfDay(s string) (int, error) {
	t, err := time.Parse("15:04", strings.TrimSpace(s))
	if err != nil {
		return 0, err
	}
	return t.Hour()*60 + t.Minute(), nil
}

// Match returns the first rule that holds req (a recorded tools/call
// request), or nil. The rules language is total (a missing member is null,
// a function given the wrong kind of value returns null), so a condition
// does not fail at run time; if one ever did, it would hold the call.
func (p *Policy) Match(req *store.Event, now time.Time) *Rule {
	if p == nil {
		return nil
	}
	for _, r := range p.Rules {
		if r.matches(req, now) {
			return r
		}
	}
	return nil
}

func (r *Rule) matches(req *store.Event, now time.Time) bool {
	var agentID, agentName, principal, task string
	if a := req.Agent; a != nil {
		agentID, agentName = a.ID, a.Name
	}
	if p := req.Principal; p != nil {
		principal = p.Subject
	}
	if t := req.Task; t != nil {
		task = t.ID
	}
	// The tool first: most rules name one, and most calls are of another.
	if !r.tool.match(req.Tool) || !r.upstream.match(req.Upstream) || !r.class.match(req.Class) ||
		!(r.agent.match(agentID) || r.agent.match(agentName)) || !r.principal.match(principal) || !r.task.match(task) {
		return false
	}
	if r.from >= 0 {
		m := now.Hour()*60 + now.Minute()
		in := m >= r.from && m < r.to
		if r.from > r.to {
			in = m >= r.from || m < r.to
		}
		if !in {
			return false
		}
	}
	if r.when != nil {
		ok, err := r.when.Holds(req)
		return ok || err != nil
	}
	return true
}

// names is a compiled Patterns: exact names in a set, patterns with
// path.Match's metacharacters tried one by one. A call no rule names costs
// a map lookup per rule, not a pattern match per name.
type names struct {
	any   bool // no patterns: everything matches
	exact map[string]bool
	globs []string
}

func compileNames(pats Patterns) names {
	n := names{any: len(pats) == 0, exact: map[string]bool{}}
	for _, p := range pats {
		if strings.ContainsAny(p, `*?[\`) {
			n.globs = append(n.globs, p)
		} else {
			n.exact[p] = true
		}
	}
	return n
}

func (n names) match(v string) bool {
	if n.any || n.exact[v] {
		return true
	}
	for _, p := range n.globs {
		if ok, _ := path.Match(p, v); ok {
			return true
		}
	}
	return false
}

// Timeout is how long a call the rule holds waits for its decision.
func (r *Rule) Timeout() time.Duration { return r.timeout }

// Required is how many distinct approvals release a call.
func (r *Rule) Required() int { return r.approvers }

// MayDecide reports whether an approver may decide calls this rule holds:
// a viewer never; an operator when the rule names the role or them.
func (r *Rule) MayDecide(who Approver) bool {
	if who.Role != RoleOperator || who.ID == "" {
		return false
	}
	for _, a := range r.approvedBy {
		if a == RoleOperator || a == who.ID {
			return true
		}
	}
	return false
}

// ParamsSHA256 is the hex SHA-256 of params in canonical form (members
// sorted, no insignificant space, numbers as written): what binds an
// approval to the exact call.
func ParamsSHA256(params json.RawMessage) string {
	var v any
	d := json.NewDecoder(strings.NewReader(string(params)))
	d.UseNumber()
	b := []byte(params)
	if d.Decode(&v) == nil {
		var buf strings.Builder
		e := json.NewEncoder(&buf)
		e.SetEscapeHTML(false)
		if e.Encode(v) == nil {
			b = []byte(strings.TrimSuffix(buf.String(), "\n"))
		}
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}
