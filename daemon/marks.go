package daemon

// The rollback queue every console of the daemon shares: the SSH
// console's and `mcptrail ui`'s marks are one list, kept in the store so
// that they outlive a console and the daemon. A mark names a call; it
// grants nothing (a plan is still built, reviewed and approved).

import (
	"encoding/json"
	"fmt"

	"github.com/mcptrail/mcptrail/store"
	"github.com/mcptrail/mcptrail/ui"
)

// marks reads the store's marks, by seq.
func marks(st *store.Store) ([]ui.Mark, error) {
	raw, err := st.Rollback().Marks()
	if err != nil {
		return nil, err
	}
	out := make([]ui.Mark, 0, len(raw))
	for _, b := range raw {
		var m ui.Mark
		if json.Unmarshal(b, &m) == nil && m.Seq != 0 {
			out = append(out, m)
		}
	}
	return out, nil
}

// setMarks stores add and drops remove, then returns the marks. A mark
// must name a tool call in the record.
func setMarks(st *store.Store, add []ui.Mark, remove []uint64) ([]ui.Mark, error) {
	put := map[uint64][]byte{}
	if len(add) > 0 {
		if err := st.Flush(); err != nil { // the call may be the newest event
			return nil, err
		}
	}
	for _, m := range add {
		if m.Seq == 0 || m.Seq > st.Last() {
			return nil, fmt.Errorf("mark: no call %d in the record", m.Seq)
		}
		if ev, err := st.Get(m.Seq); err != nil || ev.Method != "tools/call" {
			return nil, fmt.Errorf("mark: record %d is not a tool call", m.Seq)
		}
		b, err := json.Marshal(m)
		if err != nil {
			return nil, err
		}
		put[m.Seq] = b
	}
	if err := st.Rollback().SetMarks(put, remove); err != nil {
		return nil, err
	}
	return marks(st)
}

// RollbackMarks is the shared queue (ui.MarkKeeper).
func (r *Rollback) RollbackMarks() ([]ui.Mark, error) { return marks(r.d.store) }

// RollbackMark changes the shared queue (ui.MarkKeeper).
func (r *Rollback) RollbackMark(add []ui.Mark, remove []uint64) ([]ui.Mark, error) {
	return setMarks(r.d.store, add, remove)
}

// --- over the socket ---

// RollbackMarkArgs changes the shared queue.
type RollbackMarkArgs struct {
	Add    []ui.Mark
	Remove []uint64
}

func (s *service) RollbackMarks(_ struct{}, out *[]ui.Mark) error {
	var err error
	*out, err = marks(s.d.store)
	return err
}

func (s *service) RollbackMark(a *RollbackMarkArgs, out *[]ui.Mark) error {
	var err error
	*out, err = setMarks(s.d.store, a.Add, a.Remove)
	return err
}

// RollbackMarks reads the daemon's rollback queue.
func (c *Client) RollbackMarks() ([]ui.Mark, error) {
	var out []ui.Mark
	if err := c.rpc.Call("Daemon.RollbackMarks", struct{}{}, &out); err != nil {
		return nil, fmt.Errorf("daemon: %w", err)
	}
	return out, nil
}

// RollbackMark changes the daemon's rollback queue and returns it.
func (c *Client) RollbackMark(add []ui.Mark, remove []uint64) ([]ui.Mark, error) {
	var out []ui.Mark
	if err := c.rpc.Call("Daemon.RollbackMark", &RollbackMarkArgs{Add: add, Remove: remove}, &out); err != nil {
		return nil, fmt.Errorf("daemon: %w", err)
	}
	return out, nil
}
