package ingest

import "sync"

// upstreamSessions are an upstream's gateway sessions: the 2025-era ones,
// filed under their Mcp-Session-Id (T is what the upstream keeps for each),
// and those of its sessionless clients. Both upstream kinds embed it; mu
// guards bySID and closed, and what the upstream keeps beside them.
type upstreamSessions[T any] struct {
	stateless *statelessSessions

	mu     sync.Mutex
	bySID  map[string]T
	closed bool // no session is filed once the upstream closed
}

func (t *upstreamSessions[T]) init(stateless *statelessSessions) {
	t.stateless = stateless
	t.bySID = make(map[string]T)
}

// sessions counts the sessions of both kinds.
func (t *upstreamSessions[T]) sessions() int {
	t.mu.Lock()
	n := len(t.bySID)
	t.mu.Unlock()
	return n + t.stateless.count()
}

// closeLocked marks the upstream closed and takes every filed session for
// the caller to end. The caller holds mu.
func (t *upstreamSessions[T]) closeLocked() map[string]T {
	t.closed = true
	all := t.bySID
	t.bySID = map[string]T{}
	return all
}
