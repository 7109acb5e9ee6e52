package approval

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mcptrail/mcptrail/ingest"
	"github.com/mcptrail/mcptrail/store"
)

// Approver is who decides: an SSH key (ID its SHA256:… fingerprint) or a
// local user of the daemon's socket (ID user:NAME), and their role.
type Approver struct {
	ID   string
	Role string // operator or viewer
	Via  string // ssh, cli
}

// Pending is a held call as the desk shows it.
type Pending struct {
	Seq          uint64           `json:"seq"`       // the held request
	Requested    uint64           `json:"requested"` // its approval_requested event
	Time         time.Time        `json:"time"`
	Deadline     time.Time        `json:"deadline"`
	Session      string           `json:"session"`
	Upstream     string           `json:"upstream"`
	Tool         string           `json:"tool"`
	Class        string           `json:"class,omitempty"`
	Agent        *store.Agent     `json:"agent,omitempty"`
	Principal    *store.Principal `json:"principal,omitempty"`
	Task         *store.Task      `json:"task,omitempty"`
	Params       json.RawMessage  `json:"params,omitempty"` // redacted, as recorded
	Resource     []string         `json:"resource,omitempty"`
	State        *State           `json:"state,omitempty"` // the resource as the record last saw it (Desk.State)
	Rule         string           `json:"rule"`
	Required     int              `json:"required"`
	Approvers    []string         `json:"approvers,omitempty"`
	ParamsSHA256 string           `json:"params_sha256"`
	Policy       string           `json:"policy"`
}

// Errors of Decide.
var (
	ErrNotHeld    = errors.New("no call waits for approval with that seq (decided, expired, or never held)")
	ErrNotAllowed = errors.New("this identity may not decide this call (viewers never may; see the rule's approved_by)")
	ErrMismatch   = errors.New("the params hash does not match the held call")
)

// Desk holds calls until they are decided. Record appends an event
// durably (the daemon's Record); Resources, when set, names what a call
// would change (rollback's rule keys); Observe, when set, sees each
// decision and how long it took (metrics, kind: approval_requested,
// approved, denied, expired).
//
// State, when set, tells what the resource a held call would change holds
// now; it runs off the request path (it may read the whole record) and its
// answer appears on the desk when it comes.
// What it returns is shown as is: it must be redacted already.
type Desk struct {
	Record    func(ev *store.Event) (uint64, error)
	Resources func(req *store.Event, serverName string) []string
	State     func(seq uint64) (*State, error)
	Observe   func(kind string, waited time.Duration)
	Log       *slog.Logger
	Now       func() time.Time // tests; time.Now when nil

	policy atomic.Pointer[Policy]

	mu       sync.Mutex
	held     map[uint64]*ticket
	watchers map[chan struct{}]struct{}
}

// SetPolicy puts a policy in force (at start and on reload); nil holds
// nothing. Calls already held keep theirs: an approval given under
// another version does not release them.
func (d *Desk) SetPolicy(p *Policy) { d.policy.Store(p) }

// Policy is the policy in force.
func (d *Desk) Policy() *Policy { return d.policy.Load() }

func (d *Desk) now() time.Time {
	if d.Now != nil {
		return d.Now()
	}
	return time.Now()
}

// Approve is ingest.Hooks.Approve: nil for a call no rule holds.
func (d *Desk) Approve(req *store.Event, params json.RawMessage, serverName string) ingest.Hold {
	p := d.policy.Load()
	if p == nil {
		return nil
	}
	r := p.Match(req, d.now())
	if r == nil {
		return nil
	}
	return d.open(req, ParamsSHA256(params), serverName, r, p.Version)
}

// Hold holds a call recorded elsewhere (a wrap's, by its seq and the hash
// of its params as sent) if a rule of the policy in force holds it: nil
// when none does.
func (d *Desk) Hold(req *store.Event, paramsSHA256, serverName string) ingest.Hold {
	p := d.policy.Load()
	r := p.Match(req, d.now())
	if r == nil {
		return nil
	}
	return d.open(req, paramsSHA256, serverName, r, p.Version)
}

// ticket is one held call.
type ticket struct {
	d      *Desk
	p      Pending
	rule   *Rule
	start  time.Time
	timer  *time.Timer
	done   chan struct{}
	auth   *store.Authorization
	err    error
	closed bool // decided: done is closed
}

func (t *ticket) Wait() (*store.Authorization, error) {
	<-t.done
	return t.auth, t.err
}

func (t *ticket) Cancel(reason string) {
	t.d.end(t, store.KindDenied, nil, "refused: "+reason, reason, fmt.Errorf("refused: %s", reason))
}

