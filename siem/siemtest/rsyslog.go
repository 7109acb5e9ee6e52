package siemtest

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

// Rsyslog is a real rsyslogd (the Debian package) with a private config:
// it listens on a loopback TCP port (octet-counted framing, as imtcp
// accepts by default) and writes each message's raw text, one per line,
// to a file. Tests start and stop it themselves; .ci/run installs the
// package. Without rsyslogd on PATH the test is skipped.
type Rsyslog struct {
	t    testing.TB
	dir  string
	conf string
	port int
	cmd  *exec.Cmd
	done chan struct{}
}

// StartRsyslog starts rsyslogd on a free loopback port and stops it at
// cleanup.
func StartRsyslog(t testing.TB) *Rsyslog {
	t.Helper()
	if _, err := exec.LookPath("rsyslogd"); err != nil {
		// In CI (.ci/run installs it) a skip would count as a pass.
		if os.Getenv("CI") != "" {
			t.Fatal("rsyslogd is not installed (apt-get install rsyslog; .ci/run does)")
		}
		t.Skip("rsyslogd is not installed (apt-get install rsyslog; .ci/run does)")
	}
	// A free loopback port, by number (a race with another process taking
	// it in between would fail the start loudly, not silently).
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	dir, err := os.MkdirTemp("", "rsyslog-")
	if err != nil {
		t.Fatal(err)
	}
	r := &Rsyslog{t: t, dir: dir, port: port, conf: filepath.Join(dir, "rsyslog.conf")}
	conf := fmt.Sprintf(`global(workDirectory=%q maxMessageSize="256k")
module(load="imtcp" MaxSessions="16")
template(name="raw" type="string" string="%%rawmsg%%\n")
input(type="imtcp" port="%d" address="127.0.0.1")
action(type="omfile" file=%q template="raw")
`, dir, port, filepath.Join(dir, "messages.log"))
	if err := os.WriteFile(r.conf, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	r.Start()
	t.Cleanup(func() {
		r.Stop()
		if t.Failed() {
			out, _ := os.ReadFile(filepath.Join(dir, "rsyslogd.out"))
			t.Logf("rsyslogd output:\n%s", out)
		}
		os.RemoveAll(dir)
	})
	return r
}

// Addr is rsyslog's host:port.
func (r *Rsyslog) Addr() string { return fmt.Sprintf("127.0.0.1:%d", r.port) }

// Start starts rsyslogd (again) and returns once it accepts connections.
func (r *Rsyslog) Start() {
	r.t.Helper()
	cmd := exec.Command("rsyslogd", "-n", "-f", r.conf, "-i", filepath.Join(r.dir, "rsyslogd.pid"))
	out, err := os.OpenFile(filepath.Join(r.dir, "rsyslogd.out"), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		r.t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		r.t.Fatal(err)
	}
	r.cmd, r.done = cmd, make(chan struct{})
	done := r.done
	go func() { cmd.Wait(); out.Close(); close(done) }()
	deadline := time.Now().Add(30 * time.Second)
	for {
		if c, err := net.DialTimeout("tcp", r.Addr(), time.Second); err == nil {
			c.Close()
			return
		}
		select {
		case <-done:
			log, _ := os.ReadFile(filepath.Join(r.dir, "rsyslogd.out"))
			r.t.Fatalf("rsyslogd exited: %s", log)
		default:
		}
		if time.Now().After(deadline) {
			r.t.Fatal("rsyslogd did not listen within 30s")
		}
		time.Sleep(20 * time.Millisecond) // polling interval
	}
}

// Stop stops rsyslogd cleanly (SIGTERM: it closes its inputs and writes
// out what it has queued) and waits for it to exit.
func (r *Rsyslog) Stop() {
	if r.cmd == nil {
		return
	}
	r.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-r.done:
	case <-time.After(20 * time.Second):
		r.cmd.Process.Kill()
		<-r.done
	}
	r.cmd = nil
}

// Messages returns the raw messages received so far, in arrival order.
func (r *Rsyslog) Messages() []string {
	data, err := os.ReadFile(filepath.Join(r.dir, "messages.log"))
	if err != nil {
		return nil
	}
	s := strings.TrimSuffix(string(data), "\n")
	if s == "" {
		return nil
	}
	return strings.Split(s, "\n")
}

// CheckAtLeastOnceInOrder checks a stream of seqs as a forwarder must
// deliver them: every seq 1..n arrives, first arrivals in order, and a
// repeat only ever restarts from an earlier point (a replay after a
// failure), never skips ahead.
func CheckAtLeastOnceInOrder(t testing.TB, got []uint64, n uint64) {
	t.Helper()
	var next uint64 = 1 // the lowest seq not yet seen
	var prev uint64
	for i, s := range got {
		switch {
		case s == prev+1 || (i == 0 && s == 1):
		case s <= prev: // a replay
		default:
			t.Fatalf("event %d arrived after %d: skipped %d..%d", s, prev, prev+1, s-1)
		}
		if s == next {
			next++
		} else if s > next {
			t.Fatalf("event %d arrived before %d", s, next)
		}
		prev = s
	}
	if next != n+1 {
		t.Fatalf("received up to %d of %d events", next-1, n)
	}
}
