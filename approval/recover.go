package approval

import (
	"time"

	"github.com/mcptrail/mcptrail/store"
)

// Querier reads the record (the store, or the daemon's client).
type Querier interface {
	Query(q store.Query) (store.Page, error)
}

// Recover ends, as expired, every hold the record shows undecided: the
// daemon stopped or crashed while those calls were held, their gateway
// has refused them (a held call is never forwarded by anyone but the
// Hold that released it), and the record must say they ended. Holds last
// at most MaxTimeout, so that is how far back it looks. It returns how
// many it ended.
func (d *Desk) Recover(q Querier) (int, error) {
	since := d.now().Add(-MaxTimeout - time.Hour)
	requested := map[uint64]*store.Event{}
	var order []uint64
	decided := map[uint64]bool{}
	for _, kind := range []string{store.KindApprovalRequested, store.KindApproved, store.KindDenied, store.KindExpired} {
		var cursor uint64
		for {
			page, err := q.Query(store.Query{Kind: kind, Since: since, Limit: 10000, Cursor: cursor})
			if err != nil {
				return 0, err
			}
			for i := range page.Events {
				ev := &page.Events[i]
				switch {
				case kind == store.KindApprovalRequested:
					requested[ev.Call] = ev
					order = append(order, ev.Call)
				case kind != store.KindApproved:
					decided[ev.Call] = true
				case ev.Approval != nil && len(ev.Approval.Approvers) >= ev.Approval.Required:
					decided[ev.Call] = true
				}
			}
			if page.Next == 0 {
				break
			}
			cursor = page.Next
		}
	}
	n := 0
	for _, call := range order {
		req := requested[call]
		if decided[call] {
			continue
		}
		ev := &store.Event{
			Kind: store.KindExpired, Session: req.Session, Upstream: req.Upstream, Method: req.Method, Tool: req.Tool, Class: req.Class,
			Call: call, Agent: req.Agent, Principal: req.Principal, Task: req.Task, Approval: req.Approval,
			Detail: "the daemon restarted while the call was held: denied, never forwarded",
		}
		if _, err := d.Record(ev); err != nil {
			return n, err
		}
		decided[call] = true
		n++
	}
	return n, nil
}
