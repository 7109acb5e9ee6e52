// Package e2e runs the built mcptrail binary against real MCP servers and
// real MCP clients, and checks what reaches the client and what lands in the
// record.
//
// The harness in this file is shared by every suite in the folder:
//
//   - binary(t, name) builds a program once per `go test` run (mcptrail, the
//     go-sdk conformance everything-server, the servers under testdata/);
//   - newInstance(t) gives a separate mcptrail instance (its own
//     MCPTRAIL_HOME and config folder) and stops any daemon left in it;
//   - Instance.Serve starts `mcptrail serve` and waits for its listening line;
//   - Instance.Wrap gives an mcp.Transport for `mcptrail wrap -- SERVER...`;
//   - Instance.Export / WaitEvents read the record with `mcptrail export`;
//   - startRaw drives a stdio server with raw bytes, for what the SDK won't send.
//
// What the soak test (bench/soak) needs too — processes, output capture,
// the CLI runner, the everything-server over HTTP — lives in internal/testkit.
//
// Nothing here sleeps to synchronize: the harness reads the lines processes
// print, or polls a condition until a deadline.
package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/mcptrail/mcptrail/internal/testkit"
	"github.com/mcptrail/mcptrail/store"
	"github.com/modelcontextprotocol/go-sdk/mcp"
)

const (
	// startTimeout bounds how long a process may take to say it is ready.
	// Generous: under -race on 2 cores a cold start of the daemon is slow.
	startTimeout = 60 * time.Second
	// stopTimeout bounds how long a process may take to exit once asked.
	stopTimeout = 20 * time.Second
	// commandTimeout bounds a one-shot CLI command (export, status, ...).
	commandTimeout = 60 * time.Second
)

// ---------------------------------------------------------------------------
// Building the programs under test.

var (
	binDir   string // where binary() puts what it builds; on PATH for children
	repoRoot string
)

type buildResult struct {
	once sync.Once
	done atomic.Bool // set when the build finished (well or not)
	path string
	err  error
}

// programs the harness knows how to build: name → `go build` arguments
// (run in the repository root).
var programs = map[string][]string{
	// The gateway itself. Built with -race when the tests are (see race_test.go),
	// so a data race in the daemon under real traffic fails the run.
	"mcptrail": {"."},
	// The go-sdk's conformance server: serves stdio, or Streamable HTTP with -http.
	"everything-server": {"github.com/modelcontextprotocol/go-sdk/conformance/everything-server"},
	// Servers written for these tests.
	"recordcheck": {"./e2e/testdata/recordcheck"},
	"crashy":      {"./e2e/testdata/crashy"},
	"faulty":      {"./e2e/testdata/faulty"},
	// A mark3labs/mcp-go server that logs what it executes (strictparse_test.go).
	"mcpgo": {"./internal/testservers/mcpgo"},
}

// builds has one entry per program, made before any test runs.
var builds = func() map[string]*buildResult {
	m := map[string]*buildResult{}
	for name := range programs {
		m[name] = &buildResult{}
	}
	return m
}()

func TestMain(m *testing.M) {
	os.Exit(runTests(m))
}

func runTests(m *testing.M) int {
	var err error
	repoRoot, err = testkit.RepoRoot()
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 2
	}
	binDir, err = os.MkdirTemp("", "mcptrail-e2e-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 2
	}
	defer os.RemoveAll(binDir)
	return m.Run()
}

// binary returns the path of the named program (a key of programs), building
// it on first use. A build failure fails the calling test with the compiler's
// output; every later caller gets the same failure without rebuilding.
func binary(t testing.TB, name string) string {
	t.Helper()
	br, ok := builds[name]
	if !ok {
		t.Fatalf("binary: unknown program %q", name)
	}
	br.once.Do(func() {
		defer br.done.Store(true)
		out := filepath.Join(binDir, name)
		var args []string
		if name == "mcptrail" && raceEnabled {
			args = append(args, "-race")
		}
		if br.err = testkit.GoBuild(repoRoot, out, append(args, programs[name]...)...); br.err != nil {
			return
		}
		br.path = out
	})
	if br.err != nil || br.path == "" {
		t.Fatalf("cannot build %s: %v", name, br.err)
	}
	return br.path
}

