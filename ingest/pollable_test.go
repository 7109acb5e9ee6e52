package ingest

import (
	"io"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"
)

func nonblocking(t *testing.T, fd uintptr) bool {
	t.Helper()
	fl, err := unix.FcntlInt(fd, unix.F_GETFL, 0)
	if err != nil {
		t.Fatal(err)
	}
	return fl&unix.O_NONBLOCK != 0
}

// A blocking pipe, as an MCP client hands wrap its stdin, comes back
// pollable, still carries the bytes, and is blocking again after restore.
func TestPollablePipe(t *testing.T) {
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	fd := r.Fd() // Fd puts a pollable file in blocking mode: as a parent's pipe arrives
	if nonblocking(t, fd) {
		t.Fatal("the pipe is not in blocking mode to begin with")
	}
	pf, restore := Pollable(r)
	if pf == r {
		t.Fatal("Pollable returned the blocking pipe as it is")
	}
	if !nonblocking(t, pf.Fd()) {
		t.Fatal("the file Pollable returned is in blocking mode")
	}
	// A read that waits (nothing written yet) is a parked goroutine, not
	// an EAGAIN error.
	got := make(chan string, 1)
	go func() {
		b := make([]byte, 5)
		_, err := io.ReadFull(pf, b)
		if err != nil {
			got <- err.Error()
			return
		}
		got <- string(b)
	}()
	if _, err := w.Write([]byte("hello")); err != nil {
		t.Fatal(err)
	}
	if s := <-got; s != "hello" {
		t.Fatalf("read %q through the pollable file", s)
	}
	restore()
	if nonblocking(t, fd) {
		t.Error("the descriptor is still non-blocking after restore")
	}
	if _, err := w.Write([]byte("x")); err != nil {
		t.Fatal(err)
	}
	b := make([]byte, 1)
	if _, err := r.Read(b); err != nil || b[0] != 'x' {
		t.Fatalf("the original file after restore: %q, %v", b, err)
	}
}

// A regular file (stdin redirected from one) is left as it is.
func TestPollableLeavesFiles(t *testing.T) {
	f, err := os.Create(filepath.Join(t.TempDir(), "in"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if pf, restore := Pollable(f); pf != f {
		t.Fatal("Pollable replaced a regular file")
	} else {
		restore()
	}
}
