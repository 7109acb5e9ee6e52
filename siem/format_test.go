package siem

import (
	"encoding/json"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/mcptrail/mcptrail/internal/termsafe"
	"github.com/mcptrail/mcptrail/siem/siemtest"
	"github.com/mcptrail/mcptrail/store"
)

var testTime = time.Date(2026, 3, 14, 15, 9, 26, 535897932, time.UTC)

func ptr[T any](v T) *T { return &v }

// sampleEvents covers the kinds and outcomes the encoders map differently.
func sampleEvents() map[string]*store.Event {
	agent := &store.Agent{ID: "claude-code", Name: "claude-code", ClientName: "claude-code", ClientVersion: "2.1.0"}
	prin := &store.Principal{Subject: "alice", Issuer: "https://idp.example.com", CredentialID: "sha256:abcd", Kind: "jwt", Verified: true}
	task := &store.Task{ID: "T-42", TraceID: "4bf92f3577b34da6a3ce929d0e0e4736", SpanID: "00f067aa0ba902b7"}
	base := func(seq uint64, kind string) *store.Event {
		return &store.Event{
			Seq: seq, ID: "01J0000000000000000000000" + string(rune('A'+seq%26)), Time: testTime.Add(time.Duration(seq) * time.Millisecond), Kind: kind,
			Session: "sess-1", Upstream: "filesystem", Transport: "stdio", ProtocolVersion: "2025-11-25",
			Agent: agent, Principal: prin, Task: task,
			PrevHash: strings.Repeat("0", 64), Hash: strings.Repeat("a", 63) + string(rune('0'+seq%10)),
		}
	}
	m := map[string]*store.Event{}

	e := base(1, store.KindSessionStart)
	m["session_start"] = e

	e = base(2, store.KindRequest)
	e.From, e.Method, e.JSONRPCID = store.FromClient, "initialize", json.RawMessage(`0`)
	m["initialize"] = e

	e = base(3, store.KindRequest)
	e.From, e.Method, e.Tool, e.Class, e.JSONRPCID = store.FromClient, "tools/call", "read_text_file", "read", json.RawMessage(`"req-7"`)
	e.Params = json.RawMessage(`{"name":"read_text_file","arguments":{"path":"/etc/hosts"}}`)
	m["read_request"] = e

	e = base(4, store.KindCall)
	e.From, e.Method, e.Tool, e.Class, e.JSONRPCID, e.Call = store.FromClient, "tools/call", "read_text_file", "read", json.RawMessage(`"req-7"`), 3
	e.Outcome, e.DurationNS = store.OutcomeOK, 12_345_678
	e.Result = json.RawMessage(`{"content":[{"type":"text","text":"127.0.0.1 localhost"}]}`)
	m["read_ok"] = e

	e = base(5, store.KindRequest)
	e.From, e.Method, e.Tool, e.Class, e.JSONRPCID = store.FromClient, "tools/call", "write_file", "write", json.RawMessage(`8`)
	e.OnBehalfOf = "bob@example.com"
	m["write_request"] = e

	e = base(6, store.KindCall)
	e.From, e.Method, e.Tool, e.Class, e.JSONRPCID, e.Call = store.FromClient, "tools/call", "write_file", "write", json.RawMessage(`8`), 5
	e.Outcome, e.Error, e.Detail, e.DurationNS = store.OutcomeRPCError, json.RawMessage(`{"code":-32602,"message":"bad path = /x | y"}`), "-32602 bad path = /x | y", 2_000_000
	m["write_rpc_error"] = e

	e = base(7, store.KindRequest)
	e.From, e.Method, e.Tool, e.Class, e.JSONRPCID = store.FromClient, "tools/call", "delete_file", "delete", json.RawMessage(`9`)
	m["delete_request"] = e

	e = base(8, store.KindCall)
	e.From, e.Method, e.Tool, e.Class, e.JSONRPCID, e.Call = store.FromClient, "tools/call", "delete_file", "delete", json.RawMessage(`9`), 7
	e.Outcome = store.OutcomeToolError
	m["delete_tool_error"] = e

	e = base(9, store.KindRequest)
	e.Transport, e.From, e.Method, e.Tool, e.Class, e.JSONRPCID = "http", store.FromClient, "tools/call", "fetch", "unknown", json.RawMessage(`10`)
	e.Upstream = "web"
	m["unknown_class_http"] = e

	e = base(10, store.KindCall)
	e.From, e.Method, e.Tool, e.Call, e.Outcome, e.Detail = store.FromClient, "tools/call", "slow", 11, store.OutcomeDenied, "policy: refused"
	m["denied"] = e

	e = base(11, store.KindNotification)
	e.From, e.Method = store.FromClient, "notifications/initialized"
	m["notification"] = e

	e = base(12, store.KindBadInput)
	e.From, e.Detail, e.Agent, e.Principal, e.Task = store.FromClient, "malformed JSON: unexpected end", nil, nil, nil
	e.Session = ""
	m["bad_input_anonymous"] = e

	e = base(13, store.KindAlert)
	e.Tool, e.Call, e.Detail = "delete_file", 7, "agent \"claude-code\" used tool \"delete_file\" for the first time"
	e.Params = json.RawMessage(`{"rule":{"id":"mcp-first-tool-use","title":"Agent used a tool for the first time","type":"new_value","severity":"medium"},"group":{"agent":"claude-code"},"value":"delete_file","calls":[7]}`)
	m["alert"] = e

	e = base(14, store.KindSessionEnd)
	e.Detail = "client closed stdin"
	m["session_end"] = e

	e = base(15, store.KindRequest)
	e.From, e.Method, e.JSONRPCID = store.FromServer, "sampling/createMessage", json.RawMessage(`"s-1"`)
	m["server_request"] = e

	e = base(16, store.KindRefusal)
	e.Session, e.Agent, e.Task, e.Transport, e.Upstream, e.Detail = "", nil, nil, "http", "web", "Origin not allowed"
	e.Refusal = &store.Refusal{Reason: "origin", Status: 403, RemoteAddr: "192.0.2.10", HTTPMethod: "POST", Path: "/mcp/web",
		Origin: "https://evil.example", Host: "gw.example.com:7420"}
	m["refusal_origin"] = e

	e = base(17, store.KindRefusal)
	e.Session, e.Agent, e.Task, e.Principal, e.Transport, e.Upstream, e.Detail = "", nil, nil, nil, "http", "web", "unknown token"
	e.Refusal = &store.Refusal{Reason: "auth", Status: 401, RemoteAddr: "192.0.2.11", HTTPMethod: "POST", Path: "/mcp/web"}
	m["refusal_auth"] = e

	e = base(18, store.KindRefusal)
	e.Session, e.Agent, e.Task, e.Principal, e.Transport, e.Upstream = "", nil, nil, nil, "http", "web"
	e.DurationNS, e.Detail = int64(time.Minute), "9990 more refusals from 192.0.2.11 for reason auth suppressed in the last 1m0s"
	e.Refusal = &store.Refusal{Reason: "auth", Status: 401, RemoteAddr: "192.0.2.11", Suppressed: 9990}
	m["refusal_summary"] = e

	// A call held for approval (approval.go): held, then denied, approved
	// or expired.
	approvalEvent := func(seq uint64, kind string) *store.Event {
		e := base(seq, kind)
		e.Method, e.Tool, e.Class, e.Call = "tools/call", "write_file", "write", 3
		e.Approval = &store.Approval{Rule: "fs-writes", ParamsSHA256: strings.Repeat("0f", 32), Policy: "32e99f0ff20a1061", Required: 1,
			Deadline: e.Time.Add(5 * time.Minute), Resource: []string{"file:/srv/notes.txt"}}
		return e
	}
	m["approval_requested"] = approvalEvent(19, store.KindApprovalRequested)
	e = approvalEvent(20, store.KindDenied)
	e.Approval.Reason = "not during the freeze"
	e.Authorization = &store.Authorization{Reviewed: true, Approver: "SHA256:uv2Y6mJ0a0Hj0Z7oYkqg1f3b1b2b3b4b5b6b7b8b9bA", Method: "ssh", Time: e.Time}
	e.Detail = "denied by SHA256:uv2Y6mJ0a0Hj0Z7oYkqg1f3b1b2b3b4b5b6b7b8b9bA at 03:12:00Z: not during the freeze"
	m["approval_denied"] = e
	e = approvalEvent(21, store.KindApproved)
	e.Approval.Approvers = []string{"user:oncall"}
	e.Authorization = &store.Authorization{Reviewed: true, Approver: "user:oncall", Method: "cli", Time: e.Time}
	m["approval_approved"] = e
	e = approvalEvent(22, store.KindExpired)
	e.Detail = "no decision within 5m0s: denied"
	m["approval_expired"] = e
	e = base(23, store.KindCall)
	e.Method, e.Tool, e.Class, e.Call, e.Outcome = "tools/call", "write_file", "write", 3, store.OutcomeOK
	e.Authorization = &store.Authorization{Reviewed: true, Approver: "user:oncall", Method: "approval", Time: e.Time, Approval: 21}
	m["approved_call_ok"] = e
	return m
}

