package ui

import (
	"fmt"
	"io"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/charmbracelet/lipgloss"
	"github.com/charmbracelet/x/ansi"
	"github.com/muesli/termenv"

	"github.com/mcptrail/mcptrail/store"
	"github.com/mcptrail/mcptrail/themes"
)

// The console as the investigator sees it, in every look it has: each
// test runs at 80×24 and 200×50, in every theme and under NO_COLOR, with
// a renderer that draws escape codes (as a real terminal's would), so that
// what is checked is what reaches the screen.

type look struct {
	w, h    int
	theme   string // "" with noColor
	noColor bool
}

func (l look) String() string {
	name := l.theme
	if l.noColor {
		name = "NO_COLOR"
	}
	return fmt.Sprintf("%dx%d/%s", l.w, l.h, name)
}

func looks() []look {
	var out []look
	for _, size := range [][2]int{{80, 24}, {200, 50}} {
		for _, th := range themes.Names() {
			out = append(out, look{w: size[0], h: size[1], theme: th})
		}
		out = append(out, look{w: size[0], h: size[1], noColor: true})
	}
	return out
}

// envMap is a terminal's environment as termenv reads it.
type envMap map[string]string

func (e envMap) Environ() []string {
	var out []string
	for k, v := range e {
		out = append(out, k+"="+v)
	}
	return out
}
func (e envMap) Getenv(k string) string { return e[k] }

// options are testOptions drawn in look l: colour themes on a 16-colour
// terminal; NO_COLOR on a 256-colour xterm whose user set NO_COLOR.
func (l look) options(src Source, role Role) Options {
	opts := testOptions(src, role)
	if l.noColor {
		opts.NoColor = true
		opts.Renderer = lipgloss.NewRenderer(io.Discard,
			termenv.WithEnvironment(envMap{"TERM": "xterm-256color", "NO_COLOR": "1"}), termenv.WithUnsafe())
		return opts
	}
	opts.Theme = l.theme
	r := lipgloss.NewRenderer(io.Discard)
	r.SetColorProfile(termenv.ANSI)
	opts.Renderer = r
	return opts
}

func eachLook(t *testing.T, run func(t *testing.T, l look)) {
	for _, l := range looks() {
		t.Run(l.String(), func(t *testing.T) { run(t, l) })
	}
}

// sgr is the graphic state a cell is drawn in.
type sgr struct {
	fg, bg        string
	bold, reverse bool
}

// cells returns the state each column of a drawn line is drawn in.
func cells(line string) []sgr {
	var out []sgr
	var cur sgr
	for i := 0; i < len(line); {
		if line[i] == 0x1b && i+1 < len(line) && line[i+1] == '[' {
			j := i + 2
			for j < len(line) && (line[j] < 0x40 || line[j] > 0x7e) {
				j++
			}
			if j < len(line) && line[j] == 'm' {
				cur = applySGR(cur, line[i+2:j])
			}
			i = j + 1
			continue
		}
		r, n := utf8.DecodeRuneInString(line[i:])
		for range ansi.StringWidth(string(r)) {
			out = append(out, cur)
		}
		i += n
	}
	return out
}

func applySGR(s sgr, params string) sgr {
	ps := strings.Split(params, ";")
	for i := 0; i < len(ps); i++ {
		p := ps[i]
		n, _ := strconv.Atoi(p)
		switch {
		case p == "" || p == "0":
			s = sgr{}
		case n == 1:
			s.bold = true
		case n == 22:
			s.bold = false
		case n == 7:
			s.reverse = true
		case n == 27:
			s.reverse = false
		case n == 39:
			s.fg = ""
		case n == 49:
			s.bg = ""
		case n >= 30 && n <= 37, n >= 90 && n <= 97:
			s.fg = p
		case n >= 40 && n <= 47, n >= 100 && n <= 107:
			s.bg = p
		case (n == 38 || n == 48) && i+2 < len(ps) && ps[i+1] == "5":
			if n == 38 {
				s.fg = "5;" + ps[i+2]
			} else {
				s.bg = "5;" + ps[i+2]
			}
			i += 2
		case (n == 38 || n == 48) && i+4 < len(ps) && ps[i+1] == "2":
			v := "2;" + strings.Join(ps[i+2:i+5], ";")
			if n == 38 {
				s.fg = v
			} else {
				s.bg = v
			}
			i += 4
		}
	}
	return s
}

