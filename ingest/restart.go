package ingest

import (
	"fmt"
	"sync"
	"time"
)

// Restarts of a stdio upstream's shared child (2026-07-28 clients): a
// server that crashes on some call is started again for the next one, but
// at most maxRestarts times per restartWindow, so a request that crashes it
// every time cannot make the gateway fork without end.
const (
	maxRestarts   = 10
	restartWindow = time.Minute
)

// restartBudget counts a child's starts in a sliding window. Its clock is
// a field so tests can move time.
type restartBudget struct {
	max    int
	window time.Duration
	now    func() time.Time

	mu     sync.Mutex
	starts []time.Time // within window, oldest first
}

func newRestartBudget() *restartBudget {
	return &restartBudget{max: maxRestarts, window: restartWindow, now: time.Now}
}

// errRestartLimit: the shared child was started too often lately.
type errRestartLimit struct {
	starts int
	window time.Duration
	retry  time.Duration
}

func (e *errRestartLimit) Error() string {
	return fmt.Sprintf("the upstream was started %d times in %s (it keeps exiting): not started again for %s",
		e.starts, e.window, e.retry.Round(time.Second))
}

// start spends one start, or says when the next will be allowed.
func (b *restartBudget) start() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	now := b.now()
	i := 0
	for i < len(b.starts) && now.Sub(b.starts[i]) >= b.window {
		i++
	}
	b.starts = b.starts[i:]
	if len(b.starts) >= b.max {
		return &errRestartLimit{starts: len(b.starts), window: b.window, retry: b.window - now.Sub(b.starts[0])}
	}
	b.starts = append(b.starts, now)
	return nil
}
