package daemon

// Approvals as the daemon runs them: the desk that holds the calls its
// rules name (approval.Desk), as the HTTP gateway's Approve hook and, over
// the socket, for wraps' sessions; the decisions of the console and of
// `mcptrail approve|deny`.

import (
	"errors"
	"fmt"
	"net/rpc"
	"os/user"
	"strings"

	"github.com/mcptrail/mcptrail/approval"
	"github.com/mcptrail/mcptrail/config"
	"github.com/mcptrail/mcptrail/store"
	"github.com/mcptrail/mcptrail/ui"
)

// startApprovals compiles the config's approval rules, ends the holds a
// restart interrupted, and hooks the desk into the gateway. It runs after
// startRollback (a held call shows its rollback rule's resource).
func (d *Daemon) startApprovals() error {
	p, err := approval.Compile(d.opts.Config.Approvals)
	if err != nil {
		return err
	}
	desk := &approval.Desk{Record: func(ev *store.Event) (uint64, error) { return d.Record(ev, true) }, Log: d.log}
	if d.rb != nil {
		desk.Resources = d.rb.rules.Resources
		desk.State = d.rb.heldState
	}
	desk.Observe = d.ops.metrics.Approval // nil-safe: metrics may be off
	desk.SetPolicy(p)
	if n, err := desk.Recover(d.store); err != nil {
		return fmt.Errorf("approvals: ending the holds of the last run: %w", err)
	} else if n > 0 {
		d.log.Warn("approvals: calls held when the daemon last stopped were ended as expired (never forwarded)", "calls", n)
	}
	d.desk = desk
	// Hooked even without rules, so that a reload can add some: a call
	// then costs the desk one atomic load.
	d.hooks.Approve = desk.Approve
	if p != nil {
		d.log.Info("approval rules loaded", "rules", len(p.Rules), "policy", p.Version)
	}
	return nil
}

// reloadApprovals puts the reloaded approval rules in force (Validate has
// compiled them once already). Calls held under the old rules stay held,
// and can only be denied: an approval binds to the policy it was asked under.
func (d *Daemon) reloadApprovals(cfg *config.Config) {
	p, err := approval.Compile(cfg.Approvals)
	if err != nil || d.desk == nil {
		return
	}
	if old := d.desk.Policy(); (old == nil) != (p == nil) || (p != nil && old.Version != p.Version) {
		version := ""
		if p != nil {
			version = p.Version
		}
		d.log.Info("reload: approval rules", "rules", len(cfg.Approvals), "policy", version, "held_now", d.desk.Count())
	}
	d.desk.SetPolicy(p)
}

// consoleApprovals is the desk the SSH console decides with (nil, not a
// typed nil, when there is none).
func (d *Daemon) consoleApprovals() ui.Approvals {
	if d.desk == nil {
		return nil
	}
	return d.desk
}

// Desk is the daemon's approval desk.
func (d *Daemon) Desk() *approval.Desk { return d.desk }

// HoldArgs ask the daemon to hold a wrap's recorded call.
type HoldArgs struct {
	Seq          uint64
	ParamsSHA256 string
	ServerName   string
}

// HoldReply is its decision: Held false when no rule holds the call.
type HoldReply struct {
	Held          bool
	Authorization *store.Authorization
}

// CancelArgs refuse a held call.
type CancelArgs struct {
	Seq    uint64
	Reason string
}

// DecideArgs approve or deny a held call from the local CLI. The approver
// is the OS user the daemon runs as: only that user (and root) can open
// the socket.
type DecideArgs struct {
	Seq          uint64
	ParamsSHA256 string
	Approve      bool
	Reason       string
}

