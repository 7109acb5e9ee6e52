package testkit

import (
	"net"
	"os/exec"
	"regexp"
	"syscall"
	"testing"
	"time"
)

// Proc is a process started by a test, stopped at the test's cleanup so
// that no test leaves a daemon or server running behind it.
type Proc struct {
	Name   string
	Cmd    *exec.Cmd
	Stderr *LogBuf
	Stdout *LogBuf // nil when stdout is not captured

	opts    ProcOptions
	exited  chan struct{} // closed when Wait returned
	waitErr error
}

// ProcOptions are what the two harnesses do differently with their
// processes: the soak gives its slower, longer-running daemon more time, and
// keeps a failed run's log to what a reader can use.
type ProcOptions struct {
	// StopTimeout is the time between SIGTERM and SIGKILL.
	StopTimeout time.Duration
	// LogTail, when positive, is how much of the end of the stderr a failed
	// test logs; 0 logs all of it.
	LogTail int
}

// StartProc starts cmd with its stdout captured unless already set, and its
// stderr captured (in cmd.Stderr when that is already a *LogBuf), and
// registers a cleanup that stops it: SIGTERM, then SIGKILL after
// opts.StopTimeout. On failure the test log gets its stderr.
func StartProc(t testing.TB, name string, cmd *exec.Cmd, opts ProcOptions) *Proc {
	t.Helper()
	p := &Proc{Name: name, Cmd: cmd, opts: opts, exited: make(chan struct{})}
	if cmd.Stdout == nil {
		p.Stdout = &LogBuf{}
		cmd.Stdout = p.Stdout
	}
	if lb, ok := cmd.Stderr.(*LogBuf); ok {
		p.Stderr = lb // the caller's capture
	} else {
		p.Stderr = &LogBuf{}
		cmd.Stderr = p.Stderr
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
			out := p.Stderr.String()
			if opts.LogTail > 0 && len(out) > opts.LogTail {
				out = "…" + out[len(out)-opts.LogTail:]
			}
			t.Logf("%s stderr:\n%s", name, out)
		}
	})
	return p
}

// terminate stops the process if it still runs.
func (p *Proc) terminate() {
	select {
	case <-p.exited:
		return
	default:
	}
	p.sigterm()
}

// sigterm sends SIGTERM and waits for the exit, with SIGKILL after the stop
// timeout so that a hung process cannot hang the test; it reports whether it
// came to that.
func (p *Proc) sigterm() (killed bool) {
	p.Cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.exited:
		return false
	case <-time.After(p.opts.StopTimeout):
		p.Cmd.Process.Kill()
		<-p.exited
		return true
	}
}

// Stop sends SIGTERM and requires a clean exit (status 0) within the stop
// timeout: how a daemon must behave when its service manager stops it.
func (p *Proc) Stop(t testing.TB) {
	t.Helper()
	select {
	case <-p.exited:
		t.Fatalf("%s exited before it was stopped: %v\nstderr:\n%s", p.Name, p.waitErr, p.Stderr.String())
	default:
	}
	if p.sigterm() {
		t.Fatalf("%s did not exit within %v of SIGTERM", p.Name, p.opts.StopTimeout)
	}
	if p.waitErr != nil {
		t.Errorf("%s exited with %v after SIGTERM, want status 0\nstderr:\n%s", p.Name, p.waitErr, p.Stderr.String())
	}
}

// Exited is closed when the process has exited, so a test can select on it
// next to what it waits for.
func (p *Proc) Exited() <-chan struct{} { return p.exited }

// WaitErr is what Wait returned; read it only once Exited is closed.
func (p *Proc) WaitErr() error { return p.waitErr }

// ListeningRE matches the line `mcptrail serve` prints once it accepts
// connections, with its URL as the submatch: the harnesses wait for it
// instead of polling the port, which serve picks itself.
var ListeningRE = regexp.MustCompile(`(?m)^mcptrail: gateway listening on (http://127\.0\.0\.1:[0-9]+)$`)

// WaitListening waits for p (a `mcptrail serve`) to print its listening
// line and returns its URL, failing t when it exits or times out first.
func WaitListening(t testing.TB, p *Proc, timeout time.Duration) string {
	t.Helper()
	m, err := p.Stderr.WaitMatch(ListeningRE, p.exited, timeout)
	if err != nil {
		t.Fatalf("%s: %v\nstderr:\n%s", p.Name, err, p.Stderr.String())
	}
	return m[1]
}

// StartHTTPEverything starts the go-sdk conformance everything-server (the
// binary bin, with extra flags args) on Streamable HTTP at a free loopback
// port and returns its MCP endpoint once it accepts connections. It prints
// its address before it listens, so this polls the port instead of reading
// that line.
func StartHTTPEverything(t testing.TB, bin string, startTimeout time.Duration, opts ProcOptions, args ...string) string {
	t.Helper()
	addr := FreeLoopbackAddr(t)
	cmd := exec.Command(bin, append([]string{"-http", addr}, args...)...)
	p := StartProc(t, "everything-server -http", cmd, opts)
	ok := PollUntil(startTimeout, 50*time.Millisecond, func() bool {
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
		t.Fatalf("everything-server -http %s exited: %v\n%s", addr, p.waitErr, p.Stderr.String())
	default:
	}
	if !ok {
		t.Fatalf("everything-server -http %s: not accepting connections after %v", addr, startTimeout)
	}
	return "http://" + addr + "/mcp"
}
