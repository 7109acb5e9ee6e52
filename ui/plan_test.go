package ui

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/mcptrail/mcptrail/rollback"
)

// fakeRollback is the daemon's rollback service as the console sees it: it
// plans every selected call as a write_file step (the first one a
// conflict when asked) and applies step by step, holding after the first
// step until the test lets it go on, so the console's progress shows.
type fakeRollback struct {
	mu        sync.Mutex
	plans     map[string]*rollback.Plan
	order     []string
	conflict  bool
	proceed   chan struct{}
	approvers []rollback.Approver
	selection []rollback.Selection
	history   [2]uint64
	origin    string // plans revert calls collected from this origin store (a central daemon)
}

func newFakeRollback() *fakeRollback {
	return &fakeRollback{plans: map[string]*rollback.Plan{}, proceed: make(chan struct{})}
}

func clonePlan(p *rollback.Plan) *rollback.Plan {
	c := *p
	c.Steps = slices.Clone(p.Steps)
	return &c
}

func (f *fakeRollback) RollbackPlan(sel rollback.Selection, by string) (*rollback.Plan, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.selection = append(f.selection, sel)
	id := fmt.Sprintf("01PLAN%020d", len(f.order)+1)
	p := &rollback.Plan{ID: id, Created: now, CreatedBy: by, Selection: sel, State: rollback.PlanPlanned, Checked: true}
	if f.origin != "" {
		p.Origin, p.OriginHost, p.Checked = f.origin, "laptop-7", false
	}
	seqs := sel.Calls
	if sel.From != 0 {
		seqs = []uint64{sel.From + 2, sel.From}
	}
	for i, seq := range seqs {
		st := rollback.Step{N: i + 1, Reverts: seq, Tool: "write_file", Session: sessOps, Status: rollback.StatusReady,
			Args: "path=config.yaml", Keys: []string{"file:config.yaml"},
			Calls: []rollback.InverseCall{{Tool: "write_file", Args: []byte(`{"path":"config.yaml","content":"replicas: 3\n"}`)}},
			Diff:  "--- current\n+++ restored\n@@ -1 +1 @@\n-replicas: 0\n+replicas: 3\n", Checked: true}
		if f.conflict && i == len(seqs)-1 {
			st.Status, st.Reason = rollback.StatusConflict, "it changed after the call: not overwritten"
		}
		p.Steps = append(p.Steps, st)
	}
	f.plans[id] = p
	f.order = append(f.order, id)
	return clonePlan(p), nil
}

func (f *fakeRollback) RollbackGet(id string) (*rollback.Plan, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	p, ok := f.plans[id]
	if !ok {
		return nil, errors.New("no such plan")
	}
	return clonePlan(p), nil
}

func (f *fakeRollback) RollbackPlans(limit int) ([]*rollback.Plan, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []*rollback.Plan
	for i := len(f.order) - 1; i >= 0 && len(out) < limit; i-- {
		out = append(out, clonePlan(f.plans[f.order[i]]))
	}
	return out, nil
}

// RollbackHistory is config.yaml's history in demoRecord: its two writes.
func (f *fakeRollback) RollbackHistory(call uint64) (*rollback.History, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	v1 := "replicas: 3\nmaintenance: false\nbackup_retention_days: 30\n"
	v2 := "replicas: 0\nmaintenance: true\nbackup_retention_days: 0\n"
	return &rollback.History{Key: "file:config.yaml", Upstream: "acme-ops", Versions: []rollback.Version{
		{Call: f.history[0], Tool: "write_file", Session: sessOps, Outcome: "ok", Before: "", After: v1, Diff: "--- current\n+++ restored\n@@ -1 +1 @@\n+replicas: 3\n"},
		{Call: f.history[1], Tool: "write_file", Session: sessOps, Outcome: "ok", Before: v1, After: v2, Diff: "--- current\n+++ restored\n@@ -1 +1 @@\n-replicas: 3\n+replicas: 0\n"},
	}}, nil
}

