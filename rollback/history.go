package rollback

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"sort"
	"time"

	"github.com/mcptrail/mcptrail/store"
)

// History is a resource's recorded past: every call that touched it (or
// a resource above or below it, keysOverlap), from every upstream whose
// calls the same server's rules describe, and every rollback step that
// reverted one of them, oldest first, each with the resource as it was
// before and after.
type History struct {
	Key       string    `json:"key"`
	Upstream  string    `json:"upstream"`            // the upstream of the call it was asked for
	Server    string    `json:"server,omitempty"`    // the rules' server the key belongs to
	Upstreams []string  `json:"upstreams,omitempty"` // every upstream in Versions
	Versions  []Version `json:"versions"`
}

// Version is one change in a History: a recorded call, or a rollback step
// (Reverts set) that undid one.
type Version struct {
	Call     uint64    `json:"call"` // seq of the request (of the rollback_step for a step)
	Session  string    `json:"session"`
	Upstream string    `json:"upstream,omitempty"`
	Agent    string    `json:"agent,omitempty"`
	Tool     string    `json:"tool"`
	Time     time.Time `json:"time"`
	Outcome  string    `json:"outcome,omitempty"`
	Keys     []string  `json:"keys,omitempty"`
	Before   string    `json:"before,omitempty"` // from the call's pre-state ("" when none was captured)
	After    string    `json:"after,omitempty"`  // as the call left it
	Diff     string    `json:"diff,omitempty"`   // before → after
	Note     string    `json:"note,omitempty"`   // why before or after is unknown
	// Reverts is, for a rollback step, the call it reverted.
	Reverts uint64 `json:"reverts,omitempty"`
	// RevertedBy is, for a call, the rollback step that reverted it.
	RevertedBy uint64 `json:"reverted_by,omitempty"`
}

// IsRollback reports whether the version is a rollback step.
func (v Version) IsRollback() bool { return v.Reverts != 0 }

// History returns the history of the resource the call at seq changed
// (its first key, or key when set).
func (p *Planner) History(ctx context.Context, seq uint64, key string) (*History, error) {
	h, _, err := p.history(ctx, seq, key)
	return h, err
}

// history is History, and the call at seq as the stream has it.
func (p *Planner) history(ctx context.Context, seq uint64, key string) (*History, *call, error) {
	req, err := p.request(seq)
	if err != nil {
		return nil, nil, err
	}
	sessions := newSessionCache(p.Source)
	// Every upstream: the same server may be reached under several names
	// (two wrap --name, a serve upstream), and its resource is one.
	stream, err := p.stream("", 1, sessions)
	if err != nil {
		return nil, nil, err
	}
	var self *call
	for _, c := range stream {
		if c.req.Seq == req.Seq {
			self = c
		}
	}
	if self == nil || self.rule == nil || len(self.keys) == 0 {
		return nil, nil, errors.New("no rollback rule says what this call changed, so it has no resource history")
	}
	if key == "" {
		key = self.keys[0]
	}
	h := &History{Key: key, Upstream: req.Upstream, Server: self.rule.server.Server}
	upstreams := map[string]bool{}
	byCall := map[uint64]int{}
	for _, c := range stream {
		if !c.touched || c.rule == nil || c.rule.server != self.rule.server || !overlapsAny(key, c.keys) {
			continue
		}
		v := Version{Call: c.req.Seq, Session: c.req.Session, Upstream: c.req.Upstream, Agent: store.AgentLabel(c.req.Agent), Tool: c.req.Tool, Time: c.req.Time, Keys: c.keys}
		if c.out != nil {
			v.Outcome = c.out.Outcome
		}
		env := c.env
		if c.rule.HasCapture() && c.out != nil {
			pre, reason := p.prestate(c.rule, c.req, c.out)
			if reason != "" {
				v.Note = "before unknown: " + reason
			} else {
				env["prestate"] = pre
			}
		}
		after, before := c.rule.diffOf(env)
		if v.Note == "" || !c.rule.HasCapture() {
			v.Before = p.Redact.text(before)
		}
		v.After = p.Redact.text(after)
		v.Diff = unifiedDiff(v.Before, v.After)
		upstreams[v.Upstream] = true
		byCall[v.Call] = len(h.Versions)
		h.Versions = append(h.Versions, v)
	}
	if err := p.rollbackSteps(h, byCall); err != nil {
		return nil, nil, err
	}
	for u := range upstreams {
		h.Upstreams = append(h.Upstreams, u)
	}
	sort.Strings(h.Upstreams)
	return h, self, nil
}

