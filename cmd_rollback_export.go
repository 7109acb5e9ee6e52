package main

import (
	"github.com/spf13/cobra"

	"github.com/mcptrail/mcptrail/rollback"
)

// newRollbackExportCmd is `mcptrail rollback export-plan PLAN_ID`: on a
// collector, a plan of collected calls as the file their origin applies
// with rollback apply --plan-file.
func newRollbackExportCmd() *cobra.Command {
	return command("export-plan PLAN_ID", "print a plan of collected calls as the file their origin applies", onePlanID,
		withPlan(func(cmd *cobra.Command, plan *rollback.Plan) error {
			if plan.Origin == "" {
				return usagef("rollback export-plan: plan %s reverts calls of this store: apply it here with mcptrail rollback apply %s", plan.ID, plan.ID)
			}
			return writeJSONLine(cmd.OutOrStdout(), plan)
		}))
}