// built reports whether the named program has been built successfully.
func built(name string) bool {
	br := builds[name]
	return br.done.Load() && br.err == nil
}

// ---------------------------------------------------------------------------
// Output capture.

// watched guards some state with a mutex and lets goroutines wait, with a
// deadline, for a condition on it: what the harness uses instead of sleeping.
type watched struct {
	mu      sync.Mutex
	changed chan struct{} // closed and replaced on every update
}

// update runs f under the lock and wakes the waiters.
func (w *watched) update(f func()) {
	w.mu.Lock()
	defer w.mu.Unlock()
	f()
	if w.changed != nil {
		close(w.changed)
	}
	w.changed = make(chan struct{})
}

var (
	errTimeout = errors.New("timed out")
	errStopped = errors.New("stopped")
)

// wait returns nil once cond (run under the lock) holds; errStopped when stop
// is closed first (cond is checked once more then); errTimeout after timeout.
func (w *watched) wait(timeout time.Duration, stop <-chan struct{}, cond func() bool) error {
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		w.mu.Lock()
		ok := cond()
		if w.changed == nil {
			w.changed = make(chan struct{})
		}
		changed := w.changed
		w.mu.Unlock()
		if ok {
			return nil
		}
		select {
		case <-changed:
		case <-stop:
			w.mu.Lock()
			ok := cond()
			w.mu.Unlock()
			if ok {
				return nil
			}
			return errStopped
		case <-deadline.C:
			return errTimeout
		}
	}
}

// checkNoRace fails t when a race-enabled binary reported a data race.
var checkNoRace = testkit.CheckNoRace

// ---------------------------------------------------------------------------
// Instances.

// Instance is one separate mcptrail installation: a data directory
// (MCPTRAIL_HOME) and a config directory (XDG_CONFIG_HOME) of its own.
type Instance struct {
	Home       string // MCPTRAIL_HOME: store, socket, pid file
	ConfigHome string // XDG_CONFIG_HOME: mcptrail/config.yaml lives under it
}

// newInstance makes an instance for t. At cleanup it stops a daemon left
// running in it (one that `mcptrail wrap` started in the background) and
// checks the daemon's log for data races.
func newInstance(t testing.TB) *Instance {
	t.Helper()
	// A short path of our own rather than t.TempDir(): the daemon's unix socket
	// lives in Home, and socket paths are limited to 108 bytes.
	root, err := os.MkdirTemp("", "mt-")
	if err != nil {
		t.Fatal(err)
	}
	in := &Instance{Home: filepath.Join(root, "home"), ConfigHome: filepath.Join(root, "config")}
	for _, d := range []string{in.Home, in.ConfigHome} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	in.WriteConfig(t, "")
	t.Cleanup(func() {
		in.stopLeftoverDaemon(t)
		in.checkDaemonLogs(t)
		os.RemoveAll(root)
	})
	return in
}

// baseConfig is every instance's config: a daemon (also one that wrap starts
// in the background) listens on free ports, not the default ones, so
// instances in parallel tests never collide.
const baseConfig = "listen: 127.0.0.1:0\nssh: 127.0.0.1:0\n"

