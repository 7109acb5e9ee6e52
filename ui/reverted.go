package ui

import (
	tea "github.com/charmbracelet/bubbletea"

	"github.com/mcptrail/mcptrail/store"
)

// A session's calls are reverted by rollback_step events recorded in other
// sessions (the ones the gateway opens to run inverse calls), so a session's
// own events never say which of its calls were reverted: the timeline asks
// the record for the rollback steps, wherever they are, when it loads and
// when it is shown again (after a plan was applied from it).

// mostReverted bounds the rollback steps read for the ↺ flags.
const mostReverted = 5000

// tlReverted are the calls the record shows reverted (loaded[tlReverted]).
type tlReverted []uint64

// shownAgainMsg tells the screen on top that the one above it was closed.
type shownAgainMsg struct{}

func (t *timelineScreen) loadReverted() tea.Cmd {
	src, to, gen, marks := t.c.Src, t.sid, t.gen, t.c.Marks
	return func() tea.Msg {
		marks.Refresh()                // another console's marks, for the gutter
		calls, _ := revertedCalls(src) // the flags are a hint; the record view says what happened
		return loaded[tlReverted]{to: to, gen: gen, val: calls}
	}
}

// revertedCalls are the calls the record shows reverted: those whose
// newest rollback_step has a good outcome (an inverse call that failed
// reverted nothing; one run again after it and answered did). The outcomes
// are in the rollback's own sessions, which are short: each is read whole
// rather than every outcome of the record.
func revertedCalls(src Source) ([]uint64, error) {
	last := map[uint64]uint64{} // reverted call → its newest rollback_step
	sessions := map[string]bool{}
	q := store.Query{Kind: store.KindRollbackStep, Limit: 1000}
	for len(last) < mostReverted {
		page, err := src.Query(q)
		if err != nil {
			return nil, err
		}
		for _, e := range page.Events {
			if e.Reverts != 0 {
				last[e.Reverts] = max(last[e.Reverts], e.Seq)
				sessions[e.Session] = true
			}
		}
		if page.Next == 0 {
			break
		}
		q.Cursor = page.Next
	}
	ok := map[uint64]bool{} // rollback_step → answered without error
	for sess := range sessions {
		q := store.Query{Session: sess, Kind: store.KindCall, Limit: 1000}
		for {
			page, err := src.Query(q)
			if err != nil {
				return nil, err
			}
			for _, e := range page.Events {
				if e.Call != 0 && e.Outcome == store.OutcomeOK {
					ok[e.Call] = true
				}
			}
			if page.Next == 0 {
				break
			}
			q.Cursor = page.Next
		}
	}
	var out []uint64
	for call, step := range last {
		if ok[step] {
			out = append(out, call)
		}
	}
	return out, nil
}

func (t *timelineScreen) markReverted(calls []uint64) {
	for _, c := range calls {
		t.flag(c, 'r')
	}
}
