package rollback

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/oklog/ulid/v2"

	"github.com/mcptrail/mcptrail/store"
)

// Source is what planning reads: *store.Store, or the daemon.
type Source interface {
	Query(store.Query) (store.Page, error)
	Get(seq uint64) (*store.Event, error)
	Prestate(call uint64) ([]byte, error)
	Reverted(calls []uint64) (map[uint64]string, error)
}

// Planner builds plans.
type Planner struct {
	Rules   *RuleSet
	Source  Source
	Connect Connector // nil: the current state is not re-read
	Now     func() time.Time
	Timeout time.Duration // for all re-reads of a plan (default 60s)
	// Redact masks secrets in what plans and histories show (RedactFunc).
	Redact RedactFunc
}

// call is one recorded tool call the planner considers.
type call struct {
	req, out *store.Event
	rule     *ToolRule
	keys     []string
	env      map[string]any
	selected bool
	touched  bool // it may have changed something
}

// ErrNothingSelected: the selection holds no tool call.
var ErrNothingSelected = errors.New("the selection holds no tool call")

// Build plans the reversal of sel. by names who asked for it.
func (p *Planner) Build(ctx context.Context, sel Selection, by string) (*Plan, error) {
	now := time.Now
	if p.Now != nil {
		now = p.Now
	}
	reqs, err := p.selected(sel)
	if err != nil {
		return nil, err
	}
	if len(reqs) == 0 {
		return nil, ErrNothingSelected
	}
	// A session (or a call and what follows) is read with its upstream's
	// stream below: reqs holds only its first call so far.
	wholeSession := sel.Session != "" || sel.From != 0
	plan := &Plan{
		ID: ulid.MustNew(ulid.Timestamp(now()), rand.Reader).String(), Created: now().UTC(), CreatedBy: by,
		Selection: sel, State: PlanPlanned, Targets: map[string]Target{},
	}
	sessions := newSessionCache(p.Source)
	// Every tool call from the oldest selected one on, on every upstream,
	// with its outcome: later calls decide conflicts, whatever name the
	// server was reached under (two wrap --name of one server change the
	// same files).
	chosen := map[uint64]bool{}
	lo := reqs[0].Seq
	for _, r := range reqs {
		chosen[r.Seq] = true
		lo = min(lo, r.Seq)
	}
	stream, err := p.stream("", lo, sessions)
	if err != nil {
		return nil, err
	}
	var steps []*call
	for _, c := range stream {
		c.selected = chosen[c.req.Seq] || wholeSession && c.req.Session == reqs[0].Session
		if c.selected {
			steps = append(steps, c)
		}
	}
	sort.Slice(steps, func(i, j int) bool { return steps[i].req.Seq > steps[j].req.Seq })
	if err := planOrigin(plan, steps); err != nil {
		return nil, err
	}

	var seqs []uint64
	for _, c := range steps {
		seqs = append(seqs, c.req.Seq)
	}
	reverted, err := p.Source.Reverted(seqs)
	if err != nil {
		return nil, err
	}
	var toCheck []*Step
	checkCalls := map[*Step]*call{}
	ix := newKeyIndexes(stream)
	steps = writes(steps)
	if len(steps) == 0 {
		plan.Note = "the selected calls only read: there is nothing to revert"
	}
	for i, c := range steps {
		st := p.step(c, ix.of(c), reverted)
		st.N = i + 1
		plan.Steps = append(plan.Steps, st)
		// A collected call's session_start names how its origin reached
		// the server, a command for that host: never one to run here.
		if t, ok := sessions.target(c.req.Session); ok && plan.Origin == "" {
			plan.Targets[c.req.Session] = t
		}
	}
	// Pointers into plan.Steps are stable now.
	for i := range plan.Steps {
		st := &plan.Steps[i]
		c := steps[i]
		checkCalls[st] = c
		if later, _, _ := ix.of(c).later(c); st.Status == StatusReady && c.rule != nil && len(c.rule.check) > 0 && !later {
			toCheck = append(toCheck, st)
		}
	}
	plan.Checked = true
	if plan.Origin != "" {
		plan.Checked = false
		plan.Note = plan.ApplyElsewhere()
	} else if len(toCheck) > 0 {
		if p.Connect == nil {
			plan.Checked = false
			plan.Note = "the current state was not re-read (no connection to the upstreams): conflicts by outside changes show at apply"
		} else {
			p.recheck(ctx, plan, toCheck, checkCalls)
		}
	}
	return plan, nil
}

