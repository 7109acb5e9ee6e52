package testkit

import (
	"fmt"
	"regexp"
	"sync"
	"time"
)

// LogBuf collects a process's output and lets a test wait for a pattern in
// it, instead of sleeping until the process has probably said it. It is safe
// for concurrent use; the zero value is ready.
type LogBuf struct {
	mu      sync.Mutex
	data    []byte
	changed chan struct{} // closed and replaced on every write
}

func (b *LogBuf) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.data = append(b.data, p...)
	if b.changed != nil {
		close(b.changed)
	}
	b.changed = make(chan struct{})
	return len(p), nil
}

func (b *LogBuf) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return string(b.data)
}

// WaitMatch waits until re matches the output, the process exits (exited is
// closed; its output is complete once Wait returned, so it is matched once
// more), or the timeout passes; it returns the submatches. A nil exited
// never closes.
func (b *LogBuf) WaitMatch(re *regexp.Regexp, exited <-chan struct{}, timeout time.Duration) ([]string, error) {
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		b.mu.Lock()
		m := re.FindStringSubmatch(string(b.data))
		if b.changed == nil {
			b.changed = make(chan struct{})
		}
		changed := b.changed
		b.mu.Unlock()
		if m != nil {
			return m, nil
		}
		select {
		case <-changed:
		case <-exited:
			if m := re.FindStringSubmatch(b.String()); m != nil {
				return m, nil
			}
			return nil, fmt.Errorf("process exited before printing %q", re)
		case <-deadline.C:
			return nil, fmt.Errorf("no %q within %v", re, timeout)
		}
	}
}
