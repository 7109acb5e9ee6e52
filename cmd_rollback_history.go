package main

import (
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"

	"github.com/mcptrail/mcptrail/internal/termsafe"
)

// newRollbackHistoryCmd is `mcptrail rollback history SEQ [--json]`: the
// history of the resource a call changed, every call that touched it with
// the version before and after each.
func newRollbackHistoryCmd() *cobra.Command {
	var asJSON bool
	cmd := command("history SEQ", "every recorded call that touched the resource call SEQ changed, with the version before and after each", func(_ *cobra.Command, args []string) error {
		if _, ok := oneSeq(args); !ok {
			return usagef("rollback history: give the seq of one call")
		}
		return nil
	}, func(cmd *cobra.Command, args []string) error {
		seq, _ := oneSeq(args)
		return rollbackHistory(seq, asJSON, cmd.OutOrStdout(), cmd.ErrOrStderr())
	})
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the history as one JSON object")
	return cmd
}

func rollbackHistory(seq uint64, asJSON bool, stdout, stderr io.Writer) error {
	c, err := rollbackDaemon(stderr)
	if err != nil {
		return err
	}
	defer c.Close()
	h, err := c.RollbackHistory(seq)
	if err != nil {
		return usageError{"rollback history: " + oneLine(err)}
	}
	if asJSON {
		return writeJSONLine(stdout, h)
	}
	upstreams := h.Upstreams
	if len(upstreams) == 0 {
		upstreams = []string{h.Upstream}
	}
	steps := len(h.Versions) - h.Changes()
	fmt.Fprintf(stdout, "%s on %s: %d changes, %d rollback steps, oldest first\n", termsafe.Line(h.Key), termsafe.Line(strings.Join(upstreams, ", ")), h.Changes(), steps)
	for i, v := range h.Versions {
		at := v.Time.Local().Format("2006-01-02 15:04:05")
		if v.IsRollback() {
			fmt.Fprintf(stdout, "\nversion %d: rollback step %d reverts call %d (%s), session %s, %s, %s\n", i+1, v.Call, v.Reverts, termsafe.Line(v.Tool), termsafe.Line(v.Session), at, v.Outcome)
		} else {
			fmt.Fprintf(stdout, "\nversion %d: call %d %s by %s on %s, session %s, %s, %s\n", i+1, v.Call, termsafe.Line(v.Tool), termsafe.Line(v.Agent), termsafe.Line(v.Upstream), termsafe.Line(v.Session), at, v.Outcome)
			if v.RevertedBy != 0 {
				fmt.Fprintf(stdout, "  reverted by rollback step %d\n", v.RevertedBy)
			}
		}
		if v.Note != "" {
			fmt.Fprintf(stdout, "  %s\n", termsafe.Line(v.Note))
		}
		for _, l := range strings.Split(strings.TrimSuffix(v.Diff, "\n"), "\n") {
			if l != "" {
				fmt.Fprintf(stdout, "  %s\n", termsafe.Line(l))
			}
		}
	}
	if n := len(h.Versions); n > 1 {
		fmt.Fprintf(stdout, "\nTo go back to version K: mcptrail rollback plan --calls <the calls (not rollback steps, not reverted) of versions K+1..%d>\n", n)
	}
	return nil
}
