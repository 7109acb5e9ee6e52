// Package themes holds the console's palettes: dark, light, high-contrast
// and mono (NO_COLOR).
//
// Colors are ANSI palette indices (0–15), not RGB: the terminal's own
// palette decides what "blue" looks like, so a theme reads on light and dark
// terminals alike and over SSH sessions that only announce TERM=xterm. Styles
// are built on a lipgloss.Renderer passed in by the caller, never on the
// global one, because an SSH daemon serves many terminals with different
// color capabilities at once.
package themes

import (
	"slices"

	"github.com/charmbracelet/lipgloss"
)

// Names of the built-in themes, in the order `t` cycles through them.
const (
	Dark         = "dark"
	Light        = "light"
	HighContrast = "high-contrast"
	Mono         = "mono"
)

// SelectedGlyph marks the selected row in every theme. Under NO_COLOR
// lipgloss drops all styling, reverse video included, so a glyph is the only
// thing that survives; showing it everywhere keeps the layout identical
// across themes.
const SelectedGlyph = "▶"

// MarkGlyph marks a call queued for reversal.
const MarkGlyph = "●"

// Palette is a theme's colors. An empty color means "the terminal's
// default"; mono leaves them all empty and relies on attributes.
type Palette struct {
	Name   string
	Text   string // body text ("" = terminal default)
	Muted  string // secondary text: column headers, timestamps, hints
	Accent string // titles, keys in the help, chips
	OK     string // outcome ok
	Warn   string // writes, pending calls
	Error  string // errors, destructive calls, alerts
	BarFg  string // title bar
	BarBg  string
	// SelFg and SelBg draw the selected row ("" = reverse video). Bright
	// white on blue reads in every 16-colour palette; colour 8 (and 7) as
	// a background are near-black in some palettes and light grey in
	// others, where the row cannot be read.
	SelFg    string
	SelBg    string
	ChipFg   string
	ChipBg   string
	Bold     bool // high-contrast: bold everything that matters
	Reverse  bool // mono: reverse video for bars and selection
	DiffAdd  string
	DiffDel  string
	JSONKey  string
	JSONStr  string
	JSONNum  string
	JSONBool string
}

var palettes = []Palette{
	{
		Name: Dark, Muted: "8", Accent: "12", OK: "10", Warn: "11", Error: "9",
		BarFg: "15", BarBg: "4", SelFg: "15", SelBg: "4", ChipFg: "0", ChipBg: "14",
		DiffAdd: "10", DiffDel: "9", JSONKey: "12", JSONStr: "10", JSONNum: "14", JSONBool: "13",
	},
	{
		// Light terminals: the dark half of the palette (1–6) reads on white;
		// bright yellow (11) would not, so warnings are magenta.
		Name: Light, Muted: "8", Accent: "4", OK: "2", Warn: "5", Error: "1",
		BarFg: "15", BarBg: "4", SelFg: "0", SelBg: "7", ChipFg: "15", ChipBg: "6",
		DiffAdd: "2", DiffDel: "1", JSONKey: "4", JSONStr: "2", JSONNum: "6", JSONBool: "5",
	},
	{
		Name: HighContrast, Text: "15", Muted: "7", Accent: "11", OK: "10", Warn: "11", Error: "9",
		BarFg: "0", BarBg: "11", SelFg: "0", SelBg: "15", ChipFg: "0", ChipBg: "11", Bold: true,
		DiffAdd: "10", DiffDel: "9", JSONKey: "11", JSONStr: "10", JSONNum: "14", JSONBool: "13",
	},
	{Name: Mono, Reverse: true},
}

// Names lists the themes in cycling order.
func Names() []string {
	out := make([]string, len(palettes))
	for i, p := range palettes {
		out[i] = p.Name
	}
	return out
}

// Valid reports whether name is a theme.
func Valid(name string) bool { return slices.Contains(Names(), name) }

// Get returns the palette called name, or dark when there is none.
func Get(name string) Palette {
	for _, p := range palettes {
		if p.Name == name {
			return p
		}
	}
	return palettes[0]
}

// Next is the theme after name in cycling order.
func Next(name string) string {
	names := Names()
	i := slices.Index(names, name)
	return names[(i+1)%len(names)]
}

