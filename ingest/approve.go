package ingest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"

	"github.com/mcptrail/mcptrail/store"
)

// A call an approval rule holds (Hooks.Approve) has been recorded and is
// not forwarded until a person approves it. Where the transport can send
// it later (onRelease: stdio), the client's other messages keep flowing
// meanwhile; elsewhere (an HTTP POST, a batch) FromClient blocks until
// the decision, and the client's request simply stays open.

// codeApprovalDenied is the JSON-RPC error code of a call that an
// approval rule held and that was denied, expired or refused.
const codeApprovalDenied = -32003

// heldCall is one call waiting for its decision.
type heldCall struct {
	p *pending
	h Hold
}

// onRelease lets calls held for approval be decided without holding up
// the client's next messages: deliver gets a held call's bytes to forward
// to the server once it is approved, or the error for the client when it
// is not.
func (s *Session) onRelease(deliver func(fwd, reply []byte)) {
	s.mu.Lock()
	s.release = deliver
	s.mu.Unlock()
}

// hold keeps a recorded client call from the server until h decides it.
func (s *Session) hold(p *pending, h Hold, raw []byte, inBatch bool) (fwd, reply []byte, err error) {
	k := key(store.FromClient, p.id)
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		h.Cancel("the session ended")
		s.outcome(p, store.FromClient, store.OutcomeDenied, nil, nil, "the session ended while the call waited for approval")
		return nil, errorResponse(p.id, codeApprovalDenied, "mcptrail: the session ended while the call waited for approval"), errRefused
	}
	if _, gone := s.withdrawn[k]; gone {
		// The client closed the request that carried the call before the
		// call was held: nobody waits for it, so no approval may run it.
		delete(s.withdrawn, k)
		s.mu.Unlock()
		h.Cancel(withdrawnReason)
		s.outcome(p, store.FromClient, store.OutcomeCancelled, nil, nil, withdrawnReason)
		return nil, errorResponse(p.id, codeApprovalDenied, "mcptrail: "+withdrawnReason), errRefused
	}
	s.held[k] = &heldCall{p: p, h: h}
	deliver := s.release
	watch := s.heldWatch[k]
	s.mu.Unlock()
	if watch != nil {
		watch(p.seq)
	}
	if deliver == nil || inBatch {
		return s.settle(p, h, k, raw)
	}
	raw = bytes.Clone(raw) // the transport reuses its buffer for the next message
	go func() {
		if fwd, reply, err := s.settle(p, h, k, raw); err != errSettled {
			deliver(fwd, reply)
		}
	}()
	return nil, nil, nil
}

// settle waits for a held call's decision: raw to forward once approved,
// or the client's error (outcome denied) when not. A call that Close or a
// cancellation settled meanwhile is neither.
func (s *Session) settle(p *pending, h Hold, k string, raw []byte) (fwd, reply []byte, err error) {
	auth, werr := h.Wait()
	s.mu.Lock()
	hc := s.held[k]
	mine := hc != nil && hc.h == h
	if mine {
		delete(s.held, k)
	}
	s.mu.Unlock()
	if !mine {
		return nil, errorResponse(p.id, codeApprovalDenied, "mcptrail: the call was cancelled while it waited for approval"), errSettled
	}
	if werr != nil {
		detail := werr.Error()
		s.outcome(p, store.FromClient, store.OutcomeDenied, nil, mustJSON(map[string]any{"code": codeApprovalDenied, "message": detail}), detail)
		return nil, errorResponse(p.id, codeApprovalDenied, "mcptrail: call not approved: "+detail), errRefused
	}
	p.auth = auth
	if reply := s.admit(p, store.FromClient); reply != nil {
		return nil, reply, errRefused
	}
	return raw, nil, nil
}

// whileHeld arranges that the client's calls among ids still held when ctx
// ends (an HTTP client closed the request that carries them) are refused
// then: an approval given after the client left must not run a call nobody
// waits for. onHeld (if not nil) learns the seq of each of them as it is
// held, on the goroutine that called FromClient, so that the transport can
// keep the request's connection alive meanwhile (heldBeat). The returned
// stop ends the arrangement.
func (s *Session) whileHeld(ctx context.Context, ids []json.RawMessage, onHeld func(seq uint64)) (stop func()) {
	if s.hooks.Approve == nil || len(ids) == 0 {
		return func() {}
	}
	if onHeld != nil {
		s.mu.Lock()
		for _, id := range ids {
			s.heldWatch[key(store.FromClient, id)] = onHeld
		}
		s.mu.Unlock()
	}
	r := &heldRequest{s: s, ids: ids}
	r.stopCancel = context.AfterFunc(ctx, r.withdraw)
	return r.end
}

// heldRequest is one HTTP request's calls while whileHeld watches them.
// ended (under the session's mu) keeps a withdraw that runs as the request
// ends from marking its ids withdrawn after end cleared them.
type heldRequest struct {
	s          *Session
	ids        []json.RawMessage
	stopCancel func() bool
	ended      bool
}

// withdraw refuses the request's calls that are held, and marks those not
// held yet (the hook may still be deciding) so that hold refuses them.
func (r *heldRequest) withdraw() {
	s := r.s
	for _, id := range r.ids {
		k := key(store.FromClient, id)
		s.mu.Lock()
		if r.ended {
			s.mu.Unlock()
			return
		}
		hc := s.held[k]
		delete(s.held, k)
		if hc == nil {
			s.withdrawn[k] = struct{}{}
		}
		s.mu.Unlock()
		if hc != nil {
			hc.h.Cancel(withdrawnReason)
			s.outcome(hc.p, store.FromClient, store.OutcomeCancelled, nil, nil, withdrawnReason)
		}
	}
}

// end stops watching: the request is over, and a later call may reuse
// its ids.
func (r *heldRequest) end() {
	r.stopCancel()
	s := r.s
	s.mu.Lock()
	r.ended = true
	for _, id := range r.ids {
		k := key(store.FromClient, id)
		delete(s.heldWatch, k)
		delete(s.withdrawn, k)
	}
	s.mu.Unlock()
}

// withdrawnReason ends a held call whose HTTP request the client closed.
const withdrawnReason = "the client closed its request while the call waited for approval"

// errSettled: a held call that Close or its cancellation ended while it
// waited; the client has (or wants) no other answer.
var errSettled = errors.New("settled while held")

// Held reports how many calls wait for approval.
func (s *Session) Held() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.held)
}
