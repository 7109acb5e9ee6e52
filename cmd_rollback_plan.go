package main

import (
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/mcptrail/mcptrail/ingest/identity"
	"github.com/mcptrail/mcptrail/rollback"
)

type rollbackPlanFlags struct {
	session, calls string
	from           uint64
	asJSON         bool
}

// newRollbackPlanCmd is `mcptrail rollback plan (--session S | --calls
// SEQ[,SEQ...] | --from SEQ)`: it prints the plan and its id.
func newRollbackPlanCmd() *cobra.Command {
	var f rollbackPlanFlags
	cmd := command("plan (--session S | --calls SEQ[,SEQ...] | --from SEQ)", "plan the reversal of a session, of some calls, or of a call and every later call of its session", noArgs, func(cmd *cobra.Command, _ []string) error { return f.run(cmd.OutOrStdout(), cmd.ErrOrStderr()) })
	cmd.Flags().StringVar(&f.session, "session", "", "revert every tool call of this `SESSION`")
	cmd.Flags().StringVar(&f.calls, "calls", "", "revert these calls: `SEQ[,SEQ...]` (the seq of the request or of its outcome)")
	cmd.Flags().Uint64Var(&f.from, "from", 0, "revert the call `SEQ` and every later call of its session")
	cmd.Flags().BoolVar(&f.asJSON, "json", false, "print the plan as one JSON object")
	return cmd
}

// selection is the one selection the flags name.
func (f *rollbackPlanFlags) selection() (rollback.Selection, error) {
	var sel rollback.Selection
	n := 0
	if f.session != "" {
		sel.Session = f.session
		n++
	}
	if f.calls != "" {
		for _, part := range strings.Split(f.calls, ",") {
			seq, err := strconv.ParseUint(strings.TrimSpace(part), 10, 64)
			if err != nil || seq == 0 {
				return sel, usagef("rollback plan: --calls: %q is not a seq", part)
			}
			sel.Calls = append(sel.Calls, seq)
		}
		n++
	}
	if f.from != 0 {
		sel.From = f.from
		n++
	}
	if n != 1 {
		return sel, usagef("rollback plan: give exactly one of --session S, --calls SEQ[,SEQ...] or --from SEQ")
	}
	return sel, nil
}

func (f *rollbackPlanFlags) run(stdout, stderr io.Writer) error {
	sel, err := f.selection()
	if err != nil {
		return err
	}
	c, err := rollbackDaemon(stderr)
	if err != nil {
		return err
	}
	defer c.Close()
	plan, err := c.RollbackPlan(sel, identity.OSPrincipal().Subject)
	if err != nil {
		return usageError{"rollback plan: " + oneLine(err)}
	}
	if f.asJSON {
		return writeJSONLine(stdout, plan)
	}
	printPlan(stdout, plan)
	switch {
	case plan.Origin != "":
		printElsewhere(stdout, plan)
	case plan.Counts()[rollback.StatusReady] > 0:
		fmt.Fprintf(stdout, "\nApply it with: mcptrail rollback apply %s --yes\n", plan.ID)
	}
	return nil
}
