package main

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/charmbracelet/x/term"
	"github.com/spf13/cobra"

	"github.com/mcptrail/mcptrail/daemon"
	"github.com/mcptrail/mcptrail/ingest/identity"
	"github.com/mcptrail/mcptrail/internal/termsafe"
	"github.com/mcptrail/mcptrail/rollback"
)

type rollbackApplyFlags struct {
	yes, asJSON bool
	planFile    string
}

// newRollbackApplyCmd is `mcptrail rollback apply (PLAN_ID | --plan-file
// FILE) [--yes]`: approve and apply a plan through the gateway; exit 1 when
// a step conflicts or fails.
func newRollbackApplyCmd() *cobra.Command {
	var f rollbackApplyFlags
	cmd := command("apply (PLAN_ID | --plan-file FILE)", "approve and apply a plan through the gateway", func(cmd *cobra.Command, args []string) error {
		switch {
		case cmd.Flags().Changed("plan-file") && len(args) != 0:
			return usagef("rollback apply: give a PLAN_ID or --plan-file FILE, not both")
		case !cmd.Flags().Changed("plan-file") && len(args) != 1:
			return usagef("rollback apply: give one PLAN_ID (from `mcptrail rollback plan`) or --plan-file FILE")
		}
		return nil
	}, func(cmd *cobra.Command, args []string) error {
		return f.run(cmd.Flags().Changed("plan-file"), args, cmd.InOrStdin(), cmd.OutOrStdout(), cmd.ErrOrStderr())
	})
	cmd.Flags().BoolVar(&f.yes, "yes", false, "apply without asking")
	cmd.Flags().BoolVar(&f.asJSON, "json", false, "print the plan after the apply as one JSON object")
	cmd.Flags().StringVar(&f.planFile, "plan-file", "", "apply here the plan in `FILE`, made on a central mcptrail (rollback export-plan), re-checked against this store's record")
	cmd.MarkFlagFilename("plan-file")
	return cmd
}

func (f *rollbackApplyFlags) run(fromFile bool, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	var c *daemon.Client
	var plan *rollback.Plan
	var err error
	if fromFile {
		c, plan, err = planFromFile(f.planFile, identity.OSPrincipal().Subject, stderr)
	} else {
		c, plan, err = openPlan("rollback apply", args[0], stderr)
	}
	if err != nil {
		return err
	}
	defer c.Close()
	if !f.yes {
		in, ok := stdin.(*os.File)
		if !ok || !term.IsTerminal(in.Fd()) {
			return usagef("rollback apply: pass --yes to apply without a prompt")
		}
		printPlan(stdout, plan)
		fmt.Fprintf(stdout, "\nApply plan %s as %s? Every inverse call is recorded under your name. Type yes to go on: ", plan.ID, identity.OSPrincipal().Subject)
		line, _ := bufio.NewReader(stdin).ReadString('\n')
		if strings.TrimSpace(line) != "yes" {
			return problemError{"not applied"}
		}
	}
	who := rollback.Approver{Name: identity.OSPrincipal().Subject, Via: "cli"}
	plan, err = c.RollbackApply(plan.ID, who)
	if err != nil {
		return problemError{"rollback apply: " + oneLine(err)}
	}
	if f.asJSON {
		if err := writeJSONLine(stdout, plan); err != nil {
			return err
		}
	} else {
		printApplied(stdout, plan)
	}
	if plan.State != rollback.PlanApplied {
		return problemError{fmt.Sprintf("rollback plan %s %s: %s", plan.ID, plan.State, plan.Error)}
	}
	return nil
}

// planFromFile reads the plan file of rollback apply --plan-file, checks
// it against this store's record (refusing the whole plan at the first
// step that does not match), and plans its calls afresh here, re-reading
// their current state: what is then confirmed and applied is this
// store's plan, never the file's steps.
func planFromFile(name, by string, stderr io.Writer) (*daemon.Client, *rollback.Plan, error) {
	if name == "" {
		return nil, nil, usagef("rollback apply: --plan-file needs a file (from mcptrail rollback export-plan)")
	}
	f, err := os.Open(name)
	if err != nil {
		return nil, nil, usageError{"rollback apply: " + oneLine(err)}
	}
	central, err := rollback.ReadPlanFile(f)
	f.Close()
	if err != nil {
		return nil, nil, usageError{"rollback apply: " + termsafe.Line(name) + ": " + oneLine(err)}
	}
	c, err := rollbackDaemon(stderr)
	if err != nil {
		return nil, nil, err
	}
	st, err := c.Status()
	if err != nil {
		c.Close()
		return nil, nil, err
	}
	sel, err := central.OriginSelection(st.StoreID, c)
	if err != nil {
		c.Close()
		return nil, nil, problemError{"rollback apply: plan file " + termsafe.Line(name) + " refused, nothing applied: " + termsafe.Line(oneLine(err))}
	}
	plan, err := c.RollbackPlan(sel, by)
	if err != nil {
		c.Close()
		return nil, nil, usageError{"rollback apply: planning the file's calls here: " + oneLine(err)}
	}
	fmt.Fprintf(stderr, "mcptrail: plan file %s (central plan %s): its %d calls match this store's record; planned here as %s\n",
		termsafe.Line(name), termsafe.Line(central.ID), len(sel.Calls), plan.ID)
	return c, plan, nil
}
