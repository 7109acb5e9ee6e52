package main

import (
	"bytes"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// contract is the command line users and scripts rely on, written once:
// each command with its flags ("*": repeatable). The tests below hold the
// cobra tree, its usage text and docs/commands.md to it.
var contract = map[string][]string{
	"":                     {"version"},
	"serve":                {"config", "listen", "ssh", "authorized-keys", "upstream*", "durability", "sink*", "metrics", "collect"},
	"wrap":                 {"config", "name", "agent", "task"},
	"status":               {"json"},
	"stop":                 {},
	"ui":                   {"db", "theme"},
	"demo":                 {"no-ui", "keep"},
	"verify":               {"db", "config", "key*", "print-key", "checkpoint*", "json"},
	"export":               {"format", "since", "agent", "tool", "session", "origin", "db"},
	"sessions":             {"agent", "origin", "limit", "json", "db"},
	"rollback":             {},
	"rollback plan":        {"session", "calls", "from", "json"},
	"rollback show":        {"json"},
	"rollback apply":       {"plan-file", "yes", "json"},
	"rollback export-plan": {},
	"rollback history":     {"json"},
	"approvals":            {"json"},
	"approve":              {},
	"deny":                 {"reason"},
	"config":               {},
	"config check":         {},
	"completion":           {},
}

// Every command and flag of the contract is in the tree and in its usage
// text, the repeatable ones take several values, and the tree has nothing
// the contract does not name (hidden internals aside); docs/commands.md
// names each command with its flags.
func TestUsageNamesTheContract(t *testing.T) {
	root := newRootCmd()
	root.InitDefaultVersionFlag()
	docs, err := os.ReadFile("docs/commands.md")
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		path := cmdName(c)
		seen[path] = true
		flags, ok := contract[path]
		if !ok {
			t.Errorf("mcptrail %s is not in the contract", path)
		}
		if c.Args == nil && c.HasParent() {
			t.Errorf("mcptrail %s does not check its arguments", path)
		}
		usage := c.UsageString()
		c.LocalNonPersistentFlags().VisitAll(func(f *pflag.Flag) {
			if !f.Hidden && f.Name != "help" && !slices.Contains(flags, f.Name) && !slices.Contains(flags, f.Name+"*") {
				t.Errorf("mcptrail %s --%s is not in the contract", path, f.Name)
			}
		})
		var rows []string // the docs' rows for the command
		for _, l := range strings.Split(string(docs), "\n") {
			if path != "" && strings.HasPrefix(l, "| `mcptrail "+path) && !strings.HasPrefix(l, "| `mcptrail "+path+"-") {
				rows = append(rows, l)
			}
		}
		if path != "" && len(rows) == 0 && !c.HasSubCommands() {
			t.Errorf("docs/commands.md has no row for mcptrail %s", path)
		}
		for _, name := range flags {
			name, repeatable := strings.CutSuffix(name, "*")
			f := c.Flags().Lookup(name)
			if f == nil {
				t.Errorf("mcptrail %s has no --%s", path, name)
				continue
			}
			if !strings.Contains(usage, "--"+name) {
				t.Errorf("the usage of mcptrail %s does not list --%s:\n%s", path, name, usage)
			}
			if repeatable != (f.Value.Type() == "stringArray") {
				t.Errorf("mcptrail %s --%s: type %s, repeatable %v", path, name, f.Value.Type(), repeatable)
			}
			if path != "" && !strings.Contains(strings.Join(rows, "\n"), "--"+name) {
				t.Errorf("docs/commands.md does not name mcptrail %s --%s", path, name)
			}
		}
		for _, sub := range c.Commands() {
			if sub.IsAvailableCommand() {
				if !strings.Contains(usage, sub.Name()) {
					t.Errorf("the usage of mcptrail %s does not list %s", path, sub.Name())
				}
				walk(sub)
			}
		}
	}
	walk(root)
	for path := range contract {
		if !seen[path] {
			t.Errorf("mcptrail %s is missing from the command line", path)
		}
	}
}

