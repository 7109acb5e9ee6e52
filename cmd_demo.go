package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"

	"github.com/charmbracelet/x/term"
	"github.com/spf13/cobra"

	"github.com/mcptrail/mcptrail/daemon"
	"github.com/mcptrail/mcptrail/demo"
)

// newDemoCmd is `mcptrail demo [--no-ui] [--keep]`: a fresh instance in a
// temporary directory, a scripted incident recorded through the real
// gateway, and the console on the instance's live daemon, so the reversal
// can be planned and applied as an operator would. Quitting the console
// stops the daemon (unless --keep); --no-ui leaves it running and says how
// to reach and stop it.
func newDemoCmd() *cobra.Command {
	var noUI, keep bool
	cmd := command("demo", "a fresh instance, a scripted incident through the real gateway, and the console on it", noArgs, func(cmd *cobra.Command, _ []string) error {
		return demoRun(noUI, keep, cmd.OutOrStdout(), cmd.ErrOrStderr())
	})
	cmd.Flags().BoolVar(&noUI, "no-ui", false, "record the incident and leave the daemon running for scripting, instead of opening the console")
	cmd.Flags().BoolVar(&keep, "keep", false, "leave the demo's daemon running when the console closes")
	return cmd
}

func demoRun(noUI, keep bool, stdout, stderr io.Writer) error {
	h, err := os.MkdirTemp("", "mcptrail-demo-")
	if err != nil {
		return err
	}
	// The demo runs its server from a copy of this binary in its own
	// directory: `go run` deletes its build when it exits, and a reversal
	// applied later (after --no-ui or --keep) starts the server again by the
	// command its session recorded.
	exe, err := copyExecutable(filepath.Join(h, "bin"))
	if err != nil {
		return problemError{"demo: copying the program: " + oneLine(err)}
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := demo.Run(ctx, demo.Options{Exe: exe, Home: h, Log: stderr, Version: buildVersion()}); err != nil {
		demo.Stop(h)
		return problemError{oneLine(err)}
	}
	r, err := daemon.OpenReader(h, "")
	if err != nil {
		demo.Stop(h)
		return problemError{oneLine(err)}
	}
	fmt.Fprintf(stdout, "mcptrail demo: the record is in %s\n", h)
	if err := demo.Summary(stdout, r); err != nil {
		r.Close()
		demo.Stop(h)
		return problemError{oneLine(err)}
	}
	howTo := fmt.Sprintf("\nThe demo's daemon is running. In another shell:\n"+
		"  export MCPTRAIL_HOME=%[1]s XDG_CONFIG_HOME=%[2]s\n"+
		"  %[3]s ui                               # the console: r on a call plans its reversal\n"+
		"  %[3]s rollback plan --session SESSION  # the same from the command line\n"+
		"  %[3]s export --format jsonl --tool write_file\n"+
		"  %[3]s verify\n"+
		"Stop it with `%[3]s stop` (in that environment).\n", h, filepath.Join(h, "config"), exe)
	// The console, unless asked not to or nobody is at a terminal to use it:
	// then the daemon stays up for the commands above.
	if noUI || !isTerminalWriter(stdout) {
		r.Close()
		fmt.Fprint(stdout, howTo)
		return nil
	}
	err = runConsole(r, "demo daemon "+h, "local", "", stdout)
	r.Close()
	if keep {
		fmt.Fprint(stdout, howTo)
		return err
	}
	if serr := demo.Stop(h); serr != nil {
		fmt.Fprintf(stderr, "mcptrail demo: stopping the demo's daemon: %v\n", serr)
	} else {
		fmt.Fprintf(stdout, "mcptrail demo: daemon stopped; the record stays in %s (mcptrail verify --db %s)\n", h, daemon.PathsFor(h).DB)
	}
	return err
}

// copyExecutable copies the running program into dir, executable by its
// owner only.
func copyExecutable(dir string) (string, error) {
	self, err := os.Executable()
	if err != nil {
		return "", err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", err
	}
	in, err := os.Open(self)
	if err != nil {
		return "", err
	}
	defer in.Close()
	dst := filepath.Join(dir, "mcptrail")
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o700)
	if err != nil {
		return "", err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return "", err
	}
	return dst, out.Close()
}

func isTerminalWriter(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(f.Fd())
}

// newDemoServerCmd is the demo's MCP server on stdio (hidden: the demo
// runs it through `mcptrail wrap`).
func newDemoServerCmd() *cobra.Command {
	cmd := command("demo-server WORKSPACE", "the demo's MCP server", nArgs(1, 1, "expected the workspace directory"), func(_ *cobra.Command, args []string) error {
		return demo.ServeStdio(context.Background(), args[0])
	})
	cmd.Hidden = true
	return cmd
}