// ApprovalWait holds a wrap's call (by the seq its request was recorded
// with) if the daemon's rules hold it, and answers once it is decided.
func (s *service) ApprovalWait(a *HoldArgs, r *HoldReply) error {
	if len(a.ParamsSHA256) != 64 || strings.Trim(a.ParamsSHA256, "0123456789abcdef") != "" {
		return errors.New("the params hash is not a hex SHA-256")
	}
	if err := s.d.store.Flush(); err != nil {
		return err
	}
	req, err := s.d.store.Get(a.Seq)
	if err != nil {
		return fmt.Errorf("the held call's request is not in the record: %w", err)
	}
	if req.Kind != store.KindRequest || req.Method != "tools/call" {
		return errors.New("seq is not a tools/call request")
	}
	h := s.d.desk.Hold(req, a.ParamsSHA256, a.ServerName)
	if h == nil {
		return nil
	}
	r.Held = true
	r.Authorization, err = h.Wait()
	return err
}

// ApprovalCancel refuses a wrap's held call: its session ended.
func (s *service) ApprovalCancel(a *CancelArgs, _ *struct{}) error {
	s.d.desk.CancelCall(a.Seq, a.Reason)
	return nil
}

// Approvals lists the held calls, newest first.
func (s *service) Approvals(_ struct{}, r *[]approval.Pending) error {
	*r = s.d.desk.Pending()
	return nil
}

// ApprovalDecide approves or denies a held call as the daemon's OS user.
func (s *service) ApprovalDecide(a *DecideArgs, r *approval.Pending) error {
	p, err := s.d.desk.Decide(a.Seq, a.ParamsSHA256, localApprover(), a.Approve, a.Reason)
	if err != nil {
		return err
	}
	*r = *p
	return nil
}

// localApprover is whoever holds the daemon's socket: its own user (the
// socket is 0600), an operator.
func localApprover() approval.Approver {
	name := "unknown"
	if u, err := user.Current(); err == nil {
		name = u.Username
	}
	return approval.Approver{ID: "user:" + name, Role: approval.RoleOperator, Via: "cli"}
}

// ApprovalWait asks the daemon to hold a recorded call; it blocks until
// the call is decided. A daemon that goes away meanwhile denies it.
func (c *Client) ApprovalWait(seq uint64, hash, server string) (*store.Authorization, bool, error) {
	var r HoldReply
	err := c.rpc.Call("Daemon.ApprovalWait", &HoldArgs{Seq: seq, ParamsSHA256: hash, ServerName: server}, &r)
	var se rpc.ServerError
	if err != nil && !errors.As(err, &se) {
		return nil, false, fmt.Errorf("the daemon went away while the call waited for approval (%v): denied", err)
	}
	if err != nil {
		return nil, true, errors.New(string(se))
	}
	return r.Authorization, r.Held, nil
}

// ApprovalCancel refuses a held call.
func (c *Client) ApprovalCancel(seq uint64, reason string) error {
	return c.rpc.Call("Daemon.ApprovalCancel", &CancelArgs{Seq: seq, Reason: reason}, &struct{}{})
}

// Approvals lists the held calls.
func (c *Client) Approvals() ([]approval.Pending, error) {
	var r []approval.Pending
	return r, c.rpc.Call("Daemon.Approvals", struct{}{}, &r)
}

// ApprovalDecide approves or denies a held call as the local user.
func (c *Client) ApprovalDecide(a DecideArgs) (*approval.Pending, error) {
	var r approval.Pending
	if err := c.rpc.Call("Daemon.ApprovalDecide", &a, &r); err != nil {
		return nil, errors.New(strings.TrimPrefix(err.Error(), "rpc: "))
	}
	return &r, nil
}

// ClientDesk is the daemon's desk as `mcptrail ui` reaches it over the
// socket (ui.Approvals). Decisions are the daemon's local user's, whoever
// the console says it is: only that user (and root) can open the socket.
type ClientDesk struct{ C *Client }

// Pending lists the held calls; none when the daemon cannot be asked.
func (d ClientDesk) Pending() []approval.Pending {
	list, err := d.C.Approvals()
	if err != nil {
		return nil
	}
	return list
}

// Decide approves or denies a held call as the daemon's local user.
func (d ClientDesk) Decide(seq uint64, hash string, _ approval.Approver, approve bool, reason string) (*approval.Pending, error) {
	return d.C.ApprovalDecide(DecideArgs{Seq: seq, ParamsSHA256: hash, Approve: approve, Reason: reason})
}
