package main

import (
	"github.com/spf13/cobra"
)

// newRollbackExportCmd is `mcptrail rollback export-plan PLAN_ID`: on a
// collector, a plan of collected calls as the file their origin applies
// with rollback apply --plan-file.
func newRollbackExportCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "export-plan PLAN_ID",
		Short: "print a plan of collected calls as the file their origin applies",
		Args:  onePlanID,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, plan, err := openPlan("rollback export-plan", args[0], cmd.ErrOrStderr())
			if err != nil {
				return err
			}
			defer c.Close()
			if plan.Origin == "" {
				return usagef("rollback export-plan: plan %s reverts calls of this store: apply it here with mcptrail rollback apply %s", plan.ID, plan.ID)
			}
			return writeJSONLine(cmd.OutOrStdout(), plan)
		},
	}
}
