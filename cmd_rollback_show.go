package main

import (
	"github.com/spf13/cobra"

	"github.com/mcptrail/mcptrail/rollback"
)

// newRollbackShowCmd is `mcptrail rollback show PLAN_ID [--json]`: a stored
// plan, what each step did if it was applied, its approvals.
func newRollbackShowCmd() *cobra.Command {
	var asJSON bool
	cmd := command("show PLAN_ID", "a stored plan: its steps, what each did if it was applied, its approvals", onePlanID,
		withPlan(func(cmd *cobra.Command, plan *rollback.Plan) error {
			if asJSON {
				return writeJSONLine(cmd.OutOrStdout(), plan)
			}
			printPlan(cmd.OutOrStdout(), plan)
			return nil
		}))
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the plan as one JSON object")
	return cmd
}
