package daemon

// The SSH console: the daemon serves the investigation console (package
// ui) with wish, so an on-call engineer can `ssh -p 2222 host` from
// anywhere they can reach the box, with the record read in-process.

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"errors"
	"github.com/mcptrail/mcptrail/internal/safefile"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"

	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/lipgloss"
	"github.com/charmbracelet/ssh"
	"github.com/charmbracelet/wish"
	"github.com/muesli/termenv"
	gossh "golang.org/x/crypto/ssh"

	"github.com/mcptrail/mcptrail/ui"
)

// HostKeyFile and AuthorizedKeysFile are the console's files in the data
// directory.
const (
	HostKeyFile        = "ssh_host_ed25519_key"
	AuthorizedKeysFile = "authorized_keys"
)

// console is the running SSH server.
type console struct {
	srv  *ssh.Server
	addr string
	keys *keyring // authorized_keys, read at each connection (keyring.go)
}

// startConsole serves the console on the config's ssh address. A console
// that cannot listen (the port is taken, say by another instance's daemon)
// is logged and skipped: recording matters more than viewing, and the
// console is also reachable with `mcptrail ui`.
func (d *Daemon) startConsole() {
	cfg := d.opts.Config
	if cfg.SSH == "" {
		return
	}
	keys := cfg.AuthorizedKeys
	if keys == "" {
		keys = filepath.Join(d.paths.Home, AuthorizedKeysFile)
	}
	hostKey, err := loadHostKey(filepath.Join(d.paths.Home, HostKeyFile))
	if err != nil {
		d.log.Warn("SSH console not started: host key", "err", err)
		return
	}
	c := &console{keys: newKeyring(keys, cfg.SSHRoles, d.log)}
	srv, err := wish.NewServer(
		wish.WithHostKeyPEM(hostKey),
		// Only public keys; no password or keyboard-interactive handler is
		// set, so those methods are not offered. The callback answers yes
		// or no and stores nothing: the investigator's identity is derived
		// after authentication (see handler), because this callback also
		// runs for keys a client merely offers (soft-serve GHSA-pchf-49fh-w34r).
		wish.WithPublicKeyAuth(func(ctx ssh.Context, key ssh.PublicKey) bool {
			_, ok := c.keys.lookup(key, ctx.RemoteAddr())
			return ok
		}),
		wish.WithMiddleware(d.consoleHandler(c)),
	)
	if err != nil {
		d.log.Warn("SSH console not started", "err", err)
		return
	}
	ln, err := net.Listen("tcp", cfg.SSH)
	if err != nil {
		d.log.Warn("SSH console not started; `mcptrail ui` still works on this host", "addr", cfg.SSH, "err", err)
		return
	}
	c.srv, c.addr = srv, ln.Addr().String()
	d.console = c
	if _, err := os.Stat(keys); errors.Is(err, os.ErrNotExist) {
		d.log.Warn("SSH console: no authorized_keys yet, every key is refused until you add some", "file", keys)
	}
	d.log.Info("SSH console listening", "addr", c.addr, "authorized_keys", keys)
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, ssh.ErrServerClosed) {
			d.log.Error("SSH console stopped", "err", err)
		}
	}()
}

// ConsoleAddr is the SSH console's listening address, "" when it is off.
func (d *Daemon) ConsoleAddr() string {
	if d.console == nil {
		return ""
	}
	return d.console.addr
}

func (d *Daemon) closeConsole() {
	if d.console != nil {
		d.console.srv.Close()
	}
}

