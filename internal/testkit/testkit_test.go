package testkit

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

func TestLogBufWaitMatch(t *testing.T) {
	var b LogBuf
	re := regexp.MustCompile(`ready on (\d+)`)
	go func() {
		b.Write([]byte("starting\n"))
		b.Write([]byte("ready on 42\n"))
	}()
	m, err := b.WaitMatch(re, nil, 10*time.Second)
	if err != nil || m[1] != "42" {
		t.Fatalf("WaitMatch = %q, %v", m, err)
	}

	exited := make(chan struct{})
	close(exited)
	if _, err := (&LogBuf{}).WaitMatch(re, exited, 10*time.Second); err == nil || !strings.Contains(err.Error(), "exited") {
		t.Errorf("after exit without the line: %v, want an error that says it exited", err)
	}
	if _, err := (&LogBuf{}).WaitMatch(re, nil, 10*time.Millisecond); err == nil || !strings.Contains(err.Error(), "within") {
		t.Errorf("on timeout: %v, want an error that says so", err)
	}
}

func TestTreeDiff(t *testing.T) {
	root := t.TempDir()
	if err := os.WriteFile(filepath.Join(root, "a"), []byte("one"), 0o600); err != nil {
		t.Fatal(err)
	}
	before := Tree(t, root)
	if d := DiffTrees(before, Tree(t, root)); d != "" {
		t.Errorf("same tree: diff %q", d)
	}
	os.WriteFile(filepath.Join(root, "a"), []byte("two"), 0o600)
	os.WriteFile(filepath.Join(root, "b"), nil, 0o600)
	d := DiffTrees(before, Tree(t, root))
	if !strings.Contains(d, `a: want file -rw------- "one", got file -rw------- "two"`) || !strings.Contains(d, "b: unexpected") {
		t.Errorf("diff:\n%s", d)
	}
}
