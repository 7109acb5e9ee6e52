package rollback

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/mcptrail/mcptrail/ingest"
	"github.com/mcptrail/mcptrail/internal/testkit"
	"github.com/mcptrail/mcptrail/store"
)

var kvServer string

func TestMain(m *testing.M) {
	testkit.MainWithPrograms(m, map[string]*string{"./testdata/kvserver": &kvServer})
}

// kvRules are kvserver's rollback rules, which the console's tests use too.
var kvRules = func() string {
	b, err := os.ReadFile("testdata/kv.yaml")
	if err != nil {
		panic(err)
	}
	return string(b)
}()

// kvFixture is a store, the rules, and a wrap-like gateway session to
// kvserver, with the capture hook wired as the daemon wires it.
type kvFixture struct {
	t      *testing.T
	st     *store.Store
	rules  *RuleSet
	kvFile string
	cs     *mcp.ClientSession
	sess   *ingest.Session
	done   chan struct{}
	closeC func()
	redact func(json.RawMessage) json.RawMessage // the gateway's redaction hook (nil: none)
}

func newKV(t *testing.T, policy string) *kvFixture {
	t.Helper()
	return newKVRedacting(t, policy, nil)
}

// newKVRedacting is newKV with the gateway's redaction hook on every
// recorded session and on the planner, as the daemon wires them.
func newKVRedacting(t *testing.T, policy string, redact func(json.RawMessage) json.RawMessage) *kvFixture {
	t.Helper()
	dir := t.TempDir()
	st, err := store.Open(filepath.Join(dir, "rb.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	src := kvRules
	if policy != "" {
		src += "on_capture_failure: " + policy + "\n"
	}
	rules, err := Parse("kv.yaml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	f := &kvFixture{t: t, st: st, rules: rules, kvFile: filepath.Join(dir, "kv.json"), redact: redact}
	f.connect("agent-session")
	return f
}

// connect starts a gateway session (as wrap does) and a client on it.
func (f *kvFixture) connect(id string) { f.connectAs(id, "kv") }

// connectAs is connect under another upstream name (wrap --name).
func (f *kvFixture) connectAs(id, upstream string) {
	t := f.t
	capt := &Capturer{Rules: f.rules, Sink: f.st.Rollback()}
	start, _ := json.Marshal(StartParams{Command: []string{kvServer}, Env: map[string]string{"KV_FILE": f.kvFile}})
	inR, inW := io.Pipe()
	outR, outW := io.Pipe()
	f.sess = ingest.NewSession(ingest.SessionInfo{ID: id, Upstream: upstream, Transport: "stdio", Agent: store.Agent{Name: "agent"}, StartParams: start},
		f.st, ingest.Hooks{Capture: capt.Capture, Classify: capt.Classify, Redact: f.redact}, ingest.Limits{}, nil)
	p := &ingest.Stdio{Session: f.sess, Child: ingest.ChildOptions{Command: []string{kvServer}, Env: []string{"KV_FILE=" + f.kvFile}, GracePeriod: time.Second}, In: inR, Out: outW}
	f.done = make(chan struct{})
	done := f.done
	go func() {
		p.Run(context.Background())
		outW.Close()
		close(done)
	}()
	c := mcp.NewClient(&mcp.Implementation{Name: "kv-agent", Version: "1"}, nil)
	cs, err := c.Connect(context.Background(), &mcp.IOTransport{Reader: io.NopCloser(outR), Writer: inW}, nil)
	if err != nil {
		t.Fatal(err)
	}
	f.cs = cs
	f.closeC = func() { cs.Close(); inW.Close(); <-done }
	t.Cleanup(f.closeC)
}

func (f *kvFixture) call(tool string, args map[string]any) *mcp.CallToolResult {
	f.t.Helper()
	res, err := f.cs.CallTool(context.Background(), &mcp.CallToolParams{Name: tool, Arguments: args})
	if err != nil {
		f.t.Fatalf("%s: %v", tool, err)
	}
	return res
}

// requestSeq returns the seq of the nth (0-based) request of a tool.
func (f *kvFixture) requests(tool string) []uint64 {
	f.t.Helper()
	f.st.Flush()
	p, err := f.st.Query(store.Query{Tool: tool, Kind: store.KindRequest, Limit: 1000})
	if err != nil {
		f.t.Fatal(err)
	}
	var out []uint64
	for _, e := range p.Events {
		out = append(out, e.Seq)
	}
	return out
}

func (f *kvFixture) kv() map[string]string {
	m := map[string]string{}
	data, err := os.ReadFile(f.kvFile)
	if err == nil {
		json.Unmarshal(data, &m)
	}
	return m
}

func (f *kvFixture) setKV(m map[string]string) {
	data, _ := json.Marshal(m)
	os.WriteFile(f.kvFile, data, 0o600)
}

// connector starts the recorded command again, as the daemon does.
func (f *kvFixture) connector(wrap func(Conn) Conn) Connector {
	return func(ctx context.Context, t Target, rec *ApplyInfo) (Conn, error) {
		var env []string
		for k, v := range t.Env {
			env = append(env, k+"="+v)
		}
		opts := ingest.OriginOptions{
			Info:     ingest.SessionInfo{Upstream: t.Upstream, Agent: store.Agent{ID: "mcptrail-rollback", Name: "mcptrail-rollback"}},
			Upstream: ingest.Upstream{Command: t.Command, Env: env, Dir: t.Dir},
			Hooks:    ingest.Hooks{Redact: f.redact},
		}
		if rec != nil {
			opts.Recorder = f.st
			opts.Info.Principal = rec.Approver.Principal()
			opts.Info.Task = Task(rec.Plan)
		}
		o, err := ingest.Originate(ctx, opts)
		if err != nil {
			return nil, err
		}
		var c Conn = o
		if wrap != nil {
			c = wrap(c)
		}
		return c, nil
	}
}

func (f *kvFixture) planner() *Planner {
	return &Planner{Rules: f.rules, Source: f.st.Rollback(), Connect: f.connector(nil), Redact: f.redact}
}

func (f *kvFixture) executor(wrap func(Conn) Conn) *Executor {
	return &Executor{Rules: f.rules, Store: f.st.Rollback(), Record: f.st.Append, Connect: f.connector(wrap)}
}

func (f *kvFixture) build(sel Selection) *Plan {
	f.t.Helper()
	f.st.Flush()
	p, err := f.planner().Build(context.Background(), sel, "tester")
	if err != nil {
		f.t.Fatal(err)
	}
	if err := SavePlan(f.st.Rollback(), p); err != nil {
		f.t.Fatal(err)
	}
	return p
}

func statuses(p *Plan) string {
	var s []string
	for _, st := range p.Steps {
		s = append(s, fmt.Sprintf("%s:%s", st.Tool, st.Status))
	}
	return strings.Join(s, " ")
}

var alice = Approver{Name: "alice", Via: "cli"}

func TestPlanAndApplyRestores(t *testing.T) {
	f := newKV(t, "")
	f.setKV(map[string]string{"keep": "1", "b": "old-b"})
	f.call("get", map[string]any{"key": "keep"})
	f.call("put", map[string]any{"key": "a", "value": "1"})
	f.call("put", map[string]any{"key": "b", "value": "2"})
	f.call("put", map[string]any{"key": "a", "value": "3"})
	f.call("del", map[string]any{"key": "b"})
	if res := f.call("del", map[string]any{"key": "nope"}); !res.IsError {
		t.Fatal("deleting a missing key should fail")
	}
	f.call("mystery", nil)

	// The whole session: the newest call is irreversible, so apply stops
	// right away and changes nothing.
	whole := f.build(Selection{Session: "agent-session"})
	if got := statuses(whole); got != "mystery:irreversible del:skip del:ready put:ready put:ready put:ready" {
		t.Fatalf("statuses: %s", got)
	}
	if !whole.Checked {
		t.Fatalf("the plan should have re-read the state: %s", whole.Note)
	}
	st := whole.Steps[2] // del b
	if st.Restored != "2" || len(st.Calls) != 1 || st.Calls[0].Tool != "put" || string(st.Calls[0].Args) != `{"key":"b","value":"2"}` {
		t.Fatalf("del step: %+v", st)
	}
	before := f.kv()
	applied, err := f.executor(nil).Apply(context.Background(), whole.ID, alice, nil)
	if err != nil {
		t.Fatal(err)
	}
	if applied.State != PlanStopped || !strings.Contains(applied.Error, "irreversible") {
		t.Fatalf("apply of a plan starting with an irreversible step: %s %s", applied.State, applied.Error)
	}
	if got := f.kv(); fmt.Sprint(got) != fmt.Sprint(before) {
		t.Fatalf("a stopped apply changed the store: %v → %v", before, got)
	}

	// Everything but the mystery call.
	var calls []uint64
	for _, s := range whole.Steps[1:] {
		calls = append(calls, s.Reverts)
	}
	plan := f.build(Selection{Calls: calls})
	var seen []*Plan
	var mu sync.Mutex
	applied, err = f.executor(nil).Apply(context.Background(), plan.ID, alice, func(p *Plan) {
		mu.Lock()
		seen = append(seen, p)
		mu.Unlock()
	})
	if err != nil {
		t.Fatal(err)
	}
	if applied.State != PlanApplied {
		t.Fatalf("apply: %s %s", applied.State, applied.Error)
	}
	// Each step says what happened: no step still reads "ready".
	for _, s := range applied.Steps {
		if r := s.Result(); r != StatusReverted && r != StatusSkip {
			t.Errorf("after apply, step %d (%s) says %s, want reverted or skip", s.N, s.Tool, r)
		}
	}
	if n := applied.Counts()[StatusReady]; n != 0 {
		t.Errorf("after apply, Counts has %d ready steps", n)
	}
	if got := f.kv(); fmt.Sprint(got) != fmt.Sprint(map[string]string{"keep": "1", "b": "old-b"}) {
		t.Fatalf("after the rollback: %v", got)
	}
	if len(seen) < 4 {
		t.Fatalf("progress was reported %d times", len(seen))
	}

	// The record: an approval, then rollback_step events naming the plan,
	// the call they revert and the approver; and the chain holds.
	f.st.Flush()
	page, _ := f.st.Query(store.Query{Kind: store.KindRollbackStep, Limit: 100})
	if len(page.Events) != 4 {
		t.Fatalf("%d rollback steps recorded", len(page.Events))
	}
	for _, e := range page.Events {
		if e.Reverts == 0 || e.Task == nil || e.Task.ID != plan.ID || e.Authorization == nil || e.Authorization.Approver != "alice" {
			t.Errorf("rollback_step: %+v", e)
		}
	}
	appr, _ := f.st.Query(store.Query{Kind: store.KindApproval, Limit: 100})
	// One: the plan that stopped at its irreversible first step ran nothing
	// and so asked for no approval.
	if len(appr.Events) != 1 || appr.Events[0].Authorization.Approver != "alice" || appr.Events[0].Task.ID != plan.ID {
		t.Fatalf("approvals: %+v", appr.Events)
	}
	if res, err := f.st.Verify(); err != nil || !res.OK {
		t.Fatalf("verify: %+v %v", res, err)
	}

	// A second apply changes nothing and records nothing.
	last := f.st.Last()
	again, err := f.executor(nil).Apply(context.Background(), plan.ID, alice, nil)
	if err != nil || again.State != PlanApplied || f.st.Last() != last {
		t.Fatalf("second apply: %v %s, %d new events", err, again.State, f.st.Last()-last)
	}
	// A new plan of the same calls knows they were reverted.
	re := f.build(Selection{Calls: calls})
	for _, s := range re.Steps {
		if s.Status != StatusReverted && s.Status != StatusSkip {
			t.Fatalf("re-plan: %s", statuses(re))
		}
	}
}

func TestPlanConflicts(t *testing.T) {
	f := newKV(t, "")
	f.call("put", map[string]any{"key": "a", "value": "1"})
	f.call("put", map[string]any{"key": "a", "value": "2"})
	f.call("put", map[string]any{"key": "c", "value": "1"})
	puts := f.requests("put")

	// A later call the plan does not revert touched the same key.
	p := f.build(Selection{Calls: []uint64{puts[0]}})
	if p.Steps[0].Status != StatusConflict || !strings.Contains(p.Steps[0].Reason, fmt.Sprint(puts[1])) {
		t.Fatalf("later unselected call: %+v", p.Steps[0])
	}
	// The key changed outside the record after the call.
	m := f.kv()
	m["c"] = "edited outside"
	f.setKV(m)
	p = f.build(Selection{From: puts[1]})
	if got := statuses(p); got != "put:conflict put:ready" {
		t.Fatalf("statuses: %s", got)
	}
	if !strings.Contains(p.Steps[0].Reason, "changed after the call") {
		t.Fatalf("reason: %s", p.Steps[0].Reason)
	}
	// Apply stops before the conflict: nothing is overwritten.
	res, err := f.executor(nil).Apply(context.Background(), p.ID, alice, nil)
	if err != nil || res.State != PlanStopped {
		t.Fatalf("%v %s", err, res.State)
	}
	if f.kv()["c"] != "edited outside" || f.kv()["a"] != "2" {
		t.Fatalf("a conflicting apply changed things: %v", f.kv())
	}

	// A plan that was clean when built but whose resource changed before
	// the apply: the apply re-reads and stops.
	p = f.build(Selection{Calls: []uint64{puts[1]}})
	if p.Steps[0].Status != StatusReady {
		t.Fatalf("%s", statuses(p))
	}
	m = f.kv()
	m["a"] = "changed meanwhile"
	f.setKV(m)
	res, err = f.executor(nil).Apply(context.Background(), p.ID, alice, nil)
	if err != nil || res.State != PlanStopped || res.Steps[0].Status != StatusConflict {
		t.Fatalf("%v %s %+v", err, res.State, res.Steps[0])
	}
	if f.kv()["a"] != "changed meanwhile" {
		t.Fatal("overwritten")
	}
}

// hangAfter passes calls through until n have been answered, then answers
// the next one on the server and never returns: an apply cut off mid-call.
type hangAfter struct {
	Conn
	mu   *sync.Mutex
	n    *int
	hang chan struct{}
}

func (h hangAfter) Call(ctx context.Context, method string, params any, rec *ingest.CallRecord) (json.RawMessage, uint64, error) {
	res, seq, err := h.Conn.Call(ctx, method, params, rec)
	if rec == nil {
		return res, seq, err // a re-read, not an inverse call
	}
	h.mu.Lock()
	*h.n--
	left := *h.n
	h.mu.Unlock()
	if left < 0 {
		<-h.hang // the process "died" after the server answered
	}
	return res, seq, err
}

func TestInterruptedApplyResumes(t *testing.T) {
	f := newKV(t, "")
	for i := range 4 {
		f.call("put", map[string]any{"key": fmt.Sprint("k", i), "value": "v"})
	}
	p := f.build(Selection{Session: "agent-session"})
	var mu sync.Mutex
	n := 2 // inverse calls that go through before the third hangs
	hang := make(chan struct{})
	done := make(chan *Plan, 1)
	go func() {
		res, _ := f.executor(func(c Conn) Conn { return hangAfter{c, &mu, &n, hang} }).Apply(context.Background(), p.ID, alice, nil)
		done <- res
	}()
	// Wait until the third inverse call has its outcome recorded while the
	// executor hangs.
	deadline := time.Now().Add(20 * time.Second)
	for {
		f.st.Flush()
		page, _ := f.st.Query(store.Query{Kind: store.KindCall, Limit: 1000})
		outs := 0
		for _, e := range page.Events {
			if e.Reverts != 0 {
				outs++
			}
		}
		if outs >= 3 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the apply did not get to its third call")
		}
		time.Sleep(20 * time.Millisecond)
	}
	mid, _ := LoadPlan(f.st.Rollback(), p.ID)
	if mid.Steps[2].State != StateRunning || mid.Steps[2].Done != 0 {
		t.Fatalf("the interrupted step: %+v", mid.Steps[2])
	}
	// Another apply resumes: the third call is in the record with its
	// outcome, so it is not sent again.
	res, err := f.executor(nil).Apply(context.Background(), p.ID, alice, nil)
	if err != nil || res.State != PlanApplied {
		t.Fatalf("resume: %v %s %s", err, res.State, res.Error)
	}
	if len(f.kv()) != 0 {
		t.Fatalf("after the resumed rollback: %v", f.kv())
	}
	f.st.Flush()
	page, _ := f.st.Query(store.Query{Kind: store.KindRollbackStep, Limit: 100})
	if len(page.Events) != 4 {
		t.Fatalf("%d inverse calls recorded, want 4 (none twice)", len(page.Events))
	}
	select {
	case <-done:
		t.Fatal("the hung apply returned")
	default:
	}
}

func TestCaptureFailurePolicies(t *testing.T) {
	// del's capture has no missing pattern: deleting a key that does not
	// exist fails its capture.
	rec := newKV(t, "record")
	rec.call("del", map[string]any{"key": "absent"})
	p := rec.build(Selection{Session: "agent-session"})
	if p.Steps[0].Status != StatusSkip { // the del itself failed: nothing to undo
		t.Fatalf("%s", statuses(p))
	}
	block := newKV(t, "block")
	_, err := block.cs.CallTool(context.Background(), &mcp.CallToolParams{Name: "del", Arguments: map[string]any{"key": "absent"}})
	if err == nil || !strings.Contains(err.Error(), "block") {
		t.Fatalf("a blocked write should be refused: %v", err)
	}
	block.st.Flush()
	out, _ := block.st.Query(store.Query{Kind: store.KindCall, Tool: "del", Limit: 10})
	if len(out.Events) != 1 || out.Events[0].Outcome != store.OutcomeDenied || !strings.HasPrefix(out.Events[0].Prestate, "sha256:") {
		t.Fatalf("the denied call: %+v", out.Events)
	}
}

func TestMissingPrestateAndTamper(t *testing.T) {
	f := newKV(t, "")
	f.call("put", map[string]any{"key": "a", "value": "1"})
	put := f.requests("put")[0]
	// Tamper with the stored pre-state: the hash in the record no longer matches.
	if _, err := f.st.Rollback().PutPrestate(put, []byte(`{"v":1,"reads":{}}`)); err != nil {
		t.Fatal(err)
	}
	p := f.build(Selection{Calls: []uint64{put}})
	if p.Steps[0].Status != StatusMissingPrestate || !strings.Contains(p.Steps[0].Reason, "does not match") {
		t.Fatalf("%+v", p.Steps[0])
	}
}

func TestCaptureLatency(t *testing.T) {
	// Not a benchmark (BENCHMARKS.md has those); checks that the capture
	// time is measured and stored.
	f := newKV(t, "")
	f.call("put", map[string]any{"key": "a", "value": "1"})
	data, err := f.st.Rollback().Prestate(f.requests("put")[0])
	if err != nil {
		t.Fatal(err)
	}
	var ps Prestate
	json.Unmarshal(data, &ps)
	if ps.CaptureUS <= 0 || ps.Reads["old"].Missing != true {
		t.Fatalf("%+v", ps)
	}
}

func TestHistoryAndRevertTo(t *testing.T) {
	f := newKV(t, "")
	f.call("put", map[string]any{"key": "a", "value": "1"})
	f.call("put", map[string]any{"key": "b", "value": "x"})
	f.call("put", map[string]any{"key": "a", "value": "2"})
	f.call("del", map[string]any{"key": "a"})
	f.st.Flush()
	puts := f.requests("put")
	h, err := f.planner().History(context.Background(), puts[2], "")
	if err != nil {
		t.Fatal(err)
	}
	if h.Key != "kv:a" || len(h.Versions) != 3 {
		t.Fatalf("history: %+v", h)
	}
	var got []string
	for _, v := range h.Versions {
		got = append(got, fmt.Sprintf("%s %q→%q", v.Tool, v.Before, v.After))
	}
	if want := `put ""→"1" put "1"→"2" del "2"→""`; strings.Join(got, " ") != want {
		t.Fatalf("versions: %s\nwant %s", strings.Join(got, " "), want)
	}
	// Revert to the first version: undo the two later calls on a, not b.
	sel, err := h.RevertTo(0)
	if err != nil || len(sel.Calls) != 2 {
		t.Fatalf("%v %v", sel, err)
	}
	p := f.build(sel)
	if _, err := f.executor(nil).Apply(context.Background(), p.ID, alice, nil); err != nil {
		t.Fatal(err)
	}
	if kv := f.kv(); kv["a"] != "1" || kv["b"] != "x" {
		t.Fatalf("after reverting to version 1: %v", kv)
	}
	if _, err := h.RevertTo(2); err == nil {
		t.Fatal("the newest version has nothing after it")
	}
}

// A step reads what its apply did, and keeps the reviewed status for the
// next apply of the plan (a failed step runs again).
func TestStepResult(t *testing.T) {
	for _, c := range []struct {
		st   Step
		want string
	}{
		{Step{Status: StatusReady}, StatusReady},
		{Step{Status: StatusReady, State: StateRunning}, StatusReady},
		{Step{Status: StatusReady, State: StateDone}, StatusReverted},
		{Step{Status: StatusReady, State: StateFailed}, StatusFailed},
		{Step{Status: StatusConflict}, StatusConflict},
		{Step{Status: StatusIrreversible}, StatusIrreversible},
	} {
		if got := c.st.Result(); got != c.want {
			t.Errorf("%+v: Result %q, want %q", c.st, got, c.want)
		}
	}
}

// A server wrapped under another name (wrap --name) is matched by its
// serverInfo name (the rules' match), for its class as for its capture: one
// rule lookup, so the record's class and the rollback agree.
func TestClassMatchesTheServersReportedName(t *testing.T) {
	f := newKV(t, "")
	f.closeC()
	f.connectAs("renamed-session", "renamed")
	f.call("put", map[string]any{"key": "a", "value": "1"})
	f.st.Flush()
	p, err := f.st.Query(store.Query{Tool: "put", Session: "renamed-session", Limit: 10})
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Events) != 2 {
		t.Fatalf("%d events for put, want its request and outcome", len(p.Events))
	}
	for _, ev := range p.Events {
		if ev.Class != "write" || ev.ClassSource != store.ClassSourceRule || ev.Prestate == "" && ev.Kind == store.KindCall {
			t.Errorf("%s: class %q from %q, prestate %q; want write from the rule, with a pre-state", ev.Kind, ev.Class, ev.ClassSource, ev.Prestate)
		}
	}
}

// A resource changed between the plan and its apply, by a recorded call
// through another upstream name of the same server, is a conflict on
// apply that names that call: who, which call, when.
func TestApplyConflictNamesTheLaterCall(t *testing.T) {
	f := newKV(t, "")
	f.setKV(map[string]string{"a": "0"})
	f.call("put", map[string]any{"key": "a", "value": "1"})
	plan := f.build(Selection{Calls: f.requests("put")})
	if got := statuses(plan); got != "put:ready" {
		t.Fatalf("statuses: %s", got)
	}
	f.closeC()
	f.connectAs("other-session", "kv-b")
	f.call("put", map[string]any{"key": "a", "value": "9"})
	later := f.requests("put")[1]
	ev, err := f.st.Get(later)
	if err != nil {
		t.Fatal(err)
	}
	applied, err := f.executor(nil).Apply(context.Background(), plan.ID, alice, nil)
	if err != nil {
		t.Fatal(err)
	}
	st := applied.Steps[0]
	want := fmt.Sprintf("last changed by agent in call %d (put on kv-b, session other-session) at %s", later, ev.Time.UTC().Format("2006-01-02 15:04:05Z"))
	if st.Result() != StatusConflict || !strings.Contains(st.Reason, want) {
		t.Fatalf("step %s: %q, want a conflict naming %q", st.Result(), st.Reason, want)
	}
	if got := f.kv()["a"]; got != "9" {
		t.Fatalf("a = %q: the later change was overwritten", got)
	}
}
