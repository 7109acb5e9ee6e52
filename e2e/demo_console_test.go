package e2e

import (
	"bytes"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/charmbracelet/x/ansi"
	"github.com/creack/pty"

	"github.com/mcptrail/mcptrail/internal/testkit"
	"github.com/mcptrail/mcptrail/store"
)

// TestDemoConsoleRevertsTheIncident is the README's first five minutes, in
// a pseudo-terminal: `mcptrail demo` records the incident and opens the
// console on its live daemon; the operator opens the ops agent's session,
// presses r on its first call (a plan of the whole session), reviews it,
// applies it with the typed confirmation, and quits. The demo server's
// tickets, users and files are then as they were before the incident —
// except what the export sent away, which the plan shows as irreversible —
// each inverse call is a recorded rollback_step naming its approver, the
// timeline marks the reverted calls, and the store verifies.
func TestDemoConsoleRevertsTheIncident(t *testing.T) {
	tmp, err := os.MkdirTemp("", "mt-demo-") // short: the daemon's socket lives under it
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(tmp) })

	// The state before the incident: a fresh demo workspace, seeded by the
	// demo server itself when it starts.
	seeded := filepath.Join(tmp, "seeded")
	seed := exec.Command(binary(t, "mcptrail"), "demo-server", seeded)
	seed.Stdin = strings.NewReader("")
	if out, err := seed.CombinedOutput(); err != nil {
		t.Fatalf("seeding a workspace: %v\n%s", err, out)
	}
	before := testkit.Tree(t, seeded)

	cmd := exec.Command(binary(t, "mcptrail"), "demo")
	cmd.Env = append(testkit.Env(filepath.Join(tmp, "unused"), filepath.Join(tmp, "unused-config"), binDir), "TMPDIR="+tmp, "TERM=xterm-256color")
	term := startPTY(t, cmd)
	term.waitFor("the record is in ")
	m := regexp.MustCompile(`the record is in (\S+)`).FindStringSubmatch(term.all())
	if m == nil {
		t.Fatalf("demo did not say where the record is:\n%s", term.all())
	}
	demo := &Instance{Home: m[1], ConfigHome: filepath.Join(m[1], "config")}
	t.Cleanup(func() { demo.stopLeftoverDaemon(t) })
	workspace := filepath.Join(demo.Home, "acme-ops")

	term.waitFor("session 1 of 2") // the console is up, on the newest session: the ops agent's
	term.send("\r")
	term.waitFor("session start")
	term.send("f", "tool:list_tickets", "\r") // its first tool call…
	term.waitFor("tool:list_tickets ×")
	term.send("g", "r") // …and every later one
	term.waitFor("11 ready, 1 irreversible")
	term.send("G") // the oldest step: the export, with why it cannot be undone
	term.waitFor("outside bucket")
	term.send("A")
	term.waitFor("Type apply")
	term.send("a", "p", "p", "l", "y", "\r")
	term.waitFor("1 irreversible, 11 reverted")
	term.send("\x1b") // back to the timeline, unfiltered: the reverted calls are marked
	term.waitFor("r queue reversal")
	term.send("f", "-tool", "\r")
	term.waitFor("↺")
	term.send("q", "q") // back to the sessions, as tig does, then quit from there
	term.waitFor("daemon stopped")
	if err := term.wait(); err != nil {
		t.Fatalf("demo: %v\n%s", err, term.all())
	}

	if d := testkit.DiffTrees(before, testkit.Tree(t, workspace)); d != "" {
		t.Fatalf("after the console's rollback the demo server is not as before the incident:\n%s", d)
	}
	var approver string
	var steps int
	for _, ev := range demo.Export(t) {
		switch ev.Kind {
		case store.KindApproval:
			if ev.Authorization == nil || ev.Authorization.Approver == "" {
				t.Errorf("approval without an approver: %+v", ev)
				continue
			}
			approver = ev.Authorization.Approver
		case store.KindRollbackStep:
			steps++
			if ev.Reverts == 0 || ev.Authorization == nil || ev.Authorization.Approver != approver {
				t.Errorf("rollback_step %d: reverts %d, authorization %+v (approval by %q)", ev.Seq, ev.Reverts, ev.Authorization, approver)
			}
		}
	}
	if approver == "" || steps != 11 {
		t.Fatalf("approver %q, %d rollback_step events; want one approval and 11 inverse calls", approver, steps)
	}
	requireVerify(t, demo)
}

// ptyTerm is a program on a pseudo-terminal, and what it drew.
type ptyTerm struct {
	t    *testing.T
	cmd  *exec.Cmd
	tty  *os.File
	mu   sync.Mutex
	out  bytes.Buffer
	mark int
	done chan error
}

func startPTY(t *testing.T, cmd *exec.Cmd) *ptyTerm {
	t.Helper()
	tty, err := pty.StartWithSize(cmd, &pty.Winsize{Rows: 40, Cols: 140})
	if err != nil {
		t.Fatal(err)
	}
	p := &ptyTerm{t: t, cmd: cmd, tty: tty, done: make(chan error, 1)}
	copied := make(chan struct{})
	go func() {
		io.Copy(p, tty) // ends with EIO when the program exits
		close(copied)
	}()
	go func() {
		err := cmd.Wait()
		<-copied
		p.done <- err
	}()
	t.Cleanup(func() {
		tty.Close()
		select {
		case <-p.done:
		case <-time.After(5 * time.Second):
			cmd.Process.Kill()
		}
	})
	return p
}

func (p *ptyTerm) Write(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.out.Write(b)
}

func (p *ptyTerm) all() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return ansi.Strip(p.out.String())
}

func (p *ptyTerm) screen() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return ansi.Strip(p.out.String()[p.mark:])
}

// waitFor waits until the program has drawn text since the last keys.
func (p *ptyTerm) waitFor(text string) {
	p.t.Helper()
	if !pollUntil(30*time.Second, func() bool { return strings.Contains(p.screen(), text) }) {
		p.t.Fatalf("waited for %q; the terminal showed:\n%s", text, p.screen())
	}
}

// send types keys, paced as a person would: the console reads a burst of
// bytes as one paste.
func (p *ptyTerm) send(keys ...string) {
	p.mu.Lock()
	p.mark = p.out.Len()
	p.mu.Unlock()
	for _, k := range keys {
		io.WriteString(p.tty, k)
		time.Sleep(50 * time.Millisecond)
	}
}

// wait waits for the program to exit.
func (p *ptyTerm) wait() error {
	select {
	case err := <-p.done:
		return err
	case <-time.After(30 * time.Second):
		return io.ErrNoProgress
	}
}
