package ui

import (
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	tea "github.com/charmbracelet/bubbletea"
)

// Mark is a call marked for reversal.
type Mark struct {
	Seq      uint64
	Session  string
	Agent    string
	Tool     string
	Class    string
	Args     string
	Time     time.Time
	By       string // the investigator's Actor
	MarkedAt time.Time
}

// MarkKeeper keeps the marks of every console of a daemon, so that a mark
// made over SSH is in the local console's queue and outlives both
// consoles: the daemon (its socket's client, or itself for the SSH
// console). Each call returns the marks as they are now, by seq.
type MarkKeeper interface {
	RollbackMarks() ([]Mark, error)
	RollbackMark(add []Mark, remove []uint64) ([]Mark, error)
}

// Marks are the calls marked for reversal, by seq. With a keeper (the
// daemon) every change goes to it and the list is what it answers; a
// console on a store file keeps them itself, for as long as it runs.
type Marks struct {
	mu     sync.Mutex
	list   []Mark
	keeper MarkKeeper
	err    error // the keeper's last failure; the local list stands meanwhile
	told   bool  // a file console has said its marks are its own
}

func newMarks(k MarkKeeper) *Marks {
	m := &Marks{keeper: k}
	m.Refresh()
	return m
}

// Shared reports whether the marks are the daemon's.
func (m *Marks) Shared() bool { return m.keeper != nil }

// LocalNotice is what a file console says, once, of its first mark.
func (m *Marks) LocalNotice() string {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.keeper != nil || m.told {
		return ""
	}
	m.told = true
	return "marks stay in this console (it reads a file, not the daemon): they go when it quits"
}

// Refresh reads the daemon's marks (made by any console) again.
func (m *Marks) Refresh() error {
	if m.keeper == nil {
		return nil
	}
	list, err := m.keeper.RollbackMarks()
	m.mu.Lock()
	defer m.mu.Unlock()
	m.err = err
	if err == nil {
		m.list = list
	}
	return err
}

// Err is the daemon's last refusal or failure to keep a change.
func (m *Marks) Err() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.err
}

// change applies add and remove locally, then asks the keeper to; the
// keeper's answer replaces the list.
func (m *Marks) change(add []Mark, remove []uint64) {
	m.mu.Lock()
	m.list = slices.DeleteFunc(m.list, func(x Mark) bool { return slices.Contains(remove, x.Seq) })
	for _, mk := range add {
		if !m.has(mk.Seq) {
			m.list = append(m.list, mk)
		}
	}
	slices.SortFunc(m.list, func(a, b Mark) int { return cmpSeq(a.Seq, b.Seq) })
	k := m.keeper
	m.mu.Unlock()
	if k == nil {
		return
	}
	list, err := k.RollbackMark(add, remove)
	m.mu.Lock()
	defer m.mu.Unlock()
	m.err = err
	if err == nil {
		m.list = list
	}
}

func cmpSeq(a, b uint64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func (m *Marks) has(seq uint64) bool {
	for i := range m.list {
		if m.list[i].Seq == seq {
			return true
		}
	}
	return false
}

func (m *Marks) Has(seq uint64) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.has(seq)
}

// Toggle marks or unmarks a call; it reports whether the call is now marked.
func (m *Marks) Toggle(mk Mark) bool {
	if m.Has(mk.Seq) {
		m.change(nil, []uint64{mk.Seq})
		return false
	}
	m.change([]Mark{mk}, nil)
	return true
}

// Add marks calls not yet marked and returns how many were new.
func (m *Marks) Add(marks ...Mark) int {
	var add []Mark
	for _, mk := range marks {
		if !m.Has(mk.Seq) && !slices.ContainsFunc(add, func(x Mark) bool { return x.Seq == mk.Seq }) {
			add = append(add, mk)
		}
	}
	if len(add) > 0 {
		m.change(add, nil)
	}
	return len(add)
}

