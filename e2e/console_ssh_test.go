package e2e

import (
	"context"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/charmbracelet/x/ansi"
	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/mcptrail/mcptrail/internal/testkit"
)

// The console over OpenSSH's own client (`ssh` from Debian), against the
// built daemon: the way an on-call engineer reaches it.

func freePort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)
}

type sshTerm struct {
	t     *testing.T
	stdin io.WriteCloser
	mu    sync.Mutex
	out   strings.Builder
	mark  int
	done  chan error
}

// openSSH runs `ssh -tt` (a remote terminal even though ours is a pipe).
func openSSH(t *testing.T, port string, key testkit.SSHKey) *sshTerm {
	t.Helper()
	cmd := exec.Command("ssh", "-tt", "-p", port, "-i", key.Path,
		"-o", "IdentitiesOnly=yes", "-o", "BatchMode=yes",
		"-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
		"-o", "LogLevel=ERROR", "investigator@127.0.0.1")
	cmd.Env = append(os.Environ(), "TERM=xterm-256color")
	stdin, _ := cmd.StdinPipe()
	st := &sshTerm{t: t, stdin: stdin, done: make(chan error, 1)}
	cmd.Stdout, cmd.Stderr = st, st
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { st.done <- cmd.Wait() }()
	t.Cleanup(func() {
		stdin.Close()
		select {
		case <-st.done:
		case <-time.After(5 * time.Second):
			cmd.Process.Kill()
		}
	})
	return st
}

func (s *sshTerm) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.out.Write(p)
}

func (s *sshTerm) screen() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return ansi.Strip(s.out.String()[s.mark:])
}

// raw is everything the console wrote since the last send, escapes and
// controls included.
func (s *sshTerm) raw() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.out.String()[s.mark:]
}

func (s *sshTerm) waitFor(text string) {
	s.t.Helper()
	if !pollUntil(15*time.Second, func() bool { return strings.Contains(s.screen(), text) }) {
		s.t.Fatalf("waited for %q over ssh; the console drew:\n%s", text, s.screen())
	}
}

func (s *sshTerm) send(keys ...string) {
	s.mu.Lock()
	s.mark = s.out.Len()
	s.mu.Unlock()
	for _, k := range keys {
		io.WriteString(s.stdin, k)
		time.Sleep(50 * time.Millisecond)
	}
}

func TestConsoleOverOpenSSH(t *testing.T) {
	requireTool(t, "ssh", "openssh-client")
	in := newInstance(t)
	keys := t.TempDir()
	operator, viewer, stranger := testkit.NewSSHKey(t, keys, "operator"), testkit.NewSSHKey(t, keys, "viewer"), testkit.NewSSHKey(t, keys, "stranger")
	authorized := "environment=\"MCPTRAIL_ROLE=operator\" " + operator.Authorized + " alice\n" + viewer.Authorized + " bob role=viewer\n"
	if err := os.WriteFile(filepath.Join(in.Home, "authorized_keys"), []byte(authorized), 0o600); err != nil {
		t.Fatal(err)
	}
	port := freePort(t)
	in.Serve(t, "--ssh", "127.0.0.1:"+port)

	// Something to investigate: one agent session through the real gateway.
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	transport, _ := in.Wrap(t, WrapOptions{Name: "acme-ops", Agent: "nightly-ops-bot"}, binary(t, "mcptrail"), "demo-server", t.TempDir())
	cs := connect(t, ctx, mcp.NewClient(&mcp.Implementation{Name: "e2e", Version: "1"}, nil), transport, nil)
	if _, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "write_file", Arguments: map[string]any{"path": "notes.md", "content": "hello\n"}}); err != nil {
		t.Fatal(err)
	}
	cs.Close()

	// Key auth works and the header names the key.
	op := openSSH(t, port, operator)
	op.waitFor(operator.Fingerprint)
	op.waitFor("operator")
	op.waitFor("nightly-ops-bot")
	op.send("\r")
	op.waitFor("write_file")
	op.send("f", "tool:write_file", "\r") // the call is the oldest row left
	op.waitFor("tool:write_file ×")
	op.send(" ")
	op.waitFor("marked call")
	op.send("\x03") // ctrl+c: quit from any screen (q goes back)

	// The mark is the daemon's: `mcptrail ui` on this machine has it in
	// its rollback queue, marked by the SSH key.
	ui := exec.Command(binary(t, "mcptrail"), "ui")
	ui.Env = append(in.Env(), "TERM=xterm-256color")
	local := startPTY(t, ui)
	local.waitFor("nightly-ops-bot")
	local.send("R")
	local.waitFor("MARKED CALLS (1)")
	local.waitFor(operator.Fingerprint[:16])

	// A viewer reads but cannot mark.
	v := openSSH(t, port, viewer)
	v.waitFor("viewer · " + viewer.Fingerprint)
	v.send("\r")
	v.waitFor("write_file")
	v.send("f", "tool:write_file", "\r")
	v.waitFor("tool:write_file ×")
	v.send(" ")
	v.waitFor("viewer role: only operators may mark calls for reversal")
	v.send("\x03") // ctrl+c: quit from any screen (q goes back)

	// An unknown key is refused.
	s := openSSH(t, port, stranger)
	select {
	case err := <-s.done:
		if err == nil || !strings.Contains(s.screen(), "Permission denied") {
			t.Fatalf("unknown key: %v\n%s", err, s.screen())
		}
	case <-time.After(15 * time.Second):
		t.Fatalf("unknown key: ssh still connected:\n%s", s.screen())
	}
}
