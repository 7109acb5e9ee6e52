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
