package detect

import (
	"cmp"
	"encoding/json"
	"fmt"
	"log/slog"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	_ "time/tzdata" // schedules name IANA zones; minimal systems lack the database

	"github.com/mcptrail/mcptrail/store"
)

// Appender records alerts. *store.Store is one (AppendNoWait: the call
// that triggered an alert never waits for the alert's commit).
type Appender interface {
	AppendNoWait(ev *store.Event) (uint64, error)
}

// Querier reads the record to rebuild state. *store.Store is one.
type Querier interface {
	Query(store.Query) (store.Page, error)
}

// AlertParams is what an alert event carries in params.
type AlertParams struct {
	Rule      AlertRule         `json:"rule"`
	Group     map[string]string `json:"group"`           // the group's field values
	Value     string            `json:"value,omitempty"` // new_value: the new value
	Field     string            `json:"field,omitempty"` // new_value: its field
	Count     int               `json:"count,omitempty"` // event_count: events in the window
	Threshold int               `json:"threshold,omitempty"`
	Window    string            `json:"window,omitempty"`
	History   string            `json:"history,omitempty"`
	LocalTime string            `json:"local_time,omitempty"` // schedule: the trigger's time in the schedule's zone
	Schedule  *Schedule         `json:"schedule,omitempty"`
	Calls     []uint64          `json:"calls"` // the triggering requests' seqs, oldest first
}

// AlertRule identifies the rule that fired.
type AlertRule struct {
	ID          string `json:"id"`
	Title       string `json:"title"`
	Type        string `json:"type"`
	Severity    string `json:"severity"`
	Description string `json:"description,omitempty"`
}

// Options tune an engine.
type Options struct {
	Logger *slog.Logger
	Now    func() time.Time // the clock for Rebuild's look-back (default time.Now)
}

// Engine evaluates rules on events.
type Engine struct {
	rules []*compiled
	out   Appender
	log   *slog.Logger
	now   func() time.Time

	mu      sync.Mutex
	seen    int
	alerted uint64
	held    bool           // Observe queues events: the state is being rebuilt
	backlog []*store.Event // what Observe queued while held
}

// compiled is a rule with its state.
type compiled struct {
	Rule
	// conds is the rule's match as a list, which matches walks for every
	// event and rule: walking a map of fields (from a random start each
	// time) was about half of Observe's CPU (BenchmarkObserve: 710–1126
	// ns, 390 ns with the list).
	conds    []cond
	window   *window
	values   map[string]*nvGroup // new_value
	counts   map[string]*ecGroup // event_count
	lastFire map[string]time.Time
}

// cond is one field of a rule's match: the event's value of it must be
// one of set.
type cond struct {
	field string
	set   map[string]bool
}

type nvGroup struct {
	first, last time.Time
	values      map[string]time.Time
}

type ecGroup struct {
	times []time.Time // the last threshold+1 matching events
	seqs  []uint64
	armed bool
}

func compile(r Rule) (*compiled, error) {
	if err := check(&r); err != nil {
		return nil, err
	}
	c := &compiled{Rule: r, values: map[string]*nvGroup{}, counts: map[string]*ecGroup{}, lastFire: map[string]time.Time{}}
	for f, vals := range r.Match {
		set := map[string]bool{}
		for _, v := range vals {
			set[v] = true
		}
		c.conds = append(c.conds, cond{f, set})
	}
	if r.Type == TypeSchedule {
		w, err := parseSchedule(r.Schedule)
		if err != nil {
			return nil, fmt.Errorf("detection rule %s: %v", r.ID, err)
		}
		c.window = w
	}
	return c, nil
}

// New returns an engine for rules that appends its alerts to out.
func New(rules []Rule, out Appender, o Options) (*Engine, error) {
	e := &Engine{out: out, log: o.Logger, now: o.Now}
	if e.log == nil {
		e.log = slog.Default()
	}
	if e.now == nil {
		e.now = time.Now
	}
	ids := map[string]bool{}
	for _, r := range rules {
		c, err := compile(r)
		if err != nil {
			return nil, err
		}
		if ids[c.ID] {
			return nil, fmt.Errorf("detection rule %s: defined twice", c.ID)
		}
		ids[c.ID] = true
		e.rules = append(e.rules, c)
	}
	return e, nil
}

