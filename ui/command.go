package ui

import (
	"fmt"
	"sort"
	"strings"

	tea "github.com/charmbracelet/bubbletea"
)

// The `:` command line, as in k9s: a word names a screen or an action;
// tab completes the word.
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

func commandNames() []string {
	names := make([]string, 0, len(commands))
	for n := range commands {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// completeCommand completes the command word of line when one command or
// a longer common prefix starts with it.
func completeCommand(line string) string {
	word, _, hasRest := strings.Cut(strings.TrimLeft(line, " "), " ")
	if hasRest || word == "" {
		return line
	}
	var match []string
	for _, n := range commandNames() {
		if strings.HasPrefix(n, word) {
			match = append(match, n)
		}
	}
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
	var match []string
	for _, n := range commandNames() {
		if strings.HasPrefix(n, word) {
			match = append(match, n)
		}
	}
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
		tl, ok := a.top().(timeJumper)
		if !ok {
			return toastErr(fmt.Errorf(":goto moves a timeline: open a session (enter) or all calls (:calls) first"))
		}
		if arg == "" {
			return toastErr(fmt.Errorf(":goto needs a time: 03:15, -10m or 2026-01-02T03:15:00Z"))
		}
		t, err := parseGoTime(arg, a.c.Now(), a.c.Loc)
		if err != nil {
			return toastErr(err)
		}
		return tea.Batch(tl.jumpTo(t), toast("from "+t.In(a.c.Loc).Format("2006-01-02 15:04:05")))
	}
	return toastErr(fmt.Errorf("unknown command %q: the commands are %s", word, strings.Join(commandNames(), ", ")))
}