// ansi16 is the SGR parameter of palette colour c (0–15) as foreground,
// or as background with bg.
func ansi16(c string, bg bool) string {
	n, _ := strconv.Atoi(c)
	base := 30
	if n >= 8 {
		base, n = 90, n-8
	}
	if bg {
		base += 10
	}
	return strconv.Itoa(base + n)
}

// wantSelected is the state every column of the selected row must have.
func wantSelected(l look) sgr {
	if l.noColor || themes.Get(l.theme).Reverse {
		return sgr{bold: true, reverse: true}
	}
	p := themes.Get(l.theme)
	return sgr{fg: ansi16(p.SelFg, false), bg: ansi16(p.SelBg, true), bold: true}
}

// selectedLine is the frame's line holding the selection glyph.
func selectedRow(t *testing.T, frame string) string {
	t.Helper()
	for _, line := range strings.Split(frame, "\n") {
		if strings.Contains(ansi.Strip(line), themes.SelectedGlyph) {
			return line
		}
	}
	t.Fatalf("no selected row in:\n%s", ansi.Strip(frame))
	return ""
}

var colourParam = regexp.MustCompile(`\x1b\[[0-9;]*\b(3[0-9]|4[0-9]|9[0-7]|10[0-7])\b[0-9;]*m`)

func TestSelectedRowCarriesTheSelectionStyleAcrossItsWidth(t *testing.T) {
	eachLook(t, func(t *testing.T, l look) {
		f := newFixture(t)
		demoRecord(f)
		h := startSized(t, l.options(f.st, RoleOperator), l.w, l.h)
		h.waitFor("nightly-ops-bot")
		h.keys("c") // every session's calls: the time and agent columns the bug greyed out
		h.waitFor("tool calls of all sessions")
		h.waitFor("delete_user")
		frame := h.final()
		line := selectedRow(t, frame)
		cs := cells(line)
		if len(cs) != l.w {
			t.Fatalf("the selected row is %d columns wide, not %d: %q", len(cs), l.w, line)
		}
		want := wantSelected(l)
		for i, c := range cs {
			if c != want {
				t.Fatalf("column %d of the selected row is drawn %+v, not in the selection style %+v:\n%q", i, c, want, line)
			}
		}
		if !want.reverse && want.fg == want.bg {
			t.Fatalf("selection foreground and background are both %s", want.fg)
		}
		if l.noColor {
			if m := colourParam.FindString(frame); m != "" {
				t.Fatalf("NO_COLOR, yet the frame sets a colour: %q", m)
			}
		}
	})
}

// TestThemeKeyUnderNoColorSaysSo: t cannot bring colours back under NO_COLOR.
func TestThemeKeyUnderNoColorSaysSo(t *testing.T) {
	f := newFixture(t)
	demoRecord(f)
	l := look{w: 80, h: 24, noColor: true}
	h := startSized(t, l.options(f.st, RoleOperator), l.w, l.h)
	h.waitFor("nightly-ops-bot")
	h.keys("t")
	h.waitFor("NO_COLOR is set")
	h.final()
	if h.app.c.Theme != themes.Mono {
		t.Fatalf("theme %q under NO_COLOR", h.app.c.Theme)
	}
}

// pathRecord is one agent's session of 120 calls: reads of many files,
// two writes of config/app.yaml and a directory listing whose result
// names it.
const sessPaths = "01JPATHS000000000000000000"

type pathCalls struct{ write1, list, write2 uint64 }

func pathRecord(f *fixture) pathCalls {
	var pc pathCalls
	b := base(sessPaths, "deploy-bot", "REL-9")
	start := b
	start.Kind = store.KindSessionStart
	f.append(start)
	text := func(s string) map[string]any {
		return map[string]any{"content": []any{map[string]any{"type": "text", "text": s}}}
	}
	for i := range 120 {
		switch i {
		case 40:
			pc.write1 = f.call(b, "write_file", map[string]any{"path": "/tmp/run-4711/config/app.yaml", "content": "replicas: 0\n"}, "write", true, "ok", text("ok"))
		case 80:
			pc.list = f.call(b, "list_directory", map[string]any{"path": "/tmp/run-4711/config"}, "read", false, "ok",
				text("/tmp/run-4711/config/app.yaml\n/tmp/run-4711/config/db.yaml"))
		case 100:
			pc.write2 = f.call(b, "write_file", map[string]any{"path": "/tmp/run-4711/config/app.yaml", "content": "replicas: 3\n"}, "write", true, "ok", text("ok"))
		default:
			f.call(b, "read_file", map[string]any{"path": fmt.Sprintf("/tmp/run-4711/docs/page-%03d.md", i)}, "read", false, "ok", text("# page"))
		}
	}
	f.flush()
	return pc
}

