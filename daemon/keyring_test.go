package daemon

import (
	"bytes"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/charmbracelet/x/ansi"

	"github.com/mcptrail/mcptrail/config"
	"github.com/mcptrail/mcptrail/internal/testkit"
)

// authorized_keys options as OpenSSH's own client meets them: each case
// rewrites the file (read afresh at every connection) and connects with
// `ssh -tt`, as an investigator would.

type keysEnv struct {
	d          *Daemon
	home, port string
	logs       *bytes.Buffer
	logMu      *sync.Mutex
}

func (e *keysEnv) log() string {
	e.logMu.Lock()
	defer e.logMu.Unlock()
	return e.logs.String()
}

func startKeysDaemon(t *testing.T, roles map[string]string) *keysEnv {
	t.Helper()
	if _, err := exec.LookPath("ssh"); err != nil {
		t.Fatal("these tests need OpenSSH's client (apt-get install openssh-client)")
	}
	env := &keysEnv{home: t.TempDir(), logs: &bytes.Buffer{}, logMu: &sync.Mutex{}}
	cfg := config.Default()
	cfg.Listen, cfg.SSH, cfg.SSHRoles = "127.0.0.1:0", "127.0.0.1:0", roles
	log := slog.New(slog.NewTextHandler(lockedBuf{env.logs, env.logMu}, nil))
	d, err := start(Options{Config: cfg, Home: env.home, Version: "test", Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.close() })
	env.d = d
	_, env.port, _ = net.SplitHostPort(d.ConsoleAddr())
	return env
}

func (e *keysEnv) authorize(t *testing.T, text string) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(e.home, AuthorizedKeysFile), []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
}

// ssh connects with key and waits until its output contains want, or ssh
// has exited; it returns the output either way, ANSI stripped.
func (e *keysEnv) ssh(t *testing.T, key testkit.SSHKey, want string) string {
	t.Helper()
	cmd := exec.Command("ssh", "-tt", "-p", e.port, "-i", key.Path,
		"-o", "IdentitiesOnly=yes", "-o", "BatchMode=yes",
		"-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
		"-o", "LogLevel=ERROR", "investigator@127.0.0.1")
	cmd.Env = append(os.Environ(), "TERM=xterm-256color")
	stdin, _ := cmd.StdinPipe()
	out := &lockedBuf{&bytes.Buffer{}, &sync.Mutex{}}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	text := func() string {
		out.mu.Lock()
		defer out.mu.Unlock()
		return ansi.Strip(out.b.String())
	}
	deadline := time.After(15 * time.Second)
	for !strings.Contains(text(), want) {
		select {
		case <-done:
			return text()
		case <-deadline:
			cmd.Process.Kill()
			<-done
			return text()
		case <-time.After(20 * time.Millisecond):
		}
	}
	stdin.Write([]byte("q"))
	stdin.Close()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		cmd.Process.Kill()
		<-done
	}
	return text()
}