func decode(t *testing.T, b []byte) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("not a JSON object: %v\n%s", err, b)
	}
	return m
}

func encodeWith(t *testing.T, f Format, o Options, ev *store.Event) []byte {
	t.Helper()
	enc, err := NewEncoder(f, o)
	if err != nil {
		t.Fatal(err)
	}
	b, err := enc.Encode(ev)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

var testOpts = Options{Version: "1.2.3", Hostname: "gw.example.com", Upstreams: map[string]string{"web": "https://10.1.2.3:8443/mcp"}}

func decodeN(t *testing.T, b []byte) map[string]any {
	t.Helper()
	m, err := siemtest.DecodeNumbers(b)
	if err != nil {
		t.Fatalf("%v\n%s", err, b)
	}
	return m
}

// ocsfErrors validates one OCSF record against the compiled schema.
func ocsfErrors(t *testing.T, m map[string]any) []string {
	t.Helper()
	c := newOCSFChecker(t)
	c.CheckDecoded("record", m)
	return c.Errs
}

func TestOCSFSchemaCatchesMistakes(t *testing.T) {
	// The validating tests are only worth their names if the checker
	// rejects what the schema forbids.
	good := encodeWith(t, FormatOCSF, testOpts, sampleEvents()["write_request"])
	if errs := ocsfErrors(t, decodeN(t, good)); len(errs) > 0 {
		t.Fatalf("the good record fails: %v", errs)
	}
	obj := func(m map[string]any, k string) map[string]any { return m[k].(map[string]any) }
	for name, mutate := range map[string]func(m map[string]any){
		"no api.operation":         func(m map[string]any) { delete(obj(m, "api"), "operation") },
		"type_uid mismatch":        func(m map[string]any) { m["type_uid"] = json.Number("600302") },
		"time as string":           func(m map[string]any) { m["time"] = "2026-03-14T15:09:26Z" },
		"empty actor":              func(m map[string]any) { m["actor"] = map[string]any{} },
		"no src_endpoint":          func(m map[string]any) { delete(m, "src_endpoint") },
		"no metadata.version":      func(m map[string]any) { delete(obj(m, "metadata"), "version") },
		"request without uid":      func(m map[string]any) { obj(m, "api")["request"] = map[string]any{} },
		"wrong class":              func(m map[string]any) { m["class_uid"] = json.Number("6002") },
		"endpoint without names":   func(m map[string]any) { m["src_endpoint"] = map[string]any{"port": json.Number("1")} },
		"caption without its id":   func(m map[string]any) { obj(obj(m, "actor"), "user")["type"] = "User" },
		"caption against its id":   func(m map[string]any) { m["severity"] = "High" },
		"activity outside enum":    func(m map[string]any) { m["activity_id"], m["type_uid"] = json.Number("7"), json.Number("600307") },
		"attribute not in schema":  func(m map[string]any) { m["mcp_method"] = "tools/call" },
		"deprecated attribute":     func(m map[string]any) { obj(obj(m, "actor"), "user")["credential_uid"] = "x" },
		"port out of range":        func(m map[string]any) { obj(m, "src_endpoint")["port"] = json.Number("70000") },
		"ip that is not one":       func(m map[string]any) { obj(m, "src_endpoint")["ip"] = "not-an-ip" },
		"profile attribute alone":  func(m map[string]any) { delete(obj(m, "metadata"), "profiles") },
		"metadata.version claimed": func(m map[string]any) { obj(m, "metadata")["version"] = "1.1.0" },
	} {
		m := decodeN(t, good)
		mutate(m)
		if errs := ocsfErrors(t, m); len(errs) == 0 {
			t.Errorf("%s: the checker accepted it", name)
		}
	}
}

func TestOCSFAPIActivityMapping(t *testing.T) {
	evs := sampleEvents()
	for _, tc := range []struct {
		event        string
		activity     float64
		typeUID      float64
		operation    string
		requestUID   any
		statusID     any
		status       any
		responseCode any
	}{
		{"read_request", 2, 600302, "read_text_file", "req-7", 0.0, "Unknown", nil},
		{"read_ok", 2, 600302, "read_text_file", "req-7", 1.0, "Success", nil},
		{"write_request", 3, 600303, "write_file", "8", 0.0, "Unknown", nil},
		{"write_rpc_error", 3, 600303, "write_file", "8", 2.0, "Failure", -32602.0},
		{"delete_request", 4, 600304, "delete_file", "9", 0.0, "Unknown", nil},
		{"delete_tool_error", 4, 600304, "delete_file", "9", 2.0, "Failure", nil},
		{"unknown_class_http", 0, 600300, "fetch", "10", 0.0, "Unknown", nil},
		{"initialize", 99, 600399, "initialize", "0", 0.0, "Unknown", nil},
		{"session_start", 99, 600399, "session_start", nil, nil, nil, nil},
	} {
		ev := evs[tc.event]
		m := decode(t, encodeWith(t, FormatOCSF, testOpts, ev))
		for path, want := range map[string]any{
			"class_uid": 6003.0, "category_uid": 6.0, "activity_id": tc.activity, "type_uid": tc.typeUID,
			"time":                     float64(ev.Time.UnixMilli()),
			"metadata.version":         OCSFVersion,
			"metadata.product.name":    "mcptrail",
			"metadata.product.version": "1.2.3",
			"metadata.uid":             ev.ID,
			"api.operation":            tc.operation,
			"api.request.uid":          tc.requestUID,
			"api.response.code":        tc.responseCode,
			"status_id":                tc.statusID,
			"status":                   tc.status,
			"actor.user.name":          "alice",
			"actor.app_name":           "claude-code",
			"actor.session.uid":        "sess-1",
			"unmapped.seq":             float64(ev.Seq),
			"unmapped.hash":            ev.Hash,
		} {
			if got := siemtest.At(m, path); got != want {
				t.Errorf("%s: %s = %#v, want %#v", tc.event, path, got, want)
			}
		}
	}
	// Times are milliseconds, durations too.
	m := decode(t, encodeWith(t, FormatOCSF, testOpts, evs["read_ok"]))
	if got := siemtest.At(m, "duration"); got != 12.0 {
		t.Errorf("duration = %v, want 12 (ms)", got)
	}
	if got := siemtest.At(m, "metadata.correlation_uid"); got != "sess-1/3" {
		t.Errorf("outcome correlation_uid = %v, want sess-1/3 (its request)", got)
	}
	// Endpoints: a stdio server is on the gateway's host, an HTTP upstream at its URL.
	if got := siemtest.At(m, "dst_endpoint.hostname"); got != "gw.example.com" {
		t.Errorf("stdio dst_endpoint.hostname = %v", got)
	}
	m = decode(t, encodeWith(t, FormatOCSF, testOpts, evs["unknown_class_http"]))
	if siemtest.At(m, "dst_endpoint.ip") != "10.1.2.3" || siemtest.At(m, "dst_endpoint.port") != 8443.0 || siemtest.At(m, "dst_endpoint.name") != "web" {
		t.Errorf("http dst_endpoint = %v", m["dst_endpoint"])
	}
	// Bodies stay out unless asked for.
	if siemtest.At(m, "unmapped.params") != nil {
		t.Error("params forwarded without Bodies")
	}
	o := testOpts
	o.Bodies = true
	m = decode(t, encodeWith(t, FormatOCSF, o, evs["read_request"]))
	if siemtest.At(m, "unmapped.params.arguments.path") != "/etc/hosts" {
		t.Errorf("Bodies: unmapped.params = %v", siemtest.At(m, "unmapped.params"))
	}
}

func TestOCSFDetectionFinding(t *testing.T) {
	ev := sampleEvents()["alert"]
	b := encodeWith(t, FormatOCSF, testOpts, ev)
	if errs := ocsfErrors(t, decodeN(t, b)); len(errs) > 0 {
		t.Fatalf("%v\n%s", errs, b)
	}
	m := decode(t, b)
	for path, want := range map[string]any{
		"class_uid": 2004.0, "category_uid": 2.0, "activity_id": 1.0, "type_uid": 200401.0,
		"severity_id":                3.0,
		"is_alert":                   true,
		"finding_info.uid":           ev.ID,
		"finding_info.title":         "Agent used a tool for the first time",
		"finding_info.analytic.uid":  "mcp-first-tool-use",
		"finding_info.analytic.type": "Rule",
		"message":                    ev.Detail,
	} {
		if got := siemtest.At(m, path); got != want {
			t.Errorf("%s = %#v, want %#v", path, got, want)
		}
	}
	rel, _ := siemtest.At(m, "finding_info.related_events").([]any)
	if len(rel) != 1 || siemtest.At(rel[0].(map[string]any), "uid") != "sess-1/7" {
		t.Errorf("related_events = %v, want the triggering request sess-1/7", rel)
	}
	// A finding is no API Activity (the check above is not vacuous).
	as := decodeN(t, b)
	as["class_uid"], as["type_uid"], as["category_uid"] = json.Number("6003"), json.Number("600301"), json.Number("6")
	if len(ocsfErrors(t, as)) == 0 {
		t.Error("a Detection Finding validated as API Activity")
	}
}

func TestCheckpointRecords(t *testing.T) {
	ev := &store.Event{Seq: 1000, Time: testTime, Kind: KindCheckpoint, Hash: strings.Repeat("ab", 32),
		Detail: "mcptrail/x\n1000\nq83vEjRWeJA=\nprev AAAA\ntime 2026-03-14T15:09:26Z\n\n— mcptrail-host sig==\n"}
	m := decode(t, encodeWith(t, FormatOCSF, testOpts, ev))
	for path, want := range map[string]any{"class_uid": 0.0, "category_uid": 0.0, "activity_id": 99.0, "type_uid": 99.0, "severity_id": 1.0,
		"metadata.version": OCSFVersion, "metadata.product.name": "mcptrail", "unmapped.size": 1000.0, "unmapped.note": ev.Detail} {
		if got := siemtest.At(m, path); got != want {
			t.Errorf("OCSF checkpoint: %s = %#v, want %#v", path, got, want)
		}
	}
	m = decode(t, encodeWith(t, FormatECS, testOpts, ev))
	if siemtest.At(m, "event.kind") != "state" || siemtest.At(m, "mcptrail.note") != ev.Detail {
		t.Errorf("ECS checkpoint: %v", m["event"])
	}
	c, err := siemtest.ParseCEF(string(encodeWith(t, FormatCEF, testOpts, ev)))
	if err != nil || c.Header[3] != "checkpoint" || c.Ext["cn1Label"] != "checkpointSize" || c.Ext["msg"] != ev.Detail {
		t.Errorf("CEF checkpoint: %v %+v", err, c)
	}
	sm, err := siemtest.ParseRFC5424(string(NewSyslogFramer().Message(ev, nil)))
	if err != nil || sm.MsgID != "checkpoint" || sm.SD[DefaultSDID]["size"] != "1000" || sm.SD[DefaultSDID]["seq"] != "" {
		t.Errorf("syslog checkpoint: %v %+v", err, sm)
	}
}

func TestECSMapping(t *testing.T) {
	evs := sampleEvents()
	for _, tc := range []struct {
		event   string
		kind    string
		typ     string
		outcome string
		action  string
	}{
		{"read_request", "event", "access", "unknown", "read_text_file"},
		{"read_ok", "event", "access", "success", "read_text_file"},
		{"write_rpc_error", "event", "change", "failure", "write_file"},
		{"delete_tool_error", "event", "deletion", "failure", "delete_file"},
		{"denied", "event", "info,denied", "failure", "slow"},
		{"session_start", "event", "start", "success", "session_start"},
		{"alert", "alert", "info", "unknown", "mcp-first-tool-use"},
	} {
		ev := evs[tc.event]
		m := decode(t, encodeWith(t, FormatECS, testOpts, ev))
		var types []string
		for _, v := range siemtest.At(m, "event.type").([]any) {
			types = append(types, v.(string))
		}
		if k := siemtest.At(m, "event.kind"); k != tc.kind {
			t.Errorf("%s: event.kind = %v, want %s", tc.event, k, tc.kind)
		}
		if got := strings.Join(types, ","); got != tc.typ {
			t.Errorf("%s: event.type = %s, want %s", tc.event, got, tc.typ)
		}
		if got := siemtest.At(m, "event.outcome"); got != tc.outcome {
			t.Errorf("%s: event.outcome = %v, want %s", tc.event, got, tc.outcome)
		}
		if got := siemtest.At(m, "event.action"); got != tc.action {
			t.Errorf("%s: event.action = %v, want %s", tc.event, got, tc.action)
		}
		if cat := siemtest.At(m, "event.category").([]any); len(cat) != 1 || cat[0] != "api" {
			t.Errorf("%s: event.category = %v", tc.event, cat)
		}
		if siemtest.At(m, "event.sequence") != float64(ev.Seq) || siemtest.At(m, "event.hash") != ev.Hash {
			t.Errorf("%s: event.sequence/hash = %v/%v", tc.event, siemtest.At(m, "event.sequence"), siemtest.At(m, "event.hash"))
		}
		if _, err := time.Parse(time.RFC3339Nano, siemtest.At(m, "@timestamp").(string)); err != nil {
			t.Errorf("%s: @timestamp: %v", tc.event, err)
		}
	}
	m := decode(t, encodeWith(t, FormatECS, testOpts, evs["read_ok"]))
	for path, want := range map[string]any{
		"event.duration":            12345678.0, // ns
		"gen_ai.tool.name":          "read_text_file",
		"gen_ai.operation.name":     "execute_tool",
		"mcptrail.method":           "tools/call",
		"mcptrail.session":          "sess-1",
		"mcptrail.protocol_version": "2025-11-25",
		"mcptrail.jsonrpc_id":       "req-7",
		"mcptrail.transport":        "stdio",
		"network.transport":         nil, // a pipe has no IANA transport name
		"ecs.version":               "9.4.0",
		"user.name":                 "alice",
		"trace.id":                  "4bf92f3577b34da6a3ce929d0e0e4736",
		"span.id":                   "00f067aa0ba902b7",
		"observer.product":          "mcptrail",
		"service.name":              "filesystem",
		"mcptrail.call":             3.0,
		"user_agent.name":           "claude-code",
		"gen_ai.agent.name":         "claude-code",
		"mcptrail.principal.kind":   "jwt",
	} {
		if got := siemtest.At(m, path); got != want {
			t.Errorf("read_ok: %s = %#v, want %#v", path, got, want)
		}
	}
	m = decode(t, encodeWith(t, FormatECS, testOpts, evs["write_rpc_error"]))
	if siemtest.At(m, "error.code") != "-32602" || siemtest.At(m, "error.type") != "rpc_error" || m["rpc"] != nil {
		t.Errorf("rpc error: rpc=%v error=%v", m["rpc"], m["error"])
	}
	m = decode(t, encodeWith(t, FormatECS, testOpts, evs["unknown_class_http"]))
	if siemtest.At(m, "network.transport") != "tcp" {
		t.Errorf("http: network.transport = %v, want tcp", siemtest.At(m, "network.transport"))
	}
	m = decode(t, encodeWith(t, FormatECS, testOpts, evs["alert"]))
	if siemtest.At(m, "rule.id") != "mcp-first-tool-use" || siemtest.At(m, "event.severity") != 47.0 {
		t.Errorf("alert: rule=%v severity=%v", m["rule"], siemtest.At(m, "event.severity"))
	}
}

func TestCEFEncodesAndParses(t *testing.T) {
	for name, ev := range sampleEvents() {
		line := string(encodeWith(t, FormatCEF, testOpts, ev))
		r, err := siemtest.ParseCEF(line)
		if err != nil {
			t.Fatalf("%s: %v\n%s", name, err, line)
		}
		if r.Version != 0 || r.Header[0] != "mcptrail" || r.Header[1] != "mcptrail" || r.Header[2] != "1.2.3" {
			t.Errorf("%s: header %q", name, r.Header)
		}
		if r.Ext["cn1"] != itoa(ev.Seq) || r.Ext["cn1Label"] != "seq" {
			t.Errorf("%s: cn1 = %q", name, r.Ext["cn1"])
		}
		if r.Ext["rt"] != itoa(uint64(ev.Time.UnixMilli())) {
			t.Errorf("%s: rt = %q", name, r.Ext["rt"])
		}
	}
	ev := sampleEvents()["write_rpc_error"]
	line := string(encodeWith(t, FormatCEF, testOpts, ev))
	r, err := siemtest.ParseCEF(line)
	if err != nil {
		t.Fatal(err)
	}
	if r.Ext["reason"] != ev.Detail || r.Ext["msg"] != ev.Detail {
		t.Errorf("value with '=' and '|' did not round-trip: reason=%q\n%s", r.Ext["reason"], line)
	}
	if r.Header[3] != "call:tools/call" || r.Header[5] != "5" || r.Ext["act"] != "write_file" || r.Ext["outcome"] != "rpc_error" {
		t.Errorf("header/ext: %q act=%q outcome=%q", r.Header, r.Ext["act"], r.Ext["outcome"])
	}
	if !strings.Contains(line, `bad path \= /x | y`) {
		t.Errorf("extension escaping: %s", line)
	}
	r, _ = siemtest.ParseCEF(string(encodeWith(t, FormatCEF, testOpts, sampleEvents()["alert"])))
	if r.Header[3] != "alert:mcp-first-tool-use" || r.Header[5] != "6" || r.Ext["flexString2"] != "mcp-first-tool-use" {
		t.Errorf("alert: %q %v", r.Header, r.Ext)
	}
}

func itoa(n uint64) string { return strconv.FormatUint(n, 10) }

func TestCEFEscapingExamples(t *testing.T) {
	for in, want := range map[string]string{
		`a|b`:   `a\|b`,
		`a\b`:   `a\\b`,
		"a\nb":  `a b`,
		`a=b`:   `a=b`,
		`plain`: `plain`,
	} {
		if got := cefHeader(in); got != want {
			t.Errorf("cefHeader(%q) = %q, want %q", in, got, want)
		}
	}
	for in, want := range map[string]string{
		`a=b`:    `a\=b`,
		`a\b`:    `a\\b`,
		"a\nb":   `a\nb`,
		"a\r\nb": `a\r\nb`,
		`a|b`:    `a|b`,
		`\=`:     `\\\=`,
	} {
		if got := cefValue(in); got != want {
			t.Errorf("cefValue(%q) = %q, want %q", in, got, want)
		}
	}
}

// FuzzCEFEscaping: whatever goes into a header field or an extension
// value comes back out of the parser unchanged (header line breaks, which
// CEF cannot carry, come back as spaces), and the other fields are not
// disturbed. Control characters come back in the visible form termsafe
// gives them, and none reaches the line itself.
func FuzzCEFEscaping(f *testing.F) {
	for _, s := range []string{"", "plain", `a|b`, `a\b`, `a=b`, "a\nb\rc", `\\|=\n`, `x=1 y=2`, `trailing\`, " lead and trail ", "k= v", "=", "ü|=ß\\", "\x1b]52;c;cm0K\a\u009b2J\xff"} {
		f.Add(s, s)
	}
	f.Fuzz(func(t *testing.T, header, value string) {
		ev := &store.Event{Seq: 1, Time: testTime, Kind: store.KindRequest, Method: header, Tool: value, Session: value, Upstream: "u", Detail: value}
		e := &cefEncoder{o: Options{Version: header, Hostname: "h"}}
		b, _ := e.Encode(ev)
		r, err := siemtest.ParseCEF(string(b))
		if err != nil {
			t.Fatalf("parse: %v\n%s", err, b)
		}
		if i := strings.IndexFunc(string(b), func(r rune) bool { return r < 0x20 || r == 0x7f || (r >= 0x80 && r <= 0x9f) }); i >= 0 || !utf8.Valid(b) {
			t.Fatalf("a control character or invalid UTF-8 reaches the CEF line: %q", b)
		}
		wantHeader := strings.NewReplacer("\r", " ", "\n", " ").Replace(truncate(termsafe.Log(header), 31))
		if r.Header[2] != wantHeader {
			t.Fatalf("device version %q came back as %q\n%s", header, r.Header[2], b)
		}
		if value == "" {
			return
		}
		wantValue := truncate(termsafe.Log(value), 63)
		if r.Ext["act"] != wantValue {
			t.Fatalf("act %q came back as %q\n%s", wantValue, r.Ext["act"], b)
		}
		if r.Ext["cs1"] != truncate(termsafe.Log(value), 4000) || r.Ext["cs1Label"] != "session" {
			t.Fatalf("cs1 %q came back as %q\n%s", value, r.Ext["cs1"], b)
		}
		if r.Ext["cn1"] != "1" || r.Ext["destinationServiceName"] != "u" {
			t.Fatalf("neighbours disturbed: %v\n%s", r.Ext, b)
		}
	})
}

func TestSyslogMessage(t *testing.T) {
	f := &SyslogFramer{Facility: FacilityLogAudit, Hostname: "gw host", AppName: "mcptrail", ProcID: "4242"}
	ev := sampleEvents()["write_rpc_error"]
	ev.Session = `we"ird]\sess`
	body := encodeWith(t, FormatCEF, testOpts, ev)
	msg := f.Message(ev, body)
	framed := Frame(msg)
	parts, err := siemtest.ReadFramed(append(framed, framed...))
	if err != nil || len(parts) != 2 {
		t.Fatalf("framing: %v %d", err, len(parts))
	}
	m, err := siemtest.ParseRFC5424(parts[0])
	if err != nil {
		t.Fatalf("%v\n%s", err, parts[0])
	}
	if m.Facility != 13 || m.Severity != sevWarning {
		t.Errorf("PRI: facility %d severity %d", m.Facility, m.Severity)
	}
	if !m.Time.Equal(ev.Time.Truncate(time.Microsecond)) {
		t.Errorf("time %v, want %v", m.Time, ev.Time)
	}
	if m.Hostname != "gw_host" || m.AppName != "mcptrail" || m.ProcID != "4242" || m.MsgID != "call" {
		t.Errorf("header: %+v", m)
	}
	sd := m.SD[DefaultSDID]
	if sd["seq"] != "6" || sd["session"] != ev.Session || sd["kind"] != "call" {
		t.Errorf("SD = %v", m.SD)
	}
	if m.Msg != string(body) {
		t.Errorf("MSG = %q, want %q", m.Msg, body)
	}
	if _, err := siemtest.ParseCEF(m.Msg); err != nil {
		t.Error(err)
	}
	// No structured data.
	f.SDID = "-"
	m, err = siemtest.ParseRFC5424(string(f.Message(ev, []byte(`{"a":1}`))))
	if err != nil || len(m.SD) != 0 || m.Msg != `{"a":1}` {
		t.Errorf("nil SD: %v %+v", err, m)
	}
	// Alerts carry their rule's severity.
	al := f.Message(sampleEvents()["alert"], nil)
	if m, err = siemtest.ParseRFC5424(string(al)); err != nil || m.Severity != sevWarning {
		t.Errorf("alert: %v %+v", err, m)
	}
}

// The agent chooses a message's method; the CEF header, which SIEMs group
// by, names only the specification's methods, so a hostile agent cannot
// mint a Name per message. The method itself stays in cs3.
func TestCEFNameStaysStableForAgentMethods(t *testing.T) {
	ev := sampleEvents()["write_rpc_error"]
	names := map[string]bool{}
	for i := range 50 {
		ev.Method = "x-evil/" + strconv.Itoa(i)
		ev.Kind = store.KindRequest
		r, err := siemtest.ParseCEF(string(encodeWith(t, FormatCEF, testOpts, ev)))
		if err != nil {
			t.Fatal(err)
		}
		names[r.Header[3]+"|"+r.Header[4]] = true
		if r.Ext["cs3"] != ev.Method {
			t.Fatalf("cs3 = %q, want the method %q", r.Ext["cs3"], ev.Method)
		}
	}
	if len(names) != 1 || !names["request:other|other request"] {
		t.Fatalf("50 agent-chosen methods gave the headers %v, want one: request:other|other request", names)
	}
}