// WriteConfig writes the instance's config file
// ($XDG_CONFIG_HOME/mcptrail/config.yaml): baseConfig followed by extra.
func (in *Instance) WriteConfig(t testing.TB, extra string) string {
	t.Helper()
	p := filepath.Join(in.ConfigHome, "mcptrail", "config.yaml")
	if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(baseConfig+extra), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// Env is the environment of every process the instance starts: the test's
// own, without anything that would point mcptrail at another instance, plus
// the instance's directories, and the built binaries first on PATH (servers
// under test find `mcptrail` there).
func (in *Instance) Env() []string {
	return testkit.Env(in.Home, in.ConfigHome, binDir)
}

// Result is a finished command.
type Result = testkit.Result

// Run runs `mcptrail ARGS...` to completion and returns what it printed and
// its exit status. It fails t only when the command cannot run at all.
func (in *Instance) Run(t testing.TB, args ...string) Result {
	t.Helper()
	return testkit.RunCLI(t, commandTimeout, binary(t, "mcptrail"), in.Env(), args...)
}

// MustRun is Run that requires exit status 0.
func (in *Instance) MustRun(t testing.TB, args ...string) Result {
	t.Helper()
	res := in.Run(t, args...)
	if res.Code != 0 {
		t.Fatalf("mcptrail %s: exit %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), res.Code, res.Stdout, res.Stderr)
	}
	return res
}

// Export runs `mcptrail export --format jsonl ARGS...` and decodes its lines.
func (in *Instance) Export(t testing.TB, args ...string) []store.Event {
	t.Helper()
	res := in.MustRun(t, append([]string{"export", "--format", "jsonl"}, args...)...)
	events, err := decodeEvents(res.Stdout)
	if err != nil {
		t.Fatalf("mcptrail export %v: %v", args, err)
	}
	return events
}

// decodeEvents decodes JSON lines of store.Event; every non-empty line must be one.
func decodeEvents(s string) ([]store.Event, error) {
	var events []store.Event
	for i, line := range strings.Split(s, "\n") {
		if strings.TrimSpace(line) == "" {
			continue
		}
		var ev store.Event
		if err := json.Unmarshal([]byte(line), &ev); err != nil {
			return nil, fmt.Errorf("line %d is not an event: %v: %q", i+1, err, line)
		}
		events = append(events, ev)
	}
	return events, nil
}

// WaitEvents exports (with the given filter arguments) until cond holds for
// the events, and returns them. Outcomes may be written just after the client
// got its response, so a test that reads the record right after its calls
// waits for what it expects instead of reading once.
func (in *Instance) WaitEvents(t testing.TB, cond func([]store.Event) error, args ...string) []store.Event {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		events := in.Export(t, args...)
		err := cond(events)
		if err == nil {
			return events
		}
		if time.Now().After(deadline) {
			t.Fatalf("record never satisfied the test: %v\nevents:\n%s", err, formatEvents(events))
		}
		time.Sleep(100 * time.Millisecond) // polling interval, not synchronization
	}
}

func formatEvents(events []store.Event) string {
	var b strings.Builder
	for _, ev := range events {
		line, _ := json.Marshal(ev)
		b.Write(line)
		b.WriteByte('\n')
	}
	return b.String()
}

// Status runs `mcptrail status --json` and decodes it.
func (in *Instance) Status(t testing.TB) map[string]any {
	t.Helper()
	res := in.MustRun(t, "status", "--json")
	var st map[string]any
	if err := json.Unmarshal([]byte(res.Stdout), &st); err != nil {
		t.Fatalf("mcptrail status --json printed no JSON object: %v: %q", err, res.Stdout)
	}
	return st
}

// daemonPID is the pid of the daemon running for this instance, or 0. It
// trusts a pid from `mcptrail status` only when /proc shows that process is
// our mcptrail binary with this instance's MCPTRAIL_HOME, so a stale pid can
// never make the harness signal somebody else's process.
func (in *Instance) daemonPID(t testing.TB) int {
	t.Helper()
	res := in.Run(t, "status", "--json")
	if res.Code != 0 {
		return 0
	}
	var st struct {
		PID int `json:"pid"`
	}
	if json.Unmarshal([]byte(res.Stdout), &st) != nil || st.PID <= 0 {
		return 0
	}
	if !in.ownsProcess(st.PID) {
		return 0
	}
	return st.PID
}

func (in *Instance) ownsProcess(pid int) bool {
	exe, err := os.Readlink(fmt.Sprintf("/proc/%d/exe", pid))
	if err != nil || filepath.Dir(exe) != binDir {
		return false
	}
	environ, err := os.ReadFile(fmt.Sprintf("/proc/%d/environ", pid))
	return err == nil && slices.Contains(strings.Split(string(environ), "\x00"), "MCPTRAIL_HOME="+in.Home)
}

func processGone(pid int) bool {
	// A zombie still answers kill(0); check its state too.
	if err := syscall.Kill(pid, 0); err != nil {
		return true
	}
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return true
	}
	// The state follows the parenthesized command name.
	s := string(stat)
	if i := strings.LastIndexByte(s, ')'); i >= 0 && i+2 < len(s) {
		return s[i+2] == 'Z'
	}
	return false
}

