package ui

import (
	"fmt"

	"github.com/charmbracelet/bubbles/key"
	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/x/ansi"

	"github.com/mcptrail/mcptrail/themes"
)

// list is the console's list component: the rows a screen shows, the
// selection and scroll over them, the keys that move it and what it knows
// of its loads. Sessions, alerts, the queue's two lists, the plan's steps,
// the approval desk and search's results are lists; pagedList adds the
// store's pages and follow to it, and the timeline's sliding window is a
// list whose both ends can be read further (timelineScreen).
type list[T any] struct {
	rows []T
	nav  listNav
	keys listKeys
	loadState
	loaded  bool // a first page landed
	blurred bool // another pane has the keys: the selection is not drawn
}

func newList[T any](keys listKeys) list[T] { return list[T]{keys: keys} }

// selected is the row under the cursor, nil when the list is empty.
func (l *list[T]) selected() *T {
	if l.nav.sel >= 0 && l.nav.sel < len(l.rows) {
		return &l.rows[l.nav.sel]
	}
	return nil
}

// setHeight gives the list its room on screen.
func (l *list[T]) setHeight(h int) {
	l.nav.height = max(1, h)
	l.nav.clamp(len(l.rows))
}

// setRows replaces the rows, keeping the cursor where it can.
func (l *list[T]) setRows(rows []T) {
	l.rows = rows
	l.nav.clamp(len(rows))
}

// handle moves the cursor for a movement key (↑↓, page up/down, g, G);
// it reports whether the key was one.
func (l *list[T]) handle(msg tea.KeyMsg) bool {
	d, ok := l.keys.step(msg, l.nav.height)
	if !ok {
		return false
	}
	l.nav.move(d, len(l.rows))
	return true
}

// mergeTop folds the newest rows (follow) into the list: a row already
// held (same id) is replaced in place, the others go on top, and the
// cursor stays on the row it was on.
func mergeTop[T any, K comparable](l *list[T], fresh []T, id func(*T) K) {
	at := make(map[K]int, len(l.rows))
	for i := range l.rows {
		at[id(&l.rows[i])] = i
	}
	var added []T
	for _, f := range fresh {
		if i, ok := at[id(&f)]; ok {
			l.rows[i] = f
		} else {
			added = append(added, f)
		}
	}
	if len(added) > 0 {
		l.rows = append(added, l.rows...)
		if l.nav.sel > 0 {
			l.nav.sel += len(added) // keep the investigator on the same row
		}
	}
	l.nav.clamp(len(l.rows))
}

// table draws the visible rows under the columns; draw gives a row's
// cells and whether it is queued for reversal.
func (l *list[T]) table(st *themes.Styles, cols []column, widths []int, w int, draw func(r *T) ([]styledCell, bool)) []string {
	return l.lines(st, w, func(r *T) (string, bool) {
		cells, marked := draw(r)
		return tableLine(cols, widths, cells), marked
	})
}

// lines draws the visible rows, each a line that draw makes, w columns
// wide after the gutter.
func (l *list[T]) lines(st *themes.Styles, w int, draw func(r *T) (string, bool)) []string {
	lo, hi := l.nav.visible(len(l.rows))
	lines := make([]string, 0, hi-lo)
	for i := lo; i < hi; i++ {
		line, marked := draw(&l.rows[i])
		lines = append(lines, listRow(st, line, i == l.nav.sel && !l.blurred, marked, w))
	}
	return lines
}

// pending is whether the list waits for rows it cannot show yet: nothing
// landed, or a page is on its way to the bottom of the screen (when more
// says one can come).
func (l *list[T]) pending(more bool) bool {
	_, hi := l.nav.visible(len(l.rows))
	return !l.loaded || (l.busy && more && hi == len(l.rows))
}

// position is the status line's "noun i of n", + when more can be read.
func (l *list[T]) position(noun string, more bool) string {
	plus := ""
	if more {
		plus = "+"
	}
	return fmt.Sprintf("%s %d of %d%s", noun, min(l.nav.sel+1, len(l.rows)), len(l.rows), plus)
}

// Ways a page joins a paged list.
const (
	pageReset  = iota // replaces the rows (a reload)
	pageNext          // goes after them
	pageNewest        // follow: the newest rows, merged on top
	pageAll           // after them, to the end of the record (G)
)

// page is a paged list's read: rows after a cursor, the cursor of the
// page after them, and whether the store has more.
type page[T any, C comparable] struct {
	how  int
	rows []T
	next C
	more bool
}

