// Package ui is mcptrail's investigation console: a Bubble Tea program that
// reads the record through paged store queries and shows sessions, a
// session's timeline, one call's whole record, argument diffs, alerts and
// the rollback queue. The same program runs locally (`mcptrail ui`), on an
// evidence file (`--db`), and over SSH inside the daemon.
//
// Components follow soft-serve's pattern: each screen is a tea.Model, a
// help.KeyMap and a SetSize; one *Common carries what they share (size,
// styles, keymap, the session's lipgloss renderer, the record, the
// investigator's identity). Nothing slow runs in Update or View: every
// store read, fuzzy match, JSON pretty-print and diff runs in a tea.Cmd and
// comes back as a message addressed to the screen that asked.
package ui

import (
	"io"
	"sync/atomic"
	"time"

	"github.com/charmbracelet/bubbles/help"
	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/lipgloss"
	"github.com/muesli/termenv"

	"github.com/mcptrail/mcptrail/rollback"
	"github.com/mcptrail/mcptrail/store"
	"github.com/mcptrail/mcptrail/themes"
)

// Source is the record as the console reads it: a *store.Store opened
// read-only, the daemon's store itself (SSH), or daemon.Client over the
// socket. All three are safe for concurrent use, which the console relies
// on: loads for different screens run in parallel commands.
type Source interface {
	Query(store.Query) (store.Page, error)
	Sessions(store.SessionQuery) ([]store.SessionSummary, error)
	Get(seq uint64) (*store.Event, error)
}

// Role is what an investigator may do.
type Role string

const (
	RoleViewer   Role = "viewer"   // reads the record
	RoleOperator Role = "operator" // also marks and queues calls for reversal
)

// Identity is who is at the console. Over SSH it is derived from the key
// the session authenticated with, after authentication.
type Identity struct {
	Via         string // "ssh", "local" or "file"
	Name        string // SSH user or OS user
	Fingerprint string // SHA256:… of the SSH key; empty locally
	Role        Role
}

// CanReverse reports whether the investigator may mark and queue reversals.
func (id Identity) CanReverse() bool { return id.Role == RoleOperator }

// Actor names the investigator in the marks they make: the key fingerprint
// over SSH (what an auditor can tie to a person), else the user name.
func (id Identity) Actor() string {
	if id.Fingerprint != "" {
		return id.Fingerprint
	}
	if id.Name != "" {
		return id.Name
	}
	return id.Via
}

// Component is one piece of the console: a model that knows its keys and
// can be resized (soft-serve's pkg/ui/common.Component).
type Component interface {
	tea.Model
	help.KeyMap
	SetSize(width, height int)
}

// screen is a Component that fills the body and can be stacked.
type screen interface {
	Component
	id() int
	Title() string // breadcrumb
}

// screenBase is what every screen holds, as gh-dash's sections embed one
// section model: the shared context, the id its commands' results are
// routed by (loaded's to), and its size.
type screenBase struct {
	c             *Common
	sid           int
	width, height int
}

func newScreenBase(c *Common) screenBase { return screenBase{c: c, sid: c.newID()} }

func (b *screenBase) id() int { return b.sid }

// Common is shared by every component of one console session. Only the
// program's goroutine touches it (Update and View); commands get copies of
// what they need.
type Common struct {
	Width, Height int // of the body, between header and hint bar

	Theme    string
	Styles   *themes.Styles
	Renderer *lipgloss.Renderer
	Keys     *KeyMap

	Src         Source
	SourceLabel string
	Identity    Identity
	Clipboard   io.Writer // where OSC 52 goes: the program's output
	Term        string    // TERM of the terminal, for OSC 52 under tmux/screen

	Now      func() time.Time
	Loc      *time.Location
	PageSize int // events per store query

	Filter Filter
	Marks  *Marks
	Follow bool
	// NoColor: the user set NO_COLOR; the theme stays mono (attributes
	// such as reverse video, no colours).
	NoColor bool
	started time.Time // when the console opened: plans built since are its own (askQuit)
	// Rollback builds and applies plans (planScreen); nil on a console
	// that reads a store file.
	Rollback Rollback
	Rules    *rollback.RuleSet // resource keys for `f path:` (Filter)
	// Approvals is the approval desk (deskScreen); nil: none.
	Approvals Approvals
	// Fleet: the record holds events collected from other hosts, seen in
	// a page read from it. Lists then show an ORIGIN column; it stays on
	// once set, so columns do not come and go as pages are read. A
	// gateway's own store never sets it and looks as it always did.
	Fleet bool

	ids      *atomic.Int64
	onAction func(action, detail string)
}

