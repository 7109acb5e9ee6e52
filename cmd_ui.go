package main

import (
	"io"
	"os"
	"os/user"
	"time"

	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/x/term"

	"github.com/mcptrail/mcptrail/daemon"
	"github.com/mcptrail/mcptrail/rollback"
	"github.com/mcptrail/mcptrail/themes"
	"github.com/mcptrail/mcptrail/ui"
)

// cmdUI is `mcptrail ui [--db FILE] [--theme NAME]`: the console on the
// running daemon (through its socket), else on the instance's store file,
// or read-only on the file --db names (a copied evidence file).
func cmdUI(args []string, stdout io.Writer) error {
	fs := newFlags("ui")
	db := fs.String("db", "", "open this store file read-only (an evidence copy), without a daemon")
	theme := fs.String("theme", "", "dark, light, high-contrast or mono (default: mono under NO_COLOR, else dark)")
	if err := parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usagef("ui: unexpected argument %q", fs.Arg(0))
	}
	if *theme != "" && !themes.Valid(*theme) {
		return usagef("ui: --theme %q: want one of dark, light, high-contrast, mono", *theme)
	}
	r, err := daemon.OpenReader(home(), *db)
	if err != nil {
		return usageError{oneLine(err)}
	}
	defer r.Close()
	var label, via string
	switch {
	case *db != "":
		label, via = "file "+*db+" (read-only)", "file"
	case isDaemon(r):
		label, via = "daemon "+home(), "local"
	default:
		label, via = "file "+daemon.PathsFor(home()).DB+" (read-only; no daemon running)", "file"
	}
	return runConsole(r, label, via, *theme, stdout)
}

func isDaemon(r daemon.Reader) bool {
	_, ok := r.(*daemon.Client)
	return ok
}

// runConsole runs the console full-screen on this terminal. Whoever runs it
// locally can read the store file anyway, so they get the operator role;
// over SSH the role comes from authorized_keys (daemon/console.go).
func runConsole(r daemon.Reader, label, via, theme string, stdout io.Writer) error {
	f, ok := stdout.(*os.File)
	if !ok || !term.IsTerminal(f.Fd()) {
		return usagef("ui: stdout is not a terminal (the console needs one; try `mcptrail sessions` or `export` for scripts)")
	}
	name := ""
	if u, err := user.Current(); err == nil {
		name = u.Username
	}
	app := ui.New(ui.Options{
		Source:      r,
		SourceLabel: label,
		Identity:    ui.Identity{Via: via, Name: name, Role: ui.RoleOperator},
		Theme:       theme,
		NoColor:     os.Getenv("NO_COLOR") != "",
		Clipboard:   f,
		Term:        os.Getenv("TERM"),
		Location:    time.Local,
		Rollback:    consoleRollback(r), // cmd_rollback.go
		Rules:       consoleRules(),
		Approvals:   consoleApprovals(r),
	})
	_, err := tea.NewProgram(app, tea.WithAltScreen(), tea.WithOutput(f)).Run()
	if err != nil {
		return problemError{oneLine(err)}
	}
	return nil
}

// consoleRules are the rollback rules the daemon loads, so that `f path:`
// names resources as plans do; without them (a rules file that does not
// load: the daemon's log says why) the console matches key arguments.
func consoleRules() *rollback.RuleSet {
	rules, err := rollback.Load(rollback.DefaultDir())
	if err != nil {
		return nil
	}
	return rules
}
