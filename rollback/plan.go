package rollback

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"

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
	// the plan is applied on that origin (Plan.ApplyElsewhere says how), never here.
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
	Args json.RawMessage `json:"args"` // as shown: secrets masked (RedactFunc.shownCalls)
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
