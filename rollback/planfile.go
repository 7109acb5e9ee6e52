package rollback

// Reversal where the call ran. A central mcptrail (the collector's store)
// holds copies of other hosts' calls: it can plan their reversal, with the
// pre-states the origins shipped, but not apply it, for the upstream
// connection, the server's command and its credentials are the origin's.
// The plan travels as a file the operator carries (export-plan), and the
// origin treats it as a request, not an instruction: every step must name
// a call of the origin's own record by seq and hash, and the origin then
// plans those calls afresh from its own record, re-reading the current
// state, and applies that plan through its reviewed path.

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"github.com/mcptrail/mcptrail/store"
)

// ErrAppliedElsewhere refuses to apply a central plan on the central store.
var ErrAppliedElsewhere = errors.New("this plan reverts calls recorded on another host and is applied there")

// MaxPlanFile bounds a plan file: a plan of thousands of steps with diffs
// is a few megabytes.
const MaxPlanFile = 32 << 20

// planOrigin sets the plan's origin from its calls: a plan reverts the
// calls of this store or of one origin, never a mix (each is applied in a
// different place).
func planOrigin(plan *Plan, steps []*call) error {
	for i, c := range steps {
		id, host := "", ""
		if og := c.req.Origin; og != nil {
			id, host = og.Store, og.Host
		}
		if i == 0 {
			plan.Origin, plan.OriginHost = id, host
			continue
		}
		if id != plan.Origin {
			return fmt.Errorf("the selection holds calls of %s and of %s: plan each host's calls on their own (it is applied where they ran)", originName(plan.Origin), originName(id))
		}
	}
	return nil
}

func originName(id string) string {
	if id == "" {
		return "this store"
	}
	return "origin " + id
}

// Host names a central plan's origin for a person: its host, else its
// store id.
func (p *Plan) Host() string {
	if p.OriginHost != "" {
		return p.OriginHost
	}
	return "the host of store " + p.Origin
}

// ElsewhereCommands are, for a central plan, the command to run here
// and the one to run then on the origin's host.
func (p *Plan) ElsewhereCommands() (here, there string) {
	file := "plan.json"
	return "mcptrail rollback export-plan " + p.ID + " > " + file, "mcptrail rollback apply --plan-file " + file
}

// ApplyElsewhere says, for a central plan, where and how it is applied.
func (p *Plan) ApplyElsewhere() string {
	here, there := p.ElsewhereCommands()
	return fmt.Sprintf("these calls ran on %s (store %s): the plan cannot be applied here. Run `%s` here, then `%s` on %s, which re-checks every call against its own record and re-reads the current state before you confirm",
		p.Host(), p.Origin, here, there, p.Host())
}

// ReadPlanFile reads a plan that export-plan wrote. It checks the form
// only; OriginSelection checks it against the origin's record.
func ReadPlanFile(r io.Reader) (*Plan, error) {
	data, err := io.ReadAll(io.LimitReader(r, MaxPlanFile+1))
	if err != nil {
		return nil, err
	}
	if len(data) > MaxPlanFile {
		return nil, fmt.Errorf("plan file larger than %d bytes", MaxPlanFile)
	}
	var p Plan
	if err := json.Unmarshal(data, &p); err != nil {
		return nil, fmt.Errorf("not a plan (from mcptrail rollback export-plan): %v", err)
	}
	if p.Origin == "" {
		return nil, errors.New("the plan names no origin store: only a plan made on a central mcptrail and exported with rollback export-plan applies with --plan-file")
	}
	if len(p.Steps) == 0 {
		return nil, errors.New("the plan has no steps")
	}
	return &p, nil
}

// Getter reads one event of a store by seq (*store.Store, the daemon).
type Getter interface {
	Get(seq uint64) (*store.Event, error)
}

// OriginSelection checks a central plan against the record of the store
// storeID, which must be the plan's origin: every step's call must be
// there, at the step's origin seq, a request with the step's origin hash
// (the chain vouches for its content). Any difference refuses the whole
// plan, naming the step. It returns the calls to plan again here.
func (p *Plan) OriginSelection(storeID string, st Getter) (Selection, error) {
	if p.Origin != storeID {
		return Selection{}, fmt.Errorf("the plan is for store %.64q, and this store is %s: run it on the host whose calls it reverts", p.Origin, storeID)
	}
	var sel Selection
	seen := map[uint64]bool{}
	for _, s := range p.Steps {
		og := s.Origin
		if og == nil || og.Store != storeID || og.Seq == 0 {
			return Selection{}, fmt.Errorf("step %d (call %d) does not name a call of store %s", s.N, s.Reverts, storeID)
		}
		ev, err := st.Get(og.Seq)
		if err != nil {
			return Selection{}, fmt.Errorf("step %d: call %d of this store is not in its record (%v): the plan file does not match this store", s.N, og.Seq, err)
		}
		switch {
		case ev.Origin != nil:
			return Selection{}, fmt.Errorf("step %d: event %d of this store was collected from another host, not recorded here", s.N, og.Seq)
		case ev.Kind != store.KindRequest:
			return Selection{}, fmt.Errorf("step %d: event %d of this store is a %s, not the request of a call", s.N, og.Seq, ev.Kind)
		case ev.Hash != og.Hash:
			return Selection{}, fmt.Errorf("step %d: call %d's hash in this store's record is %.16s…, the plan says %.16s…: the plan file does not describe this store's call (altered, or from another store)", s.N, og.Seq, ev.Hash, og.Hash)
		}
		if !seen[og.Seq] {
			seen[og.Seq] = true
			sel.Calls = append(sel.Calls, og.Seq)
		}
	}
	return sel, nil
}