// selected resolves a selection to tool-call requests.
func (p *Planner) selected(sel Selection) ([]*store.Event, error) {
	n := 0
	if sel.Session != "" {
		n++
	}
	if len(sel.Calls) > 0 {
		n++
	}
	if sel.From != 0 {
		n++
	}
	if n != 1 {
		return nil, errors.New("select calls by exactly one of a session, a list of calls, or a call and what follows it")
	}
	var out []*store.Event
	switch {
	case len(sel.Calls) > 0:
		seen := map[uint64]bool{}
		for _, seq := range sel.Calls {
			ev, err := p.request(seq)
			if err != nil {
				return nil, err
			}
			if !seen[ev.Seq] {
				seen[ev.Seq] = true
				out = append(out, ev)
			}
		}
		return out, nil
	case sel.From != 0:
		first, err := p.request(sel.From)
		if err != nil {
			return nil, err
		}
		return []*store.Event{first}, nil
	}
	// The session's first tool call: Build reads the rest with the
	// stream of its upstream.
	page, err := p.Source.Query(store.Query{Session: sel.Session, Kind: store.KindRequest, Method: "tools/call", Limit: 1})
	if err != nil {
		return nil, err
	}
	for i := range page.Events {
		if page.Events[i].From == store.FromClient {
			out = append(out, &page.Events[i])
		}
	}
	if len(out) == 0 {
		if _, err := p.Source.Query(store.Query{Session: sel.Session, Limit: 1}); err == nil {
			return nil, fmt.Errorf("session %s: %w", sel.Session, ErrNothingSelected)
		}
	}
	return out, nil
}

// request returns the tool-call request seq names (the request itself or
// its outcome).
func (p *Planner) request(seq uint64) (*store.Event, error) {
	ev, err := p.Source.Get(seq)
	if err != nil {
		return nil, fmt.Errorf("seq %d: %w", seq, err)
	}
	if ev.Kind == store.KindCall && ev.Call != 0 {
		if ev.Origin != nil {
			// Its Call is a seq of the origin's record, not of this one.
			return nil, fmt.Errorf("seq %d is the outcome of a call collected from %s: select its request", seq, ev.Origin.Label())
		}
		if ev, err = p.Source.Get(ev.Call); err != nil {
			return nil, fmt.Errorf("seq %d's request: %w", seq, err)
		}
	}
	if ev.Kind != store.KindRequest || ev.Method != "tools/call" || ev.From != store.FromClient {
		return nil, fmt.Errorf("seq %d is not a tool call (it is a %s %s)", seq, ev.Kind, ev.Method)
	}
	return ev, nil
}

// callKey pairs a request with its outcome: an outcome's Call is its
// request's seq in the record that holds both, the origin's for a
// collected call.
type callKey struct {
	origin string
	seq    uint64
}

func requestKey(req *store.Event) callKey {
	if og := req.Origin; og != nil {
		return callKey{og.Store, og.Seq}
	}
	return callKey{"", req.Seq}
}

func outcomeKey(out *store.Event) callKey {
	if og := out.Origin; og != nil {
		return callKey{og.Store, out.Call}
	}
	return callKey{"", out.Call}
}

func pages(src Source, q store.Query, fn func(*store.Event)) error {
	for {
		page, err := src.Query(q)
		if err != nil {
			return err
		}
		for i := range page.Events {
			fn(&page.Events[i])
		}
		if page.Next == 0 {
			return nil
		}
		q.Cursor = page.Next
	}
}

