package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mcptrail/mcptrail/internal/testkit"
	"github.com/mcptrail/mcptrail/store"
)

// TestRollbackConsoleOverSSH: the investigator's way, over OpenSSH into the
// daemon's console: r on a call plans its reversal and that of every later
// call of its session, the review shows the diff, A asks for explicit
// confirmation, and the apply reverts the files — recorded with the SSH
// key that approved it. A viewer can review but not apply.
func TestRollbackConsoleOverSSH(t *testing.T) {
	requireTool(t, "ssh", "openssh-client")
	t.Parallel()
	fsServer := nodeServer(t, "mcp-server-filesystem")
	ctx := scenarioContext(t)
	in := newInstance(t)
	w := newRBWorld(t, in)
	keys := t.TempDir()
	operator, viewer := testkit.NewSSHKey(t, keys, "operator"), testkit.NewSSHKey(t, keys, "viewer")
	authorized := "environment=\"MCPTRAIL_ROLE=operator\" " + operator.Authorized + " alice\n" + viewer.Authorized + " bob role=viewer\n"
	if err := os.WriteFile(filepath.Join(in.Home, "authorized_keys"), []byte(authorized), 0o600); err != nil {
		t.Fatal(err)
	}
	port := freePort(t)
	in.Serve(t, "--ssh", "127.0.0.1:"+port)
	before := testkit.Tree(t, w.root)

	cs := wrapClient(t, ctx, in, WrapOptions{Name: "filesystem", Agent: "console-agent"}, nil, fsServer, w.root, w.quarantine)
	agentCall(t, ctx, cs, "write_file", map[string]any{"path": filepath.Join(w.root, "README.md"), "content": "replaced at 3 AM\n"})
	agentCall(t, ctx, cs, "write_file", map[string]any{"path": filepath.Join(w.root, "scratch.txt"), "content": "temp\n"})
	cs.Close()
	in.WaitEvents(t, allAnswered)

	// A viewer may look at the session but not plan.
	v := openSSH(t, port, viewer)
	v.waitFor("console-agent")
	v.send("\r")
	v.waitFor("session end")
	v.send("f", "tool:write_file", "\r")
	v.waitFor("tool:write_file ×")
	v.send("r")
	v.waitFor("viewer role: only operators may queue reversals")
	v.send("\x03") // ctrl+c: quit from any screen (q goes back)

	op := openSSH(t, port, operator)
	op.waitFor("console-agent")
	op.send("\r")
	op.waitFor("session end")
	op.send("f", "tool:write_file", "\r") // the first write is the oldest row left
	op.waitFor("tool:write_file ×")
	op.send("g", "r")
	op.waitFor("2 ready")
	op.send("j") // the older step: README.md written back
	op.waitFor("+# project")
	op.send("A")
	op.waitFor("Type apply")
	op.send("a", "p", "p", "l", "y", "\r")
	op.waitFor("applied: 2 calls reverted")
	op.send("\x1b") // back to the timeline: both writes are flagged reverted
	op.waitFor("↺")
	if n := strings.Count(op.screen(), "↺"); n < 2 {
		t.Fatalf("%d calls flagged ↺ after the apply, want both writes:\n%s", n, op.screen())
	}
	op.send("\x03") // ctrl+c: quit from any screen (q goes back)

	if d := testkit.DiffTrees(before, testkit.Tree(t, w.root)); d != "" {
		t.Fatalf("the console's rollback did not restore the tree:\n%s", d)
	}
	var approvals, steps int
	for _, ev := range in.Export(t) {
		switch ev.Kind {
		case store.KindApproval:
			approvals++
			if ev.Authorization == nil || ev.Authorization.Approver != operator.Fingerprint || ev.Principal == nil || ev.Principal.Kind != "ssh_key" {
				t.Errorf("approval: %+v", ev)
			}
		case store.KindRollbackStep:
			steps++
			if ev.Authorization == nil || ev.Authorization.Approver != operator.Fingerprint {
				t.Errorf("rollback_step %d approver: %+v", ev.Seq, ev.Authorization)
			}
		}
	}
	if approvals != 1 || steps != 3 { // README written back; scratch.txt: quarantine folder, move
		t.Fatalf("%d approvals, %d rollback steps", approvals, steps)
	}
	requireVerify(t, in)
}