func startPaths(t *testing.T, l look) (*harness, pathCalls) {
	t.Helper()
	f := newFixture(t)
	pc := pathRecord(f)
	opts := l.options(f.st, RoleOperator)
	opts.PageSize = 10 // the hits are far outside the first window
	h := startSized(t, opts, l.w, l.h)
	h.waitFor("deploy-bot")
	h.keys("enter")
	h.waitFor("page-000")
	return h, pc
}

func TestSearchFindsACallByAPathFragment(t *testing.T) {
	eachLook(t, func(t *testing.T, l look) {
		h, pc := startPaths(t, l)
		h.keys("/", "/app.yaml", "enter")
		h.waitFor("hit 1/3")
		h.keys("n") // the listing whose result names the file
		h.waitFor("hit 2/3")
		h.keys("n")
		h.waitFor("hit 3/3")
		h.keys("N")
		h.waitFor("hit 2/3")
		frame := ansi.Strip(h.final())
		sel := selectedRow(t, frame)
		if !strings.Contains(sel, "list_directory") {
			t.Fatalf("N should have gone back to the listing (seq %d); the selected row is:\n%s\n%s", pc.list, sel, frame)
		}
		if !strings.Contains(frame, fmt.Sprintf("seq %d", pc.list)) {
			t.Fatalf("the status should name seq %d:\n%s", pc.list, frame)
		}
	})
}

func TestSearchShowsAPathsTail(t *testing.T) {
	eachLook(t, func(t *testing.T, l look) {
		h, _ := startPaths(t, l)
		h.keys("/", "app.yaml", "enter")
		h.waitFor("hit 1/3")
		sel := selectedRow(t, ansi.Strip(h.final()))
		if !strings.Contains(sel, "write_file") || !strings.Contains(sel, "config/app.yaml") {
			t.Fatalf("the first hit's row should show the path's tail:\n%s", sel)
		}
	})
}

func TestPathFilterChip(t *testing.T) {
	eachLook(t, func(t *testing.T, l look) {
		h, _ := startPaths(t, l)
		h.keys("f", "path:app.yaml", "enter")
		h.waitFor("path:app.yaml ×")
		h.waitFor("window 2 rows") // the two writes, and nothing else, read
		frame := ansi.Strip(h.final())
		rows := 0
		for _, line := range strings.Split(frame, "\n") {
			if strings.Contains(line, "read_file") || strings.Contains(line, "list_directory") {
				t.Fatalf("path:app.yaml let another call through:\n%s", frame)
			}
			if strings.Contains(line, "write_file") {
				rows++
			}
		}
		if rows != 2 {
			t.Fatalf("want the two writes of app.yaml, got %d rows:\n%s", rows, frame)
		}
	})
}

func TestChipsStayOnTheScreenTheyWereSetOn(t *testing.T) {
	eachLook(t, func(t *testing.T, l look) {
		f := newFixture(t)
		demoRecord(f)
		h := startSized(t, l.options(f.st, RoleOperator), l.w, l.h)
		h.waitFor("nightly-ops-bot")
		h.keys("c", "f", "tool:write_file", "enter")
		h.waitFor("tool:write_file ×")
		h.keys("esc") // back to the sessions
		h.waitFor("no filters")
		h.keys("enter") // into a session
		h.waitFor("delete_user")
		frame := ansi.Strip(h.final())
		if strings.Contains(frame, "tool:write_file") || !strings.Contains(frame, "update_ticket") {
			t.Fatalf("the all-calls chip followed into the session:\n%s", frame)
		}
	})
}

func TestSessionsChipDoesNotFollowIntoASession(t *testing.T) {
	h := demoConsole(t, RoleOperator)
	h.keys("f", "agent:nightly-ops-bot", "enter")
	h.waitFor("agent:nightly-ops-bot ×")
	h.keys("enter")
	h.waitFor("no filters")
	h.keys("esc")
	h.waitFor("agent:nightly-ops-bot ×") // and it is still the sessions'
	h.final()
}

func TestChipComesBackWithItsScreen(t *testing.T) {
	h := demoConsole(t, RoleOperator)
	h.keys("c", "f", "tool:write_file", "enter")
	h.waitFor("tool:write_file ×")
	h.keys("enter") // a call's record
	h.waitFor("no filters")
	h.keys("esc")
	h.waitFor("tool:write_file ×")
	h.final()
}

