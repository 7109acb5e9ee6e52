package ingest

import (
	"fmt"
	"sync"
)

// Default session caps. A session of a stdio upstream is a child process
// (a 2026-07-28 client's calls share one child per upstream, but still
// hold a session in the record), so these bound processes too: 256 keep a
// host with typical MCP servers (tens of MB each) within a few GB, and 32
// per principal leave an agent room for parallel sub-agents while one
// agent cannot take every slot.
const (
	DefaultMaxSessions             = 256
	DefaultMaxSessionsPerPrincipal = 32
)

// capError says which cap refused a new session.
type capError struct {
	perPrincipal bool
	limit        int
}

func (e *capError) Error() string {
	if e.perPrincipal {
		return fmt.Sprintf("too many sessions: this principal already has %d (max_sessions_per_principal)", e.limit)
	}
	return fmt.Sprintf("too many sessions: the gateway already serves %d (max_sessions)", e.limit)
}

// sessionCaps counts the gateway's open sessions, in total and per
// principal (principalKey), and refuses one over either cap. A limit below
// zero is no limit. Anonymous clients (principal "") meet only the total
// cap: anonymous access exists only on a loopback listener, where nothing
// tells one local client from another, so a per-principal cap over all of
// them would only be a lower total — every local agent of a busy machine
// refused at 32 — and protect none of them from another.
type sessionCaps struct {
	total, perPrincipal int

	mu sync.Mutex
	n  int
	by map[string]int
}

func newSessionCaps(total, perPrincipal int) *sessionCaps {
	if total == 0 {
		total = DefaultMaxSessions
	}
	if perPrincipal == 0 {
		perPrincipal = DefaultMaxSessionsPerPrincipal
	}
	return &sessionCaps{total: total, perPrincipal: perPrincipal, by: make(map[string]int)}
}

// take counts a new session of principal, or refuses it with a *capError;
// release (exactly once) gives its slot back.
func (c *sessionCaps) take(principal string) (release func(), err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.total >= 0 && c.n >= c.total {
		return nil, &capError{limit: c.total}
	}
	if principal != "" && c.perPrincipal >= 0 && c.by[principal] >= c.perPrincipal {
		return nil, &capError{perPrincipal: true, limit: c.perPrincipal}
	}
	c.n++
	c.by[principal]++
	var once sync.Once
	return func() {
		once.Do(func() {
			c.mu.Lock()
			defer c.mu.Unlock()
			c.n--
			if c.by[principal]--; c.by[principal] <= 0 {
				delete(c.by, principal)
			}
		})
	}, nil
}
