// Package testkit holds helpers shared by test packages, which cannot share
// test files: the end-to-end tests (e2e), the soak test (bench/soak), and
// the unit tests that run a test server of their own.
//
// Nothing here sleeps to synchronize: the helpers read the lines processes
// print, or poll a condition until a deadline.
package testkit

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// RepoRoot finds the repository root (the folder with go.mod) above the
// working directory, so a test package can build the programs it runs
// wherever it sits in the tree.
func RepoRoot() (string, error) {
	wd, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for dir := wd; ; dir = filepath.Dir(dir) {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		if filepath.Dir(dir) == dir {
			return "", fmt.Errorf("no go.mod in %s or above it", wd)
		}
	}
}

// GoBuild runs `go build -o out ARGS...` in the repository root; the error
// carries the compiler's output, which is what a failing test must show.
func GoBuild(repoRoot, out string, args ...string) error {
	cmdArgs := append([]string{"build", "-o", out}, args...)
	cmd := exec.Command("go", cmdArgs...)
	cmd.Dir = repoRoot
	if output, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go %s (in %s): %v\n%s", strings.Join(cmdArgs, " "), repoRoot, err, output)
	}
	return nil
}

// MainWithPrograms is the TestMain of a package whose tests run programs of
// their own: it builds each package (a path relative to the test's folder)
// into a temporary folder, sets *path to the binary, runs the tests, and
// exits with their status.
func MainWithPrograms(m *testing.M, programs map[string]*string) {
	dir, err := os.MkdirTemp("", "mcptrail-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	for pkg, path := range programs {
		*path = filepath.Join(dir, filepath.Base(pkg))
		if err := GoBuild(".", *path, pkg); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.RemoveAll(dir)
			os.Exit(1)
		}
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// FreeLoopbackAddr returns a 127.0.0.1 port nobody listens on right now, for
// servers that cannot be told to take port 0 and report it.
func FreeLoopbackAddr(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// PollUntil calls cond every interval until it returns true or timeout
// passes, for conditions nothing announces (a port that starts accepting, a
// process that goes away, a record that catches up).
func PollUntil(timeout, interval time.Duration, cond func() bool) bool {
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

// CheckNoRace fails t when a race-enabled binary reported a data race in
// output: the race detector only prints, and the process may still exit 0.
func CheckNoRace(t testing.TB, what, output string) {
	t.Helper()
	if i := strings.Index(output, "WARNING: DATA RACE"); i >= 0 {
		t.Errorf("%s reported a data race:\n%s", what, output[i:])
	}
}

// NodeServer returns the bin script of an npm-installed MCP server (pinned
// in e2e/node/package-lock.json). When the servers are not installed yet it
// installs them, once, with `npm ci --prefix e2e/node`, so `go test ./...`
// passes on a machine with only Go and Node: go test runs test packages in
// parallel processes, so the install happens under a file lock, and a
// process that waited on the lock finds the servers in place. Where node or
// npm is missing the test skips with what to install, except in CI
// (CI=true), where .ci/run installs them and a skip would count as a pass.
func NodeServer(t testing.TB, repoRoot, name string) string {
	t.Helper()
	for _, tool := range []string{"node", "npm"} {
		if _, err := exec.LookPath(tool); err != nil {
			msg := tool + " is not on PATH: install Node.js 20 or newer with npm (.ci/run does) to run the tests that use the npm MCP servers"
			if os.Getenv("CI") != "" {
				t.Fatal(msg)
			}
			t.Skip(msg)
		}
	}
	dir := filepath.Join(repoRoot, "e2e", "node")
	p := filepath.Join(dir, "node_modules", ".bin", name)
	if err := installNodeServers(dir); err != nil {
		t.Fatalf("installing the npm MCP servers: %v", err)
	}
	if _, err := os.Stat(p); err != nil {
		t.Fatalf("%s is not in e2e/node/package-lock.json (%v)", name, err)
	}
	return p
}

// installNodeServers runs `npm ci` in dir under an exclusive lock on a file
// in it, unless the servers are installed already (perhaps by a process this
// one waited for). The mark of a finished install is npm's own record of it,
// node_modules/.package-lock.json, which npm writes last: a bin script alone
// may be one of a half-done install in another process.
func installNodeServers(dir string) error {
	done := filepath.Join(dir, "node_modules", ".package-lock.json")
	if _, err := os.Stat(done); err == nil {
		return nil
	}
	lock, err := os.OpenFile(filepath.Join(dir, ".install.lock"), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return err
	}
	defer lock.Close()
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		return fmt.Errorf("locking %s: %w", lock.Name(), err)
	}
	defer syscall.Flock(int(lock.Fd()), syscall.LOCK_UN)
	if _, err := os.Stat(done); err == nil {
		return nil
	}
	cmd := exec.Command("npm", "ci", "--prefix", dir, "--no-audit", "--no-fund")
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("npm ci --prefix %s: %v\n%s", dir, err, out)
	}
	return nil
}
