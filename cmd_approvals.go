package main

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/mcptrail/mcptrail/approval"
	"github.com/mcptrail/mcptrail/daemon"
	"github.com/mcptrail/mcptrail/internal/termsafe"
	"github.com/mcptrail/mcptrail/store"
)

// newApprovalsCmd is `mcptrail approvals [--json]`: the calls an approval
// rule holds, newest first, from the running daemon.
func newApprovalsCmd() *cobra.Command {
	var asJSON bool
	cmd := command("approvals", "calls an approval rule holds, newest first, with their arguments as recorded", noArgs, func(cmd *cobra.Command, _ []string) error {
		c, list, err := heldCalls()
		if err != nil {
			return err
		}
		c.Close()
		if asJSON {
			return writeJSONLines(cmd.OutOrStdout(), list)
		}
		return printHeld(cmd.OutOrStdout(), list)
	})
	cmd.Flags().BoolVar(&asJSON, "json", false, "JSON lines")
	return cmd
}

// newApproveCmd is `mcptrail approve SEQ`.
func newApproveCmd() *cobra.Command {
	return command("approve SEQ", "approve held call SEQ as the daemon's OS user; released once its rule's number of approvers have approved", heldSeq, func(cmd *cobra.Command, args []string) error {
		return decide(cmd, args, true, "")
	})
}

// newDenyCmd is `mcptrail deny SEQ --reason TEXT`.
func newDenyCmd() *cobra.Command {
	var reason string
	cmd := command("deny SEQ --reason TEXT", "deny held call SEQ; the agent gets the reason in its JSON-RPC error", heldSeq, func(cmd *cobra.Command, args []string) error {
		if strings.TrimSpace(reason) == "" {
			return usagef("deny: give a --reason; the agent reads it")
		}
		return decide(cmd, args, false, reason)
	})
	cmd.Flags().StringVar(&reason, "reason", "", "`TEXT` saying why (recorded, and shown to the agent)")
	return cmd
}

// heldSeq is Args of approve and deny: the seq of one held call.
func heldSeq(c *cobra.Command, args []string) error {
	if _, ok := oneSeq(args); !ok {
		return usagef("%s: give the seq of one held call (mcptrail approvals lists them)", c.Name())
	}
	return nil
}

// heldCalls are the calls the running daemon holds; the caller closes the
// client.
func heldCalls() (*daemon.Client, []approval.Pending, error) {
	c, err := daemon.Dial(home())
	if err != nil {
		return nil, nil, problemError{"no daemon is running, so no call is held: " + oneLine(err)}
	}
	list, err := c.Approvals()
	if err != nil {
		c.Close()
		return nil, nil, problemError{oneLine(err)}
	}
	return c, list, nil
}

func printHeld(w io.Writer, list []approval.Pending) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "SEQ\tHELD\tLEFT\tAGENT\tPRINCIPAL\tUPSTREAM\tTOOL\tAPPROVALS\tRULE\tPARAMS SHA-256")
	for _, p := range list {
		left := time.Until(p.Deadline).Truncate(time.Second)
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\t%s\t%d/%d\t%s\t%s\n", p.Seq, p.Time.Local().Format("15:04:05"), left,
			termsafe.Line(termsafe.OrDash(store.AgentLabel(p.Agent))), termsafe.Line(principalLabel(p.Principal)), termsafe.Line(p.Upstream), termsafe.Line(p.Tool),
			len(p.Approvers), p.Required, termsafe.Line(p.Rule), p.ParamsSHA256[:16])
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, p := range list {
		fmt.Fprintf(w, "\nseq %d %s arguments (as recorded):\n%s\n", p.Seq, termsafe.Line(p.Tool), termsafe.Text(prettyJSON(p.Params)))
	}
	return nil
}

// decide is approve and deny: a decision as the daemon's local user, bound
// to the params the held call had when it was listed.
func decide(cmd *cobra.Command, args []string, approve bool, reason string) error {
	name := cmd.Name()
	seq, _ := oneSeq(args)
	c, list, err := heldCalls()
	if err != nil {
		return err
	}
	defer c.Close()
	var held *approval.Pending
	for i := range list {
		if list[i].Seq == seq {
			held = &list[i]
		}
	}
	if held == nil {
		return usageError{fmt.Sprintf("%s: %s", name, approval.ErrNotHeld)}
	}
	p, err := c.ApprovalDecide(daemon.DecideArgs{Seq: seq, ParamsSHA256: held.ParamsSHA256, Approve: approve, Reason: reason})
	if err != nil {
		return usageError{name + ": " + oneLine(err)}
	}
	stdout := cmd.OutOrStdout()
	switch {
	case !approve:
		fmt.Fprintf(stdout, "denied call %d (%s)\n", seq, termsafe.Line(p.Tool))
	case len(p.Approvers) < p.Required:
		fmt.Fprintf(stdout, "approved call %d (%s): %d of %d approvals, still held\n", seq, termsafe.Line(p.Tool), len(p.Approvers), p.Required)
	default:
		fmt.Fprintf(stdout, "approved call %d (%s): released\n", seq, termsafe.Line(p.Tool))
	}
	return nil
}
