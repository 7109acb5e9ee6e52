// Command mcptrail is the audit trail for AI agents' MCP tool calls. The
// command line is one cobra tree (newRootCmd), one file per command; help,
// usage and shell completions are generated from it. docs/architecture.md
// ("Command line") says what scripts may rely on, docs/commands.md lists it.
package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"runtime/debug"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/mcptrail/mcptrail/config"
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

// exitCode passes a child's exit status through (wrap).
type exitCode int

func (e exitCode) Error() string { return fmt.Sprintf("exit status %d", int(e)) }

func main() {
	os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

// run executes one command line and maps its error to the exit code of
// the contract, with the error on one line of stderr.
func run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	root := newRootCmd()
	root.SetArgs(oneDashLongFlags(root, args))
	root.SetIn(stdin)
	root.SetOut(stdout)
	root.SetErr(stderr)
	err := root.Execute()
	var ue usageError
	var pe problemError
	var code exitCode
	switch {
	case err == nil:
		return exitOK
	case errors.As(err, &ue):
		fmt.Fprintf(stderr, "mcptrail: %s\n", termsafe.Text(ue.msg))
		return exitUsage
	case errors.As(err, &pe):
		fmt.Fprintf(stderr, "mcptrail: %s\n", termsafe.Text(pe.msg))
		return exitProblem
	case errors.As(err, &code):
		return int(code)
	default:
		fmt.Fprintf(stderr, "mcptrail: %s\n", oneLine(err))
		return exitUsage
	}
}

// newRootCmd is the whole command line. cobra prints help and usage and
// generates the completion scripts from it; errors are ours to print (run),
// on one line, so cobra prints neither.
func newRootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:   "mcptrail",
		Short: "the audit trail for AI agents' MCP tool calls",
		Long: "mcptrail — the audit trail for AI agents' MCP tool calls\n\n" +
			"Data directory: $MCPTRAIL_HOME, else $XDG_STATE_HOME/mcptrail, else ~/.local/state/mcptrail.\n" +
			"Exit codes: 0 success, 1 the operation found a problem, 2 bad usage or input.",
		Version:           buildVersion(),
		SilenceErrors:     true,
		SilenceUsage:      true,
		CompletionOptions: cobra.CompletionOptions{DisableDefaultCmd: true}, // ours: bash, zsh, fish
		Args: func(_ *cobra.Command, args []string) error {
			if len(args) > 0 {
				return usagef("unknown command %q (see mcptrail --help)", args[0])
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, _ []string) error {
			fmt.Fprint(cmd.ErrOrStderr(), cmd.UsageString())
			return usagef("no command given")
		},
	}
	root.SetVersionTemplate("mcptrail {{.Version}}\n")
	root.Flags().Bool("version", false, "print the version and, when the build knows it, the commit") // no -v: it never had one
	root.SetFlagErrorFunc(flagError)
	root.AddCommand(
		newServeCmd(), newWrapCmd(), newStatusCmd(), newStopCmd(), newUICmd(),
		newDemoCmd(), newDemoServerCmd(), newVerifyCmd(), newExportCmd(), newSessionsCmd(),
		newRollbackCmd(), newApprovalsCmd(), newApproveCmd(), newDenyCmd(),
		newConfigCmd(), newCompletionCmd(), newVersionCmd(),
	)
	return root
}

// command is one command of the tree: use and short for its help, args to
// check its arguments (every command checks them: cobra would take any),
// run to run it.
func command(use, short string, args cobra.PositionalArgs, run func(*cobra.Command, []string) error) *cobra.Command {
	return &cobra.Command{Use: use, Short: short, Args: args, RunE: run}
}

// group is a command that only holds subcommands (rollback, config).
func group(use, short string, subs ...*cobra.Command) *cobra.Command {
	g := command(use, short, cobra.ArbitraryArgs, needsSubcommand)
	g.AddCommand(subs...)
	return g
}

