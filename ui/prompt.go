package ui

import (
	"time"

	tea "github.com/charmbracelet/bubbletea"

	"github.com/mcptrail/mcptrail/internal/timerange"
)

// lineEditor is one use of the bottom line: the `:` command line
// (commandLine), the `f` filter (filterLine), `/` free text on a screen
// with a text search (textLine) and `T` go to time (goTimeLine). App owns
// the one text input, opens and closes it, and gives esc and enter their
// meaning; the editor owns the keys peculiar to it, the status line shown
// while typing, and what enter does with the line.
type lineEditor interface {
	// Update takes a key before the text input does; false: the input
	// takes it.
	Update(a *App, msg tea.KeyMsg) (tea.Cmd, bool)
	// View is the status line for what is typed so far.
	View(value string) string
	// submit acts on the line. It closes the line (App.closeInput) unless
	// the line is to stay open for the user to fix what it says is wrong.
	submit(a *App, value string) tea.Cmd
}

// editor is the editor of the line open now; nil when none is open, and
// for the vocabulary search (runSearch), which is App's own.
func (a *App) editor() lineEditor {
	switch a.mode {
	case modeCommand:
		return commandLine{}
	case modeFilter:
		return filterLine{}
	case modeText:
		return textLine{}
	case modeGoTime:
		return goTimeLine{}
	}
	return nil
}

// goTimeLine is `T` on a timeline: a time to show the timeline from.
type goTimeLine struct{}

func (goTimeLine) Update(*App, tea.KeyMsg) (tea.Cmd, bool) { return nil, false }

func (goTimeLine) View(string) string {
	return "03:15 (today), -10m (ago) or 2026-01-02T03:15:00Z; enter jumps, esc cancels"
}

func (goTimeLine) submit(a *App, value string) tea.Cmd {
	t, err := timerange.At(value, a.c.Now(), a.c.Loc)
	if err != nil {
		return toastErr(err)
	}
	a.closeInput()
	return a.showFrom(t)
}

// showFrom moves the timeline on top to t (`T` and `:goto`).
func (a *App) showFrom(t time.Time) tea.Cmd {
	tl, ok := a.top().(timeJumper)
	if !ok {
		return nil
	}
	return tea.Batch(tl.jumpTo(t), toast("from "+t.In(a.c.Loc).Format("2006-01-02 15:04:05")))
}