func TestFollowPauseCountsNewRows(t *testing.T) {
	eachLook(t, func(t *testing.T, l look) {
		f := newFixture(t)
		demoRecord(f)
		h := startSized(t, l.options(f.st, RoleOperator), l.w, l.h)
		h.waitFor("nightly-ops-bot")
		h.keys("enter", "F")
		h.waitFor("● FOLLOW")
		// The header says FOLLOW as soon as F is read, before the timeline
		// has its rows; a k before them moves nothing and pauses nothing.
		// Only the timeline's rows draw the last call's arguments.
		h.waitFor("name=carol")
		h.keys("k") // off the newest row: the tail stops
		h.waitFor("paused · 0 new")
		ops := base(sessOps, "nightly-ops-bot", "INC-4711")
		for i := range 3 {
			f.call(ops, "read_file", map[string]any{"path": fmt.Sprintf("late-%d.md", i)}, "read", false, "ok", nil)
		}
		f.flush()
		h.waitFor("paused · 3 new")
		h.keys("G") // back to the newest: following again
		h.waitFor("● FOLLOW")
		frame := ansi.Strip(h.final())
		if sel := selectedRow(t, frame); !strings.Contains(sel, "late-2.md") && !strings.Contains(sel, "read_file") {
			t.Fatalf("G should select the newest call:\n%s", frame)
		}
	})
}

func TestHeaderAt80ColumnsKeepsEveryPartWhole(t *testing.T) {
	const fp = "SHA256:Xq3vT9bL2mR8kW4nP7cJ1hF6dS5aZ0yU3eG8iO2uK9w"
	eachLook(t, func(t *testing.T, l look) {
		f := newFixture(t)
		b := base(sessOps, "nightly-operations-maintenance-bot-eu-west-1", "INC-4711")
		start := b
		start.Kind = store.KindSessionStart
		f.append(start)
		call := f.call(b, "write_file", map[string]any{"path": "config.yaml", "content": "replicas: 0\n"}, "write", true, "ok", nil)
		f.flush()
		opts := l.options(f.st, RoleOperator)
		opts.Identity.Fingerprint = fp
		opts.SourceLabel = "daemon /home/alice/.local/state/mcptrail"
		h := startSized(t, opts, l.w, l.h)
		h.waitFor("session 1 of 1")
		h.keys("enter")
		h.waitFor("write_file")
		h.keys("j", "enter") // a call's record: the deepest breadcrumb
		h.waitFor("verified by the gateway")
		frame := ansi.Strip(h.final())
		lines := strings.Split(frame, "\n")
		theme := h.app.c.Theme
		if !strings.HasSuffix(lines[0], " "+theme+" ") || !strings.Contains(lines[0], fmt.Sprintf("› call %d ", call)) {
			t.Fatalf("breadcrumb and theme should both stand whole, apart:\n%q", lines[0])
		}
		if !strings.Contains(lines[1], fp) {
			t.Fatalf("the fingerprint is cut:\n%q", lines[1])
		}
		for i := range 2 {
			if w := ansi.StringWidth(lines[i]); w != l.w {
				t.Fatalf("header line %d is %d columns, not %d", i, w, l.w)
			}
		}
	})
}

func TestQuitGoesBackThenAsksWhenCallsAreMarked(t *testing.T) {
	eachLook(t, func(t *testing.T, l look) {
		f := newFixture(t)
		demoRecord(f)
		h := startSized(t, l.options(f.st, RoleOperator), l.w, l.h)
		h.waitFor("nightly-ops-bot")
		h.keys("enter")
		h.waitFor("delete_user")
		h.keys("j", "space") // a tool call
		h.waitFor("marked call")
		h.keys("q") // back, as tig does
		h.waitFor("session 1 of 2")
		h.keys("q")
		h.waitFor("1 call is marked. Quit? y quits")
		h.keys("n")
		h.waitFor("stayed")
		h.keys("q")
		h.waitFor("Quit? y quits")
		h.keys("y")
		h.tm.WaitFinished(t)
	})
}

func TestQuitAtTheTopWithNothingMarkedQuits(t *testing.T) {
	h := demoConsole(t, RoleOperator)
	h.keys("q")
	h.tm.WaitFinished(t)
}

func TestGotoCommandJumps(t *testing.T) {
	eachLook(t, func(t *testing.T, l look) {
		h, _ := startPaths(t, l)
		h.keys(":", "goto 03:02:00", "enter")
		h.waitFor("from 2026-01-15 03:02:00")
		h.keys("z")           // an unbound key ends the note: the status line shows the position again
		h.waitFor("seq 80 ·") // call 39's request, recorded at 03:02:00 (3 s a call)
		frame := ansi.Strip(h.final())
		at := regexp.MustCompile(`\d\d:\d\d:\d\d\.\d{3}`).FindString(selectedRow(t, frame))
		if at < "03:02:00.000" || at > "03:02:03.000" {
			t.Fatalf(":goto 03:02:00 selected a row at %q:\n%s", at, frame)
		}
	})
}

