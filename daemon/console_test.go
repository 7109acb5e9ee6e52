package daemon

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/charmbracelet/x/ansi"
	gossh "golang.org/x/crypto/ssh"

	"github.com/mcptrail/mcptrail/config"
	"github.com/mcptrail/mcptrail/store"
)

// End to end through a real SSH client (golang.org/x/crypto/ssh) against
// the daemon's wish server: key auth, a refused unknown key, the
// viewer/operator split, and the fingerprint the investigator is known by.

func newSigner(t *testing.T) gossh.Signer {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	s, err := gossh.NewSignerFromKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

type consoleEnv struct {
	d                *Daemon
	home             string
	operator, viewer gossh.Signer
	logs             *bytes.Buffer
	logMu            *sync.Mutex
}

func startConsoleDaemon(t *testing.T) *consoleEnv {
	t.Helper()
	return startConsoleDaemonWith(t, nil)
}

// startConsoleDaemonWith starts the console's daemon with a config that
// tweak changes first (nil: the defaults).
func startConsoleDaemonWith(t *testing.T, tweak func(*config.Config)) *consoleEnv {
	t.Helper()
	home := t.TempDir()
	env := &consoleEnv{home: home, operator: newSigner(t), viewer: newSigner(t), logs: &bytes.Buffer{}, logMu: &sync.Mutex{}}
	keys := `# investigators
environment="MCPTRAIL_ROLE=operator" ` + strings.TrimSpace(string(gossh.MarshalAuthorizedKey(env.operator.PublicKey()))) + ` alice@laptop
` + strings.TrimSpace(string(gossh.MarshalAuthorizedKey(env.viewer.PublicKey()))) + ` bob@laptop role=viewer
`
	if err := os.WriteFile(filepath.Join(home, AuthorizedKeysFile), []byte(keys), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := config.Default()
	cfg.Listen, cfg.SSH = "127.0.0.1:0", "127.0.0.1:0"
	if tweak != nil {
		tweak(cfg)
	}
	log := slog.New(slog.NewTextHandler(lockedBuf{env.logs, env.logMu}, nil))
	d, err := start(Options{Config: cfg, Home: home, Version: "test", Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.close() })
	if d.ConsoleAddr() == "" {
		t.Fatalf("console not listening; log:\n%s", env.logs)
	}
	env.d = d
	// A session with one write worth reversing.
	b := store.Event{Session: "01SSHTEST", Upstream: "acme-ops", Agent: &store.Agent{ID: "nightly-ops-bot", Name: "nightly-ops-bot"}}
	start := b
	start.Kind = store.KindSessionStart
	d.Record(&start, true)
	req := b
	req.Kind, req.From, req.Method, req.Tool, req.Class = store.KindRequest, store.FromClient, "tools/call", "write_file", "write"
	req.Params = json.RawMessage(`{"name":"write_file","arguments":{"path":"config.yaml","content":"replicas: 0\n"}}`)
	seq, _ := d.Record(&req, true)
	out := req
	out.Kind, out.Params, out.Call, out.Outcome = store.KindCall, nil, seq, store.OutcomeOK
	d.Record(&out, true)
	return env
}

type lockedBuf struct {
	b  *bytes.Buffer
	mu *sync.Mutex
}

func (l lockedBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (e *consoleEnv) log() string {
	e.logMu.Lock()
	defer e.logMu.Unlock()
	return e.logs.String()
}

// term is one SSH console session as a person would have it.
type term struct {
	t     *testing.T
	in    io.Writer
	mu    sync.Mutex
	out   bytes.Buffer
	mark  int
	close func()
}

func dialConsole(t *testing.T, addr string, signers ...gossh.Signer) (*term, error) {
	t.Helper()
	client, err := gossh.Dial("tcp", addr, &gossh.ClientConfig{
		User:            "alice",
		Auth:            []gossh.AuthMethod{gossh.PublicKeys(signers...)},
		HostKeyCallback: gossh.InsecureIgnoreHostKey(),
		Timeout:         5 * time.Second,
	})
	if err != nil {
		return nil, err
	}
	sess, err := client.NewSession()
	if err != nil {
		client.Close()
		return nil, err
	}
	if err := sess.RequestPty("xterm-256color", 24, 80, gossh.TerminalModes{}); err != nil {
		t.Fatal(err)
	}
	in, _ := sess.StdinPipe()
	outPipe, _ := sess.StdoutPipe()
	if err := sess.Shell(); err != nil {
		t.Fatal(err)
	}
	tm := &term{t: t, in: in, close: func() { sess.Close(); client.Close() }}
	go func() {
		buf := make([]byte, 32*1024)
		for {
			n, err := outPipe.Read(buf)
			tm.mu.Lock()
			tm.out.Write(buf[:n])
			tm.mu.Unlock()
			if err != nil {
				return
			}
		}
	}()
	t.Cleanup(tm.close)
	return tm, nil
}

// waitFor waits for text to be drawn after the last keys.
func (tm *term) waitFor(text string) {
	tm.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		tm.mu.Lock()
		screen := ansi.Strip(tm.out.String()[tm.mark:])
		tm.mu.Unlock()
		if strings.Contains(screen, text) {
			return
		}
		if time.Now().After(deadline) {
			tm.t.Fatalf("waited for %q; the console drew:\n%s", text, screen)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// send types keys one at a time, as a person would.
func (tm *term) send(keys ...string) {
	tm.mu.Lock()
	tm.mark = tm.out.Len()
	tm.mu.Unlock()
	for _, k := range keys {
		tm.in.Write([]byte(k))
		time.Sleep(30 * time.Millisecond)
	}
}

func TestConsoleSSHKeyAuthShowsFingerprint(t *testing.T) {
	env := startConsoleDaemon(t)
	tm, err := dialConsole(t, env.d.ConsoleAddr(), env.operator)
	if err != nil {
		t.Fatal(err)
	}
	fp := gossh.FingerprintSHA256(env.operator.PublicKey())
	tm.waitFor(fp)
	tm.waitFor("operator")
	tm.waitFor("nightly-ops-bot")
	tm.send("\x03") // ctrl+c: quit from any screen (q goes back)
	if !strings.Contains(env.log(), "console session opened") || !strings.Contains(env.log(), fp) {
		t.Errorf("the daemon log should name the investigator's key:\n%s", env.log())
	}
	// The host key was made on first start, readable by the daemon's user only.
	fi, err := os.Stat(filepath.Join(env.home, HostKeyFile))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("host key: %v %v", fi, err)
	}
}

func TestConsoleSSHRejectsUnknownKey(t *testing.T) {
	env := startConsoleDaemon(t)
	_, err := dialConsole(t, env.d.ConsoleAddr(), newSigner(t))
	if err == nil || !strings.Contains(err.Error(), "unable to authenticate") {
		t.Fatalf("an unknown key got in: %v", err)
	}
}

func TestConsoleSSHViewerCannotMarkOperatorCan(t *testing.T) {
	env := startConsoleDaemon(t)

	viewer, err := dialConsole(t, env.d.ConsoleAddr(), env.viewer)
	if err != nil {
		t.Fatal(err)
	}
	viewer.waitFor("viewer")
	viewer.waitFor("nightly-ops-bot")
	viewer.send("\r")
	viewer.waitFor("write_file")
	viewer.send("j", " ")
	viewer.waitFor("viewer role: only operators may mark calls for reversal")
	viewer.send("r")
	viewer.waitFor("viewer role: only operators may queue reversals")
	viewer.send("\x03") // ctrl+c: quit from any screen (q goes back)

	op, err := dialConsole(t, env.d.ConsoleAddr(), env.operator)
	if err != nil {
		t.Fatal(err)
	}
	op.waitFor("operator")
	op.waitFor("nightly-ops-bot")
	op.send("\r")
	op.waitFor("write_file")
	op.send("j", " ")
	op.waitFor("marked call")
	op.send("R")
	// The rollback queue (ui/queue.go).
	op.waitFor("MARKED CALLS (1)")
	op.waitFor(gossh.FingerprintSHA256(env.operator.PublicKey())[:12]) // MARKED BY, cut to fit 80 columns
	op.send("\x03")                                                    // ctrl+c: quit from any screen (q goes back)
	if !strings.Contains(env.log(), "action=mark") {
		t.Errorf("the operator's mark should be in the daemon log:\n%s", env.log())
	}
}

// The role is read from authorized_keys at each connection, after
// authentication, from the key the session authenticated with: editing the
// file changes what the next session may do, with no restart.
func TestConsoleSSHRoleFollowsAuthorizedKeys(t *testing.T) {
	env := startConsoleDaemon(t)
	path := filepath.Join(env.home, AuthorizedKeysFile)
	promoted := "environment=\"MCPTRAIL_ROLE=operator\" " + strings.TrimSpace(string(gossh.MarshalAuthorizedKey(env.viewer.PublicKey()))) + " bob@laptop\n"
	if err := os.WriteFile(path, []byte(promoted), 0o600); err != nil {
		t.Fatal(err)
	}
	tm, err := dialConsole(t, env.d.ConsoleAddr(), env.viewer)
	if err != nil {
		t.Fatal(err)
	}
	tm.waitFor("operator · " + gossh.FingerprintSHA256(env.viewer.PublicKey()))
	tm.send("\x03") // ctrl+c: quit from any screen (q goes back)
	// The operator's line is gone: that key no longer gets in.
	if _, err := dialConsole(t, env.d.ConsoleAddr(), env.operator); err == nil {
		t.Fatal("a removed key still gets in")
	}
}

func TestConsoleSSHNeedsATerminal(t *testing.T) {
	env := startConsoleDaemon(t)
	client, err := gossh.Dial("tcp", env.d.ConsoleAddr(), &gossh.ClientConfig{
		User: "alice", Auth: []gossh.AuthMethod{gossh.PublicKeys(env.viewer)},
		HostKeyCallback: gossh.InsecureIgnoreHostKey(), Timeout: 5 * time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	sess, _ := client.NewSession()
	out, err := sess.CombinedOutput("")
	if err == nil || !strings.Contains(string(out), "needs a terminal") {
		t.Fatalf("no pty: %q %v", out, err)
	}
}
