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
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mcptrail/mcptrail/internal/testkit"
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
		var err error
		if repoRoot, err = testkit.RepoRoot(); err != nil {
			buildErr = err
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
			if buildErr = testkit.GoBuild(repoRoot, filepath.Join(binDir, p.name), p.args...); buildErr != nil {
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
	return testkit.NodeServer(t, repoRoot, name)
}

// procOptions: the soak's daemon is slow to stop under -race after minutes
// of load, and its stderr is long.
var procOptions = testkit.ProcOptions{StopTimeout: stopTimeout, LogTail: 20000}

// pollUntil calls cond every interval until it returns true or timeout passes.
var pollUntil = testkit.PollUntil

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
func (in *instance) env() []string { return testkit.Env(in.home, in.configHome, "") }

// run runs `mcptrail ARGS...` to completion; it fails t only when the
// command cannot run at all (or outlives commandTimeout).
func (in *instance) run(t testing.TB, args ...string) testkit.Result {
	t.Helper()
	return testkit.RunCLI(t, commandTimeout, bin("mcptrail"), in.env(), args...)
}

func (in *instance) mustRun(t testing.TB, args ...string) testkit.Result {
	t.Helper()
	res := in.run(t, args...)
	if res.Code != 0 {
		t.Fatalf("mcptrail %s: exit %d\nstdout: %.2000s\nstderr: %s", strings.Join(args, " "), res.Code, res.Stdout, res.Stderr)
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
	if err := json.Unmarshal([]byte(res.Stdout), &st); err != nil {
		t.Fatalf("mcptrail status --json: %v: %q", err, res.Stdout)
	}
	return st
}

// ---------------------------------------------------------------------------
// Processes.

// daemon is `mcptrail serve` in the foreground of the test.
type daemon struct {
	*testkit.Proc
	url string
}

// serve starts `mcptrail serve --listen 127.0.0.1:0 ARGS...` and returns once
// it printed its listening line.
func (in *instance) serve(t testing.TB, args ...string) *daemon {
	t.Helper()
	cmd := exec.Command(bin("mcptrail"), append([]string{"serve", "--listen", "127.0.0.1:0"}, args...)...)
	cmd.Env = in.env()
	cmd.Stdout = io.Discard
	d := &daemon{Proc: testkit.StartProc(t, "mcptrail serve", cmd, procOptions)}
	d.url = testkit.WaitListening(t, d.Proc, startTimeout)
	t.Cleanup(func() { testkit.CheckNoRace(t, "mcptrail serve", d.Stderr.String()) })
	return d
}

func (d *daemon) endpoint(upstream string) string { return d.url + "/mcp/" + upstream }

func (d *daemon) pid() int { return d.Cmd.Process.Pid }

// startHTTPEverything starts the conformance everything-server on Streamable
// HTTP and returns its endpoint once it accepts connections.
func startHTTPEverything(t testing.TB) string {
	t.Helper()
	return testkit.StartHTTPEverything(t, bin("everything-server"), startTimeout, procOptions)
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