// Rules returns the engine's rules with their defaults filled in.
func (e *Engine) Rules() []Rule {
	out := make([]Rule, len(e.rules))
	for i, c := range e.rules {
		out[i] = c.Rule
	}
	return out
}

// Alerts is how many alerts the engine raised since it started.
func (e *Engine) Alerts() uint64 {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.alerted
}

// field reads an event's field by rule name.
func field(ev *store.Event, f string) string {
	switch f {
	case "kind":
		return ev.Kind
	case "from":
		return ev.From
	case "method":
		return ev.Method
	case "tool":
		return ev.Tool
	case "class":
		return ev.Class
	case "outcome":
		return ev.Outcome
	case "upstream":
		return ev.Upstream
	case "transport":
		return ev.Transport
	case "agent":
		return store.AgentKey(ev.Agent)
	case "principal":
		if ev.Principal != nil {
			return ev.Principal.Subject
		}
	case "session":
		return ev.Session
	case "task":
		if ev.Task != nil {
			return ev.Task.ID
		}
	case "remote_addr":
		if ev.Refusal != nil {
			return ev.Refusal.RemoteAddr
		}
	case "reason":
		if ev.Refusal != nil {
			return ev.Refusal.Reason
		}
	}
	return ""
}

// condOn is the set of values the rule's match allows for field f; nil
// when it does not name f.
func (c *compiled) condOn(f string) map[string]bool {
	for _, m := range c.conds {
		if m.field == f {
			return m.set
		}
	}
	return nil
}

func (c *compiled) matches(ev *store.Event) bool {
	for _, m := range c.conds {
		if !m.set[field(ev, m.field)] {
			return false
		}
	}
	return true
}

// groupKey returns the group key, the group fields' values joined by NUL;
// ok is false when a group field is empty (an event that names no agent
// belongs to no agent's baseline). With one field, the usual case, the key
// is the value itself: no allocation for each event and rule.
func (c *compiled) groupKey(ev *store.Event) (key string, ok bool) {
	if len(c.GroupBy) == 1 {
		v := field(ev, c.GroupBy[0])
		return v, v != ""
	}
	var b strings.Builder
	for i, f := range c.GroupBy {
		v := field(ev, f)
		if v == "" {
			return "", false
		}
		if i > 0 {
			b.WriteByte(0)
		}
		b.WriteString(v)
	}
	return b.String(), true
}

// groupValues is the group of an alert: each group field and its value.
// Only an alert needs it: built for every event and rule, the map was 93 %
// of the bytes Observe allocated (BenchmarkObserve).
func (c *compiled) groupValues(ev *store.Event) map[string]string {
	vals := make(map[string]string, len(c.GroupBy))
	for _, f := range c.GroupBy {
		vals[f] = field(ev, f)
	}
	return vals
}

// span is how far back the rule's state reaches.
func (c *compiled) span() time.Duration {
	var d time.Duration
	switch c.Type {
	case TypeNewValue:
		d = time.Duration(c.History + c.Learning)
	case TypeEventCount:
		d = 2 * time.Duration(c.Window)
	}
	return max(d, time.Duration(c.Suppress))
}

// Observe evaluates ev (just recorded, with its seq) against every rule and
// appends the alerts that fire. The daemon runs it on every recorded event: it
// costs map lookups under one lock, and alerts are appended without
// waiting for their commit.
func (e *Engine) Observe(ev *store.Event) {
	if ev == nil || ev.Kind == store.KindAlert || len(e.rules) == 0 {
		return
	}
	e.mu.Lock()
	if e.held {
		c := *ev
		e.backlog = append(e.backlog, &c)
		e.mu.Unlock()
		return
	}
	e.mu.Unlock()
	e.observe(ev)
}

func (e *Engine) observe(ev *store.Event) {
	alerts := e.evaluate(ev, false)
	for _, a := range alerts {
		if _, err := e.out.AppendNoWait(a); err != nil {
			e.log.Error("detect: recording an alert", "alert", a.Detail, "call", a.Call, "err", err)
		}
	}
}

