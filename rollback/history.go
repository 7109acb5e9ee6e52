package rollback

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// History is a resource's recorded past: every call that touched it (or
// a resource above or below it, keysOverlap), oldest first, each with the
// resource as it was before and after the call.
type History struct {
	Key      string    `json:"key"`
	Upstream string    `json:"upstream"`
	Versions []Version `json:"versions"`
}

// Version is one call in a History.
type Version struct {
	Call    uint64    `json:"call"` // seq of the request
	Session string    `json:"session"`
	Tool    string    `json:"tool"`
	Time    time.Time `json:"time"`
	Outcome string    `json:"outcome,omitempty"`
	Keys    []string  `json:"keys,omitempty"`
	Before  string    `json:"before,omitempty"` // from the call's pre-state ("" when none was captured)
	After   string    `json:"after,omitempty"`  // as the call left it
	Diff    string    `json:"diff,omitempty"`   // before → after
	Note    string    `json:"note,omitempty"`   // why before or after is unknown
}

// History returns the history of the resource the call at seq changed
// (its first key, or key when set).
func (p *Planner) History(ctx context.Context, seq uint64, key string) (*History, error) {
	req, err := p.request(seq)
	if err != nil {
		return nil, err
	}
	sessions := newSessionCache(p.Source)
	stream, err := p.stream(req.Upstream, 1, sessions)
	if err != nil {
		return nil, err
	}
	var self *call
	for _, c := range stream {
		if c.req.Seq == req.Seq {
			self = c
		}
	}
	if self == nil || len(self.keys) == 0 {
		return nil, errors.New("no rollback rule says what this call changed, so it has no resource history")
	}
	if key == "" {
		key = self.keys[0]
	}
	h := &History{Key: key, Upstream: req.Upstream}
	for _, c := range stream {
		if !c.touched || !overlapsAny(key, c.keys) {
			continue
		}
		v := Version{Call: c.req.Seq, Session: c.req.Session, Tool: c.req.Tool, Time: c.req.Time, Keys: c.keys}
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
		h.Versions = append(h.Versions, v)
	}
	return h, nil
}

func overlapsAny(k string, keys []string) bool {
	for _, o := range keys {
		if keysOverlap(k, o) {
			return true
		}
	}
	return false
}

// RevertTo is the selection that takes a resource back to how it was right
// after version i of its history: every later call that touched it.
func (h *History) RevertTo(i int) (Selection, error) {
	if i < 0 || i >= len(h.Versions) {
		return Selection{}, fmt.Errorf("no version %d", i)
	}
	var sel Selection
	for _, v := range h.Versions[i+1:] {
		sel.Calls = append(sel.Calls, v.Call)
	}
	if len(sel.Calls) == 0 {
		return sel, errors.New("this is the newest version: nothing after it to revert")
	}
	return sel, nil
}