func TestConsoleAuthorizedKeysOptionsOverOpenSSH(t *testing.T) {
	dir := t.TempDir()
	alice, bob := testkit.NewSSHKey(t, dir, "alice"), testkit.NewSSHKey(t, dir, "bob")
	env := startKeysDaemon(t, map[string]string{bob.Fingerprint: "operator"})
	const denied = "Permission denied"
	for _, tc := range []struct {
		name, line string
		key        testkit.SSHKey
		want       string // in ssh's output
		log        string // in the daemon's log, "" for none needed
	}{
		{"from matching", `from="127.0.0.1" ` + alice.Authorized, alice, "viewer · " + alice.Fingerprint, ""},
		{"from CIDR matching", `from="10.0.0.0/8,127.0.0.0/8" ` + alice.Authorized, alice, "viewer · " + alice.Fingerprint, ""},
		{"from wildcard matching", `from="127.0.0.?" ` + alice.Authorized, alice, "viewer · " + alice.Fingerprint, ""},
		{"from not matching", `from="10.9.9.9" ` + alice.Authorized, alice, denied, "not in the line's from= list"},
		{"from negated", `from="*,!127.0.0.1" ` + alice.Authorized, alice, denied, "not in the line's from= list"},
		{"expired", `expiry-time="20200101" ` + alice.Authorized, alice, denied, "expiry-time has passed"},
		{"not yet expired", `expiry-time="20991231Z" ` + alice.Authorized, alice, "viewer · " + alice.Fingerprint, ""},
		{"no-pty", `no-pty ` + alice.Authorized, alice, "may not have a terminal", "forbids a terminal"},
		{"restrict", `restrict ` + alice.Authorized, alice, "may not have a terminal", "forbids a terminal"},
		{"restrict then pty", `restrict,pty ` + alice.Authorized, alice, "viewer · " + alice.Fingerprint, ""},
		{"harmless options", `no-port-forwarding,no-agent-forwarding,no-X11-forwarding,no-user-rc ` + alice.Authorized, alice, "viewer · " + alice.Fingerprint, ""},
		{"unknown option", "# one comment line first\nfrobnicate " + alice.Authorized, alice, denied, `line=2 fingerprint=` + alice.Fingerprint + ` err="option \"frobnicate\" is not one`},
		{"command", `command="/bin/sh" ` + alice.Authorized, alice, denied, "command= is not supported"},
		{"comment role stays viewer", alice.Authorized + " alice role=operator", alice, "viewer · " + alice.Fingerprint, `\"role=operator\" in a key's comment is ignored`},
		{"environment role", `environment="MCPTRAIL_ROLE=operator" ` + alice.Authorized, alice, "operator · " + alice.Fingerprint, ""},
		{"config fingerprint role", bob.Authorized + " bob", bob, "operator · " + bob.Fingerprint, ""},
		{"line and config disagree", `environment="MCPTRAIL_ROLE=viewer" ` + bob.Authorized, bob, "viewer · " + bob.Fingerprint, "different roles"},
		{"a refused line, then one that lets the key in", `from="10.9.9.9",environment="MCPTRAIL_ROLE=operator" ` + alice.Authorized + "\n" + alice.Authorized, alice, "viewer · " + alice.Fingerprint, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			env.authorize(t, tc.line+"\n")
			out := env.ssh(t, tc.key, tc.want)
			if !strings.Contains(out, tc.want) {
				t.Fatalf("ssh said:\n%s\nwant %q; daemon log:\n%s", out, tc.want, env.log())
			}
			if tc.want == denied && strings.Contains(out, "·") {
				t.Fatalf("a refused key drew the console:\n%s", out)
			}
			if tc.log != "" && !strings.Contains(env.log(), tc.log) {
				t.Fatalf("daemon log lacks %q:\n%s", tc.log, env.log())
			}
		})
	}
	// The comment-role warning is logged once per line, not per connection.
	env.authorize(t, alice.Authorized+" alice role=operator\n")
	env.ssh(t, alice, "viewer · "+alice.Fingerprint)
	if n := strings.Count(env.log(), "in a key's comment is ignored"); n != 1 {
		t.Errorf("comment role logged %d times, want once", n)
	}
}

// authorized_keys is checked at every connection as sshd's StrictModes
// does: while others can write it, no key in it gets in.
func TestConsoleRefusesUnsafeAuthorizedKeys(t *testing.T) {
	dir := t.TempDir()
	alice := testkit.NewSSHKey(t, dir, "alice")
	env := startKeysDaemon(t, nil)
	env.authorize(t, `environment="MCPTRAIL_ROLE=operator" `+alice.Authorized+"\n")
	path := filepath.Join(env.home, AuthorizedKeysFile)
	if out := env.ssh(t, alice, "operator · "+alice.Fingerprint); !strings.Contains(out, "operator · ") {
		t.Fatalf("a safe file did not let the key in:\n%s", out)
	}
	for _, mode := range []os.FileMode{0o666, 0o620} {
		os.Chmod(path, mode)
		if out := env.ssh(t, alice, "Permission denied"); !strings.Contains(out, "Permission denied") {
			t.Fatalf("mode %04o: the key got in:\n%s", mode, out)
		}
		if !strings.Contains(env.log(), "authorized_keys is not safe to trust") || !strings.Contains(env.log(), "chmod go-w "+path) {
			t.Fatalf("mode %04o: the log does not say why:\n%s", mode, env.log())
		}
	}
	if os.Getuid() == 0 {
		os.Chmod(path, 0o600)
		os.Chown(path, 65534, 65534)
		if out := env.ssh(t, alice, "Permission denied"); !strings.Contains(out, "Permission denied") {
			t.Fatalf("a file owned by nobody let the key in:\n%s", out)
		}
		if !strings.Contains(env.log(), "owned by uid 65534") {
			t.Fatalf("the log does not say why:\n%s", env.log())
		}
	}
}

// ssh_roles changes with a reload (SIGHUP), at the next connection.
func TestConsoleSSHRolesFollowReload(t *testing.T) {
	dir := t.TempDir()
	bob := testkit.NewSSHKey(t, dir, "bob")
	env := startKeysDaemon(t, nil)
	env.authorize(t, bob.Authorized+" bob\n")
	if out := env.ssh(t, bob, "viewer · "+bob.Fingerprint); !strings.Contains(out, "viewer · ") {
		t.Fatalf("before the reload:\n%s", out)
	}
	cfg := strictConfig()
	cfg.SSHRoles = map[string]string{bob.Fingerprint: "operator"}
	if err := env.d.Reload(cfg); err != nil {
		t.Fatal(err)
	}
	if out := env.ssh(t, bob, "operator · "+bob.Fingerprint); !strings.Contains(out, "operator · ") {
		t.Fatalf("after the reload:\n%s", out)
	}
}
