package ui

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/mcptrail/mcptrail/rollback"
	"github.com/mcptrail/mcptrail/store"
)

const (
	sessKVA = "01JKVAGENTA000000000000000"
	sessKVB = "01JKVAGENTB000000000000000"
)

// tenLines is a value of ten lines, line 8 replaced by eighth when set.
func tenLines(eighth string) string {
	var b strings.Builder
	for i := 1; i <= 10; i++ {
		if i == 8 && eighth != "" {
			b.WriteString(eighth + "\n")
			continue
		}
		fmt.Fprintf(&b, "line %d\n", i)
	}
	return b.String()
}

// incidentKV is two agents on the same kvserver under two upstream names:
// agent-a (upstream kv) writes d, e, c (the value it had) and a; agent-b
// (upstream kv-b) rewrites f's eighth line and a. Then d is changed
// outside the record, and the store is locked, so that writing e back
// fails.
func incidentKV(t *testing.T) (*kvWorld, map[string]uint64) {
	w := newKVWorld(t)
	w.setKV(map[string]string{"c": "same", "d": "old-d", "e": "old-e", "f": tenLines("")})
	a := w.agent(sessKVA, "kv", "agent-a")
	b := w.agent(sessKVB, "kv-b", "agent-b")
	w.put(a, "d", "4")
	w.put(a, "e", "5")
	w.put(a, "c", "same")
	w.put(a, "a", "1")
	w.put(b, "f", tenLines("EIGHT"))
	w.put(b, "a", "7")
	if err := w.st.Flush(); err != nil {
		t.Fatal(err)
	}
	seqs := map[string]uint64{}
	page, err := w.st.Query(store.Query{Tool: "put", Kind: store.KindRequest, Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range page.Events {
		var p struct {
			Arguments struct{ Key string } `json:"arguments"`
		}
		if err := json.Unmarshal(e.Params, &p); err != nil {
			t.Fatal(err)
		}
		seqs[e.Agent.Name+":"+p.Arguments.Key] = e.Seq
	}
	m := w.kv()
	m["d"] = "changed by hand"
	w.setKV(m)
	if err := os.WriteFile(w.kvFile+".lock", []byte("e\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return w, seqs
}

// openKV starts the console on the incident with the rollback service, at
// look l (size, theme or NO_COLOR), on the sessions screen.
func openKV(t *testing.T, w *kvWorld, l look) *harness {
	t.Helper()
	opts := l.options(w.st, RoleOperator)
	opts.Rollback = w.service()
	h := startSized(t, opts, l.w, l.h)
	h.waitFor("agent-a")
	return h
}

// applyAll marks every put of agent-a and agent-b's last put, plans them
// and applies the plan, from the console, and leaves it on the plan.
func applyAll(t *testing.T, h *harness) {
	t.Helper()
	h.keys("enter") // agent-b, the newest session
	h.waitFor("key=a value=7")
	h.keys("G", "space")
	h.waitFor("1 queued")
	h.keys("esc", "j", "enter")
	h.waitFor("key=a value=1")
	h.keys("G", "V", "kkk", "V")
	h.waitFor("5 queued")
	h.keys("r")
	h.waitFor("5 steps")
	h.keys("A")
	h.waitFor("Type apply")
	h.keys("apply", "enter")
	h.waitFor("partially applied")
}

// After an apply, each step and the plan say what happened — reverted,
// skip (a write of the value the key had), failed (the server refused the
// inverse call), conflict (changed outside the record, which it says) —
// and the reverted calls carry ↺ in their timeline, the others not.
func TestAppliedPlanStatusesAndRevertedFlags(t *testing.T) {
	eachLook(t, func(t *testing.T, l look) {
		w, seqs := incidentKV(t)
		h := openKV(t, w, l)
		applyAll(t, h)
		h.waitFor("1 conflict, 1 failed, 1 skip, 2 reverted")
		if got := w.kv(); got["a"] != "" || got["e"] != "5" || got["d"] != "changed by hand" || got["c"] != "same" {
			t.Fatalf("after the apply the store is %v: a should be gone, the rest as it was", got)
		}
		p := latestPlan(t, w)
		want := map[uint64]string{seqs["agent-b:a"]: "reverted", seqs["agent-a:a"]: "reverted", seqs["agent-a:c"]: "skip", seqs["agent-a:e"]: "failed", seqs["agent-a:d"]: "conflict"}
		for _, st := range p.Steps {
			if st.Result() != want[st.Reverts] {
				t.Errorf("step of call %d says %s, want %s (%s)", st.Reverts, st.Result(), want[st.Reverts], st.Reason)
			}
			if st.Reverts == seqs["agent-a:d"] && !strings.Contains(st.Reason, "changed outside the record") {
				t.Errorf("the conflict should say who changed d: %s", st.Reason)
			}
		}
		h.keys("G") // the oldest step: the conflict
		h.waitFor("changed outside the record")
		// The queue lists the plan as it is. The screen is read afresh
		// before each wait: "partially applied" is already on screen, and
		// a key sent before the queue is up would act on the screen below.
		h.seen = nil
		h.keys("esc", "R")
		h.waitFor("Rollback queue")
		h.waitFor("partially applied")
		h.seen = nil
		h.keys("esc")
		h.waitFor("key=d value=4")
		h.keys("G") // agent-a's a=1
		frame := h.final()
		for line, flagged := range map[string]bool{"key=a value=1": true, "key=e value=5": false, "key=d value=4": false, "key=c value=same": false} {
			row := lineWith(frame, line)
			if row == "" || strings.Contains(row, "↺") != flagged {
				t.Errorf("the row of %s should%s carry ↺:\n%s", line, map[bool]string{true: "", false: " not"}[flagged], frame)
			}
		}
	})
}

func latestPlan(t *testing.T, w *kvWorld) *rollback.Plan {
	t.Helper()
	raw, err := w.st.Rollback().Plans(1)
	if err != nil || len(raw) != 1 {
		t.Fatalf("plans: %d, %v", len(raw), err)
	}
	var p rollback.Plan
	if err := json.Unmarshal(raw[0], &p); err != nil {
		t.Fatal(err)
	}
	return &p
}

func lineWith(frame, text string) string {
	for _, l := range strings.Split(frame, "\n") {
		if strings.Contains(l, text) {
			return l
		}
	}
	return ""
}

// H on a call lists every change of its resource, from both upstreams the
// server was reached under, and the rollback steps that reverted them.
func TestHistoryAcrossUpstreamsWithRollbackSteps(t *testing.T) {
	eachLook(t, func(t *testing.T, l look) {
		w, seqs := incidentKV(t)
		h := openKV(t, w, l)
		applyAll(t, h)
		h.keys("esc", "G", "H") // agent-a's a=1
		h.waitFor("kv:a · 2 changes, 2 rollback steps · on kv, kv-b")
		h.waitFor(fmt.Sprintf("changes: [%d↺] → %d↺ → ↺", seqs["agent-a:a"], seqs["agent-b:a"]))
		h.keys("]")
		h.waitFor(fmt.Sprintf("call %d put by agent-b on kv-b", seqs["agent-b:a"]))
		h.keys("]")
		h.waitFor(fmt.Sprintf("reverts call %d (put)", seqs["agent-b:a"]))
		h.final()
	})
}

// d on a call shows its resource before → after, in hunks with the lines
// where they are; on a console without the daemon, the arguments, saying so.
func TestDiffShowsTheResource(t *testing.T) {
	eachLook(t, func(t *testing.T, l look) {
		w, seqs := incidentKV(t)
		h := openKV(t, w, l)
		h.keys("enter") // agent-b
		h.waitFor("key=a value=7")
		h.keys("G", "k", "d") // f's eighth line
		h.waitFor("resource kv:f")
		h.waitFor(fmt.Sprintf("--- before call %d", seqs["agent-b:f"]))
		h.waitFor("@@ -5,6 +5,6 @@")
		frame := h.final()
		del, add := strings.Index(frame, "- line 8"), strings.Index(frame, "+ EIGHT")
		if del < 0 || add < 0 || del > add {
			t.Fatalf("the hunk should remove line 8, then add EIGHT:\n%s", frame)
		}
		for _, ctx := range []string{"  line 5", "  line 7", "  line 9", "  line 10"} {
			if !strings.Contains(frame, ctx) {
				t.Errorf("no context line %q:\n%s", ctx, frame)
			}
		}
		if strings.Contains(frame, "  line 4") {
			t.Errorf("line 4 is beyond the context:\n%s", frame)
		}
	})
}

// A call whose resource another agent changed later, through another
// upstream name of the same server, is a conflict, and the step says who
// changed it, in which call, when: reverting it would undo that change too.
func TestConflictNamesTheLaterChangeFromAnotherUpstream(t *testing.T) {
	w, seqs := incidentKV(t)
	h := openKV(t, w, look{w: 200, h: 50, theme: "dark"})
	h.keys("j", "enter") // agent-a
	h.waitFor("key=a value=1")
	h.keys("G", "space", "r")
	h.waitFor("1 conflict")
	p := latestPlan(t, w)
	if len(p.Steps) != 1 || p.Steps[0].Status != rollback.StatusConflict {
		t.Fatalf("plan %+v, want one conflict", p.Steps)
	}
	later, err := w.st.Get(seqs["agent-b:a"])
	if err != nil {
		t.Fatal(err)
	}
	want := fmt.Sprintf("kv:a was changed later by agent-b in call %d (put on kv-b, session %s) at %s", later.Seq, sessKVB, later.Time.UTC().Format("2006-01-02 15:04:05Z"))
	if !strings.Contains(p.Steps[0].Reason, want) {
		t.Fatalf("reason %q, want %q", p.Steps[0].Reason, want)
	}
	h.waitFor("changed later by agent-b in call")
	before := w.kv()
	h.keys("A")
	h.waitFor("nothing to apply: no step is ready")
	if got := w.kv(); fmt.Sprint(got) != fmt.Sprint(before) {
		t.Fatalf("the store changed: %v → %v", before, got)
	}
	h.final()
}

// y on a rollback step's row copies its request and its outcome, each
// once (the step is both the row's event and its request); on a plan's
// step, the reverted call and its rollback step.
func TestYankRollbackStepOnce(t *testing.T) {
	w, seqs := incidentKV(t)
	h := openKV(t, w, look{w: 200, h: 50, theme: "dark"})
	applyAll(t, h)
	h.keys("g", "y") // step 1: agent-b's a=7, reverted by one inverse call
	h.waitFor("copied 2 records")
	if got := clipSeqs(t, h.clip.String()); fmt.Sprint(got) != fmt.Sprint([]uint64{seqs["agent-b:a"], latestPlan(t, w).Steps[0].StepSeq[0]}) {
		t.Fatalf("copied %v", got)
	}
	before := len(h.clip.String())
	h.keys("esc", "esc", "c")      // all calls: the rollback steps are calls too
	h.waitFor("key=e value=old-e") // the last rollback step
	h.keys("G", "y")
	h.waitFor("copied 2 records")
	got := clipSeqs(t, h.clip.String()[before:])
	if len(got) != 2 || got[0] == got[1] {
		t.Fatalf("copied %v, want a rollback step and its outcome", got)
	}
	h.final()
}

// clipSeqs are the seqs of the records y put on the clipboard.
func clipSeqs(t *testing.T, clip string) []uint64 {
	t.Helper()
	data, err := base64.StdEncoding.DecodeString(strings.TrimSuffix(strings.TrimPrefix(clip, "\x1b]52;c;"), "\x07"))
	if err != nil {
		t.Fatalf("clipboard %q: %v", clip, err)
	}
	var out []uint64
	for _, l := range strings.Split(strings.TrimSpace(string(data)), "\n") {
		var ev struct{ Seq uint64 }
		if err := json.Unmarshal([]byte(l), &ev); err != nil {
			t.Fatalf("clipboard line %q: %v", l, err)
		}
		out = append(out, ev.Seq)
	}
	return out
}

// f path: names resources as the rollback rules do: `kv:a` is key a on
// both upstreams of the kv server (kv-b found by the name the server
// reported), though no argument holds the text "kv:a".
func TestPathFilterUsesTheRulesResourceKeys(t *testing.T) {
	eachLook(t, func(t *testing.T, l look) {
		w, _ := incidentKV(t)
		opts := l.options(w.st, RoleOperator)
		opts.Rollback, opts.Rules = w.service(), w.rules
		h := startSized(t, opts, l.w, l.h)
		h.waitFor("agent-a")
		h.keys("c")
		h.waitFor("key=d value=4") // every call on screen first: the value=7 waited for below is the filtered view's
		h.keys("f", "path:kv:a", "enter")
		h.waitFor("path:kv:a ×")
		h.waitFor("value=7")
		frame := h.final()
		for _, want := range []string{"key=a value=1", "key=a value=7"} {
			if !strings.Contains(frame, want) {
				t.Errorf("path:kv:a does not list %q:\n%s", want, frame)
			}
		}
		for _, other := range []string{"key=d", "key=e", "key=f", "key=c"} {
			if strings.Contains(frame, other) {
				t.Errorf("path:kv:a let %q through:\n%s", other, frame)
			}
		}
	})
}
