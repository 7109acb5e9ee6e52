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

type tlReverted struct {
	to    int
	calls []uint64
}

func (m tlReverted) target() int { return m.to }

// shownAgainMsg tells the screen on top that the one above it was closed.
type shownAgainMsg struct{}

func (t *timeline) loadReverted() tea.Cmd {
	src, to := t.c.Src, t.sid
	return func() tea.Msg {
		q := store.Query{Kind: store.KindRollbackStep, Newest: true, Limit: 1000}
		var calls []uint64
		for len(calls) < mostReverted {
			page, err := src.Query(q)
			if err != nil {
				break // the flags are a hint; the record view says what happened
			}
			for _, e := range page.Events {
				if e.Reverts != 0 {
					calls = append(calls, e.Reverts)
				}
			}
			if page.Next == 0 {
				break
			}
			q.Cursor = page.Next
		}
		return tlReverted{to: to, calls: calls}
	}
}

func (t *timeline) markReverted(calls []uint64) {
	for _, c := range calls {
		t.flag(c, 'r')
	}
}
