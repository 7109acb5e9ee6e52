package detect

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mcptrail/mcptrail/store"
)

// scenario drives an engine over a store with a clock of its own, and can
// restart both as the daemon would.
type scenario struct {
	t     *testing.T
	path  string
	st    *store.Store
	eng   *Engine
	rules []Rule
	now   time.Time
	// alerts seen so far (by seq), to report only new ones
	seen uint64
}

func newScenario(t *testing.T, rules []Rule, start time.Time) *scenario {
	s := &scenario{t: t, path: filepath.Join(t.TempDir(), "d.db"), rules: rules, now: start}
	s.open()
	t.Cleanup(func() { s.st.Close() })
	return s
}

func (s *scenario) open() {
	st, err := store.Open(s.path, store.Options{})
	if err != nil {
		s.t.Fatal(err)
	}
	eng, err := New(s.rules, st, Options{Now: func() time.Time { return s.now }})
	if err != nil {
		s.t.Fatal(err)
	}
	if _, err := eng.Rebuild(st, 0); err != nil {
		s.t.Fatal(err)
	}
	s.st, s.eng = st, eng
}

// restart closes the store and the engine and opens new ones (state must
// come back from the record).
func (s *scenario) restart() {
	if err := s.st.Close(); err != nil {
		s.t.Fatal(err)
	}
	s.open()
}

// call records a tools/call request by agent at the scenario's clock, as
// the gateway would, and runs the engine on it.
func (s *scenario) call(agent, tool, class string) uint64 {
	s.t.Helper()
	ev := &store.Event{Kind: store.KindRequest, Time: s.now, Session: "sess-" + agent, Upstream: "fs", Transport: "stdio",
		From: store.FromClient, Method: "tools/call", Tool: tool, Class: class, JSONRPCID: json.RawMessage(`1`),
		Agent: &store.Agent{ID: agent}, Principal: &store.Principal{Subject: "alice", Kind: "os_user"}}
	seq, err := s.st.Append(ev)
	if err != nil {
		s.t.Fatal(err)
	}
	s.eng.Observe(ev)
	// The outcome, which rules must not count.
	out := &store.Event{Kind: store.KindCall, Time: s.now, Session: ev.Session, Upstream: "fs", From: store.FromClient,
		Method: "tools/call", Tool: tool, Class: class, Call: seq, Outcome: store.OutcomeOK, Agent: ev.Agent}
	if _, err := s.st.Append(out); err != nil {
		s.t.Fatal(err)
	}
	s.eng.Observe(out)
	return seq
}

func (s *scenario) advance(d time.Duration) { s.now = s.now.Add(d) }

// newAlerts returns the alerts recorded since the last call.
func (s *scenario) newAlerts() []store.Event {
	s.t.Helper()
	if err := s.st.Flush(); err != nil {
		s.t.Fatal(err)
	}
	page, err := s.st.Query(store.Query{Kind: store.KindAlert, Limit: 10000})
	if err != nil {
		s.t.Fatal(err)
	}
	var out []store.Event
	for _, ev := range page.Events {
		if ev.Seq > s.seen {
			out = append(out, ev)
			s.seen = ev.Seq
		}
	}
	return out
}

// expect checks the alerts since the last check: exactly these rule ids
// for these triggering calls, in order.
func (s *scenario) expect(what string, want ...string) {
	s.t.Helper()
	var got []string
	for _, a := range s.newAlerts() {
		var p AlertParams
		if err := json.Unmarshal(a.Params, &p); err != nil {
			s.t.Fatalf("%s: alert params: %v", what, err)
		}
		got = append(got, fmt.Sprintf("%s@%d", p.Rule.ID, a.Call))
		if a.Detail == "" || a.Agent == nil || a.Session == "" || len(p.Calls) == 0 || p.Calls[len(p.Calls)-1] != a.Call {
			s.t.Errorf("%s: alert %+v lacks its trigger's identity", what, a)
		}
	}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		s.t.Fatalf("%s: alerts %v, want %v", what, got, want)
	}
}

func id(rule string, seq uint64) string { return fmt.Sprintf("%s@%d", rule, seq) }

