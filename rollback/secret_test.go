package rollback

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/mcptrail/mcptrail/ingest/redact"
	"github.com/mcptrail/mcptrail/siem"
	"github.com/mcptrail/mcptrail/store"
)

// A credentials file as it was before the agent overwrote it: what a
// rollback must put back byte for byte, and what nobody may read in a
// plan, a history, the record or a SIEM.
const secretBefore = "[default]\n" +
	"aws_access_key_id = AKIAIOSFODNN7EXAMPLE\n" +
	"aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY\n" +
	"password=hunter2-Sup3rS3cret\n" +
	"region = us-east-1\n"

var planSecrets = []string{"AKIAIOSFODNN7EXAMPLE", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", "hunter2-Sup3rS3cret"}

func redactHook(t *testing.T) func(json.RawMessage) json.RawMessage {
	t.Helper()
	red, err := redact.New(redact.Rules{})
	if err != nil {
		t.Fatal(err)
	}
	return func(raw json.RawMessage) json.RawMessage { out, _ := red.JSON(raw); return out }
}

func noSecret(t *testing.T, where string, data []byte) {
	t.Helper()
	for _, s := range planSecrets {
		if bytes.Contains(data, []byte(s)) {
			t.Errorf("%s holds the secret %q:\n%s", where, s, data)
		}
	}
}

// secretFixture: the agent overwrote a credentials file (here a key of
// kvserver) whose pre-state was captured.
func secretFixture(t *testing.T) (*kvFixture, uint64) {
	f := newKVRedacting(t, "", redactHook(t))
	f.setKV(map[string]string{"config": secretBefore})
	f.call("put", map[string]any{"key": "config", "value": "[default]\nregion = eu-west-1\n"})
	return f, f.requests("put")[0]
}

func TestPlanShowsNoSecretAndRestoresItExactly(t *testing.T) {
	f, put := secretFixture(t)
	plan := f.build(Selection{Session: "agent-session"})
	if got := statuses(plan); got != "put:ready" || !plan.Checked {
		t.Fatalf("plan: %s (%s)", got, plan.Note)
	}
	st := plan.Steps[0]
	// What the reviewer reads: redacted, yet still a useful diff.
	if !strings.Contains(st.Diff, "[REDACTED:") || !strings.Contains(st.Diff, "+region = us-east-1") || !strings.Contains(st.Diff, "-region = eu-west-1") {
		t.Fatalf("the diff should show the change with the secrets masked:\n%s", st.Diff)
	}
	if len(st.Calls) != 1 || !strings.Contains(string(st.Calls[0].Args), "[REDACTED:") || st.Calls[0].ArgsSHA256 == "" {
		t.Fatalf("the inverse call should be shown redacted, with the hash of what runs: %+v", st.Calls)
	}
	shown, _ := json.Marshal(plan)
	noSecret(t, "the plan (rollback plan --json, the console's review)", shown)
	stored, err := f.st.Rollback().Plan(plan.ID)
	if err != nil {
		t.Fatal(err)
	}
	noSecret(t, "the stored plan", stored)
	hist, err := f.planner().History(context.Background(), put, "")
	if err != nil {
		t.Fatal(err)
	}
	h, _ := json.Marshal(hist)
	noSecret(t, "the resource's history", h)
	if !strings.Contains(string(h), "[REDACTED:") {
		t.Fatalf("the history should show the masked before: %s", h)
	}

	applied, err := f.executor(nil).Apply(context.Background(), plan.ID, alice, nil)
	if err != nil || applied.State != PlanApplied {
		t.Fatalf("apply: %v %s %s", err, applied.State, applied.Error)
	}
	if got := f.kv()["config"]; got != secretBefore {
		t.Fatalf("the file was not restored byte for byte:\n got %q\nwant %q", got, secretBefore)
	}
	after, _ := json.Marshal(applied)
	noSecret(t, "the applied plan", after)
	stored, _ = f.st.Rollback().Plan(plan.ID)
	noSecret(t, "the stored applied plan", stored)

	// The record, and every format it leaves the box in.
	f.st.Flush()
	page, err := f.st.Query(store.Query{Limit: 10000})
	if err != nil {
		t.Fatal(err)
	}
	steps := 0
	for i := range page.Events {
		ev := &page.Events[i]
		if ev.Kind == store.KindRollbackStep {
			steps++
			if !strings.Contains(string(ev.Params), "[REDACTED:") {
				t.Errorf("the rollback_step's params should hold the restored text masked: %s", ev.Params)
			}
		}
		for _, fm := range []siem.Format{siem.FormatJSONL, siem.FormatOCSF, siem.FormatECS, siem.FormatCEF} {
			enc, err := siem.NewEncoder(fm, siem.Options{})
			if err != nil {
				t.Fatal(err)
			}
			out, err := enc.Encode(ev)
			if err != nil {
				t.Fatal(err)
			}
			noSecret(t, string(fm)+" of "+ev.Kind, out)
		}
	}
	if steps != 1 {
		t.Fatalf("%d rollback_step events, want 1", steps)
	}
}

// The stored plan shows the inverse calls masked; apply runs them as they
// render from the pre-state, and only when that is what was reviewed.
func TestApplyRunsOnlyTheReviewedCalls(t *testing.T) {
	f, _ := secretFixture(t)
	plan := f.build(Selection{Session: "agent-session"})
	plan.Steps[0].Calls[0].ArgsSHA256 = "sha256:" + strings.Repeat("0", 64)
	if err := SavePlan(f.st.Rollback(), plan); err != nil {
		t.Fatal(err)
	}
	applied, err := f.executor(nil).Apply(context.Background(), plan.ID, alice, nil)
	if err != nil {
		t.Fatal(err)
	}
	if applied.State != PlanFailed || !strings.Contains(applied.Error, "reviewed") {
		t.Fatalf("apply of a plan whose calls no longer render as reviewed: %s %s", applied.State, applied.Error)
	}
	if got := f.kv()["config"]; got != "[default]\nregion = eu-west-1\n" {
		t.Fatalf("a refused apply changed the file: %q", got)
	}
}

// TestCurrentShowsNoSecret: what the approval desk shows of a held write's
// resource (its pre-state, read from the server when the call was
// recorded) is redacted: the agent overwrites a credentials file; a
// rollback puts the secrets back, and the agent's next write of it is
// shown the same way.
func TestCurrentShowsNoSecret(t *testing.T) {
	f, put := secretFixture(t)
	check := func(what string, seq uint64) {
		t.Helper()
		v, key, err := f.planner().Current(context.Background(), seq)
		if err != nil || v == nil {
			t.Fatalf("%s: current: %+v %v", what, v, err)
		}
		if v.Call != seq || !strings.Contains(key, "config") {
			t.Fatalf("%s: current of %s = %+v, want call %d's own pre-state", what, key, v, seq)
		}
		shown, _ := json.Marshal(v)
		noSecret(t, what, shown)
		if !strings.Contains(v.After, "[REDACTED:") || !strings.Contains(v.After, "region = us-east-1") {
			t.Fatalf("%s: the current state should be the credentials, masked: %q", what, v.After)
		}
	}
	check("the first write's current state", put)
	plan := f.build(Selection{Session: "agent-session"})
	if applied, err := f.executor(nil).Apply(context.Background(), plan.ID, alice, nil); err != nil || applied.State != PlanApplied {
		t.Fatalf("apply: %v", err)
	}
	f.call("put", map[string]any{"key": "config", "value": "[default]\nregion = ap-south-1\n"})
	check("the write after the rollback", slices.Max(f.requests("put")))
}

// TestCurrentFallsBackToTheRecord: a call whose pre-state is not in the
// store is shown the resource as the newest earlier change left it: here
// a rollback step that put credentials back, masked.
func TestCurrentFallsBackToTheRecord(t *testing.T) {
	f, put := secretFixture(t)
	plan := f.build(Selection{Session: "agent-session"})
	if applied, err := f.executor(nil).Apply(context.Background(), plan.ID, alice, nil); err != nil || applied.State != PlanApplied {
		t.Fatalf("apply: %v", err)
	}
	f.call("put", map[string]any{"key": "config", "value": "[default]\nregion = ap-south-1\n"})
	held := slices.Max(f.requests("put"))
	p := f.planner()
	p.Source = noPrestate{Source: f.st.Rollback(), call: held}
	v, _, err := p.Current(context.Background(), held)
	if err != nil || v == nil || !v.IsRollback() || v.Reverts != put {
		t.Fatalf("current without a pre-state: %+v %v, want the rollback step that reverted call %d", v, err, put)
	}
	shown, _ := json.Marshal(v)
	noSecret(t, "the state a rollback left", shown)
	if !strings.Contains(v.After, "[REDACTED:") || !strings.Contains(v.After, "region = us-east-1") {
		t.Fatalf("the current state should be what the rollback restored, masked: %q", v.After)
	}
}

// noPrestate is a Source that lost the pre-state of one call.
type noPrestate struct {
	Source
	call uint64
}

func (n noPrestate) Prestate(call uint64) ([]byte, error) {
	if call == n.call {
		return nil, errors.New("not found")
	}
	return n.Source.Prestate(call)
}