// evaluate updates the rules' state with ev and returns the alerts it
// raises (none when replaying).
func (e *Engine) evaluate(ev *store.Event, replay bool) []*store.Event {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.seen++
	if e.seen%4096 == 0 {
		e.prune(ev.Time)
	}
	var out []*store.Event
	for _, c := range e.rules {
		if !c.matches(ev) {
			continue
		}
		key, ok := c.groupKey(ev)
		if !ok {
			continue
		}
		p := c.fire(ev, key)
		if p == nil {
			continue
		}
		if c.Suppress > 0 {
			if last, ok := c.lastFire[key]; ok && ev.Time.Sub(last) < time.Duration(c.Suppress) {
				continue
			}
			c.lastFire[key] = ev.Time
		}
		if replay {
			continue
		}
		p.Group = c.groupValues(ev)
		e.alerted++
		out = append(out, c.alert(ev, p))
	}
	return out
}

// fire updates the rule's state with ev and returns the alert's evidence
// when the rule fires.
func (c *compiled) fire(ev *store.Event, key string) *AlertParams {
	t := ev.Time
	switch c.Type {
	case TypeNewValue:
		v := field(ev, c.Field)
		if v == "" {
			return nil
		}
		hist := time.Duration(c.History)
		g := c.values[key]
		if g == nil || t.Sub(g.last) > hist {
			// A group unseen for the whole history is new: its baseline
			// starts again.
			g = &nvGroup{first: t, last: t, values: map[string]time.Time{}}
			c.values[key] = g
		}
		if t.After(g.last) {
			g.last = t
		}
		seen, ok := g.values[v]
		isNew := !ok || t.Sub(seen) > hist
		if !ok || t.After(seen) {
			g.values[v] = t
		}
		if !isNew || t.Sub(g.first) < time.Duration(c.Learning) {
			return nil
		}
		return &AlertParams{Value: v, Field: c.Field, History: time.Duration(c.History).String(), Calls: []uint64{ev.Seq}}
	case TypeEventCount:
		g := c.counts[key]
		if g == nil {
			g = &ecGroup{armed: true}
			c.counts[key] = g
		}
		// Kept in time order, not arrival order: a collector merges
		// several hosts' events as they arrive, and a host whose stream
		// lags delivers calls older than those already counted. On one
		// host, arrival is time order and each insert is an append.
		at := len(g.times)
		for at > 0 && g.times[at-1].After(t) {
			at--
		}
		g.times = slices.Insert(g.times, at, t)
		g.seqs = slices.Insert(g.seqs, at, ev.Seq)
		if n := len(g.times) - (c.Threshold + 1); n > 0 {
			g.times = append(g.times[:0], g.times[n:]...)
			g.seqs = append(g.seqs[:0], g.seqs[n:]...)
		}
		// The window is (last-W, last]: the newest threshold+1 calls
		// within W of each other.
		over := len(g.times) == c.Threshold+1 && g.times[len(g.times)-1].Sub(g.times[0]) < time.Duration(c.Window)
		if !over {
			g.armed = true
			return nil
		}
		if !g.armed {
			return nil
		}
		g.armed = false
		return &AlertParams{Count: len(g.times), Threshold: c.Threshold, Window: time.Duration(c.Window).String(), Calls: append([]uint64(nil), g.seqs...)}
	case TypeSchedule:
		if c.window.contains(t) {
			return nil
		}
		return &AlertParams{LocalTime: t.In(c.window.loc).Format("Mon 2006-01-02 15:04:05 MST"), Schedule: c.Schedule, Calls: []uint64{ev.Seq}}
	}
	return nil
}

// alert builds the alert event for trigger.
func (c *compiled) alert(trigger *store.Event, p *AlertParams) *store.Event {
	p.Rule = AlertRule{ID: c.ID, Title: c.Title, Type: c.Type, Severity: c.Severity, Description: strings.TrimSpace(c.Description)}
	params, _ := json.Marshal(p)
	ev := &store.Event{
		Kind:       store.KindAlert,
		Time:       trigger.Time,
		Session:    trigger.Session,
		Upstream:   trigger.Upstream,
		Transport:  trigger.Transport,
		Tool:       trigger.Tool,
		Call:       trigger.Seq,
		Agent:      trigger.Agent,
		Principal:  trigger.Principal,
		OnBehalfOf: trigger.OnBehalfOf,
		Task:       trigger.Task,
		Params:     params,
		Detail:     c.describe(trigger, p),
	}
	return ev
}

