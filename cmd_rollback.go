package main

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/mcptrail/mcptrail/daemon"
	"github.com/mcptrail/mcptrail/internal/termsafe"
	"github.com/mcptrail/mcptrail/rollback"
)

// newRollbackCmd is `mcptrail rollback plan|apply|show|export-plan|history`.
// Plans are built and applied by the daemon (started in the background
// when none runs), which owns the store and reaches the upstreams.
func newRollbackCmd() *cobra.Command {
	return group("rollback", "plan and apply reversals",
		newRollbackPlanCmd(), newRollbackApplyCmd(), newRollbackShowCmd(), newRollbackExportCmd(), newRollbackHistoryCmd())
}

// onePlanID is Args of a subcommand that takes one PLAN_ID.
var onePlanID = nArgs(1, 1, "give one PLAN_ID")

// withPlan is RunE of a subcommand on one stored plan: do gets the plan,
// fetched through the daemon.
func withPlan(do func(cmd *cobra.Command, plan *rollback.Plan) error) func(*cobra.Command, []string) error {
	return func(cmd *cobra.Command, args []string) error {
		c, plan, err := openPlan(cmdName(cmd), args[0], cmd.ErrOrStderr())
		if err != nil {
			return err
		}
		defer c.Close()
		return do(cmd, plan)
	}
}

// openPlan fetches plan id through the daemon; the caller closes the
// client.
func openPlan(name, id string, stderr io.Writer) (*daemon.Client, *rollback.Plan, error) {
	c, err := rollbackDaemon(stderr)
	if err != nil {
		return nil, nil, err
	}
	plan, err := c.RollbackGet(id)
	if err != nil {
		c.Close()
		return nil, nil, usageError{name + ": " + oneLine(err)}
	}
	return c, plan, nil
}

// rollbackDaemon reaches the daemon that plans and applies reversals
// (starting one if none runs: plans need the store and the gateway).
func rollbackDaemon(stderr io.Writer) (*daemon.Client, error) {
	c, err := daemon.Ensure(home(), stderr)
	if err != nil {
		return nil, problemError{"cannot reach the daemon: " + oneLine(err)}
	}
	return c, nil
}

// printPlan writes a plan for a person: its steps newest first, each with
// its status and the diff current → restored.
func printPlan(w io.Writer, p *rollback.Plan) {
	counts := p.Counts()
	var parts []string
	for _, s := range rollback.Statuses {
		if counts[s] > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", counts[s], s))
		}
	}
	fmt.Fprintf(w, "plan %s: %s, %d steps (%s), state %s\n", p.ID, termsafe.Line(p.Selection.String()), len(p.Steps), strings.Join(parts, ", "), p.State)
	if p.Checked {
		fmt.Fprintln(w, "the current state of each resource was re-read")
	}
	if p.Note != "" {
		fmt.Fprintln(w, "note:", termsafe.Line(p.Note))
	}
	for _, a := range p.Approvals {
		fmt.Fprintf(w, "approved by %s (%s) at %s, event %d\n", termsafe.Line(a.Approver.ID()), a.Approver.Via, a.Time.Local().Format("2006-01-02 15:04:05"), a.Seq)
	}
	if p.Error != "" {
		fmt.Fprintln(w, "stopped:", termsafe.Line(p.Error))
	}
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "STEP\tREVERTS\tTOOL\tSTATUS\tSTATE\tARGUMENTS")
	for _, s := range p.Steps {
		fmt.Fprintf(tw, "%d\t%d\t%s\t%s\t%s\t%s\n", s.N, s.Reverts, termsafe.Line(s.Tool), s.Result(), termsafe.OrDash(s.State), cut(termsafe.Line(s.Args), 60))
	}
	tw.Flush()
	for _, s := range p.Steps {
		if s.Reason == "" && s.Diff == "" && len(s.Calls) == 0 {
			continue
		}
		fmt.Fprintf(w, "\nstep %d (call %d, %s, session %s): %s\n", s.N, s.Reverts, termsafe.Line(s.Tool), termsafe.Line(s.Session), s.Result())
		if s.Reason != "" {
			fmt.Fprintf(w, "  %s\n", termsafe.Line(s.Reason))
		}
		for _, c := range s.Calls {
			fmt.Fprintf(w, "  will call %s %s\n", termsafe.Line(c.Tool), cut(string(termsafe.JSON(c.Args)), 120))
		}
		if s.Error != "" {
			fmt.Fprintf(w, "  error: %s\n", termsafe.Line(s.Error))
		}
		if s.Diff != "" {
			lines := strings.Split(strings.TrimSuffix(s.Diff, "\n"), "\n")
			const most = 30
			for i, l := range lines {
				if i == most {
					fmt.Fprintf(w, "  … %d more lines (rollback show --json has them all)\n", len(lines)-most)
					break
				}
				fmt.Fprintf(w, "  %s\n", termsafe.Line(l))
			}
		}
	}
}

func printApplied(w io.Writer, p *rollback.Plan) {
	for _, s := range p.Steps {
		what := s.State
		switch {
		case s.State == rollback.StateDone:
			what = fmt.Sprintf("done (rollback_step events %v)", s.StepSeq)
		case s.Status != rollback.StatusReady:
			what = s.Status + ": " + termsafe.Line(s.Reason)
		case s.State == rollback.StateFailed:
			what = "FAILED: " + termsafe.Line(s.Error)
		case s.State == "":
			what = "not run"
		}
		fmt.Fprintf(w, "step %d (call %d, %s): %s\n", s.N, s.Reverts, termsafe.Line(s.Tool), what)
	}
	switch p.State {
	case rollback.PlanApplied:
		fmt.Fprintf(w, "plan %s applied\n", p.ID)
	default:
		fmt.Fprintf(w, "plan %s %s: %s\n", p.ID, p.State, termsafe.Line(p.Error))
	}
}

// printElsewhere tells how a central plan is applied: on its origin.
func printElsewhere(w io.Writer, p *rollback.Plan) {
	here, there := p.ElsewhereCommands()
	fmt.Fprintf(w, "\nThis plan cannot be applied here: the calls ran on %s (store %s). Apply it there:\n", termsafe.Line(p.Host()), termsafe.Line(p.Origin))
	fmt.Fprintf(w, "  here:  %s\n", termsafe.Line(here))
	fmt.Fprintf(w, "  there: %s\n", termsafe.Line(there))
}
