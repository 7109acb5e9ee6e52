package rollback

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/oklog/ulid/v2"

	"github.com/mcptrail/mcptrail/ingest"
	"github.com/mcptrail/mcptrail/store"
)

// Step statuses.
const (
	StatusReady           = "ready"            // will be reverted
	StatusConflict        = "conflict"         // the resource changed since the call: not overwritten
	StatusIrreversible    = "irreversible"     // no rule says how to undo it
	StatusMissingPrestate = "missing-prestate" // its pre-state was not captured
	StatusSkip            = "skip"             // nothing to undo (the call failed or changed nothing)
	StatusReverted        = "reverted"         // already reverted, by this plan or another
	StatusFailed          = "failed"           // an inverse call failed on apply: applying again retries it
)

// Statuses are the step statuses in the order a summary lists them.
var Statuses = []string{StatusReady, StatusConflict, StatusIrreversible, StatusMissingPrestate, StatusFailed, StatusSkip, StatusReverted}

// Step execution states.
const (
	StateRunning = "running"
	StateDone    = "done"
	StateFailed  = "failed"
)

// Plan states.
const (
	PlanPlanned  = "planned"
	PlanApplying = "applying"
	PlanApplied  = "applied" // every ready step is done
	PlanStopped  = "stopped" // apply stopped at a step that is not ready
	PlanFailed   = "failed"  // an inverse call failed

	// PlanPartial is what Plan.Result says of a plan that stopped or
	// failed after reverting some of its steps.
	PlanPartial = "partially applied"
)

// Selection says which calls a plan reverts. Exactly one of Session,
// Calls and From is set.
type Selection struct {
	Session string   `json:"session,omitempty"` // every tool call of the session
	Calls   []uint64 `json:"calls,omitempty"`   // these calls (seq of request or outcome)
	From    uint64   `json:"from,omitempty"`    // this call and every later tool call of its session
}

func (s Selection) String() string {
	switch {
	case s.Session != "":
		return "session " + s.Session
	case s.From != 0:
		return fmt.Sprintf("call %d and every later call of its session", s.From)
	}
	parts := make([]string, len(s.Calls))
	for i, c := range s.Calls {
		parts[i] = fmt.Sprint(c)
	}
	return "calls " + strings.Join(parts, ",")
}

// Plan is a reviewed reversal: steps newest first.
type Plan struct {
	ID        string            `json:"plan"`
	Created   time.Time         `json:"created"`
	CreatedBy string            `json:"created_by,omitempty"`
	Selection Selection         `json:"selection"`
	State     string            `json:"state"`
	Steps     []Step            `json:"steps"`
	Targets   map[string]Target `json:"targets,omitempty"` // session → how to reach its upstream
	Checked   bool              `json:"checked"`           // the current state was re-read
	Note      string            `json:"note,omitempty"`    // e.g. why it was not
	Approvals []Approval        `json:"approvals,omitempty"`
	Updated   time.Time         `json:"updated,omitzero"`
	Error     string            `json:"error,omitempty"` // why the last apply stopped
	// Origin is, on a central store's plan, the id of the origin store
	// whose calls it reverts (each step's Origin says which call there):
	// the plan is applied on that origin (planfile.go), never here.
	Origin     string `json:"origin,omitempty"`
	OriginHost string `json:"origin_host,omitempty"`
}

