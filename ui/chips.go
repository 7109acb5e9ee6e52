package ui

import (
	"strings"

	"github.com/charmbracelet/bubbles/key"
	tea "github.com/charmbracelet/bubbletea"

	"github.com/mcptrail/mcptrail/themes"
)

// chipBar is the line under the header that shows the top screen's filter
// as chips. tab gives it the keys (from a screen that has no panes of its
// own); ←/→ choose a chip, x removes it, tab or esc give the keys back. The
// filter it edits is the top screen's (Common.Filter); the bar keeps only
// which chip has the focus.
type chipBar struct {
	focus int // index of the focused chip; -1: the screen has the keys
}

func newChipBar() chipBar { return chipBar{focus: -1} }

// focused reports whether the bar has the keys.
func (b *chipBar) focused() bool { return b.focus >= 0 }

// blur gives the keys back to the screen (a screen opened or closed).
func (b *chipBar) blur() { b.focus = -1 }

// focusFirst takes the keys, on the first chip; with no chips it says how
// to add one.
func (b *chipBar) focusFirst(f Filter) tea.Cmd {
	if len(f.Chips()) == 0 {
		return toast("no filter chips to focus: f adds a filter")
	}
	b.focus = 0
	return nil
}

// Update takes a key while the bar has the focus. It reports false for a
// key that is not the bar's: the focus goes back to the screen, which
// takes that key.
func (b *chipBar) Update(k *KeyMap, msg tea.KeyMsg, f *Filter) (tea.Cmd, bool) {
	chips := f.Chips()
	switch {
	case key.Matches(msg, k.ChipLeft):
		b.focus = max(0, b.focus-1)
		return nil, true
	case key.Matches(msg, k.ChipRight):
		b.focus = min(len(chips)-1, b.focus+1)
		return nil, true
	case key.Matches(msg, k.Unset):
		if b.focus < len(chips) {
			ch := chips[b.focus]
			*f, _ = f.With(ch.Key, "")
			if n := len(f.Chips()); n == 0 {
				b.focus = -1
			} else {
				b.focus = min(b.focus, n-1)
			}
			return tea.Batch(filterChanged, toast("removed filter "+ch.String())), true
		}
	case key.Matches(msg, k.Tab), key.Matches(msg, k.Back):
		b.focus = -1
		return nil, true
	}
	b.focus = -1
	return nil, false
}

// ShortHelp is the hint bar while the bar has the keys.
func (b *chipBar) ShortHelp(k *KeyMap) []key.Binding { return k.chipHelp() }

// View is the chip line. Values come from the record (a chip applied from
// search), so they are shown with their controls visible.
func (b *chipBar) View(st *themes.Styles, f Filter) string {
	chips := f.Chips()
	if len(chips) == 0 {
		return st.Muted.Render(" no filters · f filter · / search · ? help")
	}
	parts := []string{" filters:"}
	for i, ch := range chips {
		style := st.Chip
		text := show(ch.String()) + " ×"
		if i == b.focus {
			style = st.ChipFocused
			text = themes.SelectedGlyph + text
		}
		parts = append(parts, style.Render(text))
	}
	return strings.Join(parts, " ")
}

// dropLast removes the last chip: backspace on an empty filter line.
func dropLast(f *Filter) bool {
	chips := f.Chips()
	if len(chips) == 0 {
		return false
	}
	*f, _ = f.With(chips[len(chips)-1].Key, "")
	return true
}
