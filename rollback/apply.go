package rollback

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/mcptrail/mcptrail/store"
)

// PlanStore keeps plans and what was reverted: *store.Store.
type PlanStore interface {
	Source
	PutPlan(id string, data []byte) error
	Plan(id string) ([]byte, error)
	MarkReverted(call uint64, by string) (string, error)
}

// SavePlan stores a plan.
func SavePlan(st PlanStore, p *Plan) error {
	data, err := json.Marshal(p)
	if err != nil {
		return err
	}
	return st.PutPlan(p.ID, data)
}

// LoadPlan reads a stored plan.
func LoadPlan(st interface{ Plan(string) ([]byte, error) }, id string) (*Plan, error) {
	data, err := st.Plan(id)
	if err != nil {
		return nil, err
	}
	var p Plan
	if err := json.Unmarshal(data, &p); err != nil {
		return nil, fmt.Errorf("plan %s: %w", id, err)
	}
	return &p, nil
}

// Executor applies approved plans.
type Executor struct {
	Rules   *RuleSet
	Store   PlanStore
	Record  func(ev *store.Event) (uint64, error) // durable: approval events
	Connect Connector
	Now     func() time.Time
	Log     *slog.Logger
	Timeout time.Duration // per inverse call (default 60s)
}

// Task is the task the record files a plan's events under.
func Task(planID string) *store.Task {
	return &store.Task{ID: planID, Name: "rollback", Workflow: "rollback"}
}

// Principal is the identity an approver acts with in the record.
func (a Approver) Principal() *store.Principal {
	if a.Fingerprint != "" {
		return &store.Principal{Subject: a.Name, CredentialID: a.Fingerprint, Kind: "ssh_key", Verified: true}
	}
	return &store.Principal{Subject: a.Name, Kind: "os_user"}
}

func (x *Executor) now() time.Time {
	if x.Now != nil {
		return x.Now().UTC()
	}
	return time.Now().UTC()
}

func (x *Executor) log() *slog.Logger {
	if x.Log != nil {
		return x.Log
	}
	return slog.Default()
}

// Apply approves (an approval event naming who) and executes a plan:
// newest step first, each step's inverse calls through the gateway as
// rollback_step events. It stops at the first step that is not ready or
// whose call fails; every step's progress is stored as it goes, so running
// Apply again resumes where it stopped, and a step already done — by this
// plan or any other — is never run again. progress, when set, sees the
// plan after every change. The returned plan's State says how it went;
// the error is for what kept Apply from running at all.
func (x *Executor) Apply(ctx context.Context, id string, who Approver, progress func(*Plan)) (*Plan, error) {
	plan, err := LoadPlan(x.Store, id)
	if err != nil {
		return nil, err
	}
	if plan.Origin != "" {
		return nil, fmt.Errorf("%w: %s", ErrAppliedElsewhere, plan.ApplyElsewhere())
	}
	r := &applyRun{x: x, ctx: ctx, plan: plan, who: who, progress: progress, conns: map[string]Conn{}, connErr: map[string]error{}}
	if !plan.pending() {
		// Nothing left to do (a second apply, or a plan whose every step
		// was skipped or already reverted): it changes and records nothing.
		if plan.State != PlanApplied {
			plan.State, plan.Error = PlanApplied, ""
			return plan, r.save()
		}
		return plan, nil
	}
	// Steps run newest first: if the next one cannot run, nothing would,
	// and there is nothing to approve.
	if st := plan.next(); st.Status != StatusReady {
		plan.State = PlanStopped
		plan.Error = fmt.Sprintf("step %d (call %d, %s) is %s: %s. Nothing was applied. Re-plan without call %d to go further.", st.N, st.Reverts, st.Tool, st.Status, st.Reason, st.Reverts)
		return plan, r.save()
	}
	// The approval comes first: nothing runs unapproved.
	if err := r.approve(); err != nil {
		return nil, err
	}
	defer r.close()
	for i := range plan.Steps {
		if next, err := r.step(&plan.Steps[i]); !next {
			return plan, err
		}
	}
	plan.State, plan.Error = PlanApplied, ""
	return plan, r.save()
}

func (x *Executor) timeout() time.Duration {
	if x.Timeout > 0 {
		return x.Timeout
	}
	return 60 * time.Second
}

// pending reports whether applying the plan would do anything.
func (p *Plan) pending() bool { return p.next() != nil }

// next is the first step (the newest call) an apply would run or stop at;
// nil when none is left.
func (p *Plan) next() *Step {
	for i := range p.Steps {
		if !p.Steps[i].settled() {
			return &p.Steps[i]
		}
	}
	return nil
}

// settled: apply has nothing to do for the step (done, skipped, or
// reverted already).
func (s Step) settled() bool {
	return s.State == StateDone || s.Status == StatusSkip || s.Status == StatusReverted
}

// stepDetail names an inverse call in the record; resume finds it by it.
func stepDetail(p *Plan, st *Step, k int) string {
	return fmt.Sprintf("rollback plan %s step %d/%d, inverse call %d/%d: reverts call %d (%s)", p.ID, st.N, len(p.Steps), k+1, len(st.Calls), st.Reverts, st.Tool)
}