func (c *compiled) describe(ev *store.Event, p *AlertParams) string {
	who := groupLabel(p.Group)
	switch c.Type {
	case TypeNewValue:
		return fmt.Sprintf("%s used %s %q for the first time (none in the last %s) [%s]", who, c.Field, p.Value, p.History, c.ID)
	case TypeEventCount:
		what := "calls"
		if ev.Kind != store.KindRequest && ev.Kind != store.KindCall {
			what = ev.Kind + " events"
		}
		return fmt.Sprintf("%s: %d matching %s within %s, over the threshold of %d [%s]", who, p.Count, what, p.Window, p.Threshold, c.ID)
	case TypeSchedule:
		return fmt.Sprintf("%s called %s at %s, outside the execution window [%s]", who, cmp.Or(ev.Tool, ev.Method), p.LocalTime, c.ID)
	}
	return c.Title
}

func groupLabel(g map[string]string) string {
	keys := make([]string, 0, len(g))
	for k := range g {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s %q", k, g[k])
	}
	return strings.Join(parts, ", ")
}

// prune drops state older than any rule can use.
func (e *Engine) prune(now time.Time) {
	for _, c := range e.rules {
		switch c.Type {
		case TypeNewValue:
			hist := time.Duration(c.History)
			for k, g := range c.values {
				if now.Sub(g.last) > hist {
					delete(c.values, k)
					continue
				}
				for v, t := range g.values {
					if now.Sub(t) > hist {
						delete(g.values, v)
					}
				}
			}
		case TypeEventCount:
			for k, g := range c.counts {
				if n := len(g.times); n == 0 || now.Sub(g.times[n-1]) > time.Duration(c.Window) {
					delete(c.counts, k)
				}
			}
		}
		for k, t := range c.lastFire {
			if now.Sub(t) > time.Duration(c.Suppress) {
				delete(c.lastFire, k)
			}
		}
	}
}

// Hold makes Observe queue events instead of evaluating them, until
// Release: the daemon takes calls while Rebuild runs, and the events they
// record are evaluated, in order, once the state is back.
func (e *Engine) Hold() {
	e.mu.Lock()
	e.held = true
	e.mu.Unlock()
}

// Release evaluates the events queued since Hold, then lets Observe
// evaluate again.
func (e *Engine) Release() {
	for {
		e.mu.Lock()
		batch := e.backlog
		e.backlog = nil
		if len(batch) == 0 {
			e.held = false
			e.mu.Unlock()
			return
		}
		e.mu.Unlock()
		for _, ev := range batch {
			e.observe(ev)
		}
	}
}

// Rebuild replays the record's recent events through the rules, without
// alerting, so that state (which tools each agent used, recent counts,
// suppressions) is as it was before a restart. It reads the events of the
// longest span any rule looks back over (new_value: history + learning;
// event_count: twice the window; suppress), through the kind index when
// every rule names its kinds, up to seq upTo (0: to the end). Run it
// before the first Observe, or between Hold (taken before the store's
// last seq is read as upTo) and Release.
func (e *Engine) Rebuild(q Querier, upTo uint64) (replayed int, err error) {
	var span time.Duration
	kinds := map[string]bool{}
	allKinds := false
	for _, c := range e.rules {
		span = max(span, c.span())
		if set := c.condOn("kind"); set != nil {
			for k := range set {
				kinds[k] = true
			}
		} else {
			allKinds = true
		}
	}
	if len(e.rules) == 0 || span == 0 {
		return 0, nil
	}
	since := e.now().Add(-span)
	var list []string
	if allKinds || len(kinds) != 1 {
		list = []string{""}
	} else {
		for k := range kinds {
			list = append(list, k)
		}
	}
	for _, kind := range list {
		qq := store.Query{Kind: kind, Since: since, Limit: 5000}
		for {
			page, err := q.Query(qq)
			if err != nil {
				return replayed, fmt.Errorf("detect: rebuilding state: %w", err)
			}
			for i := range page.Events {
				ev := &page.Events[i]
				if upTo != 0 && ev.Seq > upTo {
					page.Next = 0 // Observe has (or will have) this one
					break
				}
				if ev.Kind == store.KindAlert {
					continue
				}
				e.evaluate(ev, true)
				replayed++
			}
			if page.Next == 0 {
				break
			}
			qq.Cursor = page.Next
		}
	}
	return replayed, nil
}
