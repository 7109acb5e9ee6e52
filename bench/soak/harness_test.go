package soak

// The harness of the soak test: building the programs, one mcptrail
// instance (data and config directories of its own), running its CLI,
// starting `mcptrail serve`, and reading a process's figures from /proc
// and the daemon's Prometheus endpoint. Nothing here sleeps to
// synchronize: it reads the lines processes print, or polls a condition
// until a deadline.

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

const (
	startTimeout = 90 * time.Second // a cold start under -race on 2 cores is slow
	stopTimeout  = 30 * time.Second
)

// commandTimeout bounds a one-shot CLI command (export of a soak's record
// under -race is the slowest); the long form raises it.
var commandTimeout = 2 * time.Minute

// ---------------------------------------------------------------------------
// Programs.

var (
	buildOnce sync.Once
	buildErr  error
	binDir    string
	repoRoot  string
)

// buildAll builds mcptrail and the go-sdk's conformance everything-server,
// once per test binary. mcptrail is built without -race even when the test
// runs with it: the soak measures the daemon's memory, and the race
// runtime's own memory (shadow memory, metadata of sync objects) grows with
// the process's history whether or not the daemon leaks — under -race the
// daemon's anonymous RSS climbs by ~0.3 MiB/s at this load while its Go heap
// and goroutines stay flat. Data races under traffic are e2e's to catch (it
// builds a race-enabled daemon); the soak measures the build that ships.
func buildAll(t testing.TB) {
	t.Helper()
	buildOnce.Do(func() {
		wd, err := os.Getwd()
		if err != nil {
			buildErr = err
			return
		}
		repoRoot = filepath.Dir(filepath.Dir(wd)) // bench/soak → the repository
		if _, err := os.Stat(filepath.Join(repoRoot, "go.mod")); err != nil {
			buildErr = fmt.Errorf("expected the repository root two levels above %s: %v", wd, err)
			return
		}
		binDir, err = os.MkdirTemp("", "mcptrail-soak-bin-")
		if err != nil {
			buildErr = err
			return
		}
		progs := []struct {
			name string
			args []string
		}{
			{"mcptrail", []string{"."}},
			{"everything-server", []string{"github.com/modelcontextprotocol/go-sdk/conformance/everything-server"}},
		}
		for _, p := range progs {
			if prebuilt := os.Getenv("MCPTRAIL_SOAK_BIN"); p.name == "mcptrail" && prebuilt != "" {
				// Soak a binary built elsewhere (a release build, or one
				// with a leak put in on purpose to see the soak catch it).
				data, err := os.ReadFile(prebuilt)
				if err == nil {
					err = os.WriteFile(filepath.Join(binDir, p.name), data, 0o755)
				}
				if err != nil {
					buildErr = fmt.Errorf("MCPTRAIL_SOAK_BIN: %v", err)
					return
				}
				continue
			}
			args := append([]string{"build", "-o", filepath.Join(binDir, p.name)}, p.args...)
			cmd := exec.Command("go", args...)
			cmd.Dir = repoRoot
			if out, err := cmd.CombinedOutput(); err != nil {
				buildErr = fmt.Errorf("go %s: %v\n%s", strings.Join(args, " "), err, out)
				return
			}
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
}

func TestMain(m *testing.M) {
	code := m.Run()
	if binDir != "" {
		os.RemoveAll(binDir)
	}
	os.Exit(code)
}

func bin(name string) string { return filepath.Join(binDir, name) }

// nodeServer is the path of an npm MCP server installed under e2e/node.
func nodeServer(t testing.TB, name string) string {
	t.Helper()
	if _, err := exec.LookPath("node"); err != nil {
		t.Fatalf("node is not on PATH (%v): run .ci/run, which installs what the tests need", err)
	}
	p := filepath.Join(repoRoot, "e2e", "node", "node_modules", ".bin", name)
	if _, err := os.Stat(p); err != nil {
		t.Fatalf("%s is not installed (%v): run npm ci --prefix e2e/node", name, err)
	}
	return p
}

// ---------------------------------------------------------------------------
// Waiting.

// pollUntil calls cond every interval until it returns true or timeout passes.
func pollUntil(timeout, interval time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(timeout)
	for {
		if cond() {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(interval) // polling interval, not synchronization
	}
}

// lineLog collects a process's output; waitMatch waits for a pattern in it.
type lineLog struct {
	mu      sync.Mutex
	data    []byte
	changed chan struct{}
}

func newLineLog() *lineLog { return &lineLog{changed: make(chan struct{})} }

func (l *lineLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	l.data = append(l.data, p...)
	close(l.changed)
	l.changed = make(chan struct{})
	l.mu.Unlock()
	return len(p), nil
}

func (l *lineLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return string(l.data)
}

// waitMatch returns re's submatches once the output matches, or an error
// when the process exits first or the timeout passes.
func (l *lineLog) waitMatch(re *regexp.Regexp, exited <-chan struct{}, timeout time.Duration) ([]string, error) {
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		l.mu.Lock()
		m := re.FindStringSubmatch(string(l.data))
		changed := l.changed
		l.mu.Unlock()
		if m != nil {
			return m, nil
		}
		select {
		case <-changed:
		case <-exited:
			if m := re.FindStringSubmatch(l.String()); m != nil {
				return m, nil
			}
			return nil, fmt.Errorf("process exited before printing %q", re)
		case <-deadline.C:
			return nil, fmt.Errorf("no %q within %v", re, timeout)
		}
	}
}

func checkNoRace(t testing.TB, what, output string) {
	t.Helper()
	if i := strings.Index(output, "WARNING: DATA RACE"); i >= 0 {
		t.Errorf("%s reported a data race:\n%s", what, output[i:])
	}
}

// ---------------------------------------------------------------------------
// An instance.

// instance is one separate mcptrail installation.
type instance struct {
	home       string // MCPTRAIL_HOME
	configHome string // XDG_CONFIG_HOME
}

func newInstance(t testing.TB) *instance {
	t.Helper()
	root := t.TempDir() // /tmp/TestSoakNNN/001: short enough for the daemon's unix socket
	in := &instance{home: filepath.Join(root, "h"), configHome: filepath.Join(root, "c")}
	for _, d := range []string{in.home, filepath.Join(in.configHome, "mcptrail")} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	return in
}

// writeConfig writes $XDG_CONFIG_HOME/mcptrail/config.yaml.
func (in *instance) writeConfig(t testing.TB, text string) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(in.configHome, "mcptrail", "config.yaml"), []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
}

// env is the environment of the instance's processes: the test's own minus
// anything pointing mcptrail elsewhere, plus the instance's directories.
func (in *instance) env() []string {
	var env []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(k, "MCPTRAIL_") || k == "XDG_CONFIG_HOME" || k == "XDG_STATE_HOME" {
			continue
		}
		env = append(env, kv)
	}
	return append(env,
		"MCPTRAIL_HOME="+in.home,
		"XDG_CONFIG_HOME="+in.configHome,
		"XDG_STATE_HOME="+filepath.Join(filepath.Dir(in.home), "state"),
	)
}

type result struct {
	stdout, stderr string
	code           int
}

// run runs `mcptrail ARGS...` to completion; it fails t only when the
// command cannot run at all (or outlives commandTimeout).
func (in *instance) run(t testing.TB, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), commandTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin("mcptrail"), args...)
	cmd.Env = in.env()
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	res := result{stdout: stdout.String(), stderr: stderr.String()}
	var exitErr *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &exitErr) && ctx.Err() == nil:
		res.code = exitErr.ExitCode()
	default:
		t.Fatalf("mcptrail %s: %v (stderr: %s)", strings.Join(args, " "), err, res.stderr)
	}
	checkNoRace(t, "mcptrail "+strings.Join(args, " "), res.stderr)
	return res
}