// Wednesday 11 March 2026, 10:00 in the machine's zone: inside the default
// execution window (Mon-Fri 07:00-20:00, Local).
var weekday = time.Date(2026, 3, 11, 10, 0, 0, 0, time.Local)

func TestDefaultFirstToolUse(t *testing.T) {
	s := newScenario(t, Defaults(), weekday)
	a := s.call("a1", "read_file", "read")
	s.expect("first call of a new agent", id("mcp-first-tool-use", a))
	s.advance(time.Minute)
	s.call("a1", "read_file", "read")
	s.expect("same tool again")
	s.advance(time.Minute)
	b := s.call("a1", "write_file", "write")
	s.expect("a second tool", id("mcp-first-tool-use", b))
	c := s.call("a2", "read_file", "read")
	s.expect("another agent's first use", id("mcp-first-tool-use", c))

	s.restart()
	s.advance(time.Hour)
	s.call("a1", "read_file", "read")
	s.call("a1", "write_file", "write")
	s.call("a2", "read_file", "read")
	s.expect("known tools after a restart")
	d := s.call("a1", "delete_file", "delete")
	s.expect("a new tool after a restart", id("mcp-first-tool-use", d))

	// History: 30 days without read_file makes it new again; write_file
	// used 29 days in does not.
	s.advance(29 * 24 * time.Hour)
	s.call("a1", "write_file", "write")
	s.expect("29 days on")
	s.restart()
	s.advance(5 * 24 * time.Hour) // a Tuesday: inside the execution window
	e := s.call("a1", "read_file", "read")
	s.call("a1", "write_file", "write")
	s.expect("31 days after the last read_file", id("mcp-first-tool-use", e))
}

func TestDefaultWriteBurst(t *testing.T) {
	rules := Defaults()
	s := newScenario(t, rules, weekday)
	// Reads never count; 50 writes within 5 minutes do not exceed 50.
	for i := 0; i < 60; i++ {
		s.call("a1", "read_file", "read")
	}
	var first uint64
	for i := 0; i < 50; i++ {
		seq := s.call("a1", "write_file", "write")
		if i == 0 {
			first = seq
		}
		s.advance(4 * time.Second) // 50 writes over 200 s
	}
	s.expect("50 writes", id("mcp-first-tool-use", 1), id("mcp-first-tool-use", first))

	// The 51st, after a restart: still within 5 minutes of the first.
	s.restart()
	w := s.call("a1", "write_file", "write")
	s.expect("the 51st write in 5 minutes", id("mcp-write-burst", w))
	var del uint64
	for i := 0; i < 20; i++ {
		s.advance(time.Second)
		seq := s.call("a1", "delete_file", "delete")
		if i == 0 {
			del = seq
		}
	}
	s.expect("the same burst goes on", id("mcp-first-tool-use", del))

	// Another agent's writes are its own.
	var a2 uint64
	for i := 0; i < 50; i++ {
		seq := s.call("a2", "write_file", "write")
		if i == 0 {
			a2 = seq
		}
	}
	s.expect("a2's 50 writes", id("mcp-first-tool-use", a2))

	// Quiet for 10 minutes re-arms; a burst spread over more than 5
	// minutes does not fire.
	s.advance(10 * time.Minute)
	for i := 0; i < 60; i++ {
		s.call("a1", "write_file", "write")
		s.advance(6 * time.Second) // 10 per minute: 50 per 5 minutes at most
	}
	s.expect("60 writes over 6 minutes")
	s.advance(10 * time.Minute)
	var last uint64
	for i := 0; i < 51; i++ {
		last = s.call("a1", "write_file", "write")
	}
	s.expect("a new burst", id("mcp-write-burst", last))
}