// StopDaemon runs `mcptrail stop` and waits for the daemon process to go.
func (in *Instance) StopDaemon(t testing.TB) {
	t.Helper()
	pid := in.daemonPID(t)
	in.MustRun(t, "stop")
	if pid == 0 {
		return
	}
	if !pollUntil(stopTimeout, func() bool { return processGone(pid) }) {
		t.Errorf("daemon pid %d still running %v after `mcptrail stop`; killing it", pid, stopTimeout)
		syscall.Kill(pid, syscall.SIGKILL)
	}
}

func (in *Instance) stopLeftoverDaemon(t testing.TB) {
	if !built("mcptrail") {
		return // no mcptrail ran, so no daemon can run
	}
	if in.daemonPID(t) != 0 {
		in.StopDaemon(t)
	}
}

// checkDaemonLogs checks the log files in the data directory (where a
// daemon started in the background writes its stderr) for data races, and
// shows them when the test failed.
func (in *Instance) checkDaemonLogs(t testing.TB) {
	entries, _ := os.ReadDir(in.Home)
	for _, e := range entries {
		if !strings.HasSuffix(e.Name(), ".log") {
			continue
		}
		data, err := os.ReadFile(filepath.Join(in.Home, e.Name()))
		if err != nil {
			continue
		}
		checkNoRace(t, "the daemon ("+e.Name()+")", string(data))
		if t.Failed() {
			t.Logf("%s:\n%s", e.Name(), data)
		}
	}
}

// pollUntil calls cond every 50ms until it returns true or timeout passes.
func pollUntil(timeout time.Duration, cond func() bool) bool {
	return testkit.PollUntil(timeout, 50*time.Millisecond, cond)
}

// ---------------------------------------------------------------------------
// Processes that run in the background of a test.

// Proc is a process started by the harness, stopped at cleanup.
type Proc = testkit.Proc

// startProc starts cmd (see testkit.StartProc) with the harness's stop
// timeout.
func startProc(t testing.TB, name string, cmd *exec.Cmd) *Proc {
	t.Helper()
	return testkit.StartProc(t, name, cmd, testkit.ProcOptions{StopTimeout: stopTimeout})
}

// ---------------------------------------------------------------------------
// mcptrail serve.

// Daemon is a `mcptrail serve` running in the foreground of a test.
type Daemon struct {
	*Proc
	URL string // http://127.0.0.1:PORT
}

// Serve starts `mcptrail serve --listen 127.0.0.1:0 ARGS...` and returns once
// it printed its listening line. Cleanup stops it with SIGTERM and requires
// exit status 0 and no data race.
func (in *Instance) Serve(t testing.TB, args ...string) *Daemon {
	t.Helper()
	cmd := exec.Command(binary(t, "mcptrail"), append([]string{"serve", "--listen", "127.0.0.1:0"}, args...)...)
	cmd.Env = in.Env()
	d := &Daemon{Proc: startProc(t, "mcptrail serve", cmd)}
	d.URL = testkit.WaitListening(t, d.Proc, startTimeout)
	if n := len(testkit.ListeningRE.FindAllString(d.Stderr.String(), -1)); n != 1 {
		t.Errorf("mcptrail serve printed the listening line %d times, want exactly once", n)
	}
	t.Cleanup(func() {
		select {
		case <-d.Exited():
		default:
			d.Stop(t)
		}
		checkNoRace(t, "mcptrail serve", d.Stderr.String())
	})
	return d
}

// Endpoint is the gateway URL of the named upstream.
func (d *Daemon) Endpoint(upstream string) string { return d.URL + "/mcp/" + upstream }

