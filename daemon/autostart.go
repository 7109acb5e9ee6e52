package daemon

import (
	"errors"
	"fmt"
	"github.com/mcptrail/mcptrail/internal/safefile"
	"io"
	"os"
	"os/exec"
	"syscall"
	"time"
)

// Ensure returns a client of the instance's daemon, starting one in the
// background first if none is running (as tmux starts its server), and says
// so on notice.
func Ensure(home string, notice io.Writer) (*Client, error) {
	c, err := Dial(home)
	if err == nil || !errors.Is(err, ErrNotRunning) {
		return c, err
	}
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	paths := PathsFor(home)
	if err := safefile.Dir(home); err != nil {
		return nil, err
	}
	logf, err := safefile.OpenFile(paths.Log, os.O_CREATE|os.O_WRONLY|os.O_APPEND)
	if err != nil {
		return nil, err
	}
	defer logf.Close()
	cmd := exec.Command(exe, "serve", "--auto")
	cmd.Env = append(os.Environ(), "MCPTRAIL_HOME="+home)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true} // outlives the wrap that started it
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting the daemon: %w", err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	// Wait for the socket to answer, or for the daemon to fail (another wrap
	// may have won the race to start one: then its socket answers).
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		if c, err := Dial(home); err == nil {
			fmt.Fprintf(notice, "mcptrail: started the daemon in the background (pid %d, log %s)\n", cmd.Process.Pid, paths.Log)
			return c, nil
		}
		select {
		case err := <-exited:
			if c, derr := Dial(home); derr == nil {
				return c, nil
			}
			return nil, fmt.Errorf("the daemon exited at start (%v); see %s", err, paths.Log)
		case <-time.After(20 * time.Millisecond):
		}
	}
	return nil, fmt.Errorf("the daemon did not answer within 15s; see %s", paths.Log)
}

// WaitStopped returns once the daemon of home has exited and released the
// store (it removes its pid file last).
func WaitStopped(home string) error {
	pidFile := PathsFor(home).PID
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if _, err := os.Stat(pidFile); errors.Is(err, os.ErrNotExist) {
			return nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	return fmt.Errorf("the daemon did not stop within 30s")
}
