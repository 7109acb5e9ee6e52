package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"

	"github.com/charmbracelet/x/term"

	"github.com/mcptrail/mcptrail/daemon"
	"github.com/mcptrail/mcptrail/demo"
)

func cmdDemo(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("demo")
	noUI := fs.Bool("no-ui", false, "leave the store for scripting instead of opening the console")
	if err := parse(fs, args); err != nil {
		return err
	}
	exe, err := os.Executable()
	if err != nil {
		return err
	}
	h, err := os.MkdirTemp("", "mcptrail-demo-")
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := demo.Run(ctx, demo.Options{Exe: exe, Home: h, Log: stderr, Version: buildVersion()}); err != nil {
		return problemError{oneLine(err)}
	}
	r, err := daemon.OpenReader(h, "")
	if err != nil {
		return problemError{oneLine(err)}
	}
	defer r.Close()
	fmt.Fprintf(stdout, "mcptrail demo: the record is in %s\n", h)
	if err := demo.Summary(stdout, r); err != nil {
		return problemError{oneLine(err)}
	}
	fmt.Fprintf(stdout, "\nExplore it:\n  MCPTRAIL_HOME=%s mcptrail ui\n  MCPTRAIL_HOME=%s mcptrail sessions\n  MCPTRAIL_HOME=%s mcptrail export --format jsonl --tool write_file\n  MCPTRAIL_HOME=%s mcptrail verify\n", h, h, h, h)
	// Then the console on the demo's store, unless asked not to or nobody
	// is at a terminal to use it.
	if *noUI || !isTerminalWriter(stdout) {
		return nil
	}
	return runConsole(r, "demo store "+daemon.PathsFor(h).DB+" (read-only)", "local", "", stdout)
}

func isTerminalWriter(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(f.Fd())
}

// cmdDemoServer is the demo's MCP server on stdio (hidden: the demo runs it
// through `mcptrail wrap`).
func cmdDemoServer(args []string) error {
	if len(args) != 1 {
		return usagef("demo-server: expected the workspace directory")
	}
	return demo.ServeStdio(context.Background(), args[0])
}
