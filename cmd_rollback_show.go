package main

import (
	"github.com/spf13/cobra"
)

// newRollbackShowCmd is `mcptrail rollback show PLAN_ID [--json]`: a stored
// plan, what each step did if it was applied, its approvals.
func newRollbackShowCmd() *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "show PLAN_ID",
		Short: "a stored plan: its steps, what each did if it was applied, its approvals",
		Args:  onePlanID,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, plan, err := openPlan("rollback show", args[0], cmd.ErrOrStderr())
			if err != nil {
				return err
			}
			defer c.Close()
			if asJSON {
				return writeJSONLine(cmd.OutOrStdout(), plan)
			}
			printPlan(cmd.OutOrStdout(), plan)
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the plan as one JSON object")
	return cmd
}
