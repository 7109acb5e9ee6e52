package termsafetest

import (
	"encoding/json"
	"time"

	"github.com/mcptrail/mcptrail/store"
)

// Session, Tool and Agent are the hostile session id, tool and agent name
// of the record Record writes.
var (
	Session = Named("session")
	Tool    = Named("tool")
	Agent   = Named("agent")
	Path    = Named("path")
)

// Record appends, through add (a store's Append), a session of a hostile
// agent: every field that comes from an agent or a server holds Hostile —
// session id, upstream, agent and client names, principal, task, tool,
// JSON-RPC id, arguments, results, the error, details — two writes of the
// same path (so a diff has two sides) and an alert naming the call. It
// returns the seq of the second write request.
func Record(at time.Time, add func(*store.Event) (uint64, error)) (uint64, error) {
	base := store.Event{
		Session: Session, Upstream: Named("upstream"), Transport: "stdio", ProtocolVersion: Named("version"),
		Agent:      &store.Agent{ID: Named("agent-id"), Name: Agent, ClientName: Named("client"), ClientVersion: Named("client-version")},
		Principal:  &store.Principal{Subject: Named("subject"), Kind: "os_user"},
		Task:       &store.Task{ID: Named("task-id"), Name: Named("task")},
		OnBehalfOf: Named("behalf"),
	}
	n := 0
	put := func(ev store.Event) (uint64, error) {
		n++
		ev.Time = at.Add(time.Duration(n) * time.Second)
		return add(&ev)
	}
	ev := base
	ev.Kind = store.KindSessionStart
	if _, err := put(ev); err != nil {
		return 0, err
	}
	var second uint64
	for i, content := range []string{Named("content v1") + "\nline two", Named("content v2") + "\nline two\tand a tab"} {
		req := base
		req.Kind, req.From, req.Method, req.Tool, req.Class = store.KindRequest, store.FromClient, "tools/call", Tool, "write"
		req.JSONRPCID, _ = json.Marshal(Named("id"))
		req.Params, _ = json.Marshal(map[string]any{"name": Tool, "arguments": map[string]any{"path": Path, "content": content, Named("key"): Named("value")}})
		seq, err := put(req)
		if err != nil {
			return 0, err
		}
		second = seq
		out := req
		out.Kind, out.Params, out.Call = store.KindCall, nil, seq
		if i == 0 {
			out.Outcome = store.OutcomeRPCError
			out.Error, _ = json.Marshal(map[string]any{"code": -32000, "message": Named("error")})
			out.Detail = Named("detail")
		} else {
			out.Outcome = store.OutcomeOK
			out.Result, _ = json.Marshal(map[string]any{"content": []any{map[string]any{"type": "text", "text": Named("result")}}})
		}
		if _, err := put(out); err != nil {
			return 0, err
		}
	}
	alert := base
	alert.Kind, alert.Tool, alert.Call, alert.Detail = store.KindAlert, Tool, second, Named("alert")
	alert.Params, _ = json.Marshal(map[string]any{
		"rule":  map[string]any{"id": "mcp-first-tool-use", "title": Named("rule title"), "type": "first_use", "severity": "medium"},
		"group": map[string]string{"agent": Agent}, "value": Tool, "calls": []uint64{second},
	})
	if _, err := put(alert); err != nil {
		return 0, err
	}
	bad := base
	bad.Kind, bad.From, bad.Detail = store.KindBadInput, store.FromClient, Named("bad input")+InvalidUTF8
	// As an older version stored a message that was not UTF-8: raw.
	bad.Params = json.RawMessage(`{"message":"` + InvalidUTF8 + `"}`)
	if _, err := put(bad); err != nil {
		return 0, err
	}
	ev = base
	ev.Kind, ev.Detail = store.KindSessionEnd, Named("end")
	_, err := put(ev)
	return second, err
}
