// Command mcptrail is the audit trail for AI agents' MCP tool calls. This
// file parses the command line and wires the packages; docs/architecture.md
// ("Command line") says what scripts may rely on, docs/commands.md lists it.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/debug"
	"strings"
	"syscall"

	"github.com/mcptrail/mcptrail/config"
	"github.com/mcptrail/mcptrail/daemon"
	"github.com/mcptrail/mcptrail/internal/termsafe"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

// exit codes of the CLI contract.
const (
	exitOK      = 0
	exitProblem = 1
	exitUsage   = 2
)

// usageError is bad usage or input: exit 2 with a one-line message.
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

func usagef(format string, a ...any) error { return usageError{fmt.Sprintf(format, a...)} }

// problemError means the operation ran and found a problem: exit 1.
type problemError struct{ msg string }

func (e problemError) Error() string { return e.msg }

const usage = `mcptrail — the audit trail for AI agents' MCP tool calls

Usage:
  mcptrail serve  [--config FILE] [--listen ADDR] [--ssh ADDR] [--authorized-keys FILE] [--upstream NAME=URL | --upstream 'NAME=stdio:CMD ARG...']... [--durability strict|batch] [--sink URL]... [--metrics ADDR] [--collect kafka://HOST:PORT/TOPIC?group=NAME]
  mcptrail wrap   [--config FILE] [--name NAME] [--agent NAME] [--task ID] -- CMD [ARG...]
  mcptrail status [--json]
  mcptrail stop
  mcptrail ui     [--db FILE] [--theme dark|light|high-contrast|mono]
  mcptrail demo   [--no-ui] [--keep]
  mcptrail verify [--db FILE] [--config FILE] [--key PUBKEY]... [--print-key] [--checkpoint FILE]... [--json]
  mcptrail export --format ocsf|ecs|cef|jsonl [--since DUR|TIME] [--agent A] [--tool T] [--session S] [--origin O] [--db FILE]
  mcptrail sessions [--agent A] [--origin O] [--limit N] [--json] [--db FILE]
  mcptrail rollback plan    (--session S | --calls SEQ[,SEQ...] | --from SEQ) [--json]
  mcptrail rollback show    PLAN_ID [--json]
  mcptrail rollback apply   (PLAN_ID | --plan-file FILE) [--yes] [--json]
  mcptrail rollback export-plan PLAN_ID
  mcptrail rollback history SEQ [--json]
  mcptrail approvals [--json]
  mcptrail approve SEQ
  mcptrail deny    SEQ --reason TEXT
  mcptrail config check [FILE]
  mcptrail completion bash|zsh|fish
  mcptrail --version

Data directory: $MCPTRAIL_HOME, else $XDG_STATE_HOME/mcptrail, else ~/.local/state/mcptrail.
Exit codes: 0 success, 1 the operation found a problem, 2 bad usage or input.
`

func main() {
	os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

func run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	err := dispatch(args, stdin, stdout, stderr)
	var ue usageError
	var pe problemError
	switch {
	case err == nil:
		return exitOK
	case errors.Is(err, flag.ErrHelp):
		return exitOK
	case errors.As(err, &ue):
		fmt.Fprintf(stderr, "mcptrail: %s\n", termsafe.Text(ue.msg))
		return exitUsage
	case errors.As(err, &pe):
		fmt.Fprintf(stderr, "mcptrail: %s\n", termsafe.Text(pe.msg))
		return exitProblem
	case errors.As(err, new(exitCode)):
		return int(err.(exitCode))
	default:
		fmt.Fprintf(stderr, "mcptrail: %s\n", oneLine(err))
		return exitUsage
	}
}

// exitCode passes a child's exit status through (wrap).
type exitCode int

func (e exitCode) Error() string { return fmt.Sprintf("exit status %d", int(e)) }

// oneLine is an error's message on one line, safe for a terminal (it may
// quote what an agent or a server sent).
func oneLine(err error) string {
	return termsafe.Line(strings.ReplaceAll(err.Error(), "\n", "; "))
}

func dispatch(args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return usagef("no command given")
	}
	cmd, rest := args[0], args[1:]
	switch cmd {
	case "serve":
		return cmdServe(rest, stderr)
	case "wrap":
		return cmdWrap(rest, stdin, stdout, stderr)
	case "status":
		return cmdStatus(rest, stdout)
	case "stop":
		return cmdStop(rest, stdout)
	case "sessions":
		return cmdSessions(rest, stdout)
	case "export":
		return cmdExport(rest, stdout)
	case "verify":
		return cmdVerify(rest, stdout)
	case "ui":
		return cmdUI(rest, stdout)
	case "demo":
		return cmdDemo(rest, stdout, stderr)
	case "demo-server":
		return cmdDemoServer(rest)
	case "config":
		return cmdConfig(rest, stdout)
	case "rollback":
		return cmdRollback(rest, stdin, stdout, stderr) // cmd_rollback.go
	case "approvals":
		return cmdApprovals(rest, stdout) // cmd_approvals.go
	case "approve":
		return cmdDecide("approve", true, rest, stdout)
	case "deny":
		return cmdDecide("deny", false, rest, stdout)
	case "completion":
		return cmdCompletion(rest, stdout) // cmd_completion.go
	case "--version", "-version", "version":
		fmt.Fprintf(stdout, "mcptrail %s\n", buildVersion())
		return nil
	case "-h", "--help", "help":
		fmt.Fprint(stdout, usage)
		return nil
	}
	return usagef("unknown command %q (see mcptrail --help)", cmd)
}

