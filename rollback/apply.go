package rollback

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/mcptrail/mcptrail/ingest"
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
	save := func() error {
		plan.Updated = x.now()
		if err := SavePlan(x.Store, plan); err != nil {
			return fmt.Errorf("saving the plan's progress: %w", err)
		}
		if progress != nil {
			c := *plan
			c.Steps = append([]Step(nil), plan.Steps...)
			progress(&c)
		}
		return nil
	}
	if plan.Origin != "" {
		return nil, fmt.Errorf("%w: %s", ErrAppliedElsewhere, plan.ApplyElsewhere())
	}
	if !plan.pending() {
		// Nothing left to do (a second apply, or a plan whose every step
		// was skipped or already reverted): it changes and records nothing.
		if plan.State != PlanApplied {
			plan.State, plan.Error = PlanApplied, ""
			return plan, save()
		}
		return plan, nil
	}
	// Steps run newest first: if the next one cannot run, nothing would,
	// and there is nothing to approve.
	for _, st := range plan.Steps {
		if st.State == StateDone || st.Status == StatusSkip || st.Status == StatusReverted {
			continue
		}
		if st.Status != StatusReady {
			plan.State = PlanStopped
			plan.Error = fmt.Sprintf("step %d (call %d, %s) is %s: %s. Nothing was applied. Re-plan without call %d to go further.", st.N, st.Reverts, st.Tool, st.Status, st.Reason, st.Reverts)
			return plan, save()
		}
		break
	}
	// The approval comes first: nothing runs unapproved.
	at := x.now()
	var ready []uint64
	for _, s := range plan.Steps {
		if s.Status == StatusReady && s.State != StateDone {
			ready = append(ready, s.Reverts)
		}
	}
	params, _ := json.Marshal(map[string]any{"plan": plan.ID, "selection": plan.Selection, "reverts": ready})
	ev := &store.Event{
		Kind: store.KindApproval, Time: at, Task: Task(plan.ID), Principal: who.Principal(),
		Authorization: &store.Authorization{Reviewed: true, Approver: who.ID(), Method: who.Via, Time: at},
		Detail:        fmt.Sprintf("%s approved rollback plan %s (%s): %d steps to revert", who.ID(), plan.ID, plan.Selection, len(ready)),
		Params:        params,
	}
	seq, err := x.Record(ev)
	if err != nil {
		return nil, fmt.Errorf("recording the approval: %w", err)
	}
	plan.Approvals = append(plan.Approvals, Approval{Approver: who, Time: at, Seq: seq})
	plan.State, plan.Error = PlanApplying, ""
	if err := save(); err != nil {
		return nil, err
	}
	auth := &store.Authorization{Reviewed: true, Approver: who.ID(), Method: "rollback plan approved (" + who.Via + ")", Time: at}

	conns := map[string]Conn{}
	connErr := map[string]error{}
	defer func() {
		for _, c := range conns {
			c.Close("rollback plan " + plan.ID + " done")
		}
	}()
	stop := func(state, msg string) (*Plan, error) {
		plan.State, plan.Error = state, msg
		x.log().Warn("rollback: apply stopped", "plan", plan.ID, "state", state, "why", msg)
		return plan, save()
	}
	for i := range plan.Steps {
		st := &plan.Steps[i]
		if st.State == StateDone || st.Status == StatusSkip || st.Status == StatusReverted {
			continue
		}
		if st.Status != StatusReady {
			return stop(PlanStopped, fmt.Sprintf("step %d (call %d, %s) is %s: %s. Apply stops before it; the steps before it were applied. Re-plan without call %d to go further.", st.N, st.Reverts, st.Tool, st.Status, st.Reason, st.Reverts))
		}
		mark := fmt.Sprintf("%s step %d", plan.ID, st.N)
		if rev, err := x.Store.Reverted([]uint64{st.Reverts}); err != nil {
			return stop(PlanFailed, err.Error())
		} else if by, ok := rev[st.Reverts]; ok && by != mark {
			st.Status, st.Reason = StatusReverted, "already reverted by plan "+by
			if err := save(); err != nil {
				return plan, err
			}
			continue
		}
		t, ok := plan.Targets[st.Session]
		if !ok {
			st.State, st.Error = StateFailed, "no way to reach "+st.Upstream+": its session's start is not in the record"
			return stop(PlanFailed, fmt.Sprintf("step %d: %s", st.N, st.Error))
		}
		k := t.key()
		conn := conns[k]
		if conn == nil && connErr[k] == nil {
			conn, err = x.Connect(ctx, t, &ApplyInfo{Plan: plan.ID, Approver: who})
			if err != nil {
				connErr[k] = err
			} else {
				conns[k] = conn
			}
		}
		if conn == nil {
			st.State, st.Error = StateFailed, "could not reach "+st.Upstream+": "+connErr[k].Error()
			return stop(PlanFailed, fmt.Sprintf("step %d: %s", st.N, st.Error))
		}
		switch {
		case st.State == StateRunning:
			// An apply was interrupted in this step: the record says how far
			// its in-flight call got.
			if msg := x.resume(plan, st); msg != "" {
				st.State, st.Error = StateFailed, msg
				return stop(PlanFailed, fmt.Sprintf("step %d: %s", st.N, msg))
			}
		case st.Done == 0:
			// The resource must still be as the call left it.
			if same, reason, err := x.recheck(ctx, st, conn); err != nil {
				st.State, st.Error = StateFailed, "re-reading it before the revert failed: "+err.Error()
				return stop(PlanFailed, fmt.Sprintf("step %d: %s", st.N, st.Error))
			} else if !same {
				who := (&Planner{Rules: x.Rules, Source: x.Store}).changedSince(st)
				reason = strings.TrimSuffix(reason, ": not overwritten") + "; " + who + ": not overwritten"
				st.Status, st.Reason = StatusConflict, reason
				return stop(PlanStopped, fmt.Sprintf("step %d (call %d, %s) is now a conflict: %s. Apply stops before it.", st.N, st.Reverts, st.Tool, reason))
			}
		}
		exact, err := x.exactCalls(st)
		if err != nil {
			st.State, st.Error = StateFailed, err.Error()
			return stop(PlanFailed, fmt.Sprintf("step %d: %s", st.N, st.Error))
		}
		st.State, st.Error = StateRunning, ""
		if err := save(); err != nil {
			return plan, err
		}
		for k := st.Done; k < len(exact); k++ {
			ic := exact[k]
			cctx, cancel := context.WithTimeout(ctx, x.timeout())
			res, seq, err := conn.Call(cctx, "tools/call", map[string]any{"name": ic.Tool, "arguments": ic.Args}, &ingest.CallRecord{
				Kind: store.KindRollbackStep, Reverts: st.Reverts, Authorization: auth, Task: Task(plan.ID),
				Detail: stepDetail(plan, st, k),
			})
			cancel()
			if seq != 0 {
				st.StepSeq = append(st.StepSeq, seq)
			}
			if err == nil {
				if v := resultView(res); v == nil || member(v, "ok") != true {
					err = fmt.Errorf("%s reported an error: %s", ic.Tool, oneLine(text(member(v, "error")), 300))
				}
			}
			if err != nil {
				st.State, st.Error = StateFailed, fmt.Sprintf("inverse call %d/%d (%s): %v", k+1, len(st.Calls), ic.Tool, err)
				return stop(PlanFailed, fmt.Sprintf("step %d (call %d, %s) failed: %s. Apply stops here; run it again to retry.", st.N, st.Reverts, st.Tool, st.Error))
			}
			st.Done = k + 1
			if err := save(); err != nil {
				return plan, err
			}
		}
		if by, err := x.Store.MarkReverted(st.Reverts, mark); err != nil {
			return stop(PlanFailed, err.Error())
		} else if by != "" && by != mark {
			x.log().Error("rollback: a call was reverted twice", "call", st.Reverts, "earlier", by, "now", mark)
		}
		st.State, st.Applied = StateDone, x.now()
		if err := save(); err != nil {
			return plan, err
		}
	}
	plan.State, plan.Error = PlanApplied, ""
	return plan, save()
}

func (x *Executor) timeout() time.Duration {
	if x.Timeout > 0 {
		return x.Timeout
	}
	return 60 * time.Second
}

// pending reports whether applying the plan would do anything.
func (p *Plan) pending() bool {
	for _, s := range p.Steps {
		if s.State == StateDone || s.Status == StatusSkip || s.Status == StatusReverted {
			continue
		}
		return true
	}
	return false
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