// stream reads every tool call on upstream from seq lo on, with its
// outcome, rule and keys.
func (p *Planner) stream(upstream string, lo uint64, sessions *sessionCache) ([]*call, error) {
	var calls []*call
	byReq := map[callKey]*call{}
	err := pages(p.Source, store.Query{Upstream: upstream, Kind: store.KindRequest, Method: "tools/call", Cursor: lo, Limit: 10000}, func(ev *store.Event) {
		if ev.From != store.FromClient {
			return
		}
		c := &call{req: ev}
		calls = append(calls, c)
		byReq[requestKey(ev)] = c
	})
	if err != nil {
		return nil, err
	}
	err = pages(p.Source, store.Query{Upstream: upstream, Kind: store.KindCall, Method: "tools/call", Cursor: lo, Limit: 10000}, func(ev *store.Event) {
		if c := byReq[outcomeKey(ev)]; c != nil {
			c.out = ev
		}
	})
	if err != nil {
		return nil, err
	}
	for _, c := range calls {
		c.touched = mayHaveChanged(c.out)
		c.rule = ruleFor(p.Rules, sessions, c.req)
		if c.rule == nil || !c.touched || c.rule.Class == ClassRead {
			// Without a rule there are no keys: a write nobody knows how
			// to undo makes no key conflicts (it is irreversible if chosen).
			continue
		}
		env, err := c.rule.baseEnv(c.req, c.out)
		if err != nil {
			continue
		}
		c.env = env
		if c.rule.skipped(env) {
			c.touched = false // a dry run: it changed nothing
			continue
		}
		c.keys, _ = c.rule.keysOf(env)
	}
	return calls, nil
}

// writes drops the reads from steps (in place): they need no undoing.
func writes(steps []*call) []*call {
	kept := steps[:0]
	for _, c := range steps {
		if readOnly(c.req) && (c.rule == nil || c.rule.Class == ClassRead) || c.rule != nil && c.rule.Class == ClassRead {
			continue
		}
		kept = append(kept, c)
	}
	return kept
}

// mayHaveChanged: an outcome that is not a clean failure may have changed
// something.
func mayHaveChanged(out *store.Event) bool {
	if out == nil {
		return true
	}
	switch out.Outcome {
	case store.OutcomeToolError, store.OutcomeRPCError, store.OutcomeDenied, store.OutcomeInputRequired:
		return false
	}
	return true
}

func readOnly(req *store.Event) bool {
	if req.Class == ClassRead {
		return true
	}
	a := req.Annotations
	return a != nil && a.ReadOnly != nil && *a.ReadOnly
}

// step judges one selected call.
func (p *Planner) step(c *call, index *keyIndex, reverted map[uint64]string) Step {
	req := c.req
	st := Step{Reverts: req.Seq, Session: req.Session, Upstream: req.Upstream, Tool: req.Tool, Time: req.Time, Keys: c.keys}
	st.Args = oneLine(text(arguments(req.Params)), 160)
	if c.out != nil {
		st.Outcome = c.out.Seq
		st.Prestate = c.out.Prestate
	}
	if req.Origin != nil {
		og := *req.Origin
		st.Origin = &og
	}
	set := func(status, reason string) Step {
		st.Status, st.Reason = status, reason
		return st
	}
	if by, ok := reverted[req.Seq]; ok {
		return set(StatusReverted, "already reverted by plan "+by)
	}
	rule := c.rule
	switch {
	case rule == nil && readOnly(req):
		return set(StatusSkip, "read-only: nothing to undo")
	case rule == nil:
		return set(StatusIrreversible, fmt.Sprintf("no rollback rule for %s on %s, and the server does not mark it read-only", req.Tool, req.Upstream))
	case rule.Class == ClassRead:
		return set(StatusSkip, "read-only: nothing to undo")
	}
	if c.out == nil {
		return set(StatusConflict, "the call has no recorded outcome: whether it ran is unknown")
	}
	switch c.out.Outcome {
	case store.OutcomeToolError, store.OutcomeRPCError, store.OutcomeDenied:
		return set(StatusSkip, "the call failed ("+c.out.Outcome+"): nothing to undo")
	case store.OutcomeOK:
	default:
		return set(StatusConflict, "the call's outcome is "+c.out.Outcome+": whether it changed anything is unknown")
	}
	if rule.Irreversible != "" {
		return set(StatusIrreversible, rule.Irreversible)
	}
	if c.env == nil {
		return set(StatusIrreversible, "its rule could not be evaluated for this call")
	}
	env := c.env
	if rule.skipped(env) {
		return set(StatusSkip, "the call changed nothing (skip_when)")
	}
	if rule.HasCapture() {
		pre, reason := p.prestate(rule, req, c.out)
		if reason != "" {
			return set(StatusMissingPrestate, reason)
		}
		env["prestate"] = pre
	}
	calls, err := rule.render(env)
	if err != nil {
		return set(StatusIrreversible, "its inverse calls could not be rendered: "+err.Error())
	}
	st.Calls = p.Redact.shownCalls(calls)
	cur, rest := rule.diffOf(env)
	p.Redact.setDiff(&st, cur, rest)
	if len(calls) == 0 {
		return set(StatusSkip, "nothing to undo")
	}
	if rule.hasDiff() && rule.HasCapture() && cur != "" && cur == rest {
		// The call left the resource as it found it (a write of the same
		// content): undoing it would change nothing.
		return set(StatusSkip, "the call changed nothing: the resource is as it was before it")
	}
	// A later call outside the plan touched the same resource: undoing this
	// one would undo part of it too.
	if _, o, k := index.later(c); o != nil {
		return set(StatusConflict, fmt.Sprintf("%s was changed later by %s, which the plan does not revert", k, changedBy(o.req)))
	}
	return set(StatusReady, "")
}