func buildVersion() string {
	v, rev, dirty := version, "", ""
	if info, ok := debug.ReadBuildInfo(); ok {
		for _, s := range info.Settings {
			if s.Key == "vcs.revision" && len(s.Value) >= 12 {
				rev = s.Value[:12]
			}
			if s.Key == "vcs.modified" && s.Value == "true" {
				dirty = "-dirty"
			}
		}
	}
	if rev != "" {
		v += " (" + rev + dirty + ")"
	}
	return v
}

// newFlags makes a subcommand's flag set that reports errors as usage errors.
func newFlags(name string) *flag.FlagSet {
	fs := flag.NewFlagSet("mcptrail "+name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	return fs
}

func parse(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fs.SetOutput(os.Stdout)
			fs.PrintDefaults()
			return err
		}
		return usagef("%s: %v", fs.Name(), err)
	}
	return nil
}

// multiFlag collects a repeatable flag.
type multiFlag []string

func (m *multiFlag) String() string     { return strings.Join(*m, ",") }
func (m *multiFlag) Set(v string) error { *m = append(*m, v); return nil }

func home() string { return config.DataDir() }

func loadConfig(path string) (*config.Config, error) { return readConfig(path, config.Load) }

// loadServeConfig is the daemon's: the file must also pass `config check`
// (ownership and modes, no literal secrets in a file everyone can read),
// as sshd will not start on a config others could have written.
func loadServeConfig(path string) (*config.Config, error) { return readConfig(path, config.Check) }

func readConfig(path string, load func(string) (*config.Config, error)) (*config.Config, error) {
	if path != "" {
		cfg, err := load(path)
		if err != nil {
			return nil, usageError{oneLine(err)}
		}
		return cfg, nil
	}
	if _, err := os.Stat(config.DefaultPath()); err == nil {
		cfg, err := load(config.DefaultPath())
		if err != nil {
			return nil, usageError{oneLine(err)}
		}
		return cfg, nil
	}
	return config.Default(), nil
}

func cmdServe(args []string, stderr io.Writer) error {
	fs := newFlags("serve")
	cfgPath := fs.String("config", "", "config file (default $XDG_CONFIG_HOME/mcptrail/config.yaml)")
	listen := fs.String("listen", "", "HTTP gateway address (default 127.0.0.1:7420)")
	var upstreams multiFlag
	fs.Var(&upstreams, "upstream", "NAME=URL or 'NAME=stdio:CMD ARG...' (repeatable)")
	durability := fs.String("durability", "", "strict (a request is durable before it is forwarded) or batch")
	auto := fs.Bool("auto", false, "started in the background by wrap")
	sshAddr := fs.String("ssh", "", "SSH console address (default 127.0.0.1:2222)")
	authKeys := fs.String("authorized-keys", "", "authorized_keys file for the SSH console (default: authorized_keys in the data directory)")
	var sinks multiFlag
	fs.Var(&sinks, "sink", "SIEM sink URL (repeatable)")
	metricsAddr := fs.String("metrics", "", "Prometheus metrics address, e.g. 127.0.0.1:9464 (default: metrics.listen in the config; off); a non-loopback one needs metrics.allow_remote: true")
	collectURL := fs.String("collect", "", "collect a fleet's records into this instance's store: kafka://HOST:PORT[,...]/TOPIC?group=NAME (docs/fleet.md; default: collect.url in the config)")
	if err := parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usagef("serve: unexpected argument %q", fs.Arg(0))
	}
	// The file, then the flags over it: at start, and again on SIGHUP.
	build := func() (*config.Config, error) {
		cfg, err := loadServeConfig(*cfgPath)
		if err != nil {
			return nil, err
		}
		if *listen != "" {
			cfg.Listen = *listen
		}
		if *durability != "" {
			cfg.Durability = *durability
		}
		if *sshAddr != "" {
			cfg.SSH = *sshAddr
		}
		if *authKeys != "" {
			cfg.AuthorizedKeys = *authKeys
		}
		if *metricsAddr != "" {
			cfg.Metrics.Listen = *metricsAddr
		}
		if *collectURL != "" {
			cfg.Collect.URL = *collectURL
		}
		for _, u := range upstreams {
			if err := cfg.AddUpstream(u); err != nil {
				return nil, usagef("--upstream %s: %v", u, err)
			}
		}
		cfg.Sinks = append(cfg.Sinks, sinks...) // --sink adds to the config's sinks
		if err := cfg.Validate(); err != nil {
			return nil, usageError{oneLine(err)}
		}
		return cfg, nil
	}
	cfg, err := build()
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	err = daemon.Run(ctx, daemon.Options{
		Config: cfg, Home: home(), Version: buildVersion(), Logger: log, Auto: *auto,
		Reload: build, // SIGHUP: tokens, JWT keys, sinks (daemon/reload.go)
		Ready: func(url string) {
			if url != "http://" {
				fmt.Fprintf(stderr, "mcptrail: gateway listening on %s\n", url)
			}
		},
	})
	if err != nil {
		return problemError{oneLine(err)}
	}
	return nil
}