func (in *instance) mustRun(t testing.TB, args ...string) result {
	t.Helper()
	res := in.run(t, args...)
	if res.code != 0 {
		t.Fatalf("mcptrail %s: exit %d\nstdout: %.2000s\nstderr: %s", strings.Join(args, " "), res.code, res.stdout, res.stderr)
	}
	return res
}

// sinkState is one sink in `mcptrail status --json`.
type sinkState struct {
	Name      string `json:"name"`
	URL       string `json:"url"`
	Kind      string `json:"kind"`
	State     string `json:"state"`
	Cursor    uint64 `json:"cursor"`
	Last      uint64 `json:"last"`
	Lag       uint64 `json:"lag"`
	Delivered uint64 `json:"delivered"`
	Failures  uint64 `json:"failures"`
	LastError string `json:"last_error"`
}

// daemonStatus is what the soak reads from `mcptrail status --json`.
type daemonStatus struct {
	Running  bool        `json:"running"`
	PID      int         `json:"pid"`
	Events   uint64      `json:"events"`
	Sessions int         `json:"sessions"`
	Sinks    []sinkState `json:"sinks"`
}

func (in *instance) status(t testing.TB) daemonStatus {
	t.Helper()
	res := in.mustRun(t, "status", "--json")
	var st daemonStatus
	if err := json.Unmarshal([]byte(res.stdout), &st); err != nil {
		t.Fatalf("mcptrail status --json: %v: %q", err, res.stdout)
	}
	return st
}

// ---------------------------------------------------------------------------
// Processes.

// proc is a process started by the test, stopped at cleanup.
type proc struct {
	name    string
	cmd     *exec.Cmd
	stderr  *lineLog
	exited  chan struct{}
	waitErr error
}

func startProc(t testing.TB, name string, cmd *exec.Cmd) *proc {
	t.Helper()
	p := &proc{name: name, cmd: cmd, stderr: newLineLog(), exited: make(chan struct{})}
	cmd.Stderr = p.stderr
	if cmd.Stdout == nil {
		cmd.Stdout = io.Discard
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	go func() {
		p.waitErr = cmd.Wait()
		close(p.exited)
	}()
	t.Cleanup(func() {
		p.terminate()
		if t.Failed() {
			out := p.stderr.String()
			if len(out) > 20000 {
				out = "…" + out[len(out)-20000:]
			}
			t.Logf("%s stderr:\n%s", name, out)
		}
	})
	return p
}

func (p *proc) terminate() {
	select {
	case <-p.exited:
		return
	default:
	}
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.exited:
	case <-time.After(stopTimeout):
		p.cmd.Process.Kill()
		<-p.exited
	}
}

