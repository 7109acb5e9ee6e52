package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mcptrail/mcptrail/config"
	"github.com/mcptrail/mcptrail/daemon"
	"github.com/mcptrail/mcptrail/rollback"
	"github.com/mcptrail/mcptrail/store"
)

// originDaemon runs a daemon in this process on a store that holds one
// recorded tool call, and returns the store's id and the call's request.
func originDaemon(t *testing.T) (string, *store.Event) {
	t.Helper()
	home := t.TempDir()
	t.Setenv("MCPTRAIL_HOME", home)
	paths := daemon.PathsFor(home)
	if err := os.MkdirAll(filepath.Dir(paths.DB), 0o700); err != nil {
		t.Fatal(err)
	}
	st, err := store.Open(paths.DB, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	seq, err := st.Append(&store.Event{Kind: store.KindRequest, Session: "s1", Upstream: "kv", From: store.FromClient, Method: "tools/call",
		Tool: "put", JSONRPCID: json.RawMessage("1"), Params: json.RawMessage(`{"name":"put","arguments":{"key":"a","value":"x"}}`)})
	if err != nil {
		t.Fatal(err)
	}
	req, err := st.Get(seq)
	if err != nil {
		t.Fatal(err)
	}
	id := st.ID()
	st.Close()
	cfg := config.Default()
	cfg.Listen, cfg.SSH = "127.0.0.1:0", ""
	ctx, cancel := context.WithCancel(context.Background())
	ready, done := make(chan struct{}), make(chan error, 1)
	go func() {
		done <- daemon.Run(ctx, daemon.Options{Config: cfg, Home: home, Version: "test", Ready: func(string) { close(ready) }})
	}()
	select {
	case <-ready:
	case err := <-done:
		t.Fatalf("daemon: %v", err)
	case <-time.After(30 * time.Second):
		t.Fatal("daemon not ready")
	}
	t.Cleanup(func() { cancel(); <-done })
	return id, req
}

// writePlanFile writes a central plan reverting req of origin id, after
// change.
func writePlanFile(t *testing.T, id string, req *store.Event, change func(*rollback.Plan)) string {
	t.Helper()
	p := &rollback.Plan{ID: "01CENTRALPLAN0000000000000", State: rollback.PlanPlanned, Origin: id, OriginHost: "laptop",
		Steps: []rollback.Step{{N: 1, Reverts: 77, Tool: req.Tool, Status: rollback.StatusReady,
			Origin: &store.Origin{Store: id, Host: "laptop", Seq: req.Seq, Hash: req.Hash}}}}
	change(p)
	data, _ := json.Marshal(p)
	f := filepath.Join(t.TempDir(), "plan.json")
	if err := os.WriteFile(f, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return f
}

// rollback apply --plan-file re-checks the file against this store's
// record: a changed seq, a changed hash or another store's plan is refused
// as a whole, naming the step, and nothing is planned or applied; the
// genuine file passes the check and is planned afresh here.
func TestApplyPlanFileRechecksTheOriginsRecord(t *testing.T) {
	id, req := originDaemon(t)
	for name, c := range map[string]struct {
		change func(*rollback.Plan)
		want   string
	}{
		"changed seq":  {func(p *rollback.Plan) { p.Steps[0].Origin.Seq = 99 }, "step 1: call 99 of this store is not in its record"},
		"changed hash": {func(p *rollback.Plan) { p.Steps[0].Origin.Hash = strings.Repeat("0", 64) }, "step 1: call 1's hash"},
		"other store":  {func(p *rollback.Plan) { p.Origin = "01OTHERSTORE"; p.Steps[0].Origin.Store = "01OTHERSTORE" }, "the plan is for store"},
	} {
		var out, errb bytes.Buffer
		code := run([]string{"rollback", "apply", "--plan-file", writePlanFile(t, id, req, c.change), "--yes"}, strings.NewReader(""), &out, &errb)
		if code != exitProblem || !strings.Contains(errb.String(), "refused, nothing applied") || !strings.Contains(errb.String(), c.want) {
			t.Errorf("%s: exit %d, stderr %q; want exit 1 naming %q", name, code, errb.String(), c.want)
		}
		if strings.Contains(errb.String(), "planned here as") {
			t.Errorf("%s: a refused plan file was planned", name)
		}
	}
	var out, errb bytes.Buffer
	run([]string{"rollback", "apply", "--plan-file", writePlanFile(t, id, req, func(*rollback.Plan) {}), "--yes"}, strings.NewReader(""), &out, &errb)
	if !strings.Contains(errb.String(), "its 1 calls match this store's record; planned here as") {
		t.Fatalf("genuine plan file: stdout %q stderr %q", out.String(), errb.String())
	}
	// Usage errors: no file, a file and a PLAN_ID, a file that is not a plan.
	bad := filepath.Join(t.TempDir(), "bad.json")
	os.WriteFile(bad, []byte(`{"plan":"X","steps":[{"step":1}]}`), 0o600)
	for _, args := range [][]string{
		{"rollback", "apply", "--plan-file", ""},
		{"rollback", "apply", "PLAN", "--plan-file", bad},
		{"rollback", "apply", "--plan-file", bad},
		{"rollback", "export-plan"},
	} {
		var out, errb bytes.Buffer
		if code := run(args, strings.NewReader(""), &out, &errb); code != exitUsage {
			t.Errorf("%v: exit %d, want 2 (%s)", args, code, errb.String())
		}
	}
}

// rollback plan on a collector ends with where to apply the plan and the
// two commands, not with the local apply command.
func TestPrintElsewhereGivesBothCommands(t *testing.T) {
	var b bytes.Buffer
	p := &rollback.Plan{ID: "01CENTRALPLAN0000000000000", Origin: "01ORIGIN", OriginHost: "laptop-7\x1b[2J"}
	printElsewhere(&b, p)
	out := b.String()
	for _, want := range []string{"cannot be applied here", "laptop-7", "mcptrail rollback export-plan 01CENTRALPLAN0000000000000 > plan.json", "mcptrail rollback apply --plan-file plan.json"} {
		if !strings.Contains(out, want) {
			t.Errorf("missing %q in:\n%s", want, out)
		}
	}
	if strings.Contains(out, "\x1b") {
		t.Errorf("a host name's escape reached the terminal: %q", out)
	}
}
