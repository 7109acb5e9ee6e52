package ui

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
	"sync/atomic"
	"time"

	"github.com/aymanbagabas/go-osc52/v2"
	"github.com/charmbracelet/bubbles/help"
	"github.com/charmbracelet/bubbles/key"
	"github.com/charmbracelet/bubbles/textinput"
	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/lipgloss"

	"github.com/mcptrail/mcptrail/internal/termsafe"
	"github.com/mcptrail/mcptrail/rollback"
	"github.com/mcptrail/mcptrail/themes"
)

// Options configure a console session.
type Options struct {
	Source      Source
	SourceLabel string   // shown in the header: where the record comes from
	Identity    Identity // who is at the console
	Theme       string   // "" picks mono under NO_COLOR, else dark
	NoColor     bool
	// Renderer renders this session's styles. Over SSH it is made for the
	// client's terminal (its TERM), never the daemon's; nil means lipgloss's
	// default renderer (the local terminal).
	Renderer *lipgloss.Renderer
	// Clipboard receives OSC 52 sequences for `y`: the terminal the program
	// writes to. Writes must not interleave with the renderer's; an
	// *os.File and a mutex-guarded writer both qualify.
	Clipboard io.Writer
	Term      string
	Now       func() time.Time
	Location  *time.Location
	// OnAction, when set, hears every action the investigator takes that
	// is more than reading (mark, unmark, queue, copy), for the daemon's log.
	OnAction    func(action, detail string)
	PageSize    int           // events per store query (default 200)
	FollowEvery time.Duration // follow-mode poll interval (default 1s)

	// Rollback plans and applies reversals (the daemon's service); nil on
	// an evidence file, where r only queues marks.
	Rollback Rollback
	// Rules name the resource a call acts on for `f path:` (the rollback
	// rules' keys); nil falls back to the key arguments (path, uri, …).
	Rules *rollback.RuleSet
	// Approvals is the daemon's approval desk (deskScreen); nil: none.
	Approvals Approvals
}

// Input modes of the bottom line.
const (
	modeNone = iota
	modeSearch
	modeFilter
	modeGoTime
	modeText    // `/` on a timeline: free text in arguments and results
	modeCommand // `:`
)

// App is the console: a stack of screens under a header, a filter-chip
// line, a status line and a hint bar.
type App struct {
	c     *Common
	stack []screen
	help  help.Model

	showHelp  bool
	mode      int
	input     textinput.Model
	searchSeq int
	results   list[candidate]
	// resultsSeq is the search that results answer; an enter typed before
	// the answer to the latest keystroke acts on that answer when it comes
	// (enterPending), not on an older list still on the screen.
	resultsSeq   int
	enterPending bool
	chips        chipBar

	toast    string
	toastErr bool
	toastID  int
	// confirm is the question `q` asks at the top screen when quitting
	// would leave work behind (askQuit); "" when none is asked.
	confirm string
	// filters are the filters of the screens under the top one, saved
	// when a screen was opened over them: a filter belongs to the screen
	// it was set on (c.Filter is the top screen's).
	filters []Filter

	vocab       *vocab
	followGen   int
	followEvery time.Duration
	width       int
	height      int
	quitting    bool

	heldCount int    // calls held for approval (watchApprovals)
	heldSeen  uint64 // the newest approval_requested the bell rang for
}

