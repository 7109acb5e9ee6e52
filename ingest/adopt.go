package ingest

import (
	"sync"
	"time"
)

// An HTTP upstream's Mcp-Session-Id that the gateway has not seen (it
// restarted, or the session went idle here) is passed on for the upstream
// to judge, and the record gets a session for it. Forged ids would each
// cost a session in the record, so each client address may have
// adoptBurst of them taken up at once and one more every adoptEvery;
// beyond that an unknown id is the gateway's own 404 refusal (recorded at
// the refusals' bounded rate). The burst lets a client whose sessions
// outlived a gateway restart (up to max_sessions_per_principal's default)
// carry on.
const (
	adoptBurst   = DefaultMaxSessionsPerPrincipal
	adoptEvery   = 10 * time.Second
	maxAdoptKeys = 1024
)

// adoptions are the per-address buckets of unknown session ids taken up.
type adoptions struct {
	now func() time.Time

	mu sync.Mutex
	by map[string]*bucket
}

func newAdoptions() *adoptions {
	return &adoptions{now: time.Now, by: make(map[string]*bucket)}
}

// allow spends one adoption of addr's, if it has one.
func (a *adoptions) allow(addr string) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	now := a.now()
	b := a.by[addr]
	if b == nil {
		if len(a.by) >= maxAdoptKeys {
			for k, old := range a.by {
				if old.full(now, adoptBurst, adoptEvery) {
					delete(a.by, k)
				}
			}
		}
		if len(a.by) >= maxAdoptKeys {
			addr = "*" // every address beyond the bound shares one bucket
			b = a.by[addr]
		}
		if b == nil {
			b = &bucket{}
			a.by[addr] = b
		}
	}
	return b.take(now, adoptBurst, adoptEvery)
}