// resume settles the inverse call an interrupted apply left in flight
// (st.Done): recorded with a good outcome, it counts as done; not recorded
// at all, or failed, it runs again. Recorded without an outcome, nobody can
// say what it did: resume refuses (the message says so).
func (x *Executor) resume(p *Plan, st *Step) string {
	if st.Done >= len(st.Calls) {
		return ""
	}
	prefix := fmt.Sprintf("rollback plan %s step %d/%d, inverse call %d/", p.ID, st.N, len(p.Steps), st.Done+1)
	var req *store.Event
	err := pages(x.Store, store.Query{Kind: store.KindRollbackStep, Limit: 10000}, func(ev *store.Event) {
		if ev.Reverts == st.Reverts && strings.HasPrefix(ev.Detail, prefix) {
			c := *ev
			req = &c
		}
	})
	if err != nil {
		return "reading the record to resume: " + err.Error()
	}
	if req == nil {
		return "" // it was never sent
	}
	var out *store.Event
	err = pages(x.Store, store.Query{Session: req.Session, Kind: store.KindCall, Cursor: req.Seq, Limit: 10000}, func(ev *store.Event) {
		if ev.Call == req.Seq {
			c := *ev
			out = &c
		}
	})
	if err != nil {
		return "reading the record to resume: " + err.Error()
	}
	switch {
	case out == nil:
		return fmt.Sprintf("inverse call %d/%d (rollback_step %d) was in flight when the apply was interrupted and has no recorded outcome: what it did is unknown. Check %s by hand, then re-plan", st.Done+1, len(st.Calls), req.Seq, strings.Join(st.Keys, ", "))
	case out.Outcome == store.OutcomeOK && member(resultView(out.Result), "ok") == true:
		st.StepSeq = appendNew(st.StepSeq, req.Seq)
		st.Done++
	}
	return "" // failed: it runs again
}

func appendNew(l []uint64, v uint64) []uint64 {
	for _, e := range l {
		if e == v {
			return l
		}
	}
	return append(l, v)
}

// envOf is the rule of the call a step reverts and its environment, with
// the exact pre-state: what the planner rendered the step from. rule is
// nil when no rule names the call's tool any more.
func (x *Executor) envOf(st *Step) (*ToolRule, map[string]any, error) {
	req, err := x.Store.Get(st.Reverts)
	if err != nil {
		return nil, nil, err
	}
	var out *store.Event
	if st.Outcome != 0 {
		if out, err = x.Store.Get(st.Outcome); err != nil {
			return nil, nil, err
		}
	}
	rule := x.Rules.Lookup(req.Upstream, "", req.Tool)
	if rule == nil {
		if t := x.serverName(st); t != "" {
			rule = x.Rules.Lookup(req.Upstream, t, req.Tool)
		}
	}
	if rule == nil {
		return nil, nil, nil
	}
	env, err := rule.baseEnv(req, out)
	if err != nil {
		return nil, nil, err
	}
	if rule.HasCapture() && out != nil {
		data, err := x.Store.Prestate(req.Seq)
		if err != nil {
			return nil, nil, err
		}
		_, views, err := decodePrestate(rule, out.Prestate, data)
		if err != nil {
			return nil, nil, err
		}
		env["prestate"] = views
	}
	return rule, env, nil
}

// recheck re-reads a step's resource before it is reverted.
func (x *Executor) recheck(ctx context.Context, st *Step, conn Conn) (bool, string, error) {
	rule, env, err := x.envOf(st)
	if err != nil {
		return false, "", err
	}
	if rule == nil || len(rule.check) == 0 {
		return true, "", nil
	}
	ctx, cancel := context.WithTimeout(ctx, x.timeout())
	defer cancel()
	return verify(ctx, rule, env, conn)
}

// exactCalls are the inverse calls a step runs: rendered again from the
// pre-state, since the plan holds their arguments masked, and the same as
// reviewed — each hashes to the digest the plan recorded. A plan stored
// before digests holds its arguments as they run.
func (x *Executor) exactCalls(st *Step) ([]InverseCall, error) {
	digests := false
	for _, c := range st.Calls {
		digests = digests || c.ArgsSHA256 != ""
	}
	if !digests {
		return st.Calls, nil
	}
	const changed = "the inverse calls no longer render as they were reviewed (the rules or the pre-state changed since the plan was built): re-plan"
	rule, env, err := x.envOf(st)
	if err != nil {
		return nil, fmt.Errorf("rendering the inverse calls again: %w", err)
	}
	if rule == nil {
		return nil, errors.New(changed)
	}
	calls, err := rule.render(env)
	if err != nil {
		return nil, fmt.Errorf("rendering the inverse calls again: %w", err)
	}
	if len(calls) != len(st.Calls) {
		return nil, errors.New(changed)
	}
	for i, c := range calls {
		if c.Tool != st.Calls[i].Tool || argsDigest(c.Args) != st.Calls[i].ArgsSHA256 {
			return nil, errors.New(changed)
		}
	}
	return calls, nil
}

func (x *Executor) serverName(st *Step) string {
	return newSessionCache(x.Store).serverName(st.Session)
}

// ErrNotApproved is returned when a plan is applied without an approver.
var ErrNotApproved = errors.New("a rollback plan needs an approver")
