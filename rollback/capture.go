package rollback

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/mcptrail/mcptrail/ingest"
	"github.com/mcptrail/mcptrail/store"
)

// Prestate is what a capture stored for one call: the raw result of each
// capture read, or why the capture failed.
type Prestate struct {
	Version   int                  `json:"v"`
	Call      uint64               `json:"call"` // seq of the request
	Upstream  string               `json:"upstream"`
	Tool      string               `json:"tool"`
	Reads     map[string]savedRead `json:"reads,omitempty"`
	Error     string               `json:"error,omitempty"` // the capture failed: the call's step is missing-prestate
	Policy    string               `json:"policy,omitempty"`
	CaptureUS int64                `json:"capture_us"` // how long the reads took
}

type savedRead struct {
	Result  json.RawMessage `json:"result,omitempty"`
	Missing bool            `json:"missing,omitempty"` // failed with an error its missing pattern matches
}

// MissingPrefix starts an outcome's prestate field when the pre-state could
// not even be stored ("missing: why").
const MissingPrefix = "missing:"

// PrestateSink stores pre-states: the store in the daemon, the daemon's
// socket in wrap.
type PrestateSink interface {
	PutPrestate(call uint64, data []byte) (string, error)
}

// SeqResolver is a PrestateSink whose calls' seqs may be provisional (the
// daemon's client under batch durability, where a request is forwarded
// before the daemon has given it its seq): Capture asks it for the
// store's seq, which the pre-state names.
type SeqResolver interface {
	Resolve(seq uint64) (uint64, error)
}

// Capturer is the gateway's capture hook (ingest.Hooks.Capture) and its
// classifier (ingest.Hooks.Classify).
type Capturer struct {
	Rules   *RuleSet
	Sink    PrestateSink
	Timeout time.Duration // for all reads of one call (default 10s)
	Log     *slog.Logger
}

// Hook wires pre-state capture under rules into a gateway's hooks, the
// pre-states stored in sink: the one wiring the daemon's HTTP gateway and
// a wrap session share. It sets Capture, and Classify only when none is
// set, so a classifier the caller chose is kept rather than replaced.
func Hook(h *ingest.Hooks, rules *RuleSet, sink PrestateSink, log *slog.Logger) *Capturer {
	c := &Capturer{Rules: rules, Sink: sink, Log: log}
	h.Capture = c.Capture
	if h.Classify == nil {
		h.Classify = c.Classify
	}
	return c
}

// Classify is ingest.Hooks.Classify: rules beat annotations.
func (c *Capturer) Classify(upstream, serverName, tool string, ann *store.Annotations) string {
	return c.Rules.Classify(upstream, serverName, tool, ann)
}

// unstored follows a pre-state that could not be stored: the call's
// outcome says it is missing, and a block policy refuses the write.
func (c *Capturer) unstored(ev *store.Event, rule *ToolRule, err error) error {
	ev.Prestate = MissingPrefix + " the pre-state could not be stored: " + oneLine(err.Error(), 200)
	c.log().Error("rollback: storing a pre-state", "call", ev.Seq, "tool", ev.Tool, "err", err)
	if rule.Policy() == PolicyBlock {
		return fmt.Errorf("rollback: the pre-state could not be stored, and the rules for %s block the write without one: %v", ev.Tool, err)
	}
	return nil
}

