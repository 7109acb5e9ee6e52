package ui

import (
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/charmbracelet/bubbles/key"
	tea "github.com/charmbracelet/bubbletea"

	"github.com/mcptrail/mcptrail/internal/timerange"
)

// commandLine is the `:` line, as in k9s: a word names a screen or an
// action; tab completes the word, the status line says what it will do or
// what it may become, and enter runs it.
type commandLine struct{}

// completeKey completes the command word.
var completeKey = key.NewBinding(key.WithKeys("tab"), key.WithHelp("tab", "complete"))

func (commandLine) Update(a *App, msg tea.KeyMsg) (tea.Cmd, bool) {
	if !key.Matches(msg, completeKey) {
		return nil, false
	}
	a.input.SetValue(completeCommand(a.input.Value()))
	a.input.CursorEnd()
	return nil, true
}

func (commandLine) View(value string) string { return commandHelp(value) }

func (commandLine) submit(a *App, value string) tea.Cmd {
	a.closeInput()
	return a.command(value)
}

// commands are the command words and what each does.
var commands = map[string]string{
	"sessions":  "the sessions list (closes every screen above it)",
	"calls":     "tool calls of all sessions",
	"alerts":    "the alerts",
	"goto":      "goto 03:15 | -10m | 2026-01-02T03:15:00Z: the timeline from that time",
	"plan":      "the rollback queue and its plans",
	"approvals": "the approval desk: calls held until a person approves them (P)",
	"help":      "the keys of this screen",
	"q":         "quit (asks first when calls are marked or a plan is not applied)",
	"quit":      "quit, as :q",
}

// commandNames are the command words in order.
func commandNames() []string { return slices.Sorted(maps.Keys(commands)) }

// commandsStartingWith are the command words that start with word.
func commandsStartingWith(word string) []string {
	var match []string
	for _, n := range commandNames() {
		if strings.HasPrefix(n, word) {
			match = append(match, n)
		}
	}
	return match
}

// completeCommand completes the command word of line when one command or
// a longer common prefix starts with it.
func completeCommand(line string) string {
	word, _, hasRest := strings.Cut(strings.TrimLeft(line, " "), " ")
	if hasRest || word == "" {
		return line
	}
	match := commandsStartingWith(word)
	switch len(match) {
	case 0:
		return line
	case 1:
		if match[0] == "goto" {
			return "goto "
		}
		return match[0]
	}
	prefix := match[0]
	for _, m := range match[1:] {
		for !strings.HasPrefix(m, prefix) {
			prefix = prefix[:len(prefix)-1]
		}
	}
	return prefix
}

// commandHelp is the status line under the command line: what the typed
// word will do, or the commands it may become.
func commandHelp(line string) string {
	word, _, _ := strings.Cut(strings.TrimSpace(line), " ")
	if d, ok := commands[word]; ok {
		return ":" + word + " — " + d
	}
	match := commandsStartingWith(word)
	if len(match) == 0 {
		return fmt.Sprintf("no command %q — commands: %s", word, strings.Join(commandNames(), " "))
	}
	return "commands: " + strings.Join(match, " ") + " — tab completes, enter runs, esc cancels"
}

// command runs a command line.
func (a *App) command(line string) tea.Cmd {
	word, arg, _ := strings.Cut(strings.TrimSpace(line), " ")
	arg = strings.TrimSpace(arg)
	switch word {
	case "":
		return nil
	case "q", "quit":
		// :q quits from any screen, asking as q does at the top.
		var cmds []tea.Cmd
		for len(a.stack) > 1 {
			cmds = append(cmds, a.pop())
		}
		return tea.Batch(append(cmds, a.askQuit())...)
	case "sessions":
		var cmds []tea.Cmd
		for len(a.stack) > 1 {
			cmds = append(cmds, a.pop())
		}
		return tea.Batch(cmds...)
	case "calls":
		if tl, ok := a.top().(*timelineScreen); ok && tl.sess == nil {
			return nil
		}
		return push(newTimeline(a.c, nil))
	case "alerts":
		return openOnce(a, newAlerts)
	case "plan":
		return openOnce(a, newQueue)
	case "approvals":
		return openOnce(a, newDesk)
	case "help":
		a.showHelp = true
		return nil
	case "goto":
		if _, ok := a.top().(timeJumper); !ok {
			return toastErr(fmt.Errorf(":goto moves a timeline: open a session (enter) or all calls (:calls) first"))
		}
		if arg == "" {
			return toastErr(fmt.Errorf(":goto needs a time: 03:15, -10m or 2026-01-02T03:15:00Z"))
		}
		t, err := timerange.At(arg, a.c.Now(), a.c.Loc)
		if err != nil {
			return toastErr(err)
		}
		return a.showFrom(t)
	}
	return toastErr(fmt.Errorf("unknown command %q: the commands are %s", word, strings.Join(commandNames(), ", ")))
}
