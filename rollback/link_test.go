package rollback

import (
	"context"
	"testing"

	"github.com/mcptrail/mcptrail/store"
)

// TestRollbackStepsNameTheCallTheyRevert: every rollback_step event names
// the very request its step reverts (not merely some seq), and that request
// is the recorded call of the step's tool.
func TestRollbackStepsNameTheCallTheyRevert(t *testing.T) {
	f := newKV(t, "")
	f.call("put", map[string]any{"key": "a", "value": "1"})
	f.call("put", map[string]any{"key": "b", "value": "2"})
	f.call("del", map[string]any{"key": "a"})
	plan := f.build(Selection{Session: "agent-session"})
	applied, err := f.executor(nil).Apply(context.Background(), plan.ID, alice, nil)
	if err != nil {
		t.Fatal(err)
	}
	if applied.State != PlanApplied {
		t.Fatalf("apply: %s %s", applied.State, applied.Error)
	}
	f.st.Flush()
	linked := 0
	for _, st := range applied.Steps {
		if st.Status != StatusReady {
			continue
		}
		call, err := f.st.Get(st.Reverts)
		if err != nil || call.Kind != store.KindRequest || call.Tool != st.Tool || call.Session != "agent-session" {
			t.Fatalf("step %d reverts seq %d, which is not the %s call it undoes: %+v %v", st.N, st.Reverts, st.Tool, call, err)
		}
		if len(st.StepSeq) == 0 {
			t.Fatalf("step %d recorded no rollback_step event", st.N)
		}
		for _, seq := range st.StepSeq {
			ev, err := f.st.Get(seq)
			if err != nil {
				t.Fatal(err)
			}
			if ev.Kind != store.KindRollbackStep || ev.Reverts != st.Reverts {
				t.Errorf("step %d (reverts call %d): event %d is %s reverting %d", st.N, st.Reverts, seq, ev.Kind, ev.Reverts)
			}
			linked++
		}
	}
	if linked < 3 {
		t.Fatalf("%d rollback_step events checked, want at least 3: %s", linked, statuses(applied))
	}
}