// Step reverts one call.
type Step struct {
	N        int           `json:"step"`
	Reverts  uint64        `json:"reverts"` // seq of the call's request
	Outcome  uint64        `json:"outcome,omitempty"`
	Session  string        `json:"session"`
	Upstream string        `json:"upstream"`
	Tool     string        `json:"tool"`
	Time     time.Time     `json:"time"`
	Args     string        `json:"args,omitempty"` // a one-line summary
	Keys     []string      `json:"keys,omitempty"`
	Status   string        `json:"status"`
	Reason   string        `json:"reason,omitempty"`
	Calls    []InverseCall `json:"calls,omitempty"`
	Current  string        `json:"current,omitempty"`  // the resource now (or as the call left it)
	Restored string        `json:"restored,omitempty"` // as the step will leave it
	Diff     string        `json:"diff,omitempty"`     // unified diff current → restored
	Checked  bool          `json:"checked,omitempty"`  // Current was re-read
	Prestate string        `json:"prestate,omitempty"`
	// Origin is the reverted call's place in its origin's record, on a
	// central store's plan: what the origin re-checks the step against.
	Origin *store.Origin `json:"origin,omitempty"`

	// Execution, persisted as it goes.
	State   string    `json:"state,omitempty"`     // running, done, failed
	Done    int       `json:"done,omitempty"`      // inverse calls completed
	StepSeq []uint64  `json:"step_seqs,omitempty"` // their rollback_step events
	Error   string    `json:"error,omitempty"`
	Applied time.Time `json:"applied,omitzero"`
}

// InverseCall is one call a step makes, rendered when the plan was built:
// what the reviewer saw is what runs (its arguments unmasked).
type InverseCall struct {
	Tool string          `json:"tool"`
	Args json.RawMessage `json:"args"` // as shown: secrets masked (shown.go)
	// ArgsSHA256 is the digest of the exact arguments, which apply renders
	// again from the pre-state; a plan stored before it has none, and its
	// Args run as stored.
	ArgsSHA256 string `json:"args_sha256,omitempty"`
}

// Approval is an operator's go-ahead, recorded as an approval event.
type Approval struct {
	Approver Approver  `json:"approver"`
	Time     time.Time `json:"time"`
	Seq      uint64    `json:"seq"` // the approval event
}

// Approver is who approved: an OS user at the CLI, an SSH key in the console.
type Approver struct {
	Name        string `json:"name"`
	Fingerprint string `json:"fingerprint,omitempty"` // SHA256:… of the SSH key
	Via         string `json:"via"`                   // cli, ssh, local console
}

// ID is how the record names the approver: the key fingerprint over SSH,
// else the user.
func (a Approver) ID() string {
	if a.Fingerprint != "" {
		return a.Fingerprint
	}
	return a.Name
}

// Counts tallies steps by what they say now (Step.Result): after an apply,
// reverted and failed steps, not the ready ones they were when reviewed.
func (p *Plan) Counts() map[string]int {
	m := map[string]int{}
	for _, s := range p.Steps {
		m[s.Result()]++
	}
	return m
}

// Result is what a step says now: its status at review, or, once an apply
// ran it, what happened — reverted, or failed (an apply that found its
// resource changed marks the step a conflict in Status itself). Status
// keeps the reviewed verdict, which a later apply of the same plan reads.
func (s Step) Result() string {
	switch s.State {
	case StateDone:
		return StatusReverted
	case StateFailed:
		return StatusFailed
	}
	return s.Status
}

// Result is what a plan says now, for every list and screen that shows
// it: its State, except that a plan that stopped or failed after it
// reverted some steps is partially applied (Error says where it stopped).
func (p *Plan) Result() string {
	if p.State == PlanStopped || p.State == PlanFailed {
		for _, s := range p.Steps {
			if s.State == StateDone {
				return PlanPartial
			}
		}
	}
	return p.State
}

// Reverted counts the steps this plan's applies reverted.
func (p *Plan) Reverted() int {
	n := 0
	for _, s := range p.Steps {
		if s.State == StateDone {
			n++
		}
	}
	return n
}

// Resource is what a step changes, as the rules name it (its first key,
// e.g. file:/srv/app/config.yaml), else the call's arguments.
func (s Step) Resource() string {
	switch len(s.Keys) {
	case 0:
		return s.Args
	case 1:
		return s.Keys[0]
	}
	return fmt.Sprintf("%s (+%d)", s.Keys[0], len(s.Keys)-1)
}