var listeningRE = regexp.MustCompile(`(?m)^mcptrail: gateway listening on (http://127\.0\.0\.1:[0-9]+)$`)

// daemon is `mcptrail serve` in the foreground of the test.
type daemon struct {
	*proc
	url string
}

// serve starts `mcptrail serve --listen 127.0.0.1:0 ARGS...` and returns once
// it printed its listening line.
func (in *instance) serve(t testing.TB, args ...string) *daemon {
	t.Helper()
	cmd := exec.Command(bin("mcptrail"), append([]string{"serve", "--listen", "127.0.0.1:0"}, args...)...)
	cmd.Env = in.env()
	d := &daemon{proc: startProc(t, "mcptrail serve", cmd)}
	m, err := d.stderr.waitMatch(listeningRE, d.exited, startTimeout)
	if err != nil {
		t.Fatalf("mcptrail serve: %v\nstderr:\n%s", err, d.stderr.String())
	}
	d.url = m[1]
	t.Cleanup(func() { checkNoRace(t, "mcptrail serve", d.stderr.String()) })
	return d
}

func (d *daemon) endpoint(upstream string) string { return d.url + "/mcp/" + upstream }

func (d *daemon) pid() int { return d.cmd.Process.Pid }

// startHTTPEverything starts the conformance everything-server on Streamable
// HTTP at a free loopback port and returns its endpoint once it accepts
// connections (it prints its address before it listens, so this polls).
func startHTTPEverything(t testing.TB) string {
	t.Helper()
	addr := freeLoopbackAddr(t)
	p := startProc(t, "everything-server -http", exec.Command(bin("everything-server"), "-http", addr))
	ok := pollUntil(startTimeout, 50*time.Millisecond, func() bool {
		select {
		case <-p.exited:
			return true
		default:
		}
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err != nil {
			return false
		}
		c.Close()
		return true
	})
	select {
	case <-p.exited:
		t.Fatalf("everything-server -http %s exited: %v\n%s", addr, p.waitErr, p.stderr.String())
	default:
	}
	if !ok {
		t.Fatalf("everything-server -http %s: not accepting connections after %v", addr, startTimeout)
	}
	return "http://" + addr + "/mcp"
}

// freeLoopbackAddr returns a loopback address nobody listens on right now,
// for listeners that cannot be told to take port 0 and report it.
func freeLoopbackAddr(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// ---------------------------------------------------------------------------
// Process figures.

// sample is one reading of the daemon's resources.
type sample struct {
	at         time.Duration // since the load started
	vmRSS      int64         // bytes: VmRSS (anonymous + file-backed + shmem)
	rssAnon    int64         // bytes: RssAnon (heap, stacks, runtime)
	rssFile    int64         // bytes: RssFile (mapped files: the bbolt store, the binary)
	fds        int           // entries in /proc/PID/fd
	threads    int           // OS threads
	goroutines int           // go_goroutines from the metrics endpoint
	heapInuse  int64         // go_memstats_heap_inuse_bytes
	heapGoal   int64         // go_memstats_next_gc_bytes: twice the live heap after the last GC (at GOGC=100)
}

// readProc reads a process's memory and descriptor figures from /proc.
func readProc(pid int) (s sample, err error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return s, err
	}
	kb := func(v string) int64 {
		n, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
		return n << 10
	}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		k, v, _ := strings.Cut(sc.Text(), ":")
		switch k {
		case "VmRSS":
			s.vmRSS = kb(v)
		case "RssAnon":
			s.rssAnon = kb(v)
		case "RssFile":
			s.rssFile = kb(v)
		case "Threads":
			s.threads, _ = strconv.Atoi(strings.TrimSpace(v))
		}
	}
	fds, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		return s, err
	}
	s.fds = len(fds)
	return s, nil
}

// scrapeGo reads the Go runtime's figures into s from a Prometheus text
// endpoint: go_goroutines, go_memstats_heap_inuse_bytes and
// go_memstats_next_gc_bytes.
func scrapeGo(client *http.Client, url string, s *sample) error {
	resp, err := client.Get(url)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	found := 0
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		name, val, ok := strings.Cut(sc.Text(), " ")
		if !ok {
			continue
		}
		f, err := strconv.ParseFloat(strings.TrimSpace(val), 64)
		if err != nil {
			continue
		}
		switch name {
		case "go_goroutines":
			s.goroutines = int(f)
			found++
		case "go_memstats_heap_inuse_bytes":
			s.heapInuse = int64(f)
			found++
		case "go_memstats_next_gc_bytes":
			s.heapGoal = int64(f)
			found++
		}
	}
	if err := sc.Err(); err != nil {
		return err
	}
	if found != 3 {
		return fmt.Errorf("GET %s: lacks go_goroutines, go_memstats_heap_inuse_bytes or go_memstats_next_gc_bytes", url)
	}
	return nil
}
