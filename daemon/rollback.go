package daemon

// Rollback as the daemon runs it: the capture hook on the HTTP gateway's
// sessions, pre-states from wrap's sessions over the socket, and plans
// built and applied here, where the store and the upstreams' configuration
// live. Inverse calls run in sessions the daemon originates
// (ingest.Originate): a serve upstream as configured, a wrap session's
// server by the command its session_start recorded.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mcptrail/mcptrail/approval"
	"github.com/mcptrail/mcptrail/ingest"
	"github.com/mcptrail/mcptrail/rollback"
	"github.com/mcptrail/mcptrail/store"
	"github.com/mcptrail/mcptrail/ui"
)

// TestCrashAfterEnv makes the daemon exit abruptly right after this many
// inverse calls have been answered and recorded (end-to-end tests of an
// interrupted apply). Never set it in production.
const TestCrashAfterEnv = "MCPTRAIL_TEST_ROLLBACK_CRASH_AFTER"

// Rollback is the daemon's rollback service; the console and the socket
// use it.
type Rollback struct {
	d       *Daemon
	rules   *rollback.RuleSet
	planner *rollback.Planner
	exec    *rollback.Executor

	applyMu sync.Mutex // one apply at a time: "never twice" holds across plans

	crashAfter atomic.Int64 // TestCrashAfterEnv; 0 = off
}

// startRollback loads the rules (built in, then $XDG_CONFIG_HOME/mcptrail/
// rollback/*.yaml) and hooks capture and classification into the gateway.
func (d *Daemon) startRollback() error {
	rules, err := rollback.Load(rollback.DefaultDir())
	if err != nil {
		return err
	}
	r := &Rollback{d: d, rules: rules}
	rollback.Hook(&d.hooks, rules, d.store.Rollback(), d.log)
	// Plans and histories show what the record would: secrets masked by
	// the gateway's hook. Pre-states stay exact, for the restore.
	r.planner = &rollback.Planner{Rules: rules, Source: d.store.Rollback(), Connect: r.connect, Redact: d.hooks.Redact}
	r.exec = &rollback.Executor{Rules: rules, Store: d.store.Rollback(), Record: d.store.Append, Connect: r.connect, Log: d.log}
	if n, err := strconv.Atoi(os.Getenv(TestCrashAfterEnv)); err == nil && n > 0 {
		r.crashAfter.Store(int64(n))
		d.log.Warn("test hook: the daemon will crash during a rollback apply", "after_calls", n)
	}
	d.rb = r
	var names []string
	for _, s := range rules.Servers() {
		names = append(names, s.Server)
	}
	d.log.Info("rollback rules loaded", "servers", names, "dir", rollback.DefaultDir())
	return nil
}

// Rules are the loaded rollback rules.
func (r *Rollback) Rules() *rollback.RuleSet { return r.rules }

// Plan builds, stores and returns a plan.
func (r *Rollback) Plan(sel rollback.Selection, by string) (*rollback.Plan, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := r.d.store.Flush(); err != nil {
		return nil, err
	}
	p, err := r.planner.Build(ctx, sel, by)
	if err != nil {
		return nil, err
	}
	if err := rollback.SavePlan(r.d.store.Rollback(), p); err != nil {
		return nil, err
	}
	r.d.log.Info("rollback plan built", "plan", p.ID, "selection", sel.String(), "by", by, "steps", len(p.Steps), "statuses", p.Counts())
	return p, nil
}

// Get returns a stored plan.
func (r *Rollback) Get(id string) (*rollback.Plan, error) {
	return rollback.LoadPlan(r.d.store.Rollback(), id)
}

// Apply approves and applies a plan (rollback.Executor.Apply); progress
// sees every step as it goes.
func (r *Rollback) Apply(id string, who rollback.Approver, progress func(*rollback.Plan)) (*rollback.Plan, error) {
	if who.ID() == "" {
		return nil, rollback.ErrNotApproved
	}
	r.applyMu.Lock()
	defer r.applyMu.Unlock()
	r.d.log.Info("rollback apply", "plan", id, "approver", who.ID(), "via", who.Via)
	p, err := r.exec.Apply(context.Background(), id, who, progress)
	if err == nil {
		r.d.log.Info("rollback apply ended", "plan", id, "state", p.State, "error", p.Error)
	}
	return p, err
}

// The console's view of the service (ui.Rollback).

// consoleRollback is the service the SSH console plans and applies with
// (nil, not a typed nil, when rollback is off).
func (d *Daemon) consoleRollback() ui.Rollback {
	if d.rb == nil {
		return nil
	}
	return d.rb
}

// consoleRules are the rules a console names resources by (`f path:`).
func (d *Daemon) consoleRules() *rollback.RuleSet {
	if d.rb == nil {
		return nil
	}
	return d.rb.rules
}