func TestDefaultOutsideSchedule(t *testing.T) {
	// Saturday 14 March 2026, 12:00 local: outside Mon-Fri.
	saturday := time.Date(2026, 3, 14, 12, 0, 0, 0, time.Local)
	rules := Defaults()
	s := newScenario(t, rules, weekday)
	s.call("a1", "read_file", "read")
	s.advance(9*time.Hour + 59*time.Minute) // 19:59 Wednesday: inside
	s.call("a1", "read_file", "read")
	s.expect("inside the window", id("mcp-first-tool-use", 1))
	s.advance(time.Minute) // 20:00: the window's end is exclusive
	a := s.call("a1", "read_file", "read")
	s.expect("20:00 on a weekday", id("mcp-outside-schedule", a))

	s.now = saturday
	sat := s.call("a1", "read_file", "read")
	s.expect("Saturday noon", id("mcp-outside-schedule", sat))
	s.advance(10 * time.Minute)
	s.call("a1", "read_file", "read")
	s.expect("another within the hour's suppression")
	s.now = saturday.Add(time.Hour)
	b := s.call("a1", "read_file", "read")
	c := s.call("a2", "read_file", "read")
	s.expect("an hour later, and another agent", id("mcp-outside-schedule", b), id("mcp-first-tool-use", c), id("mcp-outside-schedule", c))

	s.restart()
	s.advance(30 * time.Minute)
	s.call("a1", "read_file", "read")
	s.expect("suppression survives a restart")
	s.advance(31 * time.Minute)
	d := s.call("a1", "read_file", "read")
	s.expect("after the suppression", id("mcp-outside-schedule", d))

	// Monday 07:00 is inside again.
	s.now = time.Date(2026, 3, 16, 7, 0, 0, 0, time.Local)
	s.call("a1", "read_file", "read")
	s.expect("Monday 07:00")
}

func TestScheduleParsing(t *testing.T) {
	w, err := parseSchedule(&Schedule{Timezone: "America/New_York", Days: []string{"fri-mon"}, Hours: []string{"22:00-06:00"}})
	if err != nil {
		t.Fatal(err)
	}
	ny, _ := time.LoadLocation("America/New_York")
	for _, tc := range []struct {
		t    time.Time
		want bool
	}{
		{time.Date(2026, 3, 13, 23, 0, 0, 0, ny), true},  // Friday 23:00
		{time.Date(2026, 3, 16, 5, 59, 0, 0, ny), true},  // Monday 05:59
		{time.Date(2026, 3, 16, 6, 0, 0, 0, ny), false},  // Monday 06:00
		{time.Date(2026, 3, 17, 23, 0, 0, 0, ny), false}, // Tuesday
		{time.Date(2026, 3, 14, 12, 0, 0, 0, ny), false}, // Saturday noon
		{time.Date(2026, 3, 14, 3, 0, 0, 0, time.UTC), true},
	} {
		if got := w.contains(tc.t); got != tc.want {
			t.Errorf("%v: contains = %v, want %v", tc.t, got, tc.want)
		}
	}
	for _, bad := range []Schedule{{Timezone: "Mars/Olympus"}, {Days: []string{"funday"}}, {Hours: []string{"9-5"}}, {Hours: []string{"08:00-08:00"}}} {
		if _, err := parseSchedule(&bad); err == nil {
			t.Errorf("%+v accepted", bad)
		}
	}
}