// ---------------------------------------------------------------------------
// mcptrail wrap.

// WrapOptions are `mcptrail wrap` flags; empty ones are left out.
type WrapOptions struct {
	Name, Agent, Task string
}

func (o WrapOptions) args() []string {
	var args []string
	if o.Name != "" {
		args = append(args, "--name", o.Name)
	}
	if o.Agent != "" {
		args = append(args, "--agent", o.Agent)
	}
	if o.Task != "" {
		args = append(args, "--task", o.Task)
	}
	return args
}

// WrapCommand is the command `mcptrail wrap [flags] -- server...` in this
// instance, with its stderr captured (wrap passes the server's stderr on).
// The returned buffer has the stderr; a failing test logs it.
func (in *Instance) WrapCommand(t testing.TB, opts WrapOptions, server ...string) (*exec.Cmd, *testkit.LogBuf) {
	t.Helper()
	args := append([]string{"wrap"}, opts.args()...)
	args = append(args, "--")
	args = append(args, server...)
	cmd := exec.Command(binary(t, "mcptrail"), args...)
	cmd.Env = in.Env()
	stderr := &testkit.LogBuf{}
	cmd.Stderr = stderr
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("mcptrail wrap stderr:\n%s", stderr.String())
		}
		checkNoRace(t, "mcptrail wrap", stderr.String())
	})
	return cmd, stderr
}

// Wrap is an MCP client transport that runs `mcptrail wrap -- server...`.
func (in *Instance) Wrap(t testing.TB, opts WrapOptions, server ...string) (*mcp.CommandTransport, *testkit.LogBuf) {
	t.Helper()
	cmd, stderr := in.WrapCommand(t, opts, server...)
	return &mcp.CommandTransport{Command: cmd}, stderr
}

// ---------------------------------------------------------------------------
// MCP clients.

// connect connects client over transport and closes the session at cleanup.
func connect(t testing.TB, ctx context.Context, client *mcp.Client, transport mcp.Transport, opts *mcp.ClientSessionOptions) *mcp.ClientSession {
	t.Helper()
	cs, err := client.Connect(ctx, transport, opts)
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	t.Cleanup(func() { cs.Close() })
	return cs
}

// commandExitCode is the exit status in an error from cmd.Wait (0 for nil,
// -1 when the error is not an exit status).
func commandExitCode(err error) int {
	if err == nil {
		return 0
	}
	var exitErr *exec.ExitError
	if errors.As(err, &exitErr) {
		return exitErr.ExitCode()
	}
	return -1
}

// ---------------------------------------------------------------------------
// HTTP servers.

// startHTTPEverything starts the conformance everything-server (with extra
// flags args) on Streamable HTTP and returns its MCP endpoint once it
// accepts connections.
func startHTTPEverything(t testing.TB, args ...string) string {
	t.Helper()
	return testkit.StartHTTPEverything(t, binary(t, "everything-server"), startTimeout, testkit.ProcOptions{StopTimeout: stopTimeout}, args...)
}

// ---------------------------------------------------------------------------
// Raw stdio peers: bytes the SDK would never send.

// RawConn talks newline-delimited JSON-RPC to a stdio process directly.
type RawConn struct {
	*Proc
	stdin io.WriteCloser
	msgs  chan json.RawMessage // each stdout line
	bad   chan string          // stdout lines that are not JSON
}

// startRaw starts cmd with pipes on stdin/stdout for raw JSON-RPC.
func startRaw(t testing.TB, name string, cmd *exec.Cmd) *RawConn {
	t.Helper()
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	pr, pw := io.Pipe()
	cmd.Stdout = pw
	p := startProc(t, name, cmd)
	r := &RawConn{Proc: p, stdin: stdin, msgs: make(chan json.RawMessage, 1024), bad: make(chan string, 16)}
	go func() {
		<-p.Exited()
		pw.Close()
	}()
	go func() {
		sc := bufio.NewScanner(pr)
		sc.Buffer(make([]byte, 0, 64<<10), 64<<20)
		for sc.Scan() {
			line := slices.Clone(sc.Bytes())
			if !json.Valid(line) {
				r.bad <- string(line)
				continue
			}
			r.msgs <- line
		}
		close(r.msgs)
	}()
	t.Cleanup(func() { stdin.Close() })
	return r
}