// Target is how to reach the upstream a session talked to.
type Target struct {
	Upstream   string            `json:"upstream"`
	Transport  string            `json:"transport"`         // stdio: a wrap session; http: a serve upstream
	Command    []string          `json:"command,omitempty"` // a wrap session's server command
	Dir        string            `json:"dir,omitempty"`
	Env        map[string]string `json:"env,omitempty"`
	Roots      json.RawMessage   `json:"roots,omitempty"` // what the session's client answered to roots/list
	ServerName string            `json:"server_name,omitempty"`
}

func (t Target) key() string {
	b, _ := json.Marshal(t)
	return string(b)
}

// StartParams are what wrap records in its session_start (params) so that
// a rollback can start the server again: ParseStartParams reads them.
type StartParams struct {
	Command []string          `json:"command"`
	Dir     string            `json:"dir,omitempty"`
	Env     map[string]string `json:"env,omitempty"`
}

// Conn is a connection to an upstream, for re-reads and inverse calls.
// *ingest.Origin is one.
type Conn interface {
	Call(ctx context.Context, method string, params any, rec *ingest.CallRecord) (json.RawMessage, uint64, error)
	Close(detail string) error
}

// Connector opens a connection to a target. rec nil: nothing is recorded
// (the planner's re-reads); else the session is recorded as the plan's
// apply, by the approver.
type Connector func(ctx context.Context, t Target, rec *ApplyInfo) (Conn, error)

