package approval

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/mcptrail/mcptrail/ingest"
	"github.com/mcptrail/mcptrail/store"
)

// DeskClient is the daemon's desk as a gateway outside it (wrap) reaches
// it over the socket.
type DeskClient interface {
	// Resolve gives the store's seq of a provisional one (batch durability).
	Resolve(seq uint64) (uint64, error)
	// ApprovalWait asks the daemon to hold the recorded call seq and
	// blocks until it is decided; held is false when no rule of the
	// daemon's holds it.
	ApprovalWait(seq uint64, paramsSHA256, serverName string) (auth *store.Authorization, held bool, err error)
	// ApprovalCancel refuses a held call (the session ended).
	ApprovalCancel(seq uint64, reason string) error
}

// Remote is ingest.Hooks.Approve for wrap: the gateway runs in the wrap,
// the desk in the daemon. Rules are matched here first, so a call no rule
// holds costs no round trip; the daemon then matches again with its own
// rules, holds the call and decides. If the daemon cannot be reached or
// goes away while the call is held, the call is denied: wrap holds it and
// never forwards it without the daemon's approval.
type Remote struct {
	Policy *Policy
	Desk   DeskClient
}

// Approve is ingest.Hooks.Approve.
func (r *Remote) Approve(req *store.Event, params json.RawMessage, serverName string) ingest.Hold {
	if r.Policy.Match(req, time.Now()) == nil {
		return nil
	}
	h := &remoteHold{r: r, seq: req.Seq, hash: ParamsSHA256(params), server: serverName, done: make(chan struct{})}
	go h.run()
	return h
}

type remoteHold struct {
	r      *Remote
	seq    uint64
	hash   string
	server string
	done   chan struct{}
	auth   *store.Authorization
	err    error
}

func (h *remoteHold) run() {
	defer close(h.done)
	seq, err := h.r.Desk.Resolve(h.seq)
	if err != nil {
		h.err = fmt.Errorf("the approval could not be asked for, so the call is refused: %v", err)
		return
	}
	auth, held, err := h.r.Desk.ApprovalWait(seq, h.hash, h.server)
	switch {
	case err != nil:
		h.err = fmt.Errorf("%v", err)
	case !held:
		// The daemon's rules do not hold it: the daemon's policy decides.
	default:
		h.auth = auth
	}
}

func (h *remoteHold) Wait() (*store.Authorization, error) {
	<-h.done
	return h.auth, h.err
}

func (h *remoteHold) Cancel(reason string) {
	seq, err := h.r.Desk.Resolve(h.seq)
	if err == nil {
		_ = h.r.Desk.ApprovalCancel(seq, reason)
	}
}
