package rollback

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/mcptrail/mcptrail/ingest"
	"github.com/mcptrail/mcptrail/store"
)

// applyRun is one run of Executor.Apply over an approved plan: the plan
// as it goes (saved after every change) and the connections it opened,
// one per target, shared by the steps on that target and closed when the
// run ends; a target it could not reach is not dialled again in the run.
type applyRun struct {
	x        *Executor
	ctx      context.Context
	plan     *Plan
	who      Approver
	progress func(*Plan)
	auth     *store.Authorization // what each rollback_step records as its authorization

	conns   map[string]Conn  // by Target.key
	connErr map[string]error // by Target.key
}

// save stores the plan's progress and shows it to progress (a copy: the
// run goes on changing its plan).
func (r *applyRun) save() error {
	r.plan.Updated = r.x.now()
	if err := SavePlan(r.x.Store, r.plan); err != nil {
		return fmt.Errorf("saving the plan's progress: %w", err)
	}
	if r.progress != nil {
		c := *r.plan
		c.Steps = append([]Step(nil), r.plan.Steps...)
		r.progress(&c)
	}
	return nil
}

// approve records the approval event, which names who approved and the
// calls the plan is to revert, and marks the plan applying.
func (r *applyRun) approve() error {
	plan, who := r.plan, r.who
	at := r.x.now()
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
	seq, err := r.x.Record(ev)
	if err != nil {
		return fmt.Errorf("recording the approval: %w", err)
	}
	plan.Approvals = append(plan.Approvals, Approval{Approver: who, Time: at, Seq: seq})
	plan.State, plan.Error = PlanApplying, ""
	if err := r.save(); err != nil {
		return err
	}
	r.auth = &store.Authorization{Reviewed: true, Approver: who.ID(), Method: "rollback plan approved (" + who.Via + ")", Time: at}
	return nil
}

func (r *applyRun) close() {
	for _, c := range r.conns {
		c.Close("rollback plan " + r.plan.ID + " done")
	}
}

// stop ends the run: the plan's state and why, saved; the error is the
// save's.
func (r *applyRun) stop(state, msg string) error {
	r.plan.State, r.plan.Error = state, msg
	r.x.log().Warn("rollback: apply stopped", "plan", r.plan.ID, "state", state, "why", msg)
	return r.save()
}

// fail marks the step failed for msg and stops the run there.
func (r *applyRun) fail(st *Step, msg string) error {
	st.State, st.Error = StateFailed, msg
	return r.stop(PlanFailed, fmt.Sprintf("step %d: %s", st.N, msg))
}

// step runs one step: its resource re-checked, then its inverse calls, then
// the call marked reverted. next false: the run ends here (err is the
// save's, if saving failed).
func (r *applyRun) step(st *Step) (next bool, err error) {
	if st.settled() {
		return true, nil
	}
	if st.Status != StatusReady {
		return false, r.stop(PlanStopped, fmt.Sprintf("step %d (call %d, %s) is %s: %s. Apply stops before it; the steps before it were applied. Re-plan without call %d to go further.", st.N, st.Reverts, st.Tool, st.Status, st.Reason, st.Reverts))
	}
	mark := fmt.Sprintf("%s step %d", r.plan.ID, st.N)
	if rev, err := r.x.Store.Reverted([]uint64{st.Reverts}); err != nil {
		return false, r.stop(PlanFailed, err.Error())
	} else if by, ok := rev[st.Reverts]; ok && by != mark {
		st.Status, st.Reason = StatusReverted, "already reverted by plan "+by
		if err := r.save(); err != nil {
			return false, err
		}
		return true, nil
	}
	conn, err := r.conn(st)
	if err != nil {
		return false, r.fail(st, err.Error())
	}
	if ok, err := r.unchanged(st, conn); !ok {
		return false, err
	}
	exact, err := r.x.exactCalls(st)
	if err != nil {
		return false, r.fail(st, err.Error())
	}
	st.State, st.Error = StateRunning, ""
	if err := r.save(); err != nil {
		return false, err
	}
	if ok, err := r.invoke(st, conn, exact); !ok {
		return false, err
	}
	if by, err := r.x.Store.MarkReverted(st.Reverts, mark); err != nil {
		return false, r.stop(PlanFailed, err.Error())
	} else if by != "" && by != mark {
		r.x.log().Error("rollback: a call was reverted twice", "call", st.Reverts, "earlier", by, "now", mark)
	}
	st.State, st.Applied = StateDone, r.x.now()
	if err := r.save(); err != nil {
		return false, err
	}
	return true, nil
}

// conn is the connection to the step's upstream, opened on first use.
func (r *applyRun) conn(st *Step) (Conn, error) {
	t, ok := r.plan.Targets[st.Session]
	if !ok {
		return nil, fmt.Errorf("no way to reach %s: its session's start is not in the record", st.Upstream)
	}
	k := t.key()
	if c := r.conns[k]; c != nil {
		return c, nil
	}
	if r.connErr[k] == nil {
		c, err := r.x.Connect(r.ctx, t, &ApplyInfo{Plan: r.plan.ID, Approver: r.who})
		if err == nil {
			r.conns[k] = c
			return c, nil
		}
		r.connErr[k] = err
	}
	return nil, fmt.Errorf("could not reach %s: %w", st.Upstream, r.connErr[k])
}

// unchanged settles what a step's resource is before its first inverse
// call: an interrupted apply's in-flight call is resumed; else the
// resource must still be as the reverted call left it, or the step is a
// conflict. ok false: the run ends here.
func (r *applyRun) unchanged(st *Step, conn Conn) (ok bool, err error) {
	switch {
	case st.State == StateRunning:
		// An apply was interrupted in this step: the record says how far
		// its in-flight call got.
		if msg := r.x.resume(r.plan, st); msg != "" {
			return false, r.fail(st, msg)
		}
	case st.Done == 0:
		same, reason, err := r.x.recheck(r.ctx, st, conn)
		if err != nil {
			return false, r.fail(st, "re-reading it before the revert failed: "+err.Error())
		}
		if !same {
			who := (&Planner{Rules: r.x.Rules, Source: r.x.Store}).changedSince(st)
			reason = strings.TrimSuffix(reason, ": not overwritten") + "; " + who + ": not overwritten"
			st.Status, st.Reason = StatusConflict, reason
			return false, r.stop(PlanStopped, fmt.Sprintf("step %d (call %d, %s) is now a conflict: %s. Apply stops before it.", st.N, st.Reverts, st.Tool, reason))
		}
	}
	return true, nil
}

// invoke makes the step's inverse calls from st.Done on, saving after
// each. ok false: one failed (or a save did), and the run ends here.
func (r *applyRun) invoke(st *Step, conn Conn, exact []InverseCall) (ok bool, err error) {
	for k := st.Done; k < len(exact); k++ {
		ic := exact[k]
		cctx, cancel := context.WithTimeout(r.ctx, r.x.timeout())
		res, seq, err := conn.Call(cctx, "tools/call", map[string]any{"name": ic.Tool, "arguments": ic.Args}, &ingest.CallRecord{
			Kind: store.KindRollbackStep, Reverts: st.Reverts, Authorization: r.auth, Task: Task(r.plan.ID),
			Detail: stepDetail(r.plan, st, k),
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
			return false, r.stop(PlanFailed, fmt.Sprintf("step %d (call %d, %s) failed: %s. Apply stops here; run it again to retry.", st.N, st.Reverts, st.Tool, st.Error))
		}
		st.Done = k + 1
		if err := r.save(); err != nil {
			return false, err
		}
	}
	return true, nil
}
