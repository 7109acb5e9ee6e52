package ingest

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/mcptrail/mcptrail/store"
)

// codeRequestTimeout is the JSON-RPC error code MCP SDKs use for a request
// that timed out.
const codeRequestTimeout = -32001

// timeoutReason is the reason a timed-out call's cancellation gives.
const timeoutReason = "mcptrail: the call timed out"

// onTimeout enables CallTimeout: deliver gets a timed-out client request's
// id and the error response for the client, and must send both the reply
// and a cancellation (cancelNotification) on their ways. A transport that
// cannot do that leaves it unset, and its calls wait for the client.
func (s *Session) onTimeout(deliver func(id, reply []byte)) {
	s.mu.Lock()
	s.expired = deliver
	s.mu.Unlock()
}

// armTimeoutLocked starts a client request's CallTimeout clock, if the
// config sets one and the transport can end a timed-out call. The caller
// holds s.mu; k is the call's pending key.
func (s *Session) armTimeoutLocked(p *pending, k string) {
	if s.limits.CallTimeout > 0 && s.expired != nil {
		p.timer = time.AfterFunc(s.limits.CallTimeout, func() { s.timeout(k) })
	}
}

// timeout settles a call its server did not answer within CallTimeout.
func (s *Session) timeout(k string) {
	s.mu.Lock()
	p := s.takeLocked(k)
	deliver := s.expired
	s.mu.Unlock()
	if p == nil {
		return
	}
	detail := fmt.Sprintf("the server did not answer within %s; the gateway cancelled the call", s.limits.CallTimeout)
	s.outcome(p, store.FromClient, store.OutcomeTimeout, nil, mustJSON(map[string]any{"code": codeRequestTimeout, "message": detail}), detail)
	deliver(p.id, errorResponse(p.id, codeRequestTimeout, "mcptrail: "+detail))
}

// cancelNotification is what tells a server that the gateway gave up on
// the request it knows by id.
func cancelNotification(id json.RawMessage, reason string) []byte {
	return mustJSON(map[string]any{
		"jsonrpc": "2.0",
		"method":  "notifications/cancelled",
		"params":  map[string]any{"requestId": id, "reason": reason},
	})
}