func TestCommandLineCompletesAndRefusesUnknown(t *testing.T) {
	h := demoConsole(t, RoleOperator)
	h.keys(":", "bogus", "enter")
	h.waitFor(`unknown command "bogus"`)
	h.keys(":", "ale", "tab")
	h.waitFor(":alerts")
	h.keys("enter")
	h.waitFor("› Alerts")
	h.keys(":", "goto 03:00", "enter")
	h.waitFor(":goto moves a timeline")
	h.keys(":", "sessions", "enter")
	h.waitFor("session 1 of 2")
	h.final()
}

func TestSessionsRefreshShowANewSession(t *testing.T) {
	eachLook(t, func(t *testing.T, l look) {
		f := newFixture(t)
		demoRecord(f)
		h := startSized(t, l.options(f.st, RoleOperator), l.w, l.h)
		h.waitFor("session 1 of 2")
		h.keys("enter")
		h.waitFor("delete_user")
		late := base("01JLATE0000000000000000000", "late-agent", "T-3")
		start := late
		start.Kind = store.KindSessionStart
		f.append(start)
		f.flush()
		h.keys("esc") // shown again: re-read
		h.waitFor("late-agent")
		h.waitFor("of 3")
		later := base("01JLATER000000000000000000", "later-agent", "T-4")
		start = later
		start.Kind = store.KindSessionStart
		f.append(start)
		f.flush()
		h.keys("ctrl+r")
		h.waitFor("later-agent")
		h.final()
	})
}

func TestViewerIsNotOfferedOperatorKeys(t *testing.T) {
	h := demoConsole(t, RoleViewer)
	h.openOps()
	frame := ansi.Strip(h.final())
	hint := strings.Split(frame, "\n")[23]
	if strings.Contains(hint, "mark") || strings.Contains(hint, "queue reversal") {
		t.Fatalf("a viewer's hint bar offers operator keys:\n%s", hint)
	}
}

func TestYankOnSessionsCopiesTheSummary(t *testing.T) {
	h := demoConsole(t, RoleOperator)
	h.keys("y")
	h.waitFor("copied session")
	h.final()
	if !strings.Contains(h.clip.String(), "\x1b]52;c;") {
		t.Fatalf("no OSC 52 written: %q", h.clip.String())
	}
}

func TestToastEndsOnTheNextKey(t *testing.T) {
	h := demoTimeline(t)
	h.keys("j", "space")
	h.waitFor("marked call")
	h.keys("j")
	h.waitFor("seq ")
	frame := ansi.Strip(h.final())
	if strings.Contains(frame, "marked call") {
		t.Fatalf("the note about the last key stayed:\n%s", frame)
	}
}

func TestHelpListsHistoryOnTimelines(t *testing.T) {
	for _, open := range []string{"enter", "c"} {
		t.Run(open, func(t *testing.T) {
			h := demoConsole(t, RoleOperator)
			h.keys(open)
			h.waitFor("delete_user")
			h.keys("?")
			h.waitFor("resource history")
			h.final()
		})
	}
}

func TestOnePlural(t *testing.T) {
	for _, c := range []struct {
		n    int
		want string
	}{{0, "0 lines"}, {1, "1 line"}, {2, "2 lines"}} {
		if got := counted(c.n, "line", "lines"); got != c.want {
			t.Errorf("counted(%d) = %q", c.n, got)
		}
	}
	if s := argsSummary([]byte(`{"content":"one line\n"}`)); !strings.Contains(s, "⟨1 line⟩") {
		t.Errorf("argsSummary: %q", s)
	}
}

func TestQuitAsksWhenAPlanIsNotApplied(t *testing.T) {
	f := newFixture(t)
	demoRecord(f)
	h := startDemo(t, rbOptions(f, RoleOperator, newFakeRollback()))
	h.openOps()
	h.keys("jjjjj", "r") // a plan of the second write and what followed it
	h.waitFor("review the steps")
	h.keys("q", "q") // the plan, the timeline
	h.waitFor("session 1 of 2")
	h.keys("q")
	h.waitFor("1 plan is not applied. Quit? y quits")
	h.keys("y")
	h.tm.WaitFinished(t)
}