// RollbackPlan builds and stores a plan.
func (r *Rollback) RollbackPlan(sel rollback.Selection, by string) (*rollback.Plan, error) {
	return r.Plan(sel, by)
}

// RollbackGet reads a stored plan.
func (r *Rollback) RollbackGet(id string) (*rollback.Plan, error) { return r.Get(id) }

// RollbackApply approves and applies a plan.
func (r *Rollback) RollbackApply(id string, who rollback.Approver) (*rollback.Plan, error) {
	return r.Apply(id, who, nil)
}

// RollbackHistory is the history of the resource a call changed.
func (r *Rollback) RollbackHistory(call uint64) (*rollback.History, error) {
	if err := r.d.store.Flush(); err != nil {
		return nil, err
	}
	return r.planner.History(context.Background(), call, "")
}

// heldState is the approval desk's State: what the resource of a held call
// holds now, redacted with the gateway's redactor like every history. The
// gateway captures a call's pre-state when it records the request, before
// the hold, so for a tool whose rollback rule has capture reads that is a
// read of the server at hold time; otherwise it is what the newest
// recorded change of the resource left.
func (r *Rollback) heldState(seq uint64) (*approval.State, error) {
	if err := r.d.store.Flush(); err != nil {
		return nil, err
	}
	v, key, err := r.planner.Current(context.Background(), seq)
	if err != nil {
		return nil, err
	}
	if v == nil {
		return &approval.State{Key: key, Note: "no pre-state was read and no earlier change of it is recorded"}, nil
	}
	st := &approval.State{Key: key, Text: v.After, Read: v.Call == seq, Tool: v.Tool, Time: v.Time, Note: v.Note}
	if !st.Read {
		st.Call = v.Call
		if st.Text == "" && st.Note == "" {
			st.Note = "the record does not say what call " + fmt.Sprint(v.Call) + " left"
		}
	}
	return st, nil
}

// RollbackPlans lists stored plans, newest first.
func (r *Rollback) RollbackPlans(limit int) ([]*rollback.Plan, error) { return plans(r.d.store, limit) }

func plans(st *store.Store, limit int) ([]*rollback.Plan, error) {
	raw, err := st.Rollback().Plans(limit)
	if err != nil {
		return nil, err
	}
	out := make([]*rollback.Plan, 0, len(raw))
	for _, b := range raw {
		var p rollback.Plan
		if json.Unmarshal(b, &p) == nil {
			out = append(out, &p)
		}
	}
	return out, nil
}

// connect reaches a target's upstream in a session of the daemon's own.
func (r *Rollback) connect(ctx context.Context, t rollback.Target, rec *rollback.ApplyInfo) (rollback.Conn, error) {
	d := r.d
	var up ingest.Upstream
	switch {
	case len(t.Command) > 0:
		up = ingest.Upstream{Command: t.Command, Dir: t.Dir}
		for k, v := range t.Env {
			up.Env = append(up.Env, k+"="+v)
		}
	default:
		u, ok := d.opts.Config.Upstreams[t.Upstream]
		if !ok {
			if t.Transport == "stdio" {
				return nil, fmt.Errorf("the wrap session of %s recorded no server command (it predates rollback), and no upstream of that name is configured", t.Upstream)
			}
			return nil, fmt.Errorf("no upstream %q is configured in this daemon", t.Upstream)
		}
		up = ingest.Upstream{URL: u.URL, Command: u.Command, Dir: u.Dir, Headers: u.Headers}
		for k, v := range u.Env {
			up.Env = append(up.Env, k+"="+v)
		}
	}
	if len(up.Command) > 0 {
		up.Env = append(up.Env, d.childEnv()...)
	}
	opts := ingest.OriginOptions{
		Info:     ingest.SessionInfo{Upstream: t.Upstream, Agent: store.Agent{ID: "mcptrail-rollback", Name: "mcptrail-rollback"}},
		Upstream: up,
		Hooks:    ingest.Hooks{Redact: d.hooks.Redact, Classify: d.hooks.Classify},
		Limits:   ingest.Limits{MaxMessageBytes: d.opts.Config.MaxMessageBytes, MaxDepth: d.opts.Config.MaxDepth, CallTimeout: time.Duration(d.opts.Config.CallTimeout)},
		Logger:   d.log,
		Stderr:   logWriter{d.log},
		Roots:    t.Roots,
	}
	if rec != nil {
		opts.Recorder = d
		opts.Info.Principal = rec.Approver.Principal()
		opts.Info.Task = rollback.Task(rec.Plan)
	}
	o, err := ingest.Originate(ctx, opts)
	if err != nil {
		return nil, err
	}
	if rec != nil && r.crashAfter.Load() > 0 {
		return &crashingConn{Conn: o, r: r}, nil
	}
	return o, nil
}

// crashingConn is TestCrashAfterEnv's hook.
type crashingConn struct {
	rollback.Conn
	r *Rollback
}