func (c *Common) newID() int { return int(c.ids.Add(1)) }

// audit reports an action to Options.OnAction.
func (c *Common) audit(action, detail string) {
	if c.onAction != nil {
		c.onAction(action, detail)
	}
}

// attributesOnly lets r draw attributes (reverse video, bold, underline)
// under NO_COLOR. termenv reads NO_COLOR as "no escape codes at all",
// which would leave the selected row marked by its glyph only; the
// convention asks for no colour, and the mono theme the console keeps
// under NO_COLOR has none. A terminal that cannot draw attributes (not a
// terminal, TERM=dumb) stays without.
func attributesOnly(r *lipgloss.Renderer) {
	if r.ColorProfile() == termenv.Ascii && r.Output().ColorProfile() != termenv.Ascii {
		r.SetColorProfile(termenv.ANSI)
	}
}

// setTheme switches the palette; styles are rebuilt on the session's renderer.
func (c *Common) setTheme(name string) {
	c.Theme = name
	c.Styles = themes.Get(name).Build(c.Renderer)
}

// Messages between components.
type (
	// pushMsg opens a screen on top of the stack.
	pushMsg struct{ s screen }
	// popMsg goes back.
	popMsg struct{}
	// toastMsg is a one-line status message.
	toastMsg struct {
		text string
		err  bool
	}
	// filterChangedMsg tells every screen to reload under Common.Filter.
	filterChangedMsg struct{}
	// themeChangedMsg tells screens that cache rendered text to redo it.
	themeChangedMsg struct{}
	// followTickMsg polls for new events while following.
	followTickMsg struct{ gen int }
	// routedMsg is a command's result for the screen that asked; stale
	// results (an older generation) are dropped by the screen.
	routedMsg interface{ target() int }
)

// loaded is what a command read (or did) for screen to, in that screen's
// load generation gen: the one routed message of the console. Screens tell
// their results apart by T (page[…], planApplied, …) and drop those of an
// older generation.
type loaded[T any] struct {
	to, gen int
	val     T
	err     error
}

func (m loaded[T]) target() int { return m.to }

// Capabilities a screen may have beyond screen's. App asks the top screen
// for them by these names rather than by its type.
type (
	// modal: while modal() holds, every key is the screen's (a prompt).
	modal interface{ modal() bool }
	// relayouter prepares its text again for a new width, in a command.
	relayouter interface{ relayout() tea.Cmd }
	// follower tails the record and can be paused (a timeline): the
	// header says which, and F turning follow on starts at the tail.
	follower interface {
		followState() (paused bool, newRows int)
		resumeFollow()
	}
	// textYanker copies text that is not a record (`y` on a session).
	textYanker interface{ yankText() (what, text string) }
	// recordYanker copies records as JSON lines (`y`).
	recordYanker interface{ yankSeqs() []uint64 }
	// statusLiner has a status line: where the investigator is.
	statusLiner interface{ Status() string }
	// searchHost is a screen a textSearch runs on: what it reads, where
	// the selection is, and how to move it to a hit.
	searchHost interface {
		searchScope() (src Source, to int, q store.Query) // the store, the screen's id, the query whose events it searches
		searchFrom() uint64                               // the selected call's anchor; 0: none
		gotoSeq(anchor uint64) tea.Cmd
	}
	// textSearcher is a screen with a text search (`/`, n and N).
	textSearcher interface {
		searchHost
		search() *textSearch
	}
	// timeJumper moves to a time (`T`, `:goto`).
	timeJumper interface{ jumpTo(when time.Time) tea.Cmd }
	// tabber has panes of its own, which tab moves between; on other
	// screens tab focuses the filter chips.
	tabber interface{ tabs() bool }
)

func push(s screen) tea.Cmd { return func() tea.Msg { return pushMsg{s} } }

func toast(text string) tea.Cmd { return func() tea.Msg { return toastMsg{text: text} } }

func toastErr(err error) tea.Cmd {
	return func() tea.Msg { return toastMsg{text: err.Error(), err: true} }
}
