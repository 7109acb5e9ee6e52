package main

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/mcptrail/mcptrail/config"
)

// newConfigCmd is `mcptrail config check [FILE]`.
func newConfigCmd() *cobra.Command {
	check := command("check [FILE]", "validate a config file", nArgs(0, 1, "one FILE at most"), func(cmd *cobra.Command, args []string) error {
		path := config.DefaultPath()
		if len(args) == 1 {
			path = args[0]
		}
		cfg, err := config.Check(path) // Load, then permissions
		if err != nil {
			return usageError{oneLine(err)}
		}
		if err := cfg.Validate(); err != nil {
			return usageError{oneLine(err)}
		}
		fmt.Fprintf(cmd.OutOrStdout(), "%s: ok (%d upstreams)\n", filepath.Clean(path), len(cfg.Upstreams))
		return nil
	})
	check.Long = fmt.Sprintf("usage: mcptrail config check [FILE]\n\nValidates FILE (default %s): unknown keys and bad values with their line, and permissions.\n"+
		"Exit 0 when it is valid, 2 when it is not.", config.DefaultPath())
	check.DisableFlagsInUseLine = true
	check.ValidArgsFunction = func(_ *cobra.Command, args []string, _ string) ([]string, cobra.ShellCompDirective) {
		if len(args) > 0 {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		return nil, cobra.ShellCompDirectiveDefault // file names
	}
	return group("config", "config file tools", check)
}

func loadConfig(path string) (*config.Config, error) { return readConfig(path, config.Load) }

// loadServeConfig is the daemon's: the file must also pass `config check`
// (ownership and modes, no literal secrets in a file everyone can read),
// as sshd will not start on a config others could have written.
func loadServeConfig(path string) (*config.Config, error) { return readConfig(path, config.Check) }

// readConfig loads path, else the default file when there is one, else
// the defaults; a file that does not load is a usage error.
func readConfig(path string, load func(string) (*config.Config, error)) (*config.Config, error) {
	if path == "" {
		if _, err := os.Stat(config.DefaultPath()); err != nil {
			return config.Default(), nil
		}
		path = config.DefaultPath()
	}
	cfg, err := load(path)
	if err != nil {
		return nil, usageError{oneLine(err)}
	}
	return cfg, nil
}
