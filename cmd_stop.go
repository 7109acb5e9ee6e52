package main

import (
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/mcptrail/mcptrail/daemon"
)

// newStopCmd is `mcptrail stop`: it returns once the daemon has let go of
// the store, so that the next command can open it.
func newStopCmd() *cobra.Command {
	return command("stop", "stop the daemon cleanly, and wait until it has let go of the store", noArgs, func(cmd *cobra.Command, _ []string) error {
		stdout := cmd.OutOrStdout()
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
		if err := daemon.WaitStopped(home()); err != nil {
			return problemError{oneLine(err)}
		}
		fmt.Fprintln(stdout, "daemon stopped")
		return nil
	})
}
