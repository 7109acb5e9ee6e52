package store

import (
	"bytes"
	"encoding/json"
	"testing"
	"time"
)

// checkCanonical fails unless canonical(e) is json.Marshal(e), byte for
// byte, or both fail. e's raw fields must be compacted.
func checkCanonical(t *testing.T, e *Event) {
	t.Helper()
	want, werr := json.Marshal(e)
	got, gerr := canonical(e)
	if (werr != nil) != (gerr != nil) {
		t.Fatalf("json.Marshal error %v, canonical error %v", werr, gerr)
	}
	if werr == nil && !bytes.Equal(*got, want) {
		t.Fatalf("canonical differs from json.Marshal:\n got %s\nwant %s", *got, want)
	}
}

func TestCanonicalIsMarshal(t *testing.T) {
	yes, no := true, false
	at := time.Date(2026, 11, 27, 3, 4, 5, 600, time.UTC)
	for name, e := range map[string]Event{
		"empty": {},
		"request": {Seq: 7, ID: "01J", Time: at, Kind: KindRequest, Session: "s1", Upstream: "fs", Transport: "stdio",
			ProtocolVersion: "2025-11-25", From: FromClient, Method: "tools/call", Tool: "write_file",
			JSONRPCID: json.RawMessage(`3`), Agent: &Agent{ID: "a", ClientName: "claude-code"},
			Principal:   &Principal{Subject: "alice", Kind: "os_user", Verified: true},
			Task:        &Task{ID: "t", TraceID: "4bf92f3577b34da6a3ce929d0e0e4736"},
			Params:      json.RawMessage(`{"name":"write_file","arguments":{"path":"/tmp/x"}}`),
			Annotations: &Annotations{ReadOnly: &no, Destructive: &yes}, Class: "write", Size: 120},
		"outcome": {Seq: 8, Time: at, DurationNS: -5, Kind: KindCall, Call: 7, LogicalCall: 7, Outcome: OutcomeToolError,
			Result: json.RawMessage(`{"content":[],"isError":true}`), Error: json.RawMessage(`{"code":-32603}`),
			Prestate: "{}", Reverts: 3, Detail: "x", PrevHash: "ab", Hash: "cd"},
		"empty nested structs": {Agent: &Agent{}, Principal: &Principal{}, Task: &Task{}, Authorization: &Authorization{}, Annotations: &Annotations{}},
		"authorization":        {Authorization: &Authorization{Reviewed: true, Approver: "bob", Method: "console", Time: at}},
		"offset time":          {Time: time.Date(2026, 1, 2, 3, 4, 5, 0, time.FixedZone("", -7*3600-1800))},
		"year 10000":           {Authorization: &Authorization{Time: time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)}},
		"zone of 24 h":         {Time: time.Date(2026, 1, 1, 0, 0, 0, 0, time.FixedZone("", 24*3600))},
		"html":                 {ID: "<a&b>", Detail: "x > y && z < w"},
		"escapes":              {ID: "quote \" backslash \\ tab \t nl \n bell \x07 del \x7f", Tool: "ü 日本 \u2028 \u2029"},
		"invalid utf-8":        {Session: "a\xffb\xc3", Detail: "\xed\xa0\x80"},
		"refusal": {Kind: KindRefusal, Detail: "unknown token", Refusal: &Refusal{Reason: "auth", Status: 401, RemoteAddr: "::1",
			HTTPMethod: "POST", Path: "/mcp/x", Origin: "https://e<vil>", Host: "h", SessionID: "s\x1b", Suppressed: 9990}},
		"empty refusal": {Refusal: &Refusal{}},
		"collected":     {Kind: KindCall, Origin: &Origin{Store: "01ORIGIN<&>", Host: "laptop\x1b", Seq: 42, Hash: "ab"}},
		"empty origin":  {Origin: &Origin{}},
		"approval": {Kind: KindApproved, Call: 7, Authorization: &Authorization{Reviewed: true, Approver: "SHA256:x", Approval: 9},
			Approval: &Approval{Rule: "writes <fs>", ParamsSHA256: "ab", Policy: "cd", Required: 2, Approvers: []string{"SHA256:a", "user:\x1b"},
				Deadline: at, Reason: "no \u2028", Resource: []string{"file:/tmp/x"}}},
		"empty approval": {Approval: &Approval{Approvers: []string{}}},
	} {
		t.Run(name, func(t *testing.T) { checkCanonical(t, &e) })
	}
	// Each character that is not copied as it is, alone in a string.
	for _, c := range "<>&\"\\\x00\x1f\x7f\u2028é\xff" {
		checkCanonical(t, &Event{Tool: "a" + string(c) + "b"})
	}
}

// The writer's events, as the gateway makes them, encode the same.
func TestCanonicalGeneratedEvents(t *testing.T) {
	g := newGen(3)
	for range 2000 {
		e := g.next()
		if err := e.compactRaw(false); err != nil {
			t.Fatal(err)
		}
		checkCanonical(t, e)
	}
}

func FuzzCanonical(f *testing.F) {
	f.Add("01J", "tools/call", "fs <x>", "a\xff", []byte(`{"a":[1,2,{"b":"<>"}]}`), int64(5), uint64(9), true, int64(1e18), 0)
	f.Add("", "", "", "", []byte(` [ 1 , "\u2028" ] `), int64(-1), uint64(0), false, int64(-1e18), 3600)
	f.Fuzz(func(t *testing.T, id, method, tool, detail string, raw []byte, dur int64, call uint64, flag bool, ns int64, offset int) {
		e := Event{Seq: call, ID: id, Time: time.Unix(0, ns).In(time.FixedZone("", offset)), DurationNS: dur, Kind: method,
			Session: tool, Method: method, Tool: tool, Call: call, Detail: detail, Size: int(dur), OnBehalfOf: id,
			Agent: &Agent{Name: detail}, Params: raw, Result: raw}
		if flag {
			e.Annotations = &Annotations{OpenWorld: &flag}
			e.Authorization = &Authorization{Approver: tool, Time: time.Unix(ns, 0)}
			e.Principal = &Principal{Verified: flag, Issuer: id}
			e.Task = &Task{Workflow: method}
			e.Origin = &Origin{Store: id, Host: detail, Seq: call, Hash: tool}
			e.Approval = &Approval{Rule: tool, Approvers: []string{id, detail}, Deadline: time.Unix(0, ns), Required: offset}
		}
		if e.compactRaw(false) != nil {
			return // not JSON: the store refuses it before encoding
		}
		checkCanonical(t, &e)
	})
}