func cmdStatus(args []string, stdout io.Writer) error {
	fs := newFlags("status")
	asJSON := fs.Bool("json", false, "print JSON")
	if err := parse(fs, args); err != nil {
		return err
	}
	c, err := daemon.Dial(home())
	if err != nil {
		if *asJSON {
			writeJSON(stdout, map[string]any{"running": false, "home": home()})
		} else {
			fmt.Fprintf(stdout, "daemon: not running (data directory %s)\n", home())
		}
		return problemError{"no daemon is running"}
	}
	defer c.Close()
	s, err := c.Status()
	if err != nil {
		return problemError{oneLine(err)}
	}
	if *asJSON {
		return writeJSON(stdout, struct {
			Running bool `json:"running"`
			*daemon.Status
		}{true, s})
	}
	fmt.Fprintf(stdout, "daemon:     running, pid %d, version %s, since %s\n", s.PID, s.Version, s.Started.Format("2006-01-02 15:04:05 MST"))
	fmt.Fprintf(stdout, "gateway:    %s\n", termsafe.OrDash(s.Listen))
	for _, u := range s.Upstreams {
		fmt.Fprintf(stdout, "  upstream: %s/mcp/%s\n", s.Listen, u)
	}
	fmt.Fprintf(stdout, "store:      %s, %d events, %s, durability %s\n", s.DB, s.Events, humanBytes(s.FileBytes), s.Durability)
	fmt.Fprintf(stdout, "sessions:   %d active over HTTP\n", s.Sessions)
	fmt.Fprintf(stdout, "socket:     %s\n", s.Socket)
	printSinks(stdout, s.Sinks) // cmd_siem.go
	printCollector(stdout, s.Collector)
	if s.Ready != nil {
		for _, l := range s.Ready.Lines() { // daemon/ops.go
			fmt.Fprintln(stdout, l)
		}
	}
	return nil
}

func cmdStop(args []string, stdout io.Writer) error {
	fs := newFlags("stop")
	if err := parse(fs, args); err != nil {
		return err
	}
	c, err := daemon.Dial(home())
	if errors.Is(err, daemon.ErrNotRunning) {
		fmt.Fprintln(stdout, "no daemon is running")
		return nil
	}
	if err != nil {
		return err
	}
	defer c.Close()
	if err := c.Stop(); err != nil {
		return problemError{oneLine(err)}
	}
	// Wait until it has let go of the store, so the next command can open it.
	if err := daemon.WaitStopped(home()); err != nil {
		return problemError{oneLine(err)}
	}
	fmt.Fprintln(stdout, "daemon stopped")
	return nil
}

func humanBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}

func cmdConfig(args []string, stdout io.Writer) error {
	if len(args) == 0 || args[0] != "check" {
		return usagef("config: expected `config check [FILE]`")
	}
	path := config.DefaultPath()
	switch {
	case len(args) > 2:
		return usagef("config check: one FILE at most")
	case len(args) == 2 && (args[1] == "-h" || args[1] == "--help" || args[1] == "-help"):
		fmt.Fprintf(stdout, "usage: mcptrail config check [FILE]\n\nValidates FILE (default %s): unknown keys and bad values with their line, and permissions.\nExit 0 when it is valid, 2 when it is not.\n", path)
		return nil
	case len(args) == 2 && strings.HasPrefix(args[1], "-"):
		return usagef("config check: unknown flag %s (usage: config check [FILE])", args[1])
	case len(args) == 2:
		path = args[1]
	}
	cfg, err := config.Check(path) // Load, then permissions
	if err != nil {
		return usageError{oneLine(err)}
	}
	if err := cfg.Validate(); err != nil {
		return usageError{oneLine(err)}
	}
	fmt.Fprintf(stdout, "%s: ok (%d upstreams)\n", filepath.Clean(path), len(cfg.Upstreams))
	return nil
}
