package ui

import (
	"strings"
	"testing"

	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/lipgloss"

	"github.com/mcptrail/mcptrail/store"
	"github.com/mcptrail/mcptrail/themes"
)

// The timeline is a screen with a text search.
var _ textSearcher = (*timelineScreen)(nil)

// listHost is a screen that is not a timeline, with a text search: a
// selection and the jumps the search asked for.
type listHost struct {
	src   Source
	at    uint64
	jumps []uint64
}

func (h *listHost) searchScope() (Source, int, store.Query) { return h.src, 7, store.Query{} }
func (h *listHost) searchFrom() uint64                      { return h.at }
func (h *listHost) gotoSeq(a uint64) tea.Cmd {
	h.at = a
	h.jumps = append(h.jumps, a)
	return nil
}

// run runs cmd and the commands it batches, as the program would, and
// returns the messages that are not batches.
func run(cmd tea.Cmd) []tea.Msg {
	if cmd == nil {
		return nil
	}
	switch m := cmd().(type) {
	case tea.BatchMsg:
		var out []tea.Msg
		for _, c := range m {
			out = append(out, run(c)...)
		}
		return out
	case nil:
		return nil
	default:
		return []tea.Msg{m}
	}
}

// toasts are the notes among msgs.
func toasts(msgs []tea.Msg) []string {
	var out []string
	for _, m := range msgs {
		if t, ok := m.(toastMsg); ok {
			out = append(out, t.text)
		}
	}
	return out
}

// TestTextSearchRunsOnAnyHost: the search is a component, not the
// timeline's code: on a screen of another kind it reads the real store in
// chunks, jumps to the first hit, steps with n, counts in its view and
// wraps around at the end.
func TestTextSearchRunsOnAnyHost(t *testing.T) {
	f := newFixture(t)
	in := demoRecord(f)
	h := &listHost{src: f.st}
	var s textSearch
	var msgs []tea.Msg
	for _, m := range run(s.start(h, "CONFIG.yaml")) {
		hits, ok := m.(loaded[textHits])
		if !ok {
			t.Fatalf("the scan sent %T", m)
		}
		if hits.to != 7 {
			t.Fatalf("the scan's answer goes to screen %d, want the host's 7", hits.to)
		}
		msgs = append(msgs, run(s.Update(h, hits))...)
	}
	// The triage session's read_file of config.yaml, then the two writes.
	if len(s.hits) != 3 || s.hits[1] != in.writeV1 || s.hits[2] != in.writeV2 {
		t.Fatalf("hits %v, want the read and the writes %d, %d", s.hits, in.writeV1, in.writeV2)
	}
	if len(h.jumps) != 1 || h.jumps[0] != s.hits[0] {
		t.Fatalf("jumps %v, want the first hit %d", h.jumps, s.hits[0])
	}
	if got := s.View(h.at); got != `hit 1/3 "CONFIG.yaml"` {
		t.Fatalf("view %q", got)
	}
	run(s.next(h, true))
	run(s.next(h, true))
	if h.at != in.writeV2 || !s.isHit(in.writeV2) || s.isHit(in.toolErr) {
		t.Fatalf("after n n at %d, want %d", h.at, in.writeV2)
	}
	msgs = run(s.next(h, true))
	if h.at != s.hits[0] || !strings.Contains(strings.Join(toasts(msgs), "|"), "search wrapped around") {
		t.Fatalf("n past the last hit: at %d, notes %q; want the first hit, said", h.at, toasts(msgs))
	}
	run(s.next(h, false))
	if h.at != in.writeV2 {
		t.Fatalf("N from the first hit: at %d, want the last %d", h.at, in.writeV2)
	}

	var none textSearch
	for _, m := range run(none.start(h, "nowhere-at-all")) {
		msgs = run(none.Update(h, m.(loaded[textHits])))
	}
	if got := toasts(msgs); len(got) != 1 || !strings.Contains(got[0], `hold "nowhere-at-all"`) {
		t.Fatalf("a search with no hit said %q", got)
	}
}

// TestChipBar: the chip line takes the keys on tab, chooses and removes
// chips, and gives every other key back to the screen.
func TestChipBar(t *testing.T) {
	k := DefaultKeyMap()
	st := themes.Get(themes.Dark).Build(lipgloss.NewRenderer(nil))
	b := newChipBar()
	var f Filter
	if cmd := b.focusFirst(f); b.focused() || len(toasts(run(cmd))) != 1 {
		t.Fatal("tab with no chips took the focus, or said nothing")
	}
	f, _ = ParseFilter("agent:bot tool:write_file since:3h", f)
	if b.focusFirst(f); !b.focused() {
		t.Fatal("tab with chips did not take the focus")
	}
	right := tea.KeyMsg{Type: tea.KeyRight}
	for range 5 {
		if _, ok := b.Update(k, right, &f); !ok {
			t.Fatal("→ is not the bar's")
		}
	}
	if !strings.Contains(b.View(st, f), themes.SelectedGlyph+"since:3h") {
		t.Fatalf("→ past the end does not stay on the last chip: %q", b.View(st, f))
	}
	cmd, ok := b.Update(k, tea.KeyMsg{Type: tea.KeyRunes, Runes: []rune{'x'}}, &f)
	if !ok || f.Since != "" || f.String() != "agent:bot tool:write_file" {
		t.Fatalf("x left %q", f.String())
	}
	if got := toasts(run(cmd)); len(got) != 1 || got[0] != "removed filter since:3h" {
		t.Fatalf("x said %q", got)
	}
	if !strings.Contains(b.View(st, f), themes.SelectedGlyph+"tool:write_file") {
		t.Fatalf("the focus did not move to the chip that is now last: %q", b.View(st, f))
	}
	if _, ok := b.Update(k, tea.KeyMsg{Type: tea.KeyRunes, Runes: []rune{'j'}}, &f); ok || b.focused() {
		t.Fatal("j stayed with the chip bar")
	}
}

// TestLineEditors: each mode of the bottom line keeps its own keys and
// status line: backspace on an empty filter line drops the last chip, a
// time T cannot read keeps the line open and says why, tab completes a
// command.
func TestLineEditors(t *testing.T) {
	h := demoTimeline(t)
	h.keys("f", "tool:write_file outcome:ok", "enter")
	h.waitFor("tool:write_file ×")
	h.keys("f")
	h.waitFor("fields: agent tool")
	h.keys("backspace", "backspace", "backspace", "backspace", "backspace", "backspace",
		"backspace", "backspace", "backspace", "backspace", "backspace", "backspace",
		"backspace", "backspace", "backspace", "backspace", "backspace", "backspace",
		"backspace", "backspace", "backspace", "backspace", "backspace", "backspace",
		"backspace", "backspace", "backspace", "backspace") // the prefilled text, then one chip
	h.keys("esc", "T", "teatime", "enter")
	h.waitFor(`time "teatime": want 03:15`)
	h.keys("backspace")
	h.waitFor("03:15 (today), -10m (ago)")
	h.keys("esc", ":", "al", "tab")
	h.waitFor(":alerts — the alerts") // the word completed, and what it will do
	h.keys("esc")
	h.final()
	if h.app.c.Filter.String() != "tool:write_file" {
		t.Fatalf("filter %q after backspace on the empty line, want the first chip left", h.app.c.Filter.String())
	}
}
