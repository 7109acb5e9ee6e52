package ui

import (
	"fmt"
	"strings"

	tea "github.com/charmbracelet/bubbletea"

	"github.com/mcptrail/mcptrail/rollback"
)

// quitCheck is what quitting from the top screen would leave behind:
// marked calls, and plans this investigator built in this console and has
// not applied.
type quitCheck struct {
	marks, plans int
}

// askQuit is `q` (and `:q`) at the top screen: quit at once when nothing
// is left behind, else ask first.
func (a *App) askQuit() tea.Cmd {
	marks := a.c.Marks.Len()
	rb, by, since := a.c.Rollback, a.c.Identity.Actor(), a.c.started
	return func() tea.Msg {
		m := quitCheck{marks: marks}
		if rb == nil {
			return m
		}
		plans, err := rb.RollbackPlans(50)
		if err != nil {
			return m // the marks still ask; a failed read must not stop a quit
		}
		for _, p := range plans {
			if p.State == rollback.PlanPlanned && p.CreatedBy == by && !p.Created.Before(since) {
				m.plans++
			}
		}
		return m
	}
}

func (a *App) quitChecked(m quitCheck) tea.Cmd {
	if m.marks == 0 && m.plans == 0 {
		a.quitting = true
		return tea.Quit
	}
	var left []string
	if m.marks > 0 {
		left = append(left, counted(m.marks, "call is marked", "calls are marked"))
	}
	if m.plans > 0 {
		left = append(left, counted(m.plans, "plan is not applied", "plans are not applied"))
	}
	a.confirm = fmt.Sprintf("%s. Quit? y quits, any other key stays", strings.Join(left, " and "))
	return nil
}

// confirmed answers the quit question.
func (a *App) confirmed(msg tea.KeyMsg) tea.Cmd {
	a.confirm = ""
	if msg.String() == "y" || msg.String() == "Y" {
		a.quitting = true
		return tea.Quit
	}
	return toast("stayed")
}