func TestConfigLoad(t *testing.T) {
	off := false
	rules, err := (&Config{}).Load()
	if err != nil || len(rules) != 6 {
		t.Fatalf("defaults: %d rules, %v", len(rules), err)
	}
	if rules, _ := (&Config{Enabled: &off}).Load(); rules != nil {
		t.Fatal("enabled: false still loads rules")
	}
	file := filepath.Join(t.TempDir(), "rules.yaml")
	os.WriteFile(file, []byte(`rules:
  - id: many-failures
    type: event_count
    match: {kind: call, outcome: [tool_error, rpc_error]}
    group_by: [agent, upstream]
    threshold: 10
    window: 1m
  - id: mcp-outside-schedule
    type: schedule
    schedule: {timezone: Europe/Paris, days: [mon-sat], hours: ["06:00-23:00"]}
`), 0o600)
	rules, err = (&Config{Files: []string{file}, Disable: []string{"mcp-write-burst"}}).Load()
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, r := range rules {
		ids = append(ids, r.ID)
	}
	if strings.Join(ids, ",") != "mcp-first-tool-use,mcp-outside-schedule,mcp-refusal-burst,mcp-approval-expired-burst,mcp-approval-denied-burst,many-failures" {
		t.Fatalf("rules %v", ids)
	}
	if rules[1].Schedule.Timezone != "Europe/Paris" {
		t.Fatal("a configured rule did not replace the default of the same id")
	}
	for name, c := range map[string]Config{
		"unknown disable": {Disable: []string{"nope"}},
		"bad type":        {Rules: []Rule{{ID: "x", Type: "sometimes"}}},
		"bad field":       {Rules: []Rule{{ID: "x", Type: TypeNewValue, Match: map[string]Values{"colour": {"red"}}}}},
		"no threshold":    {Rules: []Rule{{ID: "x", Type: TypeEventCount, Window: Duration(time.Minute)}}},
		"no window":       {Rules: []Rule{{ID: "x", Type: TypeEventCount, Threshold: 5}}},
		"no schedule":     {Rules: []Rule{{ID: "x", Type: TypeSchedule}}},
		"bad severity":    {Rules: []Rule{{ID: "x", Type: TypeNewValue, Severity: "dire"}}},
		"bad id":          {Rules: []Rule{{ID: "has space", Type: TypeNewValue}}},
		"missing file":    {Files: []string{"/nonexistent/rules.yaml"}},
	} {
		if _, err := c.Load(); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	if _, err := ParseRules([]byte("rules:\n  - id: x\n    typo: 1\n")); err == nil {
		t.Error("unknown key in a rules file accepted")
	}
}

// A custom rule on outcomes, grouped by two fields.
func TestCustomRuleOnOutcomes(t *testing.T) {
	rules := []Rule{{ID: "tool-failures", Type: TypeEventCount, Match: map[string]Values{"kind": {"call"}, "outcome": {"tool_error"}}, GroupBy: []string{"agent", "tool"}, Threshold: 2, Window: Duration(time.Minute)}}
	st, err := store.Open(filepath.Join(t.TempDir(), "c.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	eng, err := New(rules, st, Options{})
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 3; i++ {
		for _, tool := range []string{"a", "b"} {
			ev := &store.Event{Kind: store.KindCall, Tool: tool, Outcome: store.OutcomeToolError, Agent: &store.Agent{ID: "x"}, Call: 1}
			st.Append(ev)
			eng.Observe(ev)
		}
	}
	st.Flush()
	page, _ := st.Query(store.Query{Kind: store.KindAlert})
	if len(page.Events) != 2 || page.Events[0].Tool != "a" || page.Events[1].Tool != "b" {
		t.Fatalf("alerts: %+v", page.Events)
	}
	var p AlertParams
	json.Unmarshal(page.Events[0].Params, &p)
	if p.Group["tool"] != "a" || p.Group["agent"] != "x" || p.Count != 3 || len(p.Calls) != 3 {
		t.Fatalf("params %+v", p)
	}
}

// The daemon takes calls while the state is rebuilt: what they record is
// held, then evaluated after the replay, each event counted once.
func TestHoldDuringRebuild(t *testing.T) {
	rules := []Rule{
		{ID: "writes", Type: TypeEventCount, Match: map[string]Values{"kind": {"request"}, "class": {"write"}}, Threshold: 2, Window: Duration(time.Hour)},
		{ID: "first", Type: TypeNewValue, Match: map[string]Values{"kind": {"request"}}},
	}
	s := newScenario(t, rules, weekday)
	s.call("a1", "write_file", "write")
	s.expect("first write", id("first", 1))
	if err := s.st.Close(); err != nil {
		t.Fatal(err)
	}
	st, err := store.Open(s.path, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	s.st = st
	s.eng, err = New(rules, st, Options{Now: func() time.Time { return s.now }})
	if err != nil {
		t.Fatal(err)
	}
	s.eng.Hold()
	upTo := st.Last()
	s.call("a1", "write_file", "write") // the second write: count 2, not over 2
	b := s.call("a1", "read_file", "read")
	s.expect("while held")
	if _, err := s.eng.Rebuild(st, upTo); err != nil {
		t.Fatal(err)
	}
	s.eng.Release()
	s.expect("after release", id("first", b))
	c := s.call("a1", "write_file", "write") // the third: over 2
	s.expect("live again", id("writes", c))
}

// refuse records a refusal as the HTTP gateway does: no session, no agent,
// the client's address.
func (s *scenario) refuse(addr, reason string, suppressed int64) uint64 {
	s.t.Helper()
	ev := &store.Event{Kind: store.KindRefusal, Time: s.now, Upstream: "fs", Transport: "http", Detail: "refused",
		Refusal: &store.Refusal{Reason: reason, Status: 401, RemoteAddr: addr, Suppressed: suppressed}}
	seq, err := s.st.Append(ev)
	if err != nil {
		s.t.Fatal(err)
	}
	s.eng.Observe(ev)
	return seq
}

func TestDefaultRefusalBurst(t *testing.T) {
	s := newScenario(t, Defaults(), weekday)
	alerts := func(what string, want ...string) {
		t.Helper()
		var got []string
		for _, a := range s.newAlerts() {
			var p AlertParams
			if err := json.Unmarshal(a.Params, &p); err != nil {
				t.Fatal(err)
			}
			got = append(got, fmt.Sprintf("%s@%d", p.Rule.ID, a.Call))
			if !strings.Contains(a.Detail, `remote_addr "203.0.113.9"`) || !strings.Contains(a.Detail, "refusal events") {
				t.Errorf("%s: alert detail %q", what, a.Detail)
			}
		}
		if strings.Join(got, " ") != strings.Join(want, " ") {
			t.Fatalf("%s: alerts %v, want %v", what, got, want)
		}
	}
	// Ten refusals from one address, another ten from others: no alert.
	for i := range 10 {
		s.refuse("203.0.113.9", []string{"auth", "origin"}[i%2], 0)
		s.refuse(fmt.Sprintf("198.51.100.%d", i), "auth", 0)
		s.advance(time.Second)
	}
	alerts("10 from one address")
	// The 11th within 5 minutes — here the summary of what was held back.
	s.advance(time.Minute)
	sum := s.refuse("203.0.113.9", "auth", 9990)
	alerts("the 11th", id("mcp-refusal-burst", sum))
	// It goes on: suppressed for 30 minutes; other addresses are their own.
	for range 20 {
		s.refuse("203.0.113.9", "auth", 0)
	}
	alerts("the flood goes on")
	// Quiet, then a slow trickle (one a minute) does not fire.
	s.advance(time.Hour)
	for range 20 {
		s.refuse("203.0.113.9", "auth", 0)
		s.advance(time.Minute)
	}
	alerts("one a minute")
}

// decide records the end of a held call (kind expired or denied) of agent's.
func (s *scenario) decide(kind, agent string) uint64 {
	s.t.Helper()
	req := s.call(agent, "write_file", "write")
	ev := &store.Event{Kind: kind, Time: s.now, Session: "sess-" + agent, Upstream: "fs", Method: "tools/call", Tool: "write_file",
		Class: "write", Call: req, Agent: &store.Agent{ID: agent}, Approval: &store.Approval{Rule: "fs-writes", Required: 1}}
	seq, err := s.st.Append(ev)
	if err != nil {
		s.t.Fatal(err)
	}
	s.eng.Observe(ev)
	return seq
}

// TestDefaultApprovalBursts: held calls expiring unanswered, and one
// agent's held calls denied again and again, fire once past 3 in 30
// minutes.
func TestDefaultApprovalBursts(t *testing.T) {
	var rules []Rule
	for _, r := range Defaults() {
		if r.ID == "mcp-approval-expired-burst" || r.ID == "mcp-approval-denied-burst" {
			rules = append(rules, r)
		}
	}
	if len(rules) != 2 {
		t.Fatalf("defaults lack the approval rules: %+v", rules)
	}
	s := newScenario(t, rules, weekday)
	for i := range 3 {
		s.decide(store.KindExpired, fmt.Sprintf("agent-%d", i))
		s.decide(store.KindDenied, "mallory")
		s.advance(5 * time.Minute)
	}
	s.expect("three of each")
	exp := s.decide(store.KindExpired, "agent-9")
	den := s.decide(store.KindDenied, "mallory")
	s.expect("the fourth of each", id("mcp-approval-expired-burst", exp), id("mcp-approval-denied-burst", den))
	// Other agents' denials are their own.
	s.decide(store.KindDenied, "bob")
	s.expect("another agent")
}