// rollbackSteps adds to h the rollback steps that reverted its calls:
// each takes the resource from what was there before it to what the
// reverted call found.
func (p *Planner) rollbackSteps(h *History, byCall map[uint64]int) error {
	var steps []Version
	err := pages(p.Source, store.Query{Kind: store.KindRollbackStep, Limit: 10000}, func(ev *store.Event) {
		i, ok := byCall[ev.Reverts]
		if !ok {
			return
		}
		steps = append(steps, Version{Call: ev.Seq, Session: ev.Session, Upstream: ev.Upstream, Agent: store.AgentLabel(ev.Agent), Tool: ev.Tool, Time: ev.Time,
			Keys: h.Versions[i].Keys, Reverts: ev.Reverts})
	})
	if err != nil || len(steps) == 0 {
		return err
	}
	for k := range steps {
		st := &steps[k]
		// Its outcome is in the rollback's own (short) session, right after it.
		err := pages(p.Source, store.Query{Session: st.Session, Kind: store.KindCall, Cursor: st.Call, Limit: 100}, func(ev *store.Event) {
			if ev.Call == st.Call && st.Outcome == "" {
				st.Outcome = ev.Outcome
			}
		})
		if err != nil {
			return err
		}
		if st.Outcome == store.OutcomeOK {
			if v := &h.Versions[byCall[st.Reverts]]; v.RevertedBy == 0 {
				v.RevertedBy = st.Call
			}
		}
	}
	h.Versions = append(h.Versions, steps...)
	sort.SliceStable(h.Versions, func(i, j int) bool { return h.Versions[i].Call < h.Versions[j].Call })
	// A step's before is what the version before it left; its after, what
	// the call it reverted found.
	index := map[uint64]int{}
	for i, v := range h.Versions {
		index[v.Call] = i
	}
	for i := range h.Versions {
		v := &h.Versions[i]
		if !v.IsRollback() {
			continue
		}
		if i > 0 {
			v.Before = h.Versions[i-1].After
		}
		r := h.Versions[index[v.Reverts]]
		v.After = r.Before
		v.Note = fmt.Sprintf("rollback step: reverts call %d (%s)", v.Reverts, r.Tool)
		if r.Note != "" {
			v.Note += "; " + r.Note
		}
		v.Diff = unifiedDiff(v.Before, v.After)
	}
	return nil
}

func overlapsAny(k string, keys []string) bool {
	for _, o := range keys {
		if keysOverlap(k, o) {
			return true
		}
	}
	return false
}

// Changes counts the calls in h (not the rollback steps).
func (h *History) Changes() int {
	n := 0
	for _, v := range h.Versions {
		if !v.IsRollback() {
			n++
		}
	}
	return n
}

// RevertTo is the selection that takes a resource back to how it was right
// after version i of its history: every later call that touched it and is
// not reverted already.
func (h *History) RevertTo(i int) (Selection, error) {
	if i < 0 || i >= len(h.Versions) {
		return Selection{}, fmt.Errorf("no version %d", i)
	}
	var sel Selection
	for _, v := range h.Versions[i+1:] {
		if !v.IsRollback() && v.RevertedBy == 0 {
			sel.Calls = append(sel.Calls, v.Call)
		}
	}
	if len(sel.Calls) == 0 {
		return sel, errors.New("nothing after this version is left to revert")
	}
	return sel, nil
}

// changedSince names the newest recorded call, on any upstream the same
// server's rules describe, that touched one of a step's resources after
// the call it reverts; or says none did (the change was made outside the
// record). A conflict found on apply says it.
func (p *Planner) changedSince(st *Step) string {
	sessions := newSessionCache(p.Source)
	stream, err := p.stream("", st.Reverts, sessions)
	if err != nil {
		return ""
	}
	var self, last *call
	for _, c := range stream {
		switch {
		case c.req.Seq == st.Reverts:
			self = c
		case self != nil && c.touched && c.rule != nil && self.rule != nil && c.rule.server == self.rule.server && overlapsKeys(st.Keys, c.keys):
			last = c
		}
	}
	if last == nil {
		return fmt.Sprintf("no recorded call changed it after call %d: it was changed outside the record", st.Reverts)
	}
	return "last changed by " + changedBy(last.req)
}

func overlapsKeys(a, b []string) bool {
	for _, k := range a {
		if overlapsAny(k, b) {
			return true
		}
	}
	return false
}

// Current is what the resource the call at seq would change holds before
// it runs, and the resource's key. Best is the call's own pre-state: the
// gateway captures it when it records the request, so for a call held for
// approval it was read from the server when the hold began (Version.Call
// is seq then). Without one, the newest earlier change of the resource in
// its History: what that call or rollback step left, or for lack of that
// what the call found. nil: the record knows neither. The text is redacted
// like the History's. The approval desk shows it for a held call.
func (p *Planner) Current(ctx context.Context, seq uint64) (*Version, string, error) {
	h, self, err := p.history(ctx, seq, "")
	if err != nil {
		return nil, "", err
	}
	if self.rule.HasCapture() {
		if data, err := p.Source.Prestate(seq); err == nil {
			if _, views, err := decodePrestate(self.rule, store.PrestateRef(data), data); err == nil {
				env := maps.Clone(self.env)
				env["prestate"] = views
				_, before := self.rule.diffOf(env)
				v := &Version{Call: seq, Session: self.req.Session, Upstream: self.req.Upstream, Agent: store.AgentLabel(self.req.Agent),
					Tool: self.req.Tool, Time: self.req.Time, Keys: self.keys, After: p.Redact.text(before),
					Note: "read from the server when the call was recorded"}
				return v, h.Key, nil
			}
		}
	}
	for i := len(h.Versions) - 1; i >= 0; i-- {
		v := h.Versions[i]
		if v.Call >= seq {
			continue // the held call itself, or later ones
		}
		if v.After == "" && v.Before != "" && !v.IsRollback() {
			v.After, v.Note = v.Before, fmt.Sprintf("as it was before call %d: what that call left is unknown", v.Call)
		}
		return &v, h.Key, nil
	}
	return nil, h.Key, nil
}