// fetchFunc reads a page in a command. It holds copies of what it reads
// with (the source, the filter, the clock), never the Common, which only
// the program's goroutine touches. want is how many rows to find; 0: to
// the end.
type fetchFunc[T any, C comparable] func(how int, cursor C, want int) (page[T, C], error)

// pagedList is a list read from the store a page at a time, newest first:
// it reads on when the cursor nears the end and merges the newest rows on
// top while following. C is a row's id, which is also the cursor type.
type pagedList[T any, C comparable] struct {
	list[T]
	next   C
	more   bool
	bottom bool // G: read to the end, then select the last row
	rowID  func(*T) C
}

// newPaged is a paged list moved by keys, whose rows id tells apart.
func newPaged[T any, C comparable](keys listKeys, id func(*T) C) pagedList[T, C] {
	return pagedList[T, C]{list: newList[T](keys), rowID: id}
}

// read fetches a page for screen to, of the current generation.
func (l *pagedList[T, C]) read(to int, f fetchFunc[T, C], how int, cursor C, want int) tea.Cmd {
	if how != pageNewest {
		l.busy = true
	}
	gen := l.gen
	return func() tea.Msg {
		p, err := f(how, cursor, want)
		p.how = how
		return loaded[page[T, C]]{to: to, gen: gen, val: p, err: err}
	}
}

// reload starts a new generation from the first page.
func (l *pagedList[T, C]) reload(to int, f fetchFunc[T, C], want int) tea.Cmd {
	l.gen++
	var first C
	return l.read(to, f, pageReset, first, want)
}

// readOn reads the next page when the cursor nears the end.
func (l *pagedList[T, C]) readOn(to int, f fetchFunc[T, C], want int) tea.Cmd {
	if l.busy || !l.more || l.nav.sel < len(l.rows)-l.nav.height {
		return nil
	}
	return l.read(to, f, pageNext, l.next, want)
}

// toBottom is G on a list with more to read: read to the end, then select
// the last row.
func (l *pagedList[T, C]) toBottom(to int, f fetchFunc[T, C]) tea.Cmd {
	l.bottom = true
	return l.read(to, f, pageAll, l.next, 0)
}

// land applies a page; it reports whether it was of the current
// generation and read without error.
func (l *pagedList[T, C]) land(m loaded[page[T, C]]) bool {
	if !l.landed(m.gen, m.err) {
		return false
	}
	p := m.val
	switch p.how {
	case pageNewest:
		mergeTop(&l.list, p.rows, l.rowID)
		l.loaded = true
		return true
	case pageReset:
		l.rows, l.nav.sel, l.nav.top = p.rows, 0, 0
	default:
		l.rows = append(l.rows, p.rows...)
	}
	l.loaded, l.next, l.more = true, p.next, p.more
	if l.bottom && !l.more {
		l.bottom = false
		l.nav.sel = len(l.rows) - 1
	}
	l.nav.clamp(len(l.rows))
	return true
}

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

// move moves the selection d rows; a page's move scrolls the page too.
func (l *listNav) move(d, n int) {
	l.sel += d
	if d == l.height || d == -l.height {
		l.top += d
	}
	l.clamp(n)
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

// listKeys are a list's movement keys. Each list has its own: their
// help says what the ends of that list hold (oldest or newest).
type listKeys struct {
	Up, Down, PageUp, PageDown key.Binding
	Top, Bottom                key.Binding // g/G
}

// toEnd is a move past either end of any list, clamped to the end.
const toEnd = 1 << 40

// step is how far a movement key moves, in rows of a page of height.
func (k *listKeys) step(msg tea.KeyMsg, height int) (int, bool) {
	switch {
	case key.Matches(msg, k.Up):
		return -1, true
	case key.Matches(msg, k.Down):
		return 1, true
	case key.Matches(msg, k.PageUp):
		return -height, true
	case key.Matches(msg, k.PageDown):
		return height, true
	case key.Matches(msg, k.Top):
		return -toEnd, true
	case key.Matches(msg, k.Bottom):
		return toEnd, true
	}
	return 0, false
}

// help lists the keys in the `?` overlay.
func (k *listKeys) help() []key.Binding {
	return []key.Binding{k.Up, k.Down, k.PageUp, k.PageDown, k.Top, k.Bottom}
}

// newestFirst are the keys of a list that holds the newest rows on top:
// g and G say so.
func (k listKeys) newestFirst() listKeys {
	k.Top = key.NewBinding(key.WithKeys(k.Top.Keys()...), key.WithHelp("g", "newest (top)"))
	k.Bottom = key.NewBinding(key.WithKeys(k.Bottom.Keys()...), key.WithHelp("G", "oldest (bottom)"))
	return k
}
