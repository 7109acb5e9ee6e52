package ingest

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"sync"
	"syscall"
	"time"
)

// ChildOptions describe an MCP server process spoken to over stdio.
type ChildOptions struct {
	Command         []string
	Env             []string // added to the gateway's environment
	Dir             string
	Stderr          io.Writer // the child's stderr, passed through (nil: discarded)
	MaxMessageBytes int
	// GracePeriod is how long Close waits after closing stdin before SIGTERM,
	// and after SIGTERM before SIGKILL (MCP's stdio shutdown sequence).
	GracePeriod time.Duration
}

// Child is a running stdio MCP server.
type Child struct {
	cmd      *exec.Cmd
	stdin    io.WriteCloser
	stdout   *LineReader
	msgs     chan []byte // StartChild's; nil for a child that serve relays from
	done     chan struct{}
	grace    time.Duration
	writeMu  sync.Mutex
	closeOne sync.Once
	exitCode int
	waitErr  error
}

// StartChild starts the server and begins reading its stdout into Messages.
func StartChild(opts ChildOptions) (*Child, error) {
	c, err := startChild(opts)
	if err != nil {
		return nil, err
	}
	c.msgs = make(chan []byte, 64)
	go c.serve(func(line []byte) { c.msgs <- line }, func() { close(c.msgs) })
	return c, nil
}

// startChild starts the server but leaves its stdout unread until serve.
func startChild(opts ChildOptions) (*Child, error) {
	if len(opts.Command) == 0 {
		return nil, errors.New("no command to run")
	}
	cmd := exec.Command(opts.Command[0], opts.Command[1:]...)
	cmd.Env = append(os.Environ(), opts.Env...)
	cmd.Dir = opts.Dir
	cmd.Stderr = opts.Stderr
	// Its own process group, so a terminal's Ctrl-C reaches the gateway, which
	// then shuts the child down in order, rather than both at once.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting %s: %w", opts.Command[0], err)
	}
	grace := opts.GracePeriod
	if grace <= 0 {
		grace = 2 * time.Second
	}
	return &Child{cmd: cmd, stdin: stdin, stdout: NewLineReader(stdout, opts.MaxMessageBytes),
		done: make(chan struct{}), grace: grace}, nil
}

// serve reads stdout until it ends, calling each with a copy of every line
// (the caller may keep it), then eof, then reaps the process. It must run
// exactly once, on its own goroutine, or Close and Done never return.
//
// The stdio gateway relays from inside each: a hand-off to another
// goroutine per response cost a scheduler wake-up on the call's path.
func (c *Child) serve(each func(line []byte), eof func()) {
	for {
		line, err := c.stdout.Next()
		if err != nil {
			break
		}
		each(append([]byte(nil), line...))
	}
	eof()
	err := c.cmd.Wait()
	c.waitErr = err
	c.exitCode = c.cmd.ProcessState.ExitCode()
	if c.exitCode < 0 { // killed by a signal: report it the way a shell does
		if ws, ok := c.cmd.ProcessState.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			c.exitCode = 128 + int(ws.Signal())
		}
	}
	close(c.done)
}

// Send writes one message and its newline. Safe for concurrent use.
func (c *Child) Send(msg []byte) error {
	c.writeMu.Lock()
	defer c.writeMu.Unlock()
	buf := make([]byte, 0, len(msg)+1)
	buf = append(append(buf, msg...), '\n')
	_, err := c.stdin.Write(buf)
	return err
}

// Messages delivers each line the server writes to stdout; it is closed when
// stdout ends. The consumer must keep reading it until then.
func (c *Child) Messages() <-chan []byte { return c.msgs }

// Done is closed once the process has exited and its output is drained.
func (c *Child) Done() <-chan struct{} { return c.done }

// ExitCode is the process's exit status (128+signal when killed); valid after Done.
func (c *Child) ExitCode() int { return c.exitCode }

// Pid is the child's process id.
func (c *Child) Pid() int { return c.cmd.Process.Pid }

// Close shuts the server down the way MCP's stdio transport says: close its
// stdin, then SIGTERM, then SIGKILL, each after the grace period. It returns
// once the process has exited.
func (c *Child) Close() error {
	c.closeOne.Do(func() {
		c.writeMu.Lock()
		c.stdin.Close()
		c.writeMu.Unlock()
	})
	select {
	case <-c.done:
		return nil
	case <-time.After(c.grace):
	}
	_ = c.signal(syscall.SIGTERM)
	select {
	case <-c.done:
		return nil
	case <-time.After(c.grace):
	}
	_ = c.signal(syscall.SIGKILL)
	<-c.done
	return nil
}

// signal reaches the whole process group: servers started through a shell
// or npx leave the real server as a grandchild.
func (c *Child) signal(sig syscall.Signal) error {
	if err := syscall.Kill(-c.cmd.Process.Pid, sig); err != nil {
		return c.cmd.Process.Signal(sig)
	}
	return nil
}
