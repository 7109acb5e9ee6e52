package daemon

import (
	"strings"
	"testing"
	"time"

	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/lipgloss"
	"github.com/charmbracelet/x/ansi"
	"github.com/charmbracelet/x/exp/teatest"
	gossh "golang.org/x/crypto/ssh"

	"github.com/mcptrail/mcptrail/store"
	"github.com/mcptrail/mcptrail/ui"
)

// localConsole is `mcptrail ui` against the running daemon: the console
// on the daemon's socket, as cmd_ui.go wires it.
type localConsole struct {
	t    *testing.T
	tm   *teatest.TestModel
	seen []byte
}

func openLocalConsole(t *testing.T, home string, w, h int) *localConsole {
	t.Helper()
	c, err := Dial(home)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	app := ui.New(ui.Options{
		Source: c, Rollback: c, SourceLabel: "daemon " + home, Renderer: lipgloss.DefaultRenderer(),
		Identity: ui.Identity{Via: "local", Name: "bob", Role: ui.RoleOperator},
	})
	tm := teatest.NewTestModel(t, app, teatest.WithInitialTermSize(w, h))
	t.Cleanup(func() { tm.Quit() })
	return &localConsole{t: t, tm: tm}
}

func (l *localConsole) waitFor(text string) {
	l.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	buf := make([]byte, 64*1024)
	for {
		n, _ := l.tm.Output().Read(buf)
		l.seen = append(l.seen, buf[:n]...)
		if strings.Contains(ansi.Strip(string(l.seen)), text) {
			return
		}
		if time.Now().After(deadline) {
			l.t.Fatalf("waited for %q; the local console drew:\n%s", text, ansi.Strip(string(l.seen)))
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func (l *localConsole) keys(keys ...string) {
	l.seen = l.seen[:0]
	for _, k := range keys {
		if k == " " {
			l.tm.Send(tea.KeyMsg{Type: tea.KeySpace, Runes: []rune{' '}})
			continue
		}
		l.tm.Type(k)
	}
}

// A mark made over SSH is in the rollback queue of a local console (and
// of the next SSH console: it outlives the one that made it, and the
// daemon, in the store); an unmark made locally is seen over SSH.
func TestMarksSharedBySSHAndLocalConsoles(t *testing.T) {
	for _, size := range [][2]int{{80, 24}, {200, 50}} {
		env := startConsoleDaemon(t)
		op, err := dialConsole(t, env.d.ConsoleAddr(), env.operator)
		if err != nil {
			t.Fatal(err)
		}
		op.waitFor("nightly-ops-bot")
		op.send("\r")
		op.waitFor("write_file")
		op.send("j", " ")
		op.waitFor("marked call 2 (write_file) · 1 queued")
		op.send("q")

		local := openLocalConsole(t, env.home, size[0], size[1])
		local.waitFor("nightly-ops-bot")
		local.keys("R")
		local.waitFor("MARKED CALLS (1)")
		local.waitFor(gossh.FingerprintSHA256(env.operator.PublicKey())[:12]) // marked by the SSH key

		// A second SSH console, after the first quit, has it too.
		again, err := dialConsole(t, env.d.ConsoleAddr(), env.operator)
		if err != nil {
			t.Fatal(err)
		}
		again.waitFor("nightly-ops-bot")
		again.send("R")
		again.waitFor("MARKED CALLS (1)")
		again.send("q")

		local.keys(" ") // unqueue it here
		local.waitFor("removed call 2 from the queue")
		local.waitFor("MARKED CALLS (0)")
		third, err := dialConsole(t, env.d.ConsoleAddr(), env.operator)
		if err != nil {
			t.Fatal(err)
		}
		third.waitFor("nightly-ops-bot")
		third.send("R")
		third.waitFor("MARKED CALLS (0)")
		third.send("\x1b", "\r")
		third.waitFor("write_file")
		third.send("j", " ")
		third.waitFor("1 queued")
		third.send("q")

		// The store keeps it: a daemon started again reads the same queue.
		path := env.d.paths.DB
		env.d.close()
		st, err := store.Open(path, store.Options{ReadOnly: true})
		if err != nil {
			t.Fatal(err)
		}
		raw, err := st.Rollback().Marks()
		st.Close()
		if err != nil || len(raw) != 1 || !strings.Contains(string(raw[0]), `"Seq":2`) {
			t.Fatalf("after the daemon stopped the store holds marks %q (%v), want call 2's", raw, err)
		}
	}
}

// Through the socket a mark must name a call in the record, and a refused
// change leaves the queue as it was.
func TestMarkRefusesUnrecordedCall(t *testing.T) {
	env := startConsoleDaemon(t)
	c, err := Dial(env.home)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.RollbackMark([]ui.Mark{{Seq: 2, Tool: "write_file"}}, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := c.RollbackMark([]ui.Mark{{Seq: 1 << 40}}, nil); err == nil || !strings.Contains(err.Error(), "no call") {
		t.Fatalf("a mark of seq 2^40: %v", err)
	}
	if _, err := c.RollbackMark([]ui.Mark{{Seq: 1}}, nil); err == nil || !strings.Contains(err.Error(), "not a tool call") {
		t.Fatalf("a mark of the session start: %v", err)
	}
	got, err := c.RollbackMarks()
	if err != nil || len(got) != 1 || got[0].Seq != 2 {
		t.Fatalf("marks %+v (%v), want call 2's alone", got, err)
	}
}
