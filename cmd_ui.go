package main

import (
	"io"
	"os"
	"os/user"
	"strings"
	"time"

	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/x/term"
	"github.com/spf13/cobra"

	"github.com/mcptrail/mcptrail/daemon"
	"github.com/mcptrail/mcptrail/rollback"
	"github.com/mcptrail/mcptrail/themes"
	"github.com/mcptrail/mcptrail/ui"
)

// newUICmd is `mcptrail ui [--db FILE] [--theme NAME]`: the console on the
// running daemon (through its socket), else on the instance's store file,
// or read-only on the file --db names (a copied evidence file).
func newUICmd() *cobra.Command {
	var db, theme string
	cmd := command("ui", "the console: through the daemon, or on a store file read-only", noArgs, func(cmd *cobra.Command, _ []string) error {
		if theme != "" && !themes.Valid(theme) {
			return usagef("ui: --theme %q: want one of %s", theme, strings.Join(themes.Names(), ", "))
		}
		r, err := daemon.OpenReader(home(), db)
		if err != nil {
			return usageError{oneLine(err)}
		}
		defer r.Close()
		var label, via string
		switch _, isDaemon := r.(*daemon.Client); {
		case db != "":
			label, via = "file "+db+" (read-only)", "file"
		case isDaemon:
			label, via = "daemon "+home(), "local"
		default:
			label, via = "file "+daemon.PathsFor(home()).DB+" (read-only; no daemon running)", "file"
		}
		return runConsole(r, label, via, theme, cmd.OutOrStdout())
	})
	cmd.Flags().StringVar(&db, "db", "", "open this store `FILE` read-only (an evidence copy), without a daemon")
	cmd.Flags().StringVar(&theme, "theme", "", "`THEME`: dark, light, high-contrast or mono (default: mono under NO_COLOR, else dark)")
	cmd.MarkFlagFilename("db")
	fixedValues(cmd, "theme", themes.Names()...)
	return cmd
}

// runConsole runs the console full-screen on this terminal. Whoever runs it
// locally can read the store file anyway, so they get the operator role;
// over SSH the role comes from authorized_keys (the daemon's SSH console).
func runConsole(r daemon.Reader, label, via, theme string, stdout io.Writer) error {
	f, ok := stdout.(*os.File)
	if !ok || !term.IsTerminal(f.Fd()) {
		return usagef("ui: stdout is not a terminal (the console needs one; try `mcptrail sessions` or `export` for scripts)")
	}
	name := ""
	if u, err := user.Current(); err == nil {
		name = u.Username
	}
	opts := ui.Options{
		Source:      r,
		SourceLabel: label,
		Identity:    ui.Identity{Via: via, Name: name, Role: ui.RoleOperator},
		Theme:       theme,
		NoColor:     os.Getenv("NO_COLOR") != "",
		Clipboard:   f,
		Term:        os.Getenv("TERM"),
		Location:    time.Local,
		Rules:       consoleRules(),
	}
	// Reversals and the approvals desk go through the daemon; a console on
	// a store file has neither (nil interfaces, not typed nils).
	if c, ok := r.(*daemon.Client); ok {
		opts.Rollback = c
		opts.Approvals = daemon.ClientDesk{C: c}
	}
	_, err := tea.NewProgram(ui.New(opts), tea.WithAltScreen(), tea.WithOutput(f)).Run()
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
