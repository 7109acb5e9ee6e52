package ui

import (
	"github.com/charmbracelet/bubbles/key"
	tea "github.com/charmbracelet/bubbletea"
)

// listNav is the selection and scroll offset of a list of n rows shown in
// height lines.
type listNav struct {
	sel, top, height int
}

func (l *listNav) clamp(n int) {
	if l.height < 1 {
		l.height = 1
	}
	l.sel = max(0, min(l.sel, n-1))
	if l.sel < l.top {
		l.top = l.sel
	}
	if l.sel >= l.top+l.height {
		l.top = l.sel - l.height + 1
	}
	l.top = max(0, min(l.top, n-l.height))
}

// handle applies a movement key; it reports whether the key moved.
func (l *listNav) handle(k *KeyMap, msg tea.KeyMsg, n int) bool {
	switch {
	case key.Matches(msg, k.Up):
		l.sel--
	case key.Matches(msg, k.Down):
		l.sel++
	case key.Matches(msg, k.PageUp):
		l.sel -= l.height
		l.top -= l.height
	case key.Matches(msg, k.PageDown):
		l.sel += l.height
		l.top += l.height
	default:
		return false
	}
	l.clamp(n)
	return true
}

// visible is the half-open range of rows on screen.
func (l *listNav) visible(n int) (int, int) {
	return l.top, min(n, l.top+l.height)
}