// event is an approval event about t's call.
func (t *ticket) event(kind string) *store.Event {
	p := &t.p
	return &store.Event{
		Kind: kind, Session: p.Session, Upstream: p.Upstream, Method: "tools/call", Tool: p.Tool, Class: p.Class,
		Call: p.Seq, Agent: p.Agent, Principal: p.Principal, Task: p.Task,
		Approval: &store.Approval{Rule: p.Rule, ParamsSHA256: p.ParamsSHA256, Policy: p.Policy, Required: p.Required,
			Approvers: slices.Clone(p.Approvers), Deadline: p.Deadline, Resource: p.Resource},
	}
}

func (d *Desk) open(req *store.Event, hash, serverName string, r *Rule, version string) *ticket {
	now := d.now()
	t := &ticket{d: d, rule: r, start: now, done: make(chan struct{}), p: Pending{
		Seq: req.Seq, Time: now, Deadline: now.Add(r.timeout), Session: req.Session, Upstream: req.Upstream,
		Tool: req.Tool, Class: req.Class, Agent: req.Agent, Principal: req.Principal, Task: req.Task, Params: req.Params,
		Rule: r.Name, Required: r.approvers, ParamsSHA256: hash, Policy: version,
	}}
	if d.Resources != nil {
		t.p.Resource = d.Resources(req, serverName)
	}
	ev := t.event(store.KindApprovalRequested)
	ev.Params = req.Params // what the approver sees: the arguments as recorded (redacted)
	ev.Detail = fmt.Sprintf("held for approval by rule %s: %d approval(s) needed by %s", r.Name, r.approvers, t.p.Deadline.UTC().Format(time.RFC3339))
	seq, err := d.Record(ev)
	if err != nil {
		// Fail closed: a hold that is not in the record cannot be decided.
		t.err, t.closed = fmt.Errorf("the approval request could not be recorded: %v", err), true
		close(t.done)
		return t
	}
	t.p.Requested = seq
	d.mu.Lock()
	if d.held == nil {
		d.held = map[uint64]*ticket{}
	}
	d.held[req.Seq] = t
	t.timer = time.AfterFunc(r.timeout, func() {
		at := d.now().UTC().Format("15:04:05Z")
		d.end(t, store.KindExpired, nil, fmt.Sprintf("no decision within %s: denied", r.timeout), "",
			fmt.Errorf("no approval within %s: expired at %s, denied", r.timeout, at))
	})
	d.mu.Unlock()
	d.observe(store.KindApprovalRequested, 0)
	d.notify()
	if d.State != nil && len(t.p.Resource) > 0 {
		go d.readState(t)
	}
	return t
}

// State is what a held call's resource holds now (its text redacted): read
// from the server when the call was held (Read), or as the newest recorded
// change of it left it; or why that is unknown.
type State struct {
	Key  string    `json:"key"`
	Text string    `json:"text,omitempty"`
	Read bool      `json:"read,omitempty"` // the held call's own pre-state, read at Time
	Call uint64    `json:"call,omitempty"` // else the call (or rollback step) that left it so
	Tool string    `json:"tool,omitempty"`
	Time time.Time `json:"time,omitzero"`
	Note string    `json:"note,omitempty"` // why Text is unknown, or where it comes from
}

// readState asks State about t's resource and puts the answer on the desk.
func (d *Desk) readState(t *ticket) {
	st, err := d.State(t.p.Seq)
	if err != nil {
		st = &State{Key: t.p.Resource[0], Note: err.Error()}
	}
	if st == nil {
		return
	}
	d.mu.Lock()
	if t.closed {
		d.mu.Unlock()
		return
	}
	t.p.State = st
	d.mu.Unlock()
	d.notify()
}

// end decides t (once): records kind (by, when a person decided) and
// releases Wait with err.
func (d *Desk) end(t *ticket, kind string, by *store.Authorization, detail, reason string, err error) {
	d.mu.Lock()
	if t.closed {
		d.mu.Unlock()
		return
	}
	t.closed = true
	delete(d.held, t.p.Seq)
	t.timer.Stop()
	d.mu.Unlock()
	ev := t.event(kind)
	ev.Detail, ev.Approval.Reason, ev.Authorization = detail, reason, by
	if _, rerr := d.Record(ev); rerr != nil {
		d.log().Error("approval: recording a decision", "call", t.p.Seq, "kind", kind, "err", rerr)
	}
	t.err = err
	close(t.done)
	d.observe(kind, d.now().Sub(t.start))
	d.notify()
}