// Remove unmarks calls.
func (m *Marks) Remove(seqs ...uint64) {
	if len(seqs) > 0 {
		m.change(nil, seqs)
	}
}

func (m *Marks) Len() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.list)
}

// Clear unmarks every call.
func (m *Marks) Clear() {
	var seqs []uint64
	for _, mk := range m.List() {
		seqs = append(seqs, mk.Seq)
	}
	m.Remove(seqs...)
}

// List is a copy of the marks, by seq.
func (m *Marks) List() []Mark {
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.Clone(m.list)
}

// markKeeper is the rollback service as the keeper of marks, if it is one.
func markKeeper(rb Rollback) MarkKeeper {
	if k, ok := rb.(MarkKeeper); ok {
		return k
	}
	return nil
}

// rangeMark is a V range in a timeline: from the row V was pressed on to
// the row of the second V.
type rangeMark struct {
	on   bool
	from uint64 // the anchor of the first row (rows move as pages load)
}

// mark is space in a timeline: it toggles the selected call's mark and
// leaves the cursor where it is.
func (t *timelineScreen) mark() tea.Cmd {
	mk, ok, why := t.selectedCall("mark calls for reversal", "only tool calls can be marked for reversal")
	if !ok {
		return why
	}
	on := t.c.Marks.Toggle(mk)
	verb := "unmarked"
	if on {
		verb = "marked"
	}
	t.c.audit(strings.TrimSuffix(verb, "ed"), fmt.Sprintf("call %d %s", mk.Seq, mk.Tool))
	return t.c.Marks.said(fmt.Sprintf("%s call %d (%s) · %d queued", verb, mk.Seq, show(mk.Tool), t.c.Marks.Len()))
}

// rangeMark is V: the first press anchors a range at the selected row,
// the second marks every tool call from there to the selected row.
func (t *timelineScreen) rangeMark() tea.Cmd {
	r := t.selected()
	switch {
	case !t.c.Identity.CanReverse():
		return denyReverse(t.c, "mark calls for reversal")
	case r == nil:
		return nil
	case !t.span.on:
		t.span = rangeMark{on: true, from: r.anchor}
		return toast(fmt.Sprintf("range from %d: move, then V marks every call in between", r.anchor))
	}
	t.span.on = false
	lo, hi := min(t.span.from, r.anchor), max(t.span.from, r.anchor)
	var add []Mark
	for _, row := range t.rows {
		if row.anchor < lo || row.anchor > hi {
			continue
		}
		if mk, ok := markOf(t.c, row); ok {
			add = append(add, mk)
		}
	}
	n := t.c.Marks.Add(add...)
	t.c.audit("mark", fmt.Sprintf("range %d-%d: %d calls (%d new)", lo, hi, len(add), n))
	return t.c.Marks.said(fmt.Sprintf("marked %d %s from %d to %d (%d new) · %d queued", len(add), plural(len(add), "call", "calls"), lo, hi, n, t.c.Marks.Len()))
}

// selectedCall is the selected row as a mark, for an operator's action
// (what, for a viewer's refusal). When there is none, why says so
// (notCall when the row is not a tool call; nil when nothing is selected).
func (t *timelineScreen) selectedCall(what, notCall string) (mk Mark, ok bool, why tea.Cmd) {
	if !t.c.Identity.CanReverse() {
		return Mark{}, false, denyReverse(t.c, what)
	}
	r := t.selected()
	if r == nil {
		return Mark{}, false, nil
	}
	if mk, ok = markOf(t.c, r); !ok {
		return Mark{}, false, toast(notCall)
	}
	return mk, true, nil
}

// said is the toast after a change of the marks: text, or why the daemon
// did not keep it, with a file console's notice the first time.
func (m *Marks) said(text string) tea.Cmd {
	if err := m.Err(); err != nil {
		return toastErr(fmt.Errorf("the daemon did not keep the change (%v): this console's queue may differ from the others'", err))
	}
	if n := m.LocalNotice(); n != "" {
		text += " · " + n
	}
	return toast(text)
}