// Capture is ingest.Hooks.Capture: before a write that has capture reads is
// forwarded, it runs them on the session's upstream connection and stores
// what they return, linked from the call's outcome (ev.Prestate). A read
// that fails follows the tool's policy: block refuses the write; record
// forwards it, and its plan step will say missing-prestate.
func (c *Capturer) Capture(ev *store.Event, up ingest.Conn) error {
	rule := c.Rules.Lookup(ev.Upstream, up.ServerName(), ev.Tool)
	if rule == nil || !rule.HasCapture() {
		return nil
	}
	env, err := rule.baseEnv(ev, nil)
	if err == nil && rule.skipWhen != nil {
		var skip any
		if skip, err = rule.skipWhen.eval(env); err == nil && truthy(skip) {
			return nil // e.g. a dry run: it changes nothing
		}
	}
	if r, ok := c.Sink.(SeqResolver); ok {
		seq, rerr := r.Resolve(ev.Seq)
		if rerr != nil {
			return c.unstored(ev, rule, rerr)
		}
		ev.Seq = seq
	}
	ps := &Prestate{Version: 1, Call: ev.Seq, Upstream: ev.Upstream, Tool: ev.Tool, Reads: map[string]savedRead{}, Policy: rule.Policy()}
	start := time.Now()
	if err == nil {
		err = c.read(rule, env, up, ps)
	}
	ps.CaptureUS = time.Since(start).Microseconds()
	if err != nil {
		ps.Error = err.Error()
		ps.Reads = nil
	}
	data, merr := json.Marshal(ps)
	if merr != nil {
		return merr
	}
	ref, serr := c.Sink.PutPrestate(ev.Seq, data)
	if serr != nil {
		return c.unstored(ev, rule, serr)
	}
	ev.Prestate = ref
	if err != nil {
		c.log().Warn("rollback: pre-state capture failed", "call", ev.Seq, "tool", ev.Tool, "policy", rule.Policy(), "err", err)
		if rule.Policy() == PolicyBlock {
			return fmt.Errorf("rollback: capturing the state before %s failed, and its rules block the write without it: %v", ev.Tool, err)
		}
	}
	return nil
}

func (c *Capturer) log() *slog.Logger {
	if c.Log != nil {
		return c.Log
	}
	return slog.Default()
}

// read runs the rule's capture reads in order; each sees the ones before it
// as prestate.NAME.
func (c *Capturer) read(rule *ToolRule, env map[string]any, up ingest.Conn, ps *Prestate) error {
	timeout := c.Timeout
	if timeout <= 0 {
		timeout = 10 * time.Second
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	pre := env["prestate"].(map[string]any)
	for _, rc := range rule.capture {
		if ok, err := holds(rc.when, env); err != nil {
			return err
		} else if !ok {
			continue
		}
		params, err := readParams(rc, env)
		if err != nil {
			return err
		}
		res, err := up.Call(ctx, "tools/call", params)
		if err != nil {
			if errors.Is(err, context.DeadlineExceeded) {
				return fmt.Errorf("capture read %s (%s) got no answer within %v", rc.name, rc.tool, timeout)
			}
			return fmt.Errorf("capture read %s (%s): %w", rc.name, rc.tool, err)
		}
		v, err := viewOf(res, rc.missing)
		if err != nil {
			return fmt.Errorf("capture read %s (%s): %w", rc.name, rc.tool, err)
		}
		pre[rc.name] = v
		ps.Reads[rc.name] = savedRead{Result: res, Missing: v["exists"] == false}
	}
	return nil
}

// decodePrestate checks data against the reference the record holds and
// rebuilds the prestate views.
func decodePrestate(rule *ToolRule, ref string, data []byte) (*Prestate, map[string]any, error) {
	if ref != store.PrestateRef(data) {
		return nil, nil, errors.New("the stored pre-state does not match the hash the record holds for it")
	}
	var ps Prestate
	if err := json.Unmarshal(data, &ps); err != nil {
		return nil, nil, err
	}
	if ps.Error != "" {
		return &ps, nil, errors.New(ps.Error)
	}
	views := map[string]any{}
	for _, rc := range rule.capture {
		sr, ok := ps.Reads[rc.name]
		if !ok {
			continue // its when was false
		}
		v, err := viewOf(sr.Result, rc.missing)
		if err != nil && sr.Missing {
			v, err = map[string]any{"exists": false, "ok": false}, nil
		}
		if err != nil {
			return &ps, nil, err
		}
		views[rc.name] = v
	}
	return &ps, views, nil
}