// New makes a console on opts.Source.
func New(opts Options) *App {
	if opts.Renderer == nil {
		opts.Renderer = lipgloss.DefaultRenderer()
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Location == nil {
		opts.Location = time.Local
	}
	if opts.PageSize <= 0 {
		opts.PageSize = 200
	}
	if opts.FollowEvery <= 0 {
		opts.FollowEvery = time.Second
	}
	if opts.Clipboard == nil {
		opts.Clipboard = os.Stdout
	}
	if opts.Identity.Role == "" {
		opts.Identity.Role = RoleViewer
	}
	theme := opts.Theme
	if !themes.Valid(theme) || opts.NoColor {
		theme = themes.Default(opts.NoColor)
	}
	if opts.NoColor {
		attributesOnly(opts.Renderer)
	}
	c := &Common{
		Renderer: opts.Renderer, Keys: DefaultKeyMap(),
		Src: opts.Source, SourceLabel: opts.SourceLabel, Identity: opts.Identity,
		Clipboard: opts.Clipboard, Term: opts.Term,
		Now: opts.Now, Loc: opts.Location, PageSize: opts.PageSize, onAction: opts.OnAction,
		Marks: newMarks(markKeeper(opts.Rollback)), ids: new(atomic.Int64), Rollback: opts.Rollback, Rules: opts.Rules, NoColor: opts.NoColor,
		Approvals: opts.Approvals, started: opts.Now(),
	}
	c.setTheme(theme)
	in := textinput.New()
	in.Prompt = ""
	in.CharLimit = 256
	a := &App{c: c, help: help.New(), input: in, chips: newChipBar(), vocab: newVocab(), followEvery: opts.FollowEvery, results: newList[candidate](c.Keys.listKeys)}
	a.stack = []screen{newSessions(c)}
	a.styleHelp()
	return a
}

// Common exposes the shared context (tests).
func (a *App) Common() *Common { return a.c }

func (a *App) styleHelp() {
	st := a.c.Styles
	a.help.Styles.ShortKey = st.Key
	a.help.Styles.FullKey = st.Key
	a.help.Styles.ShortDesc = st.Muted
	a.help.Styles.FullDesc = st.Text
	a.help.Styles.ShortSeparator = st.Muted
	a.help.Styles.FullSeparator = st.Muted
	a.help.Styles.Ellipsis = st.Muted
	a.input.PromptStyle = st.Accent
	a.input.TextStyle = st.Text
	a.input.Cursor.Style = st.Accent
}

func (a *App) Init() tea.Cmd {
	return tea.Batch(a.top().Init(), sampleVocab(a.c.Src), a.watchApprovals())
}

func (a *App) top() screen { return a.stack[len(a.stack)-1] }

// Layout: two header lines, the chip line, the body, the status line and
// the hint bar.
const chrome = 5

func (a *App) bodySize() (int, int) { return a.width, max(1, a.height-chrome) }

func (a *App) Update(msg tea.Msg) (tea.Model, tea.Cmd) {
	switch msg := msg.(type) {
	case tea.WindowSizeMsg:
		widthChanged := msg.Width != a.width
		a.width, a.height = msg.Width, msg.Height
		a.help.Width = msg.Width
		w, h := a.bodySize()
		a.c.Width, a.c.Height = w, h
		var cmds []tea.Cmd
		for _, s := range a.stack {
			s.SetSize(w, h)
			if r, ok := s.(relayouter); ok && widthChanged {
				cmds = append(cmds, r.relayout())
			}
		}
		return a, tea.Batch(cmds...)
	case tea.KeyMsg:
		if a.mode == modeNone && msg.Type == tea.KeyRunes && len(msg.Runes) > 1 && !msg.Paste {
			// Bubble Tea v1 delivers runes that arrive together (a held
			// key over SSH, tmux send-keys) as one message: take them one
			// at a time, as they were typed.
			var cmds []tea.Cmd
			for _, r := range msg.Runes {
				_, cmd := a.key(tea.KeyMsg{Type: tea.KeyRunes, Runes: []rune{r}, Alt: msg.Alt})
				cmds = append(cmds, cmd)
			}
			return a, tea.Batch(cmds...)
		}
		return a.key(msg)
	case pushMsg:
		w, h := a.bodySize()
		msg.s.SetSize(w, h)
		a.stack = append(a.stack, msg.s)
		a.filters = append(a.filters, a.c.Filter)
		a.c.Filter = Filter{}
		a.chips.blur()
		return a, msg.s.Init()
	case popMsg:
		return a, a.pop()
	case quitCheck:
		return a, a.quitChecked(msg)
	case toastMsg:
		a.toastID++
		a.toast, a.toastErr = show(msg.text), msg.err // may quote the record or an error about it
		id := a.toastID
		return a, tea.Tick(6*time.Second, func(time.Time) tea.Msg { return clearToast{id} })
	case approvalsTick:
		_, cmd := a.top().Update(msg)
		return a, tea.Batch(cmd, a.watchApprovals())
	case clearToast:
		if msg.id == a.toastID {
			a.toast = ""
		}
		return a, nil
	case filterChangedMsg:
		_, cmd := a.top().Update(msg) // the filter is the top screen's alone
		return a, cmd
	case searchResults:
		if msg.seq == a.searchSeq {
			a.results.rows, a.results.nav.sel, a.resultsSeq = msg.matches, 0, msg.seq
			if a.enterPending && a.mode == modeSearch {
				return a, a.submit()
			}
		}
		return a, nil
	case vocabSample:
		for i := range msg.events {
			a.vocab.addEvent(&msg.events[i])
		}
		return a, nil
	case marksAdded:
		return a, a.queued(msg)
	case yanked:
		if msg.err != nil {
			return a, toastErr(msg.err)
		}
		return a, toast(msg.text)
	case followTickMsg:
		if msg.gen != a.followGen || !a.c.Follow {
			return a, nil
		}
		_, cmd := a.top().Update(msg)
		return a, tea.Batch(cmd, a.tick())
	case routedMsg:
		a.learn(msg)
		for _, s := range a.stack {
			if s.id() == msg.target() {
				_, cmd := s.Update(msg)
				return a, cmd
			}
		}
		return a, nil // the screen was closed
	}
	_, cmd := a.top().Update(msg)
	return a, cmd
}

type clearToast struct{ id int }

// learn feeds search's vocabulary from what screens loaded.
func (a *App) learn(msg tea.Msg) {
	switch m := msg.(type) {
	case loaded[sessionsPage]:
		for i := range m.val.rows {
			a.vocab.addSession(&m.val.rows[i])
		}
	case loaded[tlPage]:
		for i := range m.val.events {
			a.vocab.addEvent(&m.val.events[i])
		}
	}
}

func (a *App) tick() tea.Cmd {
	gen := a.followGen
	return tea.Tick(a.followEvery, func(time.Time) tea.Msg { return followTickMsg{gen} })
}

func (a *App) key(msg tea.KeyMsg) (tea.Model, tea.Cmd) {
	k := a.c.Keys
	if a.mode != modeNone {
		return a.inputKey(msg)
	}
	if key.Matches(msg, k.ForceQuit) {
		a.quitting = true
		return a, tea.Quit
	}
	a.toast, a.toastErr = "", false // a note answers the last key; the next one ends it
	if a.confirm != "" {
		return a, a.confirmed(msg)
	}
	if a.showHelp {
		a.showHelp = false // any key closes the help, q included
		return a, nil
	}
	if a.chips.focused() {
		if cmd, ok := a.chips.Update(k, msg, &a.c.Filter); ok {
			return a, cmd
		}
	}
	top := a.top()
	if m, ok := top.(modal); ok && m.modal() {
		_, cmd := top.Update(msg) // a confirmation prompt takes every key
		return a, cmd
	}
	switch {
	case key.Matches(msg, k.Quit):
		if len(a.stack) > 1 {
			return a, a.pop() // as tig does: q closes the screen on top
		}
		return a, a.askQuit()
	case key.Matches(msg, k.Help):
		a.showHelp = true
		return a, nil
	case key.Matches(msg, k.Command):
		return a, a.openInput(modeCommand, ":", "")
	case key.Matches(msg, k.Search):
		if ts, ok := top.(textSearcher); ok { // free text in the record's bodies
			return a, a.openInput(modeText, "/", ts.search().query)
		}
		return a, a.openInput(modeSearch, "/ ", "")
	case key.Matches(msg, k.NextHit), key.Matches(msg, k.PrevHit):
		if ts, ok := top.(textSearcher); ok {
			return a, ts.search().next(ts, key.Matches(msg, k.NextHit))
		}
	case key.Matches(msg, k.Filter):
		// The line shows the chips' values visibly (the text input would
		// drop control characters, not bidi overrides); a value from the
		// record that needed it no longer matches once edited here.
		v := show(a.c.Filter.String())
		if v != "" {
			v += " "
		}
		return a, a.openInput(modeFilter, "filter › ", v)
	case key.Matches(msg, k.GoTime):
		if _, ok := top.(timeJumper); ok {
			return a, a.openInput(modeGoTime, "go to time › ", "")
		}
	case key.Matches(msg, k.Follow):
		return a, a.toggleFollow(top)
	case key.Matches(msg, k.Theme):
		return a, a.nextTheme()
	case key.Matches(msg, k.Yank):
		return a, a.yank(top)
	case key.Matches(msg, k.Alerts):
		return a, openOnce(a, newAlerts)
	case key.Matches(msg, k.Desk):
		return a, openOnce(a, newDesk)
	case key.Matches(msg, k.Queue):
		return a, openOnce(a, newQueue)
	case key.Matches(msg, k.Tab):
		if t, ok := top.(tabber); ok && t.tabs() {
			_, cmd := top.Update(msg) // the screen's own panes
			return a, cmd
		}
		return a, a.chips.focusFirst(a.c.Filter)
	case key.Matches(msg, k.Back):
		return a, a.pop()
	}
	_, cmd := top.Update(msg)
	return a, cmd
}

func filterChanged() tea.Msg { return filterChangedMsg{} }

// toggleFollow is F: following starts at the tail of the screen on top.
func (a *App) toggleFollow(top screen) tea.Cmd {
	a.c.Follow = !a.c.Follow
	a.followGen++
	if !a.c.Follow {
		return toast("follow off")
	}
	if f, ok := top.(follower); ok {
		f.resumeFollow()
	}
	gen := a.followGen
	return tea.Batch(toast("following: new events appear as they are recorded"),
		func() tea.Msg { return followTickMsg{gen} })
}

// nextTheme is t: the next palette, for every screen of the stack.
func (a *App) nextTheme() tea.Cmd {
	if a.c.NoColor {
		return toast("NO_COLOR is set: the console keeps the " + a.c.Theme + " theme (attributes, no colours)")
	}
	a.c.setTheme(themes.Next(a.c.Theme))
	a.styleHelp()
	var cmds []tea.Cmd
	for _, s := range a.stack {
		_, cmd := s.Update(themeChangedMsg{})
		cmds = append(cmds, cmd)
	}
	return tea.Batch(append(cmds, toast("theme "+a.c.Theme))...)
}

// openOnce opens a screen of type S unless it is the one on top already
// (`a` on the alerts, `R` on the queue).
func openOnce[S screen](a *App, open func(*Common) S) tea.Cmd {
	if _, ok := a.top().(S); ok {
		return nil
	}
	return push(open(a.c))
}

// yank is `y`: what the screen on top has selected, to the clipboard.
func (a *App) yank(top screen) tea.Cmd {
	if y, ok := top.(textYanker); ok {
		what, text := y.yankText()
		if text == "" {
			return toast("nothing selected to copy")
		}
		a.c.audit("copy", what)
		return yankText(a.c, what, text)
	}
	y, ok := top.(recordYanker)
	if !ok || len(y.yankSeqs()) == 0 {
		return toast("nothing selected to copy")
	}
	a.c.audit("copy", "records "+joinSeqs(y.yankSeqs()))
	return yank(a.c, y.yankSeqs())
}

// pop closes the screen on top and gives the one under it back its
// filter; that screen hears it is shown again, since what was done above
// it (a plan applied, a session recorded) may change what it shows.
func (a *App) pop() tea.Cmd {
	if len(a.stack) <= 1 {
		return nil
	}
	a.stack = a.stack[:len(a.stack)-1]
	n := len(a.filters) - 1
	a.c.Filter, a.filters = a.filters[n], a.filters[:n]
	a.chips.blur()
	top := a.top()
	_, cmd := top.Update(shownAgainMsg{}) // a plan applied above changes what it shows (the timeline's ↺ flags, the queue's plans)
	return cmd
}

func (a *App) openInput(mode int, prompt, value string) tea.Cmd {
	a.mode = mode
	a.input.Prompt = prompt
	a.input.SetValue(value)
	a.input.CursorEnd()
	a.results.rows, a.results.nav.sel, a.enterPending = nil, 0, false
	cmds := []tea.Cmd{a.input.Focus()}
	if mode == modeSearch {
		a.searchSeq++
		cmds = append(cmds, runSearch(a.searchSeq, "", a.vocab.list, 200))
	}
	return tea.Batch(cmds...)
}

func (a *App) closeInput() {
	a.mode = modeNone
	a.input.Blur()
	a.results.rows, a.enterPending = nil, false
}

func (a *App) inputKey(msg tea.KeyMsg) (tea.Model, tea.Cmd) {
	if a.toastErr && msg.Type != tea.KeyEnter {
		a.toast, a.toastErr = "", false // the user is fixing it
	}
	if ed := a.editor(); ed != nil {
		if cmd, ok := ed.Update(a, msg); ok {
			return a, cmd
		}
	}
	switch msg.Type {
	case tea.KeyEsc, tea.KeyCtrlC:
		a.closeInput()
		return a, nil
	case tea.KeyEnter:
		return a, a.submit()
	case tea.KeyUp, tea.KeyCtrlP:
		if a.mode == modeSearch {
			a.results.nav.move(-1, len(a.results.rows))
			return a, nil
		}
	case tea.KeyTab, tea.KeyDown, tea.KeyCtrlN:
		if a.mode == modeSearch {
			a.results.nav.move(1, len(a.results.rows))
			return a, nil
		}
	}
	before := a.input.Value()
	var cmd tea.Cmd
	a.input, cmd = a.input.Update(msg)
	if a.mode == modeSearch && a.input.Value() != before {
		a.searchSeq++
		return a, tea.Batch(cmd, runSearch(a.searchSeq, a.input.Value(), a.vocab.list, 200))
	}
	return a, cmd
}

func (a *App) submit() tea.Cmd {
	value := strings.TrimSpace(a.input.Value())
	if ed := a.editor(); ed != nil {
		return ed.submit(a, value)
	}
	switch a.mode {
	case modeSearch:
		if a.enterPending = a.resultsSeq != a.searchSeq; a.enterPending {
			return nil // the answer to what was typed last is on its way
		}
		sel := a.results.selected()
		a.closeInput()
		if sel == nil {
			return nil
		}
		c := *sel
		if c.kind == "session" && c.sess != nil {
			return push(newTimeline(a.c, c.sess))
		}
		f, err := a.c.Filter.With(c.kind, c.value)
		if err != nil {
			return toastErr(err)
		}
		a.c.Filter = f
		return tea.Batch(filterChanged, toast("filter "+c.kind+":"+c.value+" (tab then x removes it)"))
	}
	a.closeInput()
	return nil
}

// queued adds calls to the rollback queue and shows it.
func (a *App) queued(m marksAdded) tea.Cmd {
	if m.err != nil {
		return toastErr(m.err)
	}
	n := a.c.Marks.Add(m.marks...)
	a.c.audit("queue", fmt.Sprintf("%s queued for reversal (%d new); no plan built", counted(a.c.Marks.Len(), "call", "calls"), n))
	total := a.c.Marks.Len()
	text := fmt.Sprintf("%d queued", total)
	if n > 0 && n != total {
		text += fmt.Sprintf(" (%d new)", n)
	}
	text += " · plans need the daemon (the queue says why)" // short: it must fit 80 columns
	if m.note != "" {
		text += " (" + m.note + ")"
	}
	cmds := []tea.Cmd{toast(text)}
	return tea.Batch(append(cmds, openOnce(a, newQueue))...)
}

type yanked struct {
	text string
	err  error
}

// yank copies records as JSON lines (the export format) to the terminal's
// clipboard with OSC 52, which works over SSH where xsel cannot.
func yank(c *Common, seqs []uint64) tea.Cmd {
	src, w, term := c.Src, c.Clipboard, c.Term
	return func() tea.Msg {
		var buf bytes.Buffer
		// JSON escapes C0 controls; termsafe.JSON also C1 and bidi ones,
		// which JSON allows raw: the copy will be pasted into a terminal.
		enc := json.NewEncoder(termsafe.JSONWriter{W: &buf})
		enc.SetEscapeHTML(false)
		for _, seq := range seqs {
			ev, err := src.Get(seq)
			if err != nil {
				return yanked{err: err}
			}
			if err := enc.Encode(ev); err != nil {
				return yanked{err: err}
			}
		}
		if err := clip(w, term, buf.String()); err != nil {
			return yanked{err: err}
		}
		what := fmt.Sprintf("record %d", seqs[0])
		if len(seqs) > 1 {
			what = fmt.Sprintf("%d records (seq %s)", len(seqs), joinSeqs(seqs))
		}
		text := fmt.Sprintf("copied %s as JSON lines (%d bytes) via OSC 52", what, buf.Len())
		if buf.Len() > 100_000 {
			text += " — large: some terminals cap OSC 52"
		}
		return yanked{text: text}
	}
}

// clip writes text to the terminal's clipboard (OSC 52).
func clip(w io.Writer, term, text string) error {
	seq := osc52.New(text)
	if strings.HasPrefix(term, "screen") {
		seq = seq.Screen() // GNU screen passes OSC 52 only inside DCS
	}
	if _, err := seq.WriteTo(w); err != nil {
		return fmt.Errorf("copy: %w", err)
	}
	return nil
}

// yankText copies text that is not a record (a session's summary);
// what names it. text must be terminal-safe already.
func yankText(c *Common, what, text string) tea.Cmd {
	w, term := c.Clipboard, c.Term
	return func() tea.Msg {
		if err := clip(w, term, text); err != nil {
			return yanked{err: err}
		}
		return yanked{text: fmt.Sprintf("copied %s (%d bytes) via OSC 52", what, len(text))}
	}
}

func joinSeqs(seqs []uint64) string {
	parts := make([]string, len(seqs))
	for i, s := range seqs {
		parts[i] = fmt.Sprint(s)
	}
	return strings.Join(parts, ", ")
}

// View draws the frame. It only lays out what Update prepared.
func (a *App) View() string {
	if a.quitting || a.width == 0 {
		return ""
	}
	st := a.c.Styles
	w := a.width
	_, bodyH := a.bodySize()

	line1, line2 := a.header(w)

	chipLine := a.chips.View(st, a.c.Filter)

	// Body.
	var body string
	switch {
	case a.showHelp:
		body = a.helpView(bodyH)
	case a.mode == modeSearch:
		body = a.searchView(bodyH)
	default:
		body = a.top().View()
	}

	// Status and hint bar.
	status := ""
	if s, ok := a.top().(statusLiner); ok {
		status = st.Muted.Render(" " + show(s.Status()))
	}
	if a.toast != "" {
		if a.toastErr {
			status = " " + st.Error.Render(a.toast)
		} else {
			status = " " + st.Accent.Render(a.toast)
		}
	}
	if a.confirm != "" {
		status = " " + st.Error.Render(a.confirm) // the question waits for its answer
	}
	var hint string
	showErr := a.toast != "" && a.toastErr
	switch ed := a.editor(); {
	case ed != nil:
		if !showErr {
			status = st.Muted.Render(" " + ed.View(a.input.Value()))
		}
		hint = " " + a.input.View()
	case a.mode == modeSearch:
		status = st.Muted.Render(" agents, tools, tasks, upstreams, sessions — ↑/↓ choose, enter applies, esc closes")
		hint = " " + a.input.View()
	default:
		if a.chips.focused() {
			hint = " " + a.help.ShortHelpView(a.chips.ShortHelp(a.c.Keys))
		} else {
			hint = " " + a.help.ShortHelpView(a.c.Keys.forRole(a.c.Identity, a.top().ShortHelp()))
		}
	}
	lines := []string{line1, line2, fit(chipLine, w), body, fit(status, w), fit(hint, w)}
	return strings.Join(lines, "\n")
}

// inputHelp is the status line over an input: what it takes.
func (a *App) inputHelp() string {
	switch a.mode {
	case modeFilter:
		return "fields: " + strings.Join(filterKeys, " ") + " — e.g. tool:write_file since:3h path:app.yaml; -tool drops one"
	case modeGoTime:
		return "03:15 (today), -10m (ago) or 2026-01-02T03:15:00Z; enter jumps, esc cancels"
	case modeSearch:
		return "agents, tools, tasks, upstreams, sessions — ↑/↓ choose, enter applies, esc closes"
	case modeText:
		return "text in the calls' arguments and results (a path fragment: app.yaml); enter searches, n/N next/previous hit"
	case modeCommand:
		return commandHelp(a.input.Value())
	}
	return ""
}

func (a *App) helpView(h int) string {
	st := a.c.Styles
	top := a.top()
	var lines []string
	lines = append(lines, st.Section.Render(" Keys — "+top.Title()))
	groups := top.FullHelp()
	for i := range groups {
		groups[i] = a.c.Keys.forRole(a.c.Identity, groups[i])
	}
	full := a.help.FullHelpView(groups)
	for _, l := range strings.Split(full, "\n") {
		lines = append(lines, " "+l)
	}
	lines = append(lines, "",
		" "+st.Section.Render("Glyphs")+" "+themes.SelectedGlyph+" selected  "+themes.MarkGlyph+" queued for reversal",
		" "+st.Section.Render("Flags ")+" W write  X destructive  ! alert  ↺ reverted",
		" "+st.Muted.Render("Filter chips: tab focuses them, ←/→ choose, x removes. Any key closes this help."))
	for i := range lines {
		lines[i] = fit(lines[i], a.width)
	}
	return block(lines, h)
}

func (a *App) searchView(h int) string {
	st := a.c.Styles
	lines := []string{st.Section.Render(" Search") + st.Muted.Render(fmt.Sprintf("  %d known", len(a.vocab.list)))}
	if len(a.results.rows) == 0 {
		lines = append(lines, st.Muted.Render("   no match"))
	}
	a.results.setHeight(h - 1)
	rows := a.results.lines(st, a.width-2, func(c *candidate) (string, bool) {
		text := fmt.Sprintf("%-9s %s", c.kind, show(c.value))
		if c.kind == "session" && c.sess != nil {
			text += st.Muted.Render("  " + agentName(c.sess.Agent) + " · " + taskName(c.sess.Task) + " · " + fmtTime(c.sess.Started, a.c.Loc, "01-02 15:04"))
		}
		return text, false
	})
	for _, l := range rows {
		lines = append(lines, fit(l, a.width))
	}
	return block(lines, h)
}
