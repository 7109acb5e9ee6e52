package ui

import (
	"encoding/json"
	"testing"

	"github.com/mcptrail/mcptrail/store"
)

// The record view says where a call's class came from, so an operator can
// tell a class an operator's rule gave from the specification's default for
// a tool whose server said nothing about it.
func TestRecordShowsClassSource(t *testing.T) {
	f := newFixture(t)
	ops := base(sessOps, "nightly-ops-bot", "INC-4711")
	begin := ops
	begin.Kind = store.KindSessionStart
	f.append(begin)
	req := ops
	req.Kind, req.From, req.Method, req.Tool = store.KindRequest, store.FromClient, "tools/call", "purge_cache"
	req.Params = json.RawMessage(`{"name":"purge_cache","arguments":{}}`)
	req.JSONRPCID = json.RawMessage(`1`)
	req.Class, req.ClassSource = "write", store.ClassSourceSpecDefault
	seq := f.append(req)
	out := req
	out.Kind, out.Params, out.Call, out.Outcome = store.KindCall, nil, seq, store.OutcomeOK
	f.append(out)
	f.flush()

	h := start(t, testOptions(f.st, RoleOperator))
	h.waitFor("nightly-ops-bot")
	h.keys("enter")
	h.waitFor("purge_cache")
	h.keys("j", "enter") // the session start, then the call
	h.waitFor("write · by spec default")
}

// A call reverted by a rollback step recorded in another session (the
// gateway's own, which ran the inverse call) is flagged ↺ in its session's
// timeline.
func TestTimelineFlagsCallsRevertedElsewhere(t *testing.T) {
	f := newFixture(t)
	ops := base(sessOps, "nightly-ops-bot", "INC-4711")
	begin := ops
	begin.Kind = store.KindSessionStart
	f.append(begin)
	seq := f.call(ops, "write_file", map[string]any{"path": "config.yaml"}, "write", true, "ok", map[string]any{"content": []any{}})
	rb := base("01JROLLBACK000000000000000", "mcptrail-rollback", "01PLAN")
	rb.Kind, rb.From, rb.Method, rb.Tool, rb.Reverts = store.KindRollbackStep, store.FromClient, "tools/call", "write_file", seq
	rb.Params = json.RawMessage(`{"name":"write_file","arguments":{"path":"config.yaml"}}`)
	step := f.append(rb)
	out := rb
	out.Kind, out.Params, out.Call, out.Outcome = store.KindCall, nil, step, store.OutcomeOK
	f.append(out)
	f.flush()

	h := start(t, testOptions(f.st, RoleOperator))
	h.waitFor("session 1 of 2") // the gateway's rollback session is the newest
	h.keys("j", "enter")
	h.waitFor("WX↺")
}