// newVersionCmd keeps `mcptrail version` (hidden: --version is the
// documented spelling).
func newVersionCmd() *cobra.Command {
	cmd := command("version", "print the version", noArgs, func(cmd *cobra.Command, _ []string) error {
		_, err := fmt.Fprintf(cmd.OutOrStdout(), "mcptrail %s\n", buildVersion())
		return err
	})
	cmd.Hidden = true
	return cmd
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

// cmdName is a command's name in messages: "rollback plan".
func cmdName(c *cobra.Command) string {
	return strings.TrimPrefix(strings.TrimPrefix(c.CommandPath(), "mcptrail"), " ")
}

// flagError is a flag the command does not take, or a bad value: a usage
// error naming the command and the flag.
func flagError(c *cobra.Command, err error) error {
	prefix := ""
	if c.HasParent() {
		prefix = cmdName(c) + ": "
	}
	var ne *pflag.NotExistError
	if errors.As(err, &ne) {
		name := "--" + ne.GetSpecifiedName()
		if s := ne.GetSpecifiedShortnames(); s != "" {
			name = "-" + s
		}
		return usagef("%sunknown flag %s (%s --help lists them)", prefix, name, c.CommandPath())
	}
	return usagef("%s%s", prefix, oneLine(err))
}

// noArgs is Args for a command that takes none.
func noArgs(c *cobra.Command, args []string) error {
	if len(args) > 0 {
		return usagef("%s: unexpected argument %q", cmdName(c), args[0])
	}
	return nil
}

// nArgs is Args of a command that takes min to max arguments (max < 0:
// any number above min); want says what to give.
func nArgs(min, max int, want string) cobra.PositionalArgs {
	return func(c *cobra.Command, args []string) error {
		if len(args) < min || (max >= 0 && len(args) > max) {
			return usagef("%s: %s", cmdName(c), want)
		}
		return nil
	}
}

// needsSubcommand is RunE of a group (rollback, config): it runs only when
// no subcommand was named.
func needsSubcommand(c *cobra.Command, args []string) error {
	var subs []string
	for _, s := range c.Commands() {
		if s.IsAvailableCommand() {
			subs = append(subs, s.Name())
		}
	}
	if len(args) == 0 {
		return usagef("%s: no subcommand (%s)", cmdName(c), strings.Join(subs, ", "))
	}
	return usagef("%s: unknown subcommand %q (%s)", cmdName(c), args[0], strings.Join(subs, ", "))
}

// oneDashLongFlags rewrites -name and -name=V to --name for the long flags
// of the command args run: the command line was first parsed by Go's flag
// package, which takes one dash as well as two, and scripts written then
// keep working. Nothing after "--" (a wrapped server's own arguments) is
// touched, nor anything after wrap's server command.
func oneDashLongFlags(root *cobra.Command, args []string) []string {
	out := append([]string{}, args...)
	root.InitDefaultVersionFlag()
	cmd, positional := root, false
	for i := 0; i < len(out); i++ {
		a := out[i]
		if a == "--" {
			break
		}
		if !strings.HasPrefix(a, "-") || a == "-" {
			if sub := subcommand(cmd, a); sub != nil && !positional {
				cmd = sub
				continue
			}
			if cmd.Annotations[annotationStopAtArg] != "" {
				break
			}
			positional = true
			continue
		}
		cmd.InitDefaultHelpFlag()
		name, twoDashes := strings.CutPrefix(a, "--")
		if !twoDashes {
			name = a[1:]
		}
		name, _, withValue := strings.Cut(name, "=")
		f := cmd.Flags().Lookup(name)
		if f == nil || len(name) < 2 {
			continue
		}
		if !twoDashes {
			out[i] = "-" + a
		}
		if f.NoOptDefVal == "" && !withValue {
			i++ // its value, whatever it looks like
		}
	}
	return out
}

// annotationStopAtArg marks a command whose flags end at its first
// argument (wrap: the rest is the server's command line).
const annotationStopAtArg = "mcptrail/stop-at-arg"

func subcommand(c *cobra.Command, name string) *cobra.Command {
	for _, s := range c.Commands() {
		if s.Name() == name || s.HasAlias(name) {
			return s
		}
	}
	return nil
}

// oneLine is an error's message on one line, safe for a terminal (it may
// quote what an agent or a server sent).
func oneLine(err error) string {
	return termsafe.Line(strings.ReplaceAll(err.Error(), "\n", "; "))
}

func home() string { return config.DataDir() }
