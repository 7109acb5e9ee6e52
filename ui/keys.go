package ui

import "github.com/charmbracelet/bubbles/key"

// KeyMap is every binding of the console (docs/architecture.md, "Console keys").
// Screens pick the ones they honor for their ShortHelp (the hint bar) and
// FullHelp (the `?` overlay), so help is generated from the same bindings
// that Update matches and cannot drift from them.
type KeyMap struct {
	listKeys                   // ↑↓, page up/down, g/G: oldest/newest
	Enter, Back                key.Binding
	Search, Filter, Tab        key.Binding
	Diff, Mark, Reverse, Queue key.Binding
	Alerts, Follow, Yank       key.Binding
	Theme, Help, Quit          key.Binding
	AllCalls, GoTime, Split    key.Binding
	ChipLeft, ChipRight, Unset key.Binding
	Apply                      key.Binding // A: apply the rollback plan on screen (planScreen)
	History, Older, Newer      key.Binding // H, [ and ]: a resource's history (historyScreen)
	RangeMark                  key.Binding // V: mark a span of calls (rangeMark)
	ForceQuit, Refresh         key.Binding // ctrl+c quits at once; ctrl+r re-reads the screen
	Command                    key.Binding // `:` command line (App.command)
	NextHit, PrevHit           key.Binding // n/N: next and previous search hit (textSearch)
	Desk, Approve, Deny        key.Binding // P opens the approval desk; a and x decide there (deskScreen)
}

// DefaultKeyMap is the contract's keys plus a few extras.
func DefaultKeyMap() *KeyMap {
	return &KeyMap{
		listKeys: listKeys{
			Up:       key.NewBinding(key.WithKeys("k", "up"), key.WithHelp("↑/k", "up")),
			Down:     key.NewBinding(key.WithKeys("j", "down"), key.WithHelp("↓/j", "down")),
			PageUp:   key.NewBinding(key.WithKeys("pgup", "ctrl+b", "ctrl+u"), key.WithHelp("pgup", "page up")),
			PageDown: key.NewBinding(key.WithKeys("pgdown", "ctrl+f", "ctrl+d"), key.WithHelp("pgdn", "page down")),
			Top:      key.NewBinding(key.WithKeys("g", "home"), key.WithHelp("g", "oldest")),
			Bottom:   key.NewBinding(key.WithKeys("G", "end"), key.WithHelp("G", "newest")),
		},
		Enter:     key.NewBinding(key.WithKeys("enter"), key.WithHelp("enter", "open")),
		Back:      key.NewBinding(key.WithKeys("esc"), key.WithHelp("esc", "back")),
		Search:    key.NewBinding(key.WithKeys("/"), key.WithHelp("/", "search")),
		Filter:    key.NewBinding(key.WithKeys("f"), key.WithHelp("f", "filter")),
		Tab:       key.NewBinding(key.WithKeys("tab"), key.WithHelp("tab", "next pane")),
		Diff:      key.NewBinding(key.WithKeys("d"), key.WithHelp("d", "diff")),
		Mark:      key.NewBinding(key.WithKeys(" "), key.WithHelp("space", "mark")),
		Reverse:   key.NewBinding(key.WithKeys("r"), key.WithHelp("r", "queue reversal")),
		Queue:     key.NewBinding(key.WithKeys("R"), key.WithHelp("R", "rollback queue")),
		Alerts:    key.NewBinding(key.WithKeys("a"), key.WithHelp("a", "alerts")),
		Follow:    key.NewBinding(key.WithKeys("F"), key.WithHelp("F", "follow")),
		Yank:      key.NewBinding(key.WithKeys("y"), key.WithHelp("y", "copy JSON")),
		Theme:     key.NewBinding(key.WithKeys("t"), key.WithHelp("t", "theme")),
		Help:      key.NewBinding(key.WithKeys("?"), key.WithHelp("?", "help")),
		Quit:      key.NewBinding(key.WithKeys("q"), key.WithHelp("q", "back/quit")),
		ForceQuit: key.NewBinding(key.WithKeys("ctrl+c"), key.WithHelp("ctrl+c", "quit now")),
		Refresh:   key.NewBinding(key.WithKeys("ctrl+r"), key.WithHelp("ctrl+r", "refresh")),
		Command:   key.NewBinding(key.WithKeys(":"), key.WithHelp(":", "command")),
		NextHit:   key.NewBinding(key.WithKeys("n"), key.WithHelp("n/N", "next/prev hit")),
		PrevHit:   key.NewBinding(key.WithKeys("N"), key.WithHelp("N", "previous hit")),
		AllCalls:  key.NewBinding(key.WithKeys("c"), key.WithHelp("c", "all calls")),
		GoTime:    key.NewBinding(key.WithKeys("T"), key.WithHelp("T", "go to time")),
		Split:     key.NewBinding(key.WithKeys("s"), key.WithHelp("s", "unified/split")),
		ChipLeft:  key.NewBinding(key.WithKeys("h", "left"), key.WithHelp("←/h", "prev chip")),
		ChipRight: key.NewBinding(key.WithKeys("l", "right"), key.WithHelp("→/l", "next chip")),
		Unset:     key.NewBinding(key.WithKeys("x", "backspace", "delete"), key.WithHelp("x", "remove chip")),
		Apply:     key.NewBinding(key.WithKeys("A"), key.WithHelp("A", "apply plan")),
		History:   key.NewBinding(key.WithKeys("H"), key.WithHelp("H", "resource history")),
		RangeMark: key.NewBinding(key.WithKeys("V"), key.WithHelp("V", "mark a range")),
		Older:     key.NewBinding(key.WithKeys("["), key.WithHelp("[", "older version")),
		Newer:     key.NewBinding(key.WithKeys("]"), key.WithHelp("]", "newer version")),
		Desk:      key.NewBinding(key.WithKeys("P"), key.WithHelp("P", "approvals")),
		Approve:   key.NewBinding(key.WithKeys("a"), key.WithHelp("a", "approve")),
		Deny:      key.NewBinding(key.WithKeys("x"), key.WithHelp("x", "deny")),
	}
}

// global are the keys every screen honors; they close the full help.
func (k *KeyMap) global() []key.Binding {
	return []key.Binding{k.Search, k.Filter, k.Command, k.Follow, k.Alerts, k.Queue, k.Yank, k.Theme, k.Refresh, k.Help, k.Quit, k.ForceQuit}
}

// operator are the keys only an operator may use: a viewer is not offered
// them (the hint bar and the help leave them out).
func (k *KeyMap) operator() []key.Binding { return []key.Binding{k.Mark, k.Reverse, k.Apply} }

// forRole drops the operator keys from bs unless the investigator may
// reverse calls. Bindings compare by their help key, which is what the
// investigator reads.
func (k *KeyMap) forRole(id Identity, bs []key.Binding) []key.Binding {
	if id.CanReverse() {
		return bs
	}
	out := make([]key.Binding, 0, len(bs))
	for _, b := range bs {
		drop := false
		for _, o := range k.operator() {
			if b.Help().Key == o.Help().Key {
				drop = true
			}
		}
		if !drop {
			out = append(out, b)
		}
	}
	return out
}

// chipHelp is the help of the filter-chip pane.
func (k *KeyMap) chipHelp() []key.Binding {
	return []key.Binding{k.ChipLeft, k.ChipRight, k.Unset, k.Tab, k.Back}
}
