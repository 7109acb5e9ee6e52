package e2e

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/charmbracelet/x/ansi"

	"github.com/mcptrail/mcptrail/internal/testkit"
)

// TestRollbackPlanShowsNoSecret: the agent overwrote a credentials file.
// Its pre-state (an AWS key pair and a password) must come back byte for
// byte when the plan is applied, and be read nowhere on the way: not in
// the console's plan review over SSH, `rollback plan --json`, `rollback
// show` (which reads the stored plan), `rollback history`, the
// rollback_step events, any export format or any file sink.
func TestRollbackPlanShowsNoSecret(t *testing.T) {
	requireTool(t, "ssh", "openssh-client")
	t.Parallel()
	fsServer := nodeServer(t, "mcp-server-filesystem")
	ctx := scenarioContext(t)
	in := newInstance(t)
	w := newRBWorld(t, in)
	secrets := []string{"AKIAIOSFODNN7EXAMPLE", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", "hunter2-Sup3rS3cret"}
	creds := filepath.Join(w.root, "credentials.ini")
	original := "[default]\naws_access_key_id = " + secrets[0] + "\naws_secret_access_key = " + secrets[1] + "\npassword=" + secrets[2] + "\nregion = us-east-1\n"
	if err := os.WriteFile(creds, []byte(original), 0o600); err != nil {
		t.Fatal(err)
	}
	keys := t.TempDir()
	operator := testkit.NewSSHKey(t, keys, "operator")
	if err := os.WriteFile(filepath.Join(in.Home, "authorized_keys"), []byte("environment=\"MCPTRAIL_ROLE=operator\" "+operator.Authorized+" alice\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	sinks := map[string]string{}
	args := []string{"--ssh", "127.0.0.1:" + freePort(t)}
	for _, f := range []string{"ocsf", "ecs", "cef", "jsonl"} {
		sinks[f] = filepath.Join(in.Home, "siem", "events."+f)
		args = append(args, "--sink", "file://"+sinks[f]+"?format="+f+"&bodies=1")
	}
	in.Serve(t, args...)
	port := strings.TrimPrefix(args[1], "127.0.0.1:")

	cs := wrapClient(t, ctx, in, WrapOptions{Name: "filesystem", Agent: "creds-agent"}, nil, fsServer, w.root, w.quarantine)
	agentCall(t, ctx, cs, "write_file", map[string]any{"path": creds, "content": "[default]\nregion = eu-west-1\n"})
	cs.Close()
	in.WaitEvents(t, allAnswered)

	leaks := func(where, text string) {
		t.Helper()
		for _, s := range secrets {
			if strings.Contains(text, s) {
				t.Errorf("%s shows the secret %q", where, s)
			}
		}
	}
	// The console's plan review, over OpenSSH.
	op := openSSH(t, port, operator)
	op.waitFor("creds-agent")
	op.send("\r")
	op.waitFor("session end")
	op.send("f", "tool:write_file", "\r")
	op.waitFor("tool:write_file ×")
	op.send("r")
	op.waitFor("1 ready")
	op.waitFor("will call write_file") // the inverse call and its diff: checked below
	op.send("\x03")                    // ctrl+c: quit from any screen (q goes back)
	op.mu.Lock()
	drawn := op.out.String()
	op.mu.Unlock()
	leaks("the console's plan review", ansi.Strip(drawn))
	leaks("the console's plan review (raw)", drawn)

	plan := rbPlan(t, in, "--session", sessionID(t, in, "creds-agent"))
	if len(plan.Steps) != 1 || !strings.Contains(plan.Steps[0].Diff, "[REDACTED:") {
		t.Fatalf("plan: %s\n%s", stepStatuses(plan), plan.Steps[0].Diff)
	}
	leaks("rollback plan --json", in.MustRun(t, "rollback", "plan", "--json", "--session", plan.Steps[0].Session).Stdout)
	for _, a := range [][]string{
		{"rollback", "show", plan.ID}, {"rollback", "show", plan.ID, "--json"},
		{"rollback", "history", fmt.Sprint(plan.Steps[0].Reverts)}, {"rollback", "history", fmt.Sprint(plan.Steps[0].Reverts), "--json"},
	} {
		leaks(strings.Join(a, " "), in.MustRun(t, a...).Stdout)
	}
	res := in.MustRun(t, "rollback", "apply", plan.ID, "--yes")
	leaks("rollback apply", res.Stdout+res.Stderr)
	if data, _ := os.ReadFile(creds); !bytes.Equal(data, []byte(original)) {
		t.Fatalf("the credentials file was not restored byte for byte:\n got %q\nwant %q", data, original)
	}
	leaks("rollback show after the apply", in.MustRun(t, "rollback", "show", plan.ID, "--json").Stdout)

	// The record leaves the box in these: the inverse call's arguments
	// (the restored text) are in the rollback_step, masked.
	steps := 0
	for _, ev := range in.Export(t) {
		if ev.Kind == "rollback_step" {
			steps++
			if !strings.Contains(string(ev.Params), "[REDACTED:") {
				t.Errorf("rollback_step params: %s", ev.Params)
			}
		}
	}
	if steps != 1 {
		t.Fatalf("%d rollback_step events, want 1", steps)
	}
	for _, f := range []string{"ocsf", "ecs", "cef", "jsonl"} {
		leaks("export --format "+f, in.MustRun(t, "export", "--format", f).Stdout)
	}
	waitSinksCaughtUp(t, in)
	for f, p := range sinks {
		data, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Contains(data, []byte("rollback_step")) {
			t.Errorf("the %s sink holds no rollback_step", f)
		}
		leaks("the "+f+" sink", string(data))
	}
	requireVerify(t, in)
}