// prestate loads and checks a call's pre-state; reason says why it is
// missing.
func (p *Planner) prestate(rule *ToolRule, req, out *store.Event) (map[string]any, string) {
	ref := out.Prestate
	switch {
	case ref == "":
		return nil, "no pre-state was captured before the call (it ran before the rules applied, or without a gateway that captures)"
	case strings.HasPrefix(ref, MissingPrefix):
		return nil, strings.TrimSpace(strings.TrimPrefix(ref, MissingPrefix))
	}
	data, err := p.Source.Prestate(req.Seq)
	if err != nil {
		return nil, "the pre-state is not in the store: " + err.Error()
	}
	_, views, err := decodePrestate(rule, ref, data)
	if err != nil {
		return nil, "the capture failed: " + err.Error()
	}
	return views, ""
}

// changedBy names the call that changed a resource, for a conflict's
// reason: which agent, which call, when.
func changedBy(req *store.Event) string {
	who := store.AgentLabel(req.Agent)
	if who == "" {
		who = "an unnamed agent"
	}
	return fmt.Sprintf("%s in call %d (%s on %s, session %s) at %s", who, req.Seq, req.Tool, req.Upstream, req.Session, req.Time.UTC().Format("2006-01-02 15:04:05Z"))
}

// recheck re-reads the state of the steps that are the newest on their
// resources and marks those that changed since as conflicts.
func (p *Planner) recheck(ctx context.Context, plan *Plan, steps []*Step, calls map[*Step]*call) {
	timeout := p.Timeout
	if timeout <= 0 {
		timeout = 60 * time.Second
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	conns := map[string]Conn{}
	failed := map[string]error{}
	defer func() {
		for _, c := range conns {
			c.Close("rollback plan " + plan.ID + ": re-reads done")
		}
	}()
	var notes []string
	for _, st := range steps {
		c := calls[st]
		t, ok := plan.Targets[st.Session]
		if !ok {
			plan.Checked = false
			notes = append(notes, fmt.Sprintf("step %d: no way to reach %s", st.N, st.Upstream))
			continue
		}
		k := t.key()
		conn := conns[k]
		if conn == nil && failed[k] == nil {
			var err error
			if conn, err = p.Connect(ctx, t, nil); err != nil {
				failed[k] = err
			} else {
				conns[k] = conn
			}
		}
		if conn == nil {
			plan.Checked = false
			notes = append(notes, fmt.Sprintf("%s not re-read: %v", st.Upstream, failed[k]))
			continue
		}
		same, reason, err := verify(ctx, c.rule, c.env, conn)
		if err != nil {
			st.Status, st.Reason = StatusConflict, "re-reading it failed: "+err.Error()
			continue
		}
		st.Checked = true
		cur, rest := c.rule.diffOf(c.env)
		p.Redact.setDiff(st, cur, rest)
		if !same {
			st.Status, st.Reason = StatusConflict, strings.TrimSuffix(reason, ": not overwritten")+"; "+p.changedSince(st)+": not overwritten"
		}
	}
	slices.Sort(notes)
	plan.Note = strings.Join(slices.Compact(notes), "; ")
}