// Bad usage exits 2 with one line on stderr that names what to fix, and
// nothing on stdout: no usage dump.
func TestBadUsageIsOneLine(t *testing.T) {
	t.Setenv("MCPTRAIL_HOME", t.TempDir())
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"sessions", "--bogus"}, "unknown flag --bogus"},
		{[]string{"sessions", "-bogus"}, "unknown flag -bogus"},
		{[]string{"rollback", "plan", "--nope=1"}, "unknown flag --nope"},
		{[]string{"--bogus"}, "unknown flag --bogus"},
		{[]string{"bogus"}, `unknown command "bogus"`},
		{[]string{"rollback", "nope"}, `unknown subcommand "nope"`},
		{[]string{"rollback"}, "no subcommand"},
		{[]string{"config"}, "no subcommand"},
		{[]string{"approve"}, "give the seq"},
		{[]string{"deny", "3"}, "--reason"},
		{[]string{"rollback", "history"}, "give the seq"},
		{[]string{"rollback", "show"}, "PLAN_ID"},
		{[]string{"completion"}, "bash, zsh, fish"},
		{[]string{"wrap", "--name", "x"}, "no server command"},
		{[]string{"export"}, "--format is required"},
		{[]string{"export", "--format"}, "--format"},
		{[]string{"sessions", "--limit", "many"}, "--limit"},
		{[]string{"status", "extra"}, `unexpected argument "extra"`},
	} {
		var out, errOut bytes.Buffer
		code := run(c.args, strings.NewReader(""), &out, &errOut)
		msg := errOut.String()
		if code != exitUsage || !strings.HasPrefix(msg, "mcptrail: ") || strings.Count(msg, "\n") != 1 || !strings.Contains(msg, c.want) || out.Len() != 0 {
			t.Errorf("%v: exit %d, stdout %q, stderr %q; want exit 2 and one line naming %q", c.args, code, out.String(), msg, c.want)
		}
	}
}

// Go's flag package, which parsed the command line first, took -flag as
// well as --flag: scripts written then keep working.
func TestOneDashLongFlags(t *testing.T) {
	db := hostileStore(t)
	var two, one, errOut bytes.Buffer
	if code := run([]string{"sessions", "--json", "--limit", "5", "--db", db}, nil, &two, &errOut); code != 0 {
		t.Fatalf("--: exit %d: %s", code, errOut.String())
	}
	if code := run([]string{"sessions", "-json", "-limit=5", "-db", db}, nil, &one, &errOut); code != 0 {
		t.Fatalf("-: exit %d: %s", code, errOut.String())
	}
	if one.Len() == 0 || one.String() != two.String() {
		t.Fatalf("one dash printed %q, two dashes %q", one.String(), two.String())
	}
}

// wrap's flags end at "--" or at the server's command: what follows goes
// to the server untouched, flags, one-dash flags and --help included.
func TestWrapPassesTheServersArgumentsUntouched(t *testing.T) {
	for _, c := range []struct{ args, want []string }{
		{[]string{"wrap", "--name", "n", "--", "srv", "--name", "x", "-log", "f", "--", "--help"}, []string{"srv", "--name", "x", "-log", "f", "--", "--help"}},
		{[]string{"wrap", "-agent", "a", "srv", "-task", "t", "--help"}, []string{"srv", "-task", "t", "--help"}},
		{[]string{"wrap", "--", "-srv", "-h"}, []string{"-srv", "-h"}},
	} {
		cmd, args := parsed(t, c.args...)
		if cmd.Name() != "wrap" || !slices.Equal(args, c.want) {
			t.Errorf("%v: %s got %q, want %q", c.args, cmd.Name(), args, c.want)
		}
		if help, _ := cmd.Flags().GetBool("help"); help {
			t.Errorf("%v: the server's --help was taken as wrap's", c.args)
		}
	}
	cmd, _ := parsed(t, "wrap", "-agent", "a", "srv")
	if a, _ := cmd.Flags().GetString("agent"); a != "a" {
		t.Errorf("wrap -agent a: agent %q", a)
	}
}

// parsed is the command args name and its arguments after its flags, as
// run parses them (without running it).
func parsed(t *testing.T, args ...string) (*cobra.Command, []string) {
	t.Helper()
	root := newRootCmd()
	cmd, rest, err := root.Find(oneDashLongFlags(root, args))
	if err != nil {
		t.Fatalf("%v: %v", args, err)
	}
	cmd.InitDefaultHelpFlag()
	if err := cmd.ParseFlags(rest); err != nil {
		t.Fatalf("%v: %v", args, err)
	}
	return cmd, cmd.Flags().Args()
}