// Default picks the theme when none is asked for: mono when the user said
// NO_COLOR (https://no-color.org), else dark.
func Default(noColor bool) string {
	if noColor {
		return Mono
	}
	return Dark
}

// Styles are a palette turned into lipgloss styles on one renderer.
type Styles struct {
	Name string

	Text, Muted, Accent, Bold        lipgloss.Style
	OK, Warn, Error                  lipgloss.Style
	Bar, BarDim                      lipgloss.Style // header line
	Selected                         lipgloss.Style // selected row (besides the glyph)
	Header                           lipgloss.Style // table column headers
	Chip, ChipFocused                lipgloss.Style
	Badge                            lipgloss.Style
	Section                          lipgloss.Style // section titles in the record view
	Key                              lipgloss.Style // key names in help and hints
	Box                              lipgloss.Style // overlays (help, search)
	DiffAdd, DiffDel, DiffCtx        lipgloss.Style
	JSONKey, JSONStr, JSONNum, JSONB lipgloss.Style
	Banner                           lipgloss.Style // plain statements such as "not yet possible"
	Hit                              lipgloss.Style // a search hit's text
}

// Build turns the palette into styles rendered by r.
func (p Palette) Build(r *lipgloss.Renderer) *Styles {
	fg := func(c string) lipgloss.Style {
		s := r.NewStyle()
		if c != "" {
			s = s.Foreground(lipgloss.Color(c))
		}
		return s
	}
	bold := func(s lipgloss.Style) lipgloss.Style {
		if p.Bold {
			return s.Bold(true)
		}
		return s
	}
	st := &Styles{Name: p.Name}
	st.Text = fg(p.Text)
	st.Muted = fg(p.Muted)
	if p.Name == Mono {
		st.Muted = r.NewStyle().Faint(true)
	}
	st.Accent = bold(fg(p.Accent))
	st.Bold = fg(p.Text).Bold(true)
	st.OK = fg(p.OK)
	st.Warn = bold(fg(p.Warn))
	st.Error = fg(p.Error).Bold(true)
	st.Header = fg(p.Muted).Bold(true).Underline(p.Name == Mono)

	st.Bar = r.NewStyle().Bold(true)
	st.BarDim = r.NewStyle()
	st.Selected = r.NewStyle().Bold(true)
	st.Chip = r.NewStyle().Padding(0, 1)
	switch {
	case p.Reverse:
		st.Bar = st.Bar.Reverse(true)
		st.BarDim = st.BarDim.Reverse(true)
		st.Selected = st.Selected.Reverse(true)
		st.Chip = st.Chip.Reverse(true)
	default:
		st.Bar = st.Bar.Foreground(lipgloss.Color(p.BarFg)).Background(lipgloss.Color(p.BarBg))
		st.BarDim = st.BarDim.Foreground(lipgloss.Color(p.BarFg)).Background(lipgloss.Color(p.BarBg))
		st.Selected = st.Selected.Foreground(lipgloss.Color(p.SelFg)).Background(lipgloss.Color(p.SelBg))
		st.Chip = st.Chip.Foreground(lipgloss.Color(p.ChipFg)).Background(lipgloss.Color(p.ChipBg))
	}
	st.ChipFocused = st.Chip.Bold(true).Underline(true)
	st.Badge = bold(fg(p.Warn))
	st.Section = bold(fg(p.Accent)).Bold(true)
	st.Key = bold(fg(p.Accent))
	borderColor := p.Accent
	st.Box = r.NewStyle().Border(lipgloss.RoundedBorder()).Padding(0, 1)
	if borderColor != "" {
		st.Box = st.Box.BorderForeground(lipgloss.Color(borderColor))
	}
	st.DiffAdd = fg(p.DiffAdd)
	st.DiffDel = fg(p.DiffDel)
	st.DiffCtx = fg(p.Text)
	if p.Name == Mono {
		// Without color, + and - prefixes carry the diff; bold the added side.
		st.DiffAdd = r.NewStyle().Bold(true)
		st.DiffDel = r.NewStyle().Faint(true)
	}
	st.JSONKey = fg(p.JSONKey)
	st.JSONStr = fg(p.JSONStr)
	st.JSONNum = fg(p.JSONNum)
	st.JSONB = fg(p.JSONBool)
	st.Banner = bold(fg(p.Warn)).Bold(true)
	st.Hit = fg(p.Accent).Bold(true).Underline(true)
	return st
}