// Decide approves or denies the held call seq on behalf of who. hash,
// when not empty, must be the held call's params hash (what the approver
// was shown). A call is released once its rule's number of distinct
// approvers has approved it; one denial refuses it.
func (d *Desk) Decide(seq uint64, hash string, who Approver, approve bool, reason string) (*Pending, error) {
	d.mu.Lock()
	t := d.held[seq]
	if t == nil {
		d.mu.Unlock()
		return nil, ErrNotHeld
	}
	if hash != "" && hash != t.p.ParamsSHA256 {
		d.mu.Unlock()
		return nil, ErrMismatch
	}
	if !t.rule.MayDecide(who) {
		d.mu.Unlock()
		return nil, ErrNotAllowed
	}
	at := d.now()
	if !approve {
		d.mu.Unlock()
		reason = strings.TrimSpace(reason)
		if reason == "" {
			reason = "no reason given"
		}
		err := fmt.Errorf("denied by %s at %s: %s", who.ID, at.UTC().Format("15:04:05Z"), reason)
		d.end(t, store.KindDenied, &store.Authorization{Reviewed: true, Approver: who.ID, Method: who.Via, Time: at}, err.Error(), reason, err)
		p := t.p
		return &p, nil
	}
	if cur := d.policy.Load(); cur == nil || cur.Version != t.p.Policy {
		d.mu.Unlock()
		return nil, fmt.Errorf("the approval rules changed since the call was held (policy %s): it can only be denied", t.p.Policy)
	}
	if slices.Contains(t.p.Approvers, who.ID) {
		d.mu.Unlock()
		return nil, fmt.Errorf("already approved by %s: it needs %d distinct approvers", who.ID, t.p.Required)
	}
	t.p.Approvers = append(t.p.Approvers, who.ID)
	last := len(t.p.Approvers) >= t.p.Required
	if last {
		t.closed = true
		delete(d.held, seq)
		t.timer.Stop()
	}
	ev := t.event(store.KindApproved)
	ev.Authorization = &store.Authorization{Reviewed: true, Approver: who.ID, Method: who.Via, Time: at}
	ev.Detail = fmt.Sprintf("approval %d of %d", len(t.p.Approvers), t.p.Required)
	evSeq, err := d.Record(ev)
	if err != nil {
		// Not in the record, so not given: the call stays held.
		t.p.Approvers = t.p.Approvers[:len(t.p.Approvers)-1]
		if last {
			t.closed = false
			d.held[seq] = t
			t.timer.Reset(time.Until(t.p.Deadline))
		}
		d.mu.Unlock()
		return nil, fmt.Errorf("the approval could not be recorded, so it was not given: %w", err)
	}
	p := t.p
	d.mu.Unlock()
	if last {
		t.auth = &store.Authorization{Reviewed: true, Approver: strings.Join(p.Approvers, ","), Method: "approval", Time: at, Approval: evSeq}
		close(t.done)
		d.observe(store.KindApproved, at.Sub(t.start))
	}
	d.notify()
	return &p, nil
}

// CancelCall refuses the held call seq, if any (its session ended).
func (d *Desk) CancelCall(seq uint64, reason string) {
	d.mu.Lock()
	t := d.held[seq]
	d.mu.Unlock()
	if t != nil {
		t.Cancel(reason)
	}
}

// Pending lists the held calls, newest first.
func (d *Desk) Pending() []Pending {
	d.mu.Lock()
	out := make([]Pending, 0, len(d.held))
	for _, t := range d.held {
		p := t.p
		p.Approvers = slices.Clone(p.Approvers)
		out = append(out, p)
	}
	d.mu.Unlock()
	sort.Slice(out, func(i, j int) bool { return out[i].Seq > out[j].Seq })
	return out
}

// Count is how many calls are held.
func (d *Desk) Count() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return len(d.held)
}

// Watch returns a channel that receives after every change to the held
// calls (coalesced), until stop.
func (d *Desk) Watch() (ch <-chan struct{}, stop func()) {
	c := make(chan struct{}, 1)
	d.mu.Lock()
	if d.watchers == nil {
		d.watchers = map[chan struct{}]struct{}{}
	}
	d.watchers[c] = struct{}{}
	d.mu.Unlock()
	return c, func() {
		d.mu.Lock()
		delete(d.watchers, c)
		d.mu.Unlock()
	}
}

func (d *Desk) notify() {
	d.mu.Lock()
	defer d.mu.Unlock()
	for c := range d.watchers {
		select {
		case c <- struct{}{}:
		default:
		}
	}
}

func (d *Desk) observe(kind string, waited time.Duration) {
	if d.Observe != nil {
		d.Observe(kind, waited)
	}
}

func (d *Desk) log() *slog.Logger {
	if d.Log != nil {
		return d.Log
	}
	return slog.Default()
}

// Close refuses every held call (the daemon is stopping): recorded as
// expired, never forwarded.
func (d *Desk) Close() {
	if d == nil {
		return
	}
	d.mu.Lock()
	ts := make([]*ticket, 0, len(d.held))
	for _, t := range d.held {
		ts = append(ts, t)
	}
	d.mu.Unlock()
	for _, t := range ts {
		d.end(t, store.KindExpired, nil, "the daemon stopped while the call was held: denied", "", errors.New("the gateway stopped while the call waited for approval: denied"))
	}
}
