package ingest

import (
	"encoding/json"
	"slices"
	"sync"
	"time"

	"github.com/mcptrail/mcptrail/store"
)

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

// statelessSessions groups the calls of clients that hold no transport
// session (2026-07-28, or a sessionless upstream) into gateway sessions, one
// per upstream, principal and client name, so one agent's calls stay
// together in the record. A Session correlates responses by JSON-RPC id, so
// two clients with the same name and credential that have the same id in
// flight at once get a session each: a request goes to the first session of
// its key where none of its ids is in flight.
type statelessSessions struct {
	g    *HTTPGateway
	name string
	made func(*Session) // called once for each session it makes

	mu     sync.Mutex
	m      map[string][]*statelessSession
	closed bool
}

type statelessSession struct {
	sess *Session
	last time.Time
	busy int            // requests being served
	ids  map[string]int // idKey of requests in flight
}

func newStatelessSessions(g *HTTPGateway, name string, made func(*Session)) *statelessSessions {
	return &statelessSessions{g: g, name: name, made: made, m: make(map[string][]*statelessSession)}
}

// acquire returns the session for this principal and client that has none
// of ids in flight, creating one if needed; release must follow when the
// request is done.
func (s *statelessSessions) acquire(ov *Overrides, clientName string, ids []json.RawMessage) (*statelessSession, error) {
	k := principalKey(ov) + "\x00" + clientName
	keys := make([]string, len(ids))
	for i, id := range ids {
		keys[i] = idKey(id)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, errGatewayClosed
	}
	var ss *statelessSession
	for _, cand := range s.m[k] {
		if !slices.ContainsFunc(keys, func(id string) bool { return cand.ids[id] > 0 }) {
			ss = cand
			break
		}
	}
	if ss == nil {
		sess, err := s.g.newSession(s.name, ov)
		if err != nil {
			return nil, err
		}
		if s.made != nil {
			s.made(sess)
		}
		ss = &statelessSession{sess: sess, ids: make(map[string]int)}
		s.m[k] = append(s.m[k], ss)
	}
	for _, id := range keys {
		ss.ids[id]++
	}
	ss.busy++
	ss.last = time.Now()
	return ss, nil
}

// release ends a request that acquire let in with the same ids.
func (s *statelessSessions) release(ss *statelessSession, ids []json.RawMessage) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, id := range ids {
		k := idKey(id)
		if ss.ids[k]--; ss.ids[k] <= 0 {
			delete(ss.ids, k)
		}
	}
	ss.busy--
	ss.last = time.Now()
}

// adopt files sess (a session whose initialize got no Mcp-Session-Id) as
// a stateless session of its principal and client.
func (s *statelessSessions) adopt(sess *Session, ov *Overrides, clientName string) bool {
	k := principalKey(ov) + "\x00" + clientName
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false
	}
	s.m[k] = append(s.m[k], &statelessSession{sess: sess, last: time.Now(), ids: make(map[string]int)})
	return true
}

func (s *statelessSessions) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, l := range s.m {
		n += len(l)
	}
	return n
}

func (s *statelessSessions) closeAll(outcome, detail string) {
	s.mu.Lock()
	s.closed = true
	all := s.m
	s.m = nil
	s.mu.Unlock()
	for _, l := range all {
		for _, ss := range l {
			ss.sess.Close(outcome, detail)
		}
	}
}

func (s *statelessSessions) reap(now time.Time, idle time.Duration) {
	var old []*Session
	s.mu.Lock()
	for k, l := range s.m {
		l = slices.DeleteFunc(l, func(ss *statelessSession) bool {
			if ss.busy == 0 && now.Sub(ss.last) > idle && ss.sess.Pending() == 0 {
				old = append(old, ss.sess)
				return true
			}
			return false
		})
		if len(l) == 0 {
			delete(s.m, k)
		} else {
			s.m[k] = l
		}
	}
	s.mu.Unlock()
	for _, sess := range old {
		sess.Close(store.OutcomeUnknown, "idle session ended")
	}
}
