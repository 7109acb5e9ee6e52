package ui

import (
	"github.com/charmbracelet/bubbles/key"
	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/x/ansi"

	"github.com/mcptrail/mcptrail/themes"
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

// listRow puts a table line in a list: the gutter, and for the selected
// row the selection style over the whole width, gutter included. The
// cells' own styles are dropped from that row: each of them ends in a
// reset, which would end the selection's background at the first styled
// cell (and a muted cell on the selection's grey would not read).
func listRow(st *themes.Styles, line string, selected, marked bool, w int) string {
	if selected {
		return selectedLine(st, gutter(true, marked)+ansi.Strip(line), w+2)
	}
	return gutter(selected, marked) + line
}

// selectedLine draws plain text as the selected row, w columns wide.
func selectedLine(st *themes.Styles, plain string, w int) string {
	return st.Selected.Render(fit(plain, w))
}

// listBusy is the line under a list while it cannot show all it has: the
// load failed or a page is on its way; "" otherwise.
func listBusy(st *themes.Styles, err error, loading bool) string {
	switch {
	case err != nil:
		return "  " + st.Error.Render("error: "+show(err.Error()))
	case loading:
		return "  " + st.Muted.Render("loading…")
	}
	return ""
}

// listFooter is listBusy, else for an empty list whether the filter or
// the record is the reason (none says the latter for this list's noun).
func listFooter(c *Common, err error, loading bool, n int, noun, none string) string {
	st := c.Styles
	if b := listBusy(st, err, loading); b != "" || n > 0 {
		return b
	}
	if !c.Filter.Empty() {
		return "  " + st.Muted.Render("no "+noun+" match "+c.Filter.String()+" — f to change the filter, tab then x to remove a chip")
	}
	return "  " + st.Muted.Render(none)
}

// loadState is what a paged list knows of its loads. gen counts reloads,
// so that a page asked for before one is dropped when it lands.
type loadState struct {
	gen  int
	busy bool
	err  error
}

// landed records a page's outcome; it reports whether the page is of the
// current generation and loaded without error, so is to be applied.
func (l *loadState) landed(gen int, err error) bool {
	if gen != l.gen {
		return false
	}
	l.busy, l.err = false, err
	return err == nil
}