// ApplyInfo names the plan and approver of a recorded apply session.
type ApplyInfo struct {
	Plan     string
	Approver Approver
}

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
	// Redact masks secrets in what plans and histories show (shown.go).
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
	// Keys are the rules' names for resources: one index per server's
	// rules, so that two servers' "file:/x" stay apart.
	byServer := map[*ServerRules][]*call{}
	for _, c := range stream {
		if c.rule != nil {
			byServer[c.rule.server] = append(byServer[c.rule.server], c)
		}
	}
	index := map[*ServerRules]*keyIndex{}
	for srv, calls := range byServer {
		index[srv] = newKeyIndex(calls)
	}
	none := newKeyIndex(nil) // a call without a rule has no keys
	ix := func(c *call) *keyIndex {
		if c.rule == nil {
			return none
		}
		return index[c.rule.server]
	}
	kept := steps[:0]
	for _, c := range steps {
		if readOnly(c.req) && (c.rule == nil || c.rule.Class == ClassRead) || c.rule != nil && c.rule.Class == ClassRead {
			continue // reads need no undoing: not a step
		}
		kept = append(kept, c)
	}
	steps = kept
	if len(steps) == 0 {
		plan.Note = "the selected calls only read: there is nothing to revert"
	}
	for i, c := range steps {
		st := p.step(c, ix(c), reverted)
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
		if later, _, _ := ix(c).later(c); st.Status == StatusReady && c.rule != nil && len(c.rule.check) > 0 && !later {
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

// keyIndex finds, for a call, the later calls that touched an overlapping
// key (keysOverlap) without comparing it with every call of the stream:
// exact[k] lists the calls with key k, under[k] those with a key below k,
// each in seq order with, for every position, where the next call outside
// the plan is.
type keyIndex struct {
	exact, under map[string]*callList
}

type callList struct {
	calls     []*call
	nextUnsel []int // index of the first unselected call at or after i; len(calls) if none
}

func newKeyIndex(stream []*call) *keyIndex {
	ix := &keyIndex{exact: map[string]*callList{}, under: map[string]*callList{}}
	add := func(m map[string]*callList, k string, c *call) {
		l := m[k]
		if l == nil {
			l = &callList{}
			m[k] = l
		}
		if n := len(l.calls); n == 0 || l.calls[n-1] != c {
			l.calls = append(l.calls, c)
		}
	}
	for _, c := range stream {
		if !c.touched {
			continue
		}
		for _, k := range c.keys {
			add(ix.exact, k, c)
			for _, a := range ancestors(k) {
				add(ix.under, a, c)
			}
		}
	}
	for _, m := range []map[string]*callList{ix.exact, ix.under} {
		for _, l := range m {
			l.nextUnsel = make([]int, len(l.calls)+1)
			l.nextUnsel[len(l.calls)] = len(l.calls)
			for i := len(l.calls) - 1; i >= 0; i-- {
				if l.calls[i].selected {
					l.nextUnsel[i] = l.nextUnsel[i+1]
				} else {
					l.nextUnsel[i] = i
				}
			}
		}
	}
	return ix
}

// ancestors of "file:/a/b/c": "file:/a/b", "file:/a", "file:".
func ancestors(k string) []string {
	var out []string
	for i := len(k) - 1; i > 0; i-- {
		if k[i] == '/' {
			out = append(out, k[:i])
		}
	}
	return out
}

// later reports whether any call after c touched a key overlapping one of
// c's, and the earliest such call outside the plan (nil if none), with the
// key of c it touched.
func (ix *keyIndex) later(c *call) (any bool, unselected *call, key string) {
	seq := c.req.Seq
	look := func(l *callList, k string) {
		if l == nil {
			return
		}
		i := sort.Search(len(l.calls), func(i int) bool { return l.calls[i].req.Seq > seq })
		if i == len(l.calls) {
			return
		}
		any = true
		if j := l.nextUnsel[i]; j < len(l.calls) && (unselected == nil || l.calls[j].req.Seq < unselected.req.Seq) {
			unselected, key = l.calls[j], k
		}
	}
	for _, k := range c.keys {
		look(ix.exact[k], k)
		look(ix.under[k], k)
		for _, a := range ancestors(k) {
			look(ix.exact[a], k)
		}
	}
	return any, unselected, key
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
		if c.rule.skipWhen != nil {
			if v, err := c.rule.skipWhen.eval(env); err == nil && truthy(v) {
				c.touched = false // a dry run: it changed nothing
				continue
			}
		}
		c.keys, _ = c.rule.keysOf(env)
	}
	return calls, nil
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
	if rule.skipWhen != nil {
		if v, err := rule.skipWhen.eval(env); err == nil && truthy(v) {
			return set(StatusSkip, "the call changed nothing (skip_when)")
		}
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

// render renders the inverse calls whose conditions hold.
func (r *ToolRule) render(env map[string]any) ([]InverseCall, error) {
	var out []InverseCall
	for _, ic := range r.inverse {
		if ic.when != nil {
			ok, err := ic.when.eval(env)
			if err != nil {
				return nil, err
			}
			if !truthy(ok) {
				continue
			}
		}
		args := map[string]any{}
		if ic.args != nil {
			v, err := ic.args.render(env)
			if err != nil {
				return nil, err
			}
			m, ok := v.(map[string]any)
			if !ok {
				return nil, fmt.Errorf("%s: args must be a mapping", ic.tool)
			}
			args = m
		}
		raw, err := json.Marshal(args)
		if err != nil {
			return nil, err
		}
		out = append(out, InverseCall{Tool: ic.tool, Args: raw})
	}
	return out, nil
}

func (r *ToolRule) hasDiff() bool { return r.diffCur != nil && r.diffRest != nil }

// changedBy names the call that changed a resource, for a conflict's
// reason: which agent, which call, when.
func changedBy(req *store.Event) string {
	who := store.AgentLabel(req.Agent)
	if who == "" {
		who = "an unnamed agent"
	}
	return fmt.Sprintf("%s in call %d (%s on %s, session %s) at %s", who, req.Seq, req.Tool, req.Upstream, req.Session, req.Time.UTC().Format("2006-01-02 15:04:05Z"))
}

// diffOf renders the rule's diff sides as text.
func (r *ToolRule) diffOf(env map[string]any) (cur, rest string) {
	side := func(t tmpl) string {
		if t == nil {
			return ""
		}
		v, err := t.render(env)
		if err != nil {
			return ""
		}
		if s, ok := v.(string); ok {
			return s
		}
		if v == nil {
			return ""
		}
		b, _ := json.MarshalIndent(v, "", "  ")
		return string(b) + "\n"
	}
	return side(r.diffCur), side(r.diffRest)
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

// verify runs a rule's check reads on conn and says whether the state is
// the one the call left (expect). It sets env's current views.
func verify(ctx context.Context, rule *ToolRule, env map[string]any, conn Conn) (bool, string, error) {
	cur := map[string]any{}
	env["current"] = cur
	for _, rc := range rule.check {
		if rc.when != nil {
			ok, err := rc.when.eval(env)
			if err != nil {
				return false, "", err
			}
			if !truthy(ok) {
				continue
			}
		}
		params, err := readParams(rc, env)
		if err != nil {
			return false, "", err
		}
		res, _, err := conn.Call(ctx, "tools/call", params, nil)
		if err != nil {
			return false, "", fmt.Errorf("%s: %w", rc.tool, err)
		}
		v, err := viewOf(res, rc.missing)
		if err != nil {
			return false, "", fmt.Errorf("%s: %w", rc.tool, err)
		}
		cur[rc.name] = v
	}
	v, err := rule.expect.render(env)
	if err != nil {
		return false, "", err
	}
	ok := truthy(v)
	if l, isList := v.([]any); isList {
		ok = true
		for _, e := range l {
			ok = ok && truthy(e)
		}
	}
	if !ok {
		return false, "it changed after the call (re-read now, it is not what the call left): not overwritten", nil
	}
	return true, "", nil
}

// --- sessions ---

// sessionCache finds what the planner needs of a session: how to reach its
// upstream, and the server's name.
type sessionCache struct {
	src  querier
	info map[string]*sessionInfo
}

type sessionInfo struct {
	target Target
	ok     bool
}

func newSessionCache(src querier) *sessionCache {
	return &sessionCache{src: src, info: map[string]*sessionInfo{}}
}

func (s *sessionCache) get(id string) *sessionInfo {
	if si := s.info[id]; si != nil {
		return si
	}
	si := &sessionInfo{}
	s.info[id] = si
	// The start, the handshake and the first roots/list are at the
	// session's beginning: its first events are enough, whatever its size.
	page, err := s.src.Query(store.Query{Session: id, Limit: 200})
	if err != nil {
		return si
	}
	var start, init, roots *store.Event
	for i := range page.Events {
		ev := &page.Events[i]
		switch {
		case ev.Kind == store.KindSessionStart && start == nil:
			start = ev
		case ev.Kind == store.KindCall && (ev.Method == "initialize" || ev.Method == "server/discover") && init == nil:
			init = ev
		case ev.Kind == store.KindCall && ev.Method == "roots/list" && roots == nil && ev.Outcome == store.OutcomeOK:
			roots = ev
		}
	}
	if start == nil {
		return si
	}
	si.ok = true
	t := Target{Upstream: start.Upstream, Transport: start.Transport}
	var sp StartParams
	if len(start.Params) > 0 && json.Unmarshal(start.Params, &sp) == nil && len(sp.Command) > 0 {
		t.Command, t.Dir, t.Env = sp.Command, sp.Dir, sp.Env
	}
	if init != nil {
		t.ServerName = reportedName(init.Result)
	}
	if roots != nil && len(roots.Result) > 0 {
		t.Roots = roots.Result
	}
	si.target = t
	return si
}

// reportedName is the name a server gave itself in a handshake's result:
// serverInfo of initialize, or, from a 2026-07-28 server, which has no
// initialize, the serverInfo in the _meta of server/discover's result.
func reportedName(result json.RawMessage) string {
	type impl struct {
		Name string `json:"name"`
	}
	var r struct {
		ServerInfo impl `json:"serverInfo"`
		Meta       struct {
			ServerInfo impl `json:"io.modelcontextprotocol/serverInfo"`
		} `json:"_meta"`
	}
	if json.Unmarshal(result, &r) != nil {
		return ""
	}
	if r.ServerInfo.Name != "" {
		return r.ServerInfo.Name
	}
	return r.Meta.ServerInfo.Name
}

func (s *sessionCache) target(id string) (Target, bool) {
	si := s.get(id)
	return si.target, si.ok
}

func (s *sessionCache) serverName(id string) string { return s.get(id).target.ServerName }