// consoleHandler runs one console per SSH session.
func (d *Daemon) consoleHandler(c *console) wish.Middleware {
	return func(next ssh.Handler) ssh.Handler {
		return func(s ssh.Session) {
			defer next(s)
			pty, winCh, isPty := s.Pty()
			if !isPty {
				wish.Fatalln(s, "mcptrail: the console needs a terminal; connect with ssh -t")
				return
			}
			// Identity after authentication, from the session's key. With
			// golang.org/x/crypto ≥ 0.31 the last key the public-key
			// callback saw is the one that authenticated, and that is the
			// key the session carries; the role is looked up afresh from
			// authorized_keys, never from state an offer could have left.
			key := s.PublicKey()
			entry, ok := c.keys.lookup(key, s.RemoteAddr())
			if key == nil || !ok {
				wish.Fatalln(s, "mcptrail: this key is not (or no longer) authorized")
				return
			}
			if !entry.rules.PTY {
				d.log.Warn("SSH console: refused a key whose authorized_keys line forbids a terminal (no-pty or restrict)",
					"file", entry.file, "line", entry.line, "fingerprint", gossh.FingerprintSHA256(key), "remote", s.RemoteAddr().String())
				wish.Fatalln(s, "mcptrail: this key may not have a terminal (no-pty or restrict in authorized_keys), and the console is one; add pty after restrict to allow it")
				return
			}
			id := ui.Identity{Via: "ssh", Name: s.User(), Fingerprint: gossh.FingerprintSHA256(key), Role: entry.role}
			log := d.log.With("user", id.Name, "fingerprint", id.Fingerprint, "role", id.Role, "remote", s.RemoteAddr().String())
			log.Info("console session opened")
			defer log.Info("console session closed")

			// One writer for frames and OSC 52 alike: an SSH channel must
			// not be written from two goroutines at once.
			out := &lockedWriter{w: s}
			env := sshEnviron(append(s.Environ(), "TERM="+pty.Term))
			app := ui.New(ui.Options{
				Source:      d.store,
				SourceLabel: "daemon " + d.paths.Home,
				Identity:    id,
				Renderer:    sessionRenderer(out, env),
				NoColor:     env.Getenv("NO_COLOR") != "",
				Clipboard:   out,
				Term:        pty.Term,
				OnAction: func(action, detail string) {
					log.Info("console action", "action", action, "detail", detail)
				},
				Rollback:  d.consoleRollback(), // rollback.go
				Rules:     d.consoleRules(),
				Approvals: d.consoleApprovals(), // approvals.go
			})
			p := tea.NewProgram(app, tea.WithInput(s), tea.WithOutput(out), tea.WithAltScreen(), tea.WithoutSignalHandler())
			done := make(chan struct{})
			defer close(done)
			go func() {
				for {
					select {
					case <-s.Context().Done():
						p.Quit()
						return
					case <-done:
						return
					case w := <-winCh:
						// A client whose own side is not a terminal (ssh -tt
						// from a script) reports 0×0; draw for 80×24 then.
						if w.Width <= 0 || w.Height <= 0 {
							w.Width, w.Height = 80, 24
						}
						p.Send(tea.WindowSizeMsg{Width: w.Width, Height: w.Height})
					}
				}
			}()
			if _, err := p.Run(); err != nil && !errors.Is(err, tea.ErrProgramKilled) {
				log.Warn("console ended with an error", "err", err)
			}
			p.Kill()
		}
	}
}

// sessionRenderer makes the lipgloss renderer of one SSH session: colors
// follow the client's TERM (and NO_COLOR, if the client sends it), not the
// daemon's terminal. It does what wish's later bubbletea.MakeRenderer does;
// wish v1.1.1's middleware instead sets one global color profile for every
// session, which is why the console does not use it.
func sessionRenderer(out io.Writer, env sshEnviron) *lipgloss.Renderer {
	return lipgloss.NewRenderer(out, termenv.WithEnvironment(env), termenv.WithUnsafe(), termenv.WithColorCache(true))
}

// sshEnviron is a session's environment as termenv reads it.
type sshEnviron []string

func (e sshEnviron) Environ() []string { return e }

func (e sshEnviron) Getenv(k string) string {
	v := ""
	for _, kv := range e {
		if name, val, ok := strings.Cut(kv, "="); ok && name == k {
			v = val // the last one wins, as in a shell
		}
	}
	return v
}

type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// loadHostKey reads the console's host key, creating it (Ed25519, mode
// 0600) on first start so that clients see the same host key every time.
func loadHostKey(path string) ([]byte, error) {
	data, err := safefile.ReadOwn(path) // no link, ours, private
	if err == nil {
		return data, nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, err
	}
	block, err := gossh.MarshalPrivateKey(priv, "mcptrail console host key")
	if err != nil {
		return nil, err
	}
	data = pem.EncodeToMemory(block)
	f, err := safefile.CreateExcl(path)
	if errors.Is(err, os.ErrExist) {
		return safefile.ReadOwn(path) // another process made it first
	}
	if err != nil {
		return nil, err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return nil, err
	}
	return data, f.Close()
}