func (c *crashingConn) Call(ctx context.Context, method string, params any, rec *ingest.CallRecord) (json.RawMessage, uint64, error) {
	res, seq, err := c.Conn.Call(ctx, method, params, rec)
	if rec != nil && c.r.crashAfter.Add(-1) == 0 {
		// Let the outcome reach the file, then die as a crash would: no
		// plan update, no session end, no final checkpoint.
		time.Sleep(100 * time.Millisecond)
		c.r.d.store.Flush()
		c.r.d.log.Error("test hook: crashing in the middle of a rollback apply")
		os.Exit(3)
	}
	return res, seq, err
}

// --- over the socket ---

// PutPrestateArgs carries a pre-state wrap captured.
type PutPrestateArgs struct {
	Call uint64
	Data []byte
}

// RollbackPlanArgs asks for a plan.
type RollbackPlanArgs struct {
	Selection rollback.Selection
	By        string
}

// RollbackApplyArgs asks for an apply.
type RollbackApplyArgs struct {
	ID       string
	Approver rollback.Approver
}

// withRollback answers an RPC of the daemon's rollback service: get's
// value copied into out, or an error when rollback is not running.
func withRollback[T any](d *Daemon, out *T, get func(*Rollback) (*T, error)) error {
	if d.rb == nil {
		return errors.New("rollback is not running in this daemon")
	}
	v, err := get(d.rb)
	if err != nil {
		return err
	}
	*out = *v
	return nil
}

func (s *service) PutPrestate(a *PutPrestateArgs, ref *string) error {
	var err error
	*ref, err = s.d.store.Rollback().PutPrestate(a.Call, a.Data)
	return err
}

func (s *service) RollbackPlan(a *RollbackPlanArgs, p *rollback.Plan) error {
	return withRollback(s.d, p, func(rb *Rollback) (*rollback.Plan, error) { return rb.Plan(a.Selection, a.By) })
}

func (s *service) RollbackApply(a *RollbackApplyArgs, p *rollback.Plan) error {
	return withRollback(s.d, p, func(rb *Rollback) (*rollback.Plan, error) { return rb.Apply(a.ID, a.Approver, nil) })
}

func (s *service) RollbackPlans(limit int, out *[]*rollback.Plan) error {
	var err error
	*out, err = plans(s.d.store, limit)
	return err
}

func (s *service) RollbackHistory(call uint64, h *rollback.History) error {
	return withRollback(s.d, h, func(rb *Rollback) (*rollback.History, error) { return rb.RollbackHistory(call) })
}

func (s *service) RollbackGet(id string, p *rollback.Plan) error {
	return withRollback(s.d, p, func(rb *Rollback) (*rollback.Plan, error) { return rb.Get(id) })
}

// PutPrestate stores a pre-state through the daemon (wrap's capture sink).
func (c *Client) PutPrestate(call uint64, data []byte) (string, error) {
	var ref string
	if err := c.rpc.Call("Daemon.PutPrestate", &PutPrestateArgs{Call: call, Data: data}, &ref); err != nil {
		return "", fmt.Errorf("daemon: %w", err)
	}
	return ref, nil
}

// RollbackPlan builds and stores a plan in the daemon.
func (c *Client) RollbackPlan(sel rollback.Selection, by string) (*rollback.Plan, error) {
	var p rollback.Plan
	if err := c.rpc.Call("Daemon.RollbackPlan", &RollbackPlanArgs{Selection: sel, By: by}, &p); err != nil {
		return nil, err
	}
	return &p, nil
}

// RollbackApply applies a plan in the daemon.
func (c *Client) RollbackApply(id string, who rollback.Approver) (*rollback.Plan, error) {
	var p rollback.Plan
	if err := c.rpc.Call("Daemon.RollbackApply", &RollbackApplyArgs{ID: id, Approver: who}, &p); err != nil {
		return nil, err
	}
	return &p, nil
}

// RollbackPlans lists stored plans, newest first, through the daemon.
func (c *Client) RollbackPlans(limit int) ([]*rollback.Plan, error) {
	var out []*rollback.Plan
	if err := c.rpc.Call("Daemon.RollbackPlans", limit, &out); err != nil {
		return nil, err
	}
	return out, nil
}

// RollbackHistory is the history of the resource a call changed, through
// the daemon.
func (c *Client) RollbackHistory(call uint64) (*rollback.History, error) {
	var h rollback.History
	if err := c.rpc.Call("Daemon.RollbackHistory", call, &h); err != nil {
		return nil, err
	}
	return &h, nil
}

// RollbackGet reads a stored plan through the daemon.
func (c *Client) RollbackGet(id string) (*rollback.Plan, error) {
	var p rollback.Plan
	if err := c.rpc.Call("Daemon.RollbackGet", id, &p); err != nil {
		return nil, err
	}
	return &p, nil
}
