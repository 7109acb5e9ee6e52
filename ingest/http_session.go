package ingest

import (
	"encoding/json"

	"github.com/mcptrail/mcptrail/store"
	"github.com/modelcontextprotocol/go-sdk/jsonrpc"
)

// Fail ends one pending client request that will get no response from the
// server — the upstream could not be reached, its stream broke, the client
// closed a 2026-07-28 stream (cancelled) — recording the outcome. It returns
// the JSON-RPC error response to give the client, or nil when the request is
// not pending (it was answered, or the session closed).
//
// Added for the HTTP gateway, where one POST can fail while its session
// lives on; Close remains the way to end a whole session.
func (s *Session) Fail(id json.RawMessage, outcome, detail string) []byte {
	k := key(store.FromClient, id)
	s.mu.Lock()
	p := s.pending[k]
	delete(s.pending, k)
	s.mu.Unlock()
	if p == nil {
		return nil
	}
	s.outcome(p, store.FromClient, outcome, nil, nil, detail)
	return errorResponse(p.id, jsonrpc.CodeInternalError, "mcptrail: "+detail)
}

// refuse records raw from the client as bad input and returns the JSON-RPC
// error for the client: for what the transport refuses before the Session
// sees it (a duplicate in-flight id, a batch without a session).
func (s *Session) refuse(raw []byte, id json.RawMessage, code int, detail string) []byte {
	s.badInput(store.FromClient, raw, detail)
	return errorResponse(validID(id), code, "mcptrail: "+detail)
}

// isClosed reports whether Close has run. A request recorded while Close
// ran may still become pending afterwards; the transport checks this after
// FromClient so such a request is settled (Fail) instead of forwarded.
func (s *Session) isClosed() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closed
}
