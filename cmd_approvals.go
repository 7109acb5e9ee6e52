package main

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/mcptrail/mcptrail/approval"
	"github.com/mcptrail/mcptrail/daemon"
	"github.com/mcptrail/mcptrail/internal/termsafe"
	"github.com/mcptrail/mcptrail/store"
	"github.com/mcptrail/mcptrail/ui"
)

// cmdApprovals is `mcptrail approvals [--json]`: the calls an approval
// rule holds, newest first, from the running daemon.
func cmdApprovals(args []string, stdout io.Writer) error {
	fs := newFlags("approvals")
	asJSON := fs.Bool("json", false, "JSON lines")
	if err := parse(fs, args); err != nil {
		return err
	}
	c, err := daemon.Dial(home())
	if err != nil {
		return problemError{"no daemon is running, so no call is held: " + oneLine(err)}
	}
	defer c.Close()
	list, err := c.Approvals()
	if err != nil {
		return problemError{oneLine(err)}
	}
	if *asJSON {
		enc := json.NewEncoder(termsafe.JSONWriter{W: stdout})
		for _, p := range list {
			if err := enc.Encode(p); err != nil {
				return err
			}
		}
		return nil
	}
	tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
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
		fmt.Fprintf(stdout, "\nseq %d %s arguments (as recorded):\n%s\n", p.Seq, termsafe.Line(p.Tool), termsafe.Text(prettyJSON(p.Params)))
	}
	return nil
}

// cmdDecide is `mcptrail approve SEQ` and `mcptrail deny SEQ --reason …`:
// a decision as the daemon's local user, bound to the params the held
// call had when it was listed.
func cmdDecide(name string, approve bool, args []string, stdout io.Writer) error {
	fs := newFlags(name)
	reason := fs.String("reason", "", "why (recorded, and shown to the agent on a deny)")
	flags, pos := interspersed(args)
	if err := parse(fs, flags); err != nil {
		return err
	}
	seq, ok := oneSeq(pos)
	if !ok {
		return usagef("%s: give the seq of one held call (mcptrail approvals lists them)", name)
	}
	if !approve && strings.TrimSpace(*reason) == "" {
		return usagef("deny: give a --reason; the agent reads it")
	}
	c, err := daemon.Dial(home())
	if err != nil {
		return problemError{"no daemon is running, so no call is held: " + oneLine(err)}
	}
	defer c.Close()
	var held *approval.Pending
	list, err := c.Approvals()
	if err != nil {
		return problemError{oneLine(err)}
	}
	for i := range list {
		if list[i].Seq == seq {
			held = &list[i]
		}
	}
	if held == nil {
		return usageError{fmt.Sprintf("%s: %s", name, approval.ErrNotHeld)}
	}
	p, err := c.ApprovalDecide(daemon.DecideArgs{Seq: seq, ParamsSHA256: held.ParamsSHA256, Approve: approve, Reason: *reason})
	if err != nil {
		return usageError{name + ": " + oneLine(err)}
	}
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

// consoleApprovals is the desk of `mcptrail ui` through the daemon; none
// on a store file (nil, not a typed nil).
func consoleApprovals(r daemon.Reader) ui.Approvals {
	if c, ok := r.(*daemon.Client); ok {
		return daemon.ClientDesk{C: c}
	}
	return nil
}

// prettyJSON indents raw JSON for a person; anything else as it is.
func prettyJSON(raw json.RawMessage) string {
	var v any
	if json.Unmarshal(raw, &v) != nil {
		return string(raw)
	}
	b, err := json.MarshalIndent(v, "  ", "  ")
	if err != nil {
		return string(raw)
	}
	return "  " + string(b)
}