// Send writes one line (a newline is appended).
func (r *RawConn) Send(t testing.TB, line string) {
	t.Helper()
	if _, err := io.WriteString(r.stdin, line+"\n"); err != nil {
		t.Fatalf("write to %s: %v", r.Name, err)
	}
}

// CloseStdin closes the process's stdin (the stdio way to end a session).
func (r *RawConn) CloseStdin() { r.stdin.Close() }

// RawMessage is a decoded JSON-RPC message.
type RawMessage struct {
	ID     json.RawMessage `json:"id,omitempty"`
	Method string          `json:"method,omitempty"`
	Params json.RawMessage `json:"params,omitempty"`
	Result json.RawMessage `json:"result,omitempty"`
	Error  *struct {
		Code    int             `json:"code"`
		Message string          `json:"message"`
		Data    json.RawMessage `json:"data,omitempty"`
	} `json:"error,omitempty"`
}

// Recv returns the next message the process wrote, failing t on timeout,
// EOF, or a stdout line that is not JSON.
func (r *RawConn) Recv(t testing.TB, timeout time.Duration) RawMessage {
	t.Helper()
	select {
	case line, ok := <-r.msgs:
		if !ok {
			t.Fatalf("%s closed stdout (exited: %v)", r.Name, r.WaitErr())
		}
		var m RawMessage
		if err := json.Unmarshal(line, &m); err != nil {
			t.Fatalf("%s wrote %s: %v", r.Name, line, err)
		}
		return m
	case bad := <-r.bad:
		t.Fatalf("%s wrote a stdout line that is not JSON: %q", r.Name, bad)
	case <-time.After(timeout):
		t.Fatalf("%s wrote nothing within %v", r.Name, timeout)
	}
	panic("unreachable")
}

// RecvResponse returns the next response whose id is id (JSON text, e.g. `7`
// or `null`), skipping notifications and other messages.
func (r *RawConn) RecvResponse(t testing.TB, id string, timeout time.Duration) RawMessage {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		m := r.Recv(t, time.Until(deadline))
		if m.Method == "" && string(m.ID) == id {
			return m
		}
		if m.Method == "" && m.ID == nil && id == "null" && m.Error != nil {
			return m // an error response with the id member left out
		}
	}
}

// Call sends a request with a numeric id and returns its response.
func (r *RawConn) Call(t testing.TB, id int, method string, params any) RawMessage {
	t.Helper()
	p, err := json.Marshal(params)
	if err != nil {
		t.Fatal(err)
	}
	r.Send(t, fmt.Sprintf(`{"jsonrpc":"2.0","id":%d,"method":%q,"params":%s}`, id, method, p))
	return r.RecvResponse(t, strconv.Itoa(id), 30*time.Second)
}

// rawInitialize performs the legacy (2025-11-25) handshake on r.
func rawInitialize(t testing.TB, r *RawConn, clientName string) RawMessage {
	t.Helper()
	resp := r.Call(t, 1, "initialize", map[string]any{
		"protocolVersion": "2025-11-25",
		"capabilities":    map[string]any{},
		"clientInfo":      map[string]any{"name": clientName, "version": "0.0.1"},
	})
	if resp.Error != nil || resp.Result == nil {
		t.Fatalf("initialize: %+v", resp)
	}
	r.Send(t, `{"jsonrpc":"2.0","method":"notifications/initialized"}`)
	return resp
}

// requireTool skips a test whose outside tool is missing on a developer's
// machine, but fails it in CI (CI=true), where .ci/run installs it: a test
// skipped there would count as passing without having run.
func requireTool(t testing.TB, name, pkg string) {
	t.Helper()
	if _, err := exec.LookPath(name); err != nil {
		msg := name + " is not installed (apt-get install " + pkg + "; .ci/run does)"
		if os.Getenv("CI") != "" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
}