func (f *fakeRollback) RollbackApply(id string, who rollback.Approver) (*rollback.Plan, error) {
	f.mu.Lock()
	f.approvers = append(f.approvers, who)
	p := f.plans[id]
	p.State = rollback.PlanApplying
	f.mu.Unlock()
	for i := range p.Steps {
		f.mu.Lock()
		st := &p.Steps[i]
		if st.Status != rollback.StatusReady {
			p.State, p.Error = rollback.PlanStopped, fmt.Sprintf("step %d is %s", st.N, st.Status)
			f.mu.Unlock()
			break
		}
		st.State, st.Done, st.StepSeq = rollback.StateDone, 1, []uint64{900 + uint64(i)}
		f.mu.Unlock()
		if i == 0 {
			<-f.proceed
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if p.State == rollback.PlanApplying {
		p.State = rollback.PlanApplied
	}
	return clonePlan(p), nil
}

func rbOptions(f *fixture, role Role, rb *fakeRollback) Options {
	opts := testOptions(f.st, role)
	opts.SourceLabel = "daemon /var/lib/mcptrail"
	opts.Rollback = rb
	return opts
}

func TestPlanReviewAndApply(t *testing.T) {
	f := newFixture(t)
	in := demoRecord(f)
	rb := newFakeRollback()
	var actions []string
	var amu sync.Mutex
	opts := rbOptions(f, RoleOperator, rb)
	opts.OnAction = func(a, d string) { amu.Lock(); actions = append(actions, a+" "+d); amu.Unlock() }
	h := startDemo(t, opts)
	h.openOps()
	h.keys("jjjjj", "space") // mark the second write_file
	h.waitFor("marked call")
	h.keys("r")
	h.waitFor("1 ready")
	h.waitFor("+replicas: 3")
	if len(rb.selection) != 1 || !slices.Equal(rb.selection[0].Calls, []uint64{in.writeV2}) {
		t.Fatalf("planned %+v, want the marked call", rb.selection)
	}
	if h.app.c.Marks.Len() != 0 {
		t.Fatal("the marks that went into the plan should leave the queue")
	}
	// Apply asks first; a wrong word does nothing.
	h.keys("A")
	h.waitFor("Type apply")
	h.keys("yes", "enter")
	h.waitFor("type apply (or esc to cancel)")
	h.keys("backspace", "backspace", "backspace", "apply", "enter")
	h.waitFor("applying…")
	h.waitFor("1 of 1 steps done")
	close(rb.proceed)
	h.waitFor("applied: 1 call reverted")
	h.keys("A") // an applied plan has nothing left to apply, and says so
	h.waitFor("is applied already (1 call reverted)")
	frame := h.final()
	if !strings.Contains(frame, "done") || !strings.Contains(frame, "reverted") {
		t.Fatalf("the step should show done:\n%s", frame)
	}
	if len(rb.approvers) != 1 || rb.approvers[0].ID() != "SHA256:testkeyfingerprint" {
		t.Fatalf("approved by %+v, want the SSH key", rb.approvers)
	}
	amu.Lock()
	defer amu.Unlock()
	joined := strings.Join(actions, "\n")
	containsAll(t, "actions", joined, "queue plan of 1 marked calls", "plan rollback plan", "approve rollback plan", "apply rollback plan")
	h.golden(frame)
}

// On a central daemon the plan screen shows the plan (with its diffs) but
// applies nothing: the banner says where the calls ran, the step pane
// gives the commands, and A says so instead of asking to confirm.
func TestCentralPlanShowsTheCommandsInsteadOfApplying(t *testing.T) {
	f := newFixture(t)
	demoRecord(f)
	rb := newFakeRollback()
	rb.origin = "01ORIGINSTORE"
	h := startDemo(t, rbOptions(f, RoleOperator, rb))
	h.openOps()
	h.keys("jjjjj", "space")
	h.waitFor("marked call")
	h.keys("r")
	h.waitFor("review only: these calls ran on laptop-7")
	h.waitFor("+replicas: 3")
	h.keys("A")
	h.waitFor("not here: the calls ran on laptop-7")
	h.keys("tab", "G")
	h.waitFor("mcptrail rollback export-plan 01PLAN00000000000000000001 > plan.json")
	h.waitFor("mcptrail rollback apply --plan-file plan.json")
	frame := h.final()
	if strings.Contains(frame, "Type apply") || len(rb.approvers) != 0 {
		t.Fatalf("a central plan asked to apply (approvers %v):\n%s", rb.approvers, frame)
	}
}

func TestPlanSelectedAndAfterWithConflict(t *testing.T) {
	f := newFixture(t)
	in := demoRecord(f)
	rb := newFakeRollback()
	rb.conflict = true
	close(rb.proceed)
	h := startDemo(t, rbOptions(f, RoleOperator, rb))
	h.openOps()
	h.keys("jjjjj", "r") // no marks: the selected call and every later call
	h.waitFor("1 conflict")
	if len(rb.selection) != 1 || rb.selection[0].From != in.writeV2 {
		t.Fatalf("planned %+v, want from the selected call", rb.selection)
	}
	h.keys("j")
	h.waitFor("changed after the call")
	h.keys("A")
	h.waitFor("Type apply")
	h.keys("apply", "enter")
	h.waitFor("partially applied: step 2 is conflict") // step 1 was reverted
	// Back to the queue: the plan is listed with its state.
	h.keys("esc")
	h.keys("R")
	h.waitFor("PLANS (1)")
	h.waitFor("partially applied")
	h.final()
}

func TestViewerCannotApply(t *testing.T) {
	f := newFixture(t)
	demoRecord(f)
	rb := newFakeRollback()
	if _, err := rb.RollbackPlan(rollback.Selection{Calls: []uint64{20}}, "bob"); err != nil {
		t.Fatal(err)
	}
	h := startDemo(t, rbOptions(f, RoleViewer, rb))
	h.keys("R")
	h.waitFor("PLANS (1)")
	h.keys("tab", "enter")
	h.waitFor("1 ready")
	h.keys("A")
	h.waitFor("viewer role: only operators may apply rollback plans")
	h.final()
	if len(rb.approvers) != 0 {
		t.Fatal("a viewer applied a plan")
	}
}

func TestResourceHistoryAndRevertToHere(t *testing.T) {
	f := newFixture(t)
	in := demoRecord(f)
	rb := newFakeRollback()
	rb.history = [2]uint64{in.writeV1, in.writeV2}
	h := startDemo(t, rbOptions(f, RoleOperator, rb))
	h.openOps()
	h.keys("jjjjj", "H") // the second write_file's resource
	h.waitFor("version 2 of 2")
	h.waitFor("+replicas: 0")
	h.keys("r")
	h.waitFor("nothing after this version is left to revert")
	h.keys("[")
	h.waitFor("version 1 of 2")
	h.waitFor("+replicas: 3")
	h.keys("r") // revert to here: every later call on config.yaml
	h.waitFor("1 ready")
	h.final()
	if len(rb.selection) != 1 || !slices.Equal(rb.selection[0].Calls, []uint64{in.writeV2}) {
		t.Fatalf("revert to here planned %+v, want the later write", rb.selection)
	}
}
