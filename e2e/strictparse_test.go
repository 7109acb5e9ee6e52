package e2e

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/mcptrail/mcptrail/store"
)

// The gateway's one reading of each message, held against real servers: an
// agent sends messages that servers read differently (case variants,
// duplicates, escaped member names, ids in several spellings), and every
// call a server executes must be in the record with exactly the tool and
// id the server acted on — or the message was refused and never reached
// the server.

// ambiguous is one message of the corpus. Its arguments carry tag, which
// the server reports back, to tie what it ran to what was sent.
type ambiguous struct {
	tag string
	msg string // with {TAG} where the tag goes
}

// ambiguousCorpus holds, at every level the gateway interprets, messages
// that encoding/json (mcp-go) and JSON.parse (the npm servers) read apart,
// and two the gateway must take (a plain call, an escaped string id).
func ambiguousCorpus(listTool, deleteTool string) []ambiguous {
	call := func(id, params string) string {
		return `{"jsonrpc":"2.0","id":` + id + `,"method":"tools/call","params":` + params + `}`
	}
	// "message" for the npm servers' echo tool, which requires it.
	args := `"arguments":{"tag":"{TAG}","message":"{TAG}"}`
	return []ambiguous{
		{"plain", call(`101`, `{"name":"`+listTool+`",`+args+`}`)},
		{"escaped-string-id", call(`"s\u0031"`, `{"name":"`+listTool+`",`+args+`}`)},
		{"Name", call(`102`, `{"Name":"`+deleteTool+`",`+args+`}`)},
		{"name-NAME", call(`103`, `{"name":"`+listTool+`","NAME":"`+deleteTool+`",`+args+`}`)},
		{"name-name", call(`104`, `{"name":"`+listTool+`","name":"`+deleteTool+`",`+args+`}`)},
		{"escaped-name", call(`105`, `{"n\u0061me":"`+deleteTool+`",`+args+`}`)},
		{"escaped-dup-name", call(`106`, `{"name":"`+listTool+`","n\u0061me":"`+deleteTool+`",`+args+`}`)},
		{"long-s-arguments", call(`107`, `{"name":"`+listTool+`","argumentſ":{"tag":"x"},`+args+`}`)},
		{"Id", `{"jsonrpc":"2.0","Id":108,"method":"tools/call","params":{"name":"` + deleteTool + `",` + args + `}}`},
		{"id-id", `{"jsonrpc":"2.0","id":109,"id":110,"method":"tools/call","params":{"name":"` + listTool + `",` + args + `}}`},
		{"METHOD", `{"jsonrpc":"2.0","id":111,"method":"tools/list","METHOD":"tools/call","params":{"name":"` + deleteTool + `",` + args + `}}`},
		{"PARAMS", `{"jsonrpc":"2.0","id":112,"method":"tools/call","params":{"name":"` + listTool + `",` + args + `},"PARAMS":{"name":"` + deleteTool + `",` + args + `}}`},
		{"escaped-method", `{"jsonrpc":"2.0","id":113,"m\u0065thod":"tools/call","params":{"name":"` + deleteTool + `",` + args + `}}`},
		{"_META", call(`114`, `{"name":"`+listTool+`","_META":{"progressToken":1},`+args+`}`)},
		{"meta-dup", call(`115`, `{"name":"`+listTool+`","_meta":{"progressToken":1,"progressToken":2},`+args+`}`)},
		{"id-1.0", call(`116.0`, `{"name":"`+deleteTool+`",`+args+`}`)},
		{"id-1e2", call(`1.17e2`, `{"name":"`+deleteTool+`",`+args+`}`)},
		{"id-minus-0", call(`-0`, `{"name":"`+deleteTool+`",`+args+`}`)},
		{"id-2^53+1", call(`9007199254740993`, `{"name":"`+deleteTool+`",`+args+`}`)},
		{"id-null", call(`null`, `{"name":"`+deleteTool+`",`+args+`}`)},
		// Arguments bind by name too: a Go server's typed handler would take
		// "Tag" for "tag", and the record and rollback read the exact name.
		{"args-dup", call(`118`, `{"name":"`+listTool+`","arguments":{"tag":"{TAG}","message":"m","tag":"{TAG}"}}`)},
		{"args-case", call(`119`, `{"name":"`+listTool+`","arguments":{"tag":"{TAG}","message":"m","Tag":"other"}}`)},
	}
}

// mustPass are the corpus messages the gateway forwards.
var mustPass = map[string]bool{"plain": true, "escaped-string-id": true}

// sendCorpus sends each message on r, each followed by a ping whose answer
// says the gateway has dealt with it, and returns the gateway's refusals
// by tag and every other response that came (the server's).
func sendCorpus(t *testing.T, r *RawConn, corpus []ambiguous) (refusals map[string]RawMessage, answers []RawMessage) {
	t.Helper()
	refusals = map[string]RawMessage{}
	for i, c := range corpus {
		r.Send(t, strings.ReplaceAll(c.msg, "{TAG}", c.tag))
		pingID := fmt.Sprintf(`"sync-%d"`, i)
		r.Send(t, `{"jsonrpc":"2.0","id":`+pingID+`,"method":"ping"}`)
		deadline := time.Now().Add(30 * time.Second)
		for {
			m := r.Recv(t, time.Until(deadline))
			if string(m.ID) == pingID {
				break
			}
			if m.Error != nil && strings.HasPrefix(m.Error.Message, "mcptrail:") {
				refusals[c.tag] = m
			} else if m.Method == "" {
				answers = append(answers, m)
			}
		}
	}
	return refusals, answers
}

// executed is a line of the mcp-go server's log: a call it dispatched.
type executed struct {
	ID   any    `json:"id"`
	Tool string `json:"tool"`
	Tag  string `json:"tag"`
}

// sameID compares a JSON-RPC id from the record with the one a server
// acted on, as values (the server's log writes what it decoded).
func sameID(recorded json.RawMessage, acted any) bool {
	var r any
	if json.Unmarshal(recorded, &r) != nil {
		return false
	}
	b, _ := json.Marshal(acted)
	var a any
	_ = json.Unmarshal(b, &a)
	return fmt.Sprint(r) == fmt.Sprint(a) && fmt.Sprintf("%T", r) == fmt.Sprintf("%T", a)
}

// taggedRequests returns the recorded tools/call requests by the tag in
// their arguments.
func taggedRequests(events []store.Event) map[string][]store.Event {
	out := map[string][]store.Event{}
	for _, ev := range events {
		if ev.Kind != store.KindRequest || ev.Method != "tools/call" {
			continue
		}
		var p struct {
			Arguments struct {
				Tag string `json:"tag"`
			} `json:"arguments"`
		}
		_ = json.Unmarshal(ev.Params, &p)
		out[p.Arguments.Tag] = append(out[p.Arguments.Tag], ev)
	}
	return out
}

// TestStrictParseMCPGoWrap: the corpus through `mcptrail wrap` to a
// mark3labs/mcp-go server, whose own log says what it executed.
func TestStrictParseMCPGoWrap(t *testing.T) {
	t.Parallel()
	in := newInstance(t)
	execLog := filepath.Join(t.TempDir(), "executed.jsonl")
	cmd, _ := in.WrapCommand(t, WrapOptions{Name: "mcpgo"}, binary(t, "mcpgo"), "-log", execLog)
	r := startRaw(t, "mcptrail wrap", cmd)
	rawInitialize(t, r, "hostile-agent")
	corpus := ambiguousCorpus("list_repos", "delete_repo")
	refusals, _ := sendCorpus(t, r, corpus)
	r.CloseStdin()
	select {
	case <-r.Exited():
	case <-time.After(stopTimeout):
		t.Fatalf("mcptrail wrap still running %v after its stdin closed", stopTimeout)
	}

	var ran []executed
	f, err := os.Open(execLog)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var e executed
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			t.Fatalf("server log line %q: %v", sc.Text(), err)
		}
		if e.Tool != "" {
			ran = append(ran, e)
		}
	}
	events := in.WaitEvents(t, allAnswered)
	checkServerTruth(t, corpus, refusals, ran, taggedRequests(events), events)
}

// checkServerTruth compares what a server ran (ran) with the record and
// with the gateway's refusals.
func checkServerTruth(t *testing.T, corpus []ambiguous, refusals map[string]RawMessage, ran []executed, recorded map[string][]store.Event, events []store.Event) {
	t.Helper()
	ci := indexCalls(events)
	ranByTag := map[string][]executed{}
	for _, e := range ran {
		ranByTag[e.Tag] = append(ranByTag[e.Tag], e)
	}
	for _, c := range corpus {
		got, reqs := ranByTag[c.tag], recorded[c.tag]
		for _, e := range got {
			// The server ran it: the record must name what it ran, and
			// hold the server's answer as that call's outcome (the
			// answer's id met the request's).
			found := false
			for _, ev := range reqs {
				if ev.Tool == e.Tool && sameID(ev.JSONRPCID, e.ID) {
					found = true
					if out := ci.outcome[ev.Seq]; out == nil || out.Outcome != store.OutcomeOK {
						t.Errorf("%s: the call (id %s) has no outcome ok from the server's answer: %v", c.tag, ev.JSONRPCID, describeOutcome(out))
					}
				}
			}
			if !found {
				t.Errorf("%s: the server ran %s as id %v; the record holds %s", c.tag, e.Tool, e.ID, describeRequests(reqs))
			}
		}
		if len(got) != len(reqs) {
			t.Errorf("%s: the server ran %d calls, the record holds %d requests (%s)", c.tag, len(got), len(reqs), describeRequests(reqs))
		}
		_, refused := refusals[c.tag]
		if mustPass[c.tag] {
			if refused || len(got) != 1 {
				t.Errorf("%s: refused %v, ran %d times; want it forwarded and run once", c.tag, refused, len(got))
			}
			continue
		}
		if !refused || len(got) != 0 {
			t.Errorf("%s: refused %v (error %+v), ran %d times; want it refused with -32600 and never run", c.tag, refused, refusals[c.tag].Error, len(got))
		} else if code := refusals[c.tag].Error.Code; code != -32600 {
			t.Errorf("%s: refused with code %d, want -32600", c.tag, code)
		}
		if !hasBadInput(events, `"`+c.tag+`\"`) {
			t.Errorf("%s: no bad_input event holds the refused message", c.tag)
		}
	}
}

func describeRequests(reqs []store.Event) string {
	if len(reqs) == 0 {
		return "no request"
	}
	var s []string
	for _, ev := range reqs {
		s = append(s, fmt.Sprintf("%s id %s", ev.Tool, ev.JSONRPCID))
	}
	return strings.Join(s, "; ")
}

// hasBadInput reports whether a bad_input event with a reason holds
// excerpt in the message it kept.
func hasBadInput(events []store.Event, excerpt string) bool {
	for _, ev := range events {
		if ev.Kind == store.KindBadInput && ev.Detail != "" && strings.Contains(string(ev.Params), excerpt) {
			return true
		}
	}
	return false
}

// validUTF8Exports runs every export format and requires valid UTF-8.
func validUTF8Exports(t *testing.T, in *Instance) {
	t.Helper()
	for _, format := range []string{"jsonl", "ocsf", "ecs", "cef"} {
		res := in.MustRun(t, "export", "--format", format)
		if !utf8.ValidString(res.Stdout) {
			t.Errorf("export --format %s is not valid UTF-8", format)
		}
		if res.Stdout == "" {
			t.Errorf("export --format %s is empty", format)
		}
	}
}

// TestStrictParseNPMWrap: the corpus through `mcptrail wrap` to the npm
// everything server (the TypeScript SDK: JSON.parse, case-sensitive, the
// last duplicate wins). Its truth is in its answers: which tool's output
// came back, under which id.
func TestStrictParseNPMWrap(t *testing.T) {
	t.Parallel()
	server := nodeServer(t, "mcp-server-everything")
	in := newInstance(t)
	cmd, _ := in.WrapCommand(t, WrapOptions{Name: "everything"}, server)
	r := startRaw(t, "mcptrail wrap", cmd)
	rawInitialize(t, r, "hostile-agent")
	corpus := ambiguousCorpus("echo", "get-env")
	refusals, answers := sendCorpus(t, r, corpus)
	// The calls that must pass are answered before the session ends.
	seen := map[string]bool{}
	for _, m := range answers {
		seen[string(m.ID)] = true
	}
	for _, id := range []string{"101", `"s1"`} {
		if !seen[id] {
			answers = append(answers, r.RecvResponse(t, id, 30*time.Second))
		}
	}
	r.CloseStdin()
	select {
	case <-r.Exited():
	case <-time.After(stopTimeout):
		t.Fatalf("mcptrail wrap still running %v after its stdin closed", stopTimeout)
	}
	// Which message an answer belongs to: its id, as the server (JSON.parse:
	// exact names, last duplicate wins, like a Go map) read the message.
	tagOf := map[string]string{}
	for _, c := range corpus {
		var m map[string]json.RawMessage
		if json.Unmarshal([]byte(strings.ReplaceAll(c.msg, "{TAG}", c.tag)), &m) == nil && m["id"] != nil {
			var id any
			_ = json.Unmarshal(m["id"], &id)
			b, _ := json.Marshal(id)
			tagOf[string(b)] = c.tag
		}
	}
	var ran []executed
	for _, m := range answers {
		var res struct {
			IsError bool `json:"isError"`
			Content []struct {
				Text string `json:"text"`
			} `json:"content"`
		}
		if m.Error != nil || json.Unmarshal(m.Result, &res) != nil || res.IsError || len(res.Content) == 0 {
			continue // the server ran nothing
		}
		var id any
		_ = json.Unmarshal(m.ID, &id)
		b, _ := json.Marshal(id)
		tag, ok := tagOf[string(b)]
		if !ok {
			continue // the initialize or a sync ping
		}
		tool := "get-env"
		if strings.HasPrefix(res.Content[0].Text, "Echo: ") {
			tool = "echo"
		}
		ran = append(ran, executed{ID: id, Tool: tool, Tag: tag})
	}
	events := in.WaitEvents(t, allAnswered)
	checkServerTruth(t, corpus, refusals, ran, taggedRequests(events), events)
}

// initializeAt performs the handshake at a protocol version and returns
// the version the server chose.
func initializeAt(t *testing.T, r *RawConn, version string) string {
	t.Helper()
	resp := r.Call(t, 1, "initialize", map[string]any{
		"protocolVersion": version,
		"capabilities":    map[string]any{},
		"clientInfo":      map[string]any{"name": "hostile-agent", "version": "0.0.1"},
	})
	var res struct {
		ProtocolVersion string `json:"protocolVersion"`
	}
	if resp.Error != nil || json.Unmarshal(resp.Result, &res) != nil {
		t.Fatalf("initialize: %+v", resp)
	}
	r.Send(t, `{"jsonrpc":"2.0","method":"notifications/initialized"}`)
	return res.ProtocolVersion
}

func nested(depth int) string {
	return strings.Repeat("[", depth) + strings.Repeat("]", depth)
}

// TestHostileInputWrap sends what the server's own SDK cannot take, or
// what would reach the record as something else: nesting past the go-sdk's
// limit of 1,000 and past the gateway's own (128), batches where the
// protocol version has none, invalid UTF-8, lone surrogates. Each gets a
// clear JSON-RPC error, a bad_input event with its reason, never reaches
// the server, and the next call in the same session succeeds; every export
// of the record is valid UTF-8.
func TestHostileInputWrap(t *testing.T) {
	t.Parallel()
	in := newInstance(t)
	cmd, _ := in.WrapCommand(t, WrapOptions{Name: "conf"}, binary(t, "everything-server"))
	r := startRaw(t, "mcptrail wrap", cmd)
	if v := initializeAt(t, r, "2025-06-18"); v != "2025-06-18" {
		t.Fatalf("the server chose %s", v)
	}
	hostile := []struct{ name, msg, reason string }{
		// The params hold the array under the envelope and params: 1,001
		// levels in all is one past what the go-sdk decodes.
		{"nesting past the go-sdk's limit", `{"jsonrpc":"2.0","id":10,"method":"tools/call","params":{"name":"test_simple_text","arguments":{"a":` + nested(998) + `}}}`, "nesting deeper than 128"},
		{"nesting past the gateway's limit", `{"jsonrpc":"2.0","id":11,"method":"tools/call","params":{"name":"test_simple_text","arguments":{"a":` + nested(126) + `}}}`, "nesting deeper than 128"},
		{"batch under 2025-06-18", `[{"jsonrpc":"2.0","id":12,"method":"ping"},{"jsonrpc":"2.0","id":13,"method":"ping"}]`, "has no batches"},
		{"invalid UTF-8", "{\"jsonrpc\":\"2.0\",\"id\":14,\"method\":\"tools/call\",\"params\":{\"name\":\"test_simple_text\",\"arguments\":{\"a\":\"\xff\xfe\"}}}", "invalid UTF-8"},
		{"lone surrogate", `{"jsonrpc":"2.0","id":15,"method":"tools/call","params":{"name":"test_simple_text","arguments":{"a":"\ud800"}}}`, "lone UTF-16 surrogate"},
	}
	for i, h := range hostile {
		r.Send(t, h.msg)
		m := r.Recv(t, 30*time.Second)
		if m.Error == nil || m.Error.Code != -32600 || !strings.Contains(m.Error.Message, h.reason) {
			t.Fatalf("%s: got %+v (error %+v), want -32600 saying %q", h.name, m, m.Error, h.reason)
		}
		// The next call in the same session succeeds, and is the next
		// thing back: the server never saw the hostile message.
		id := 100 + i
		r.Send(t, fmt.Sprintf(`{"jsonrpc":"2.0","id":%d,"method":"tools/call","params":{"name":"test_simple_text","arguments":{}}}`, id))
		if m := r.Recv(t, 30*time.Second); string(m.ID) != fmt.Sprint(id) || m.Error != nil || !strings.Contains(string(m.Result), "simple text") {
			t.Fatalf("%s: the call after it got %+v", h.name, m)
		}
	}
	r.CloseStdin()
	<-r.Exited()

	// 2024-11-05 has no batches either; 2025-03-26 has them, and the batch
	// goes through.
	for _, v := range []struct {
		version string
		batch   bool
	}{{"2024-11-05", false}, {"2025-03-26", true}} {
		cmd, _ := in.WrapCommand(t, WrapOptions{Name: "conf"}, binary(t, "everything-server"))
		r := startRaw(t, "mcptrail wrap", cmd)
		if got := initializeAt(t, r, v.version); got != v.version {
			t.Fatalf("the server chose %s for %s", got, v.version)
		}
		r.Send(t, `[{"jsonrpc":"2.0","id":20,"method":"ping"},{"jsonrpc":"2.0","id":21,"method":"ping"}]`)
		if v.batch {
			// The server answers the batch with a batch.
			var answers []RawMessage
			select {
			case line := <-r.msgs:
				if err := json.Unmarshal(line, &answers); err != nil || len(answers) != 2 || answers[0].Error != nil || answers[1].Error != nil {
					t.Errorf("%s: the batch got %s, want two answers", v.version, line)
				}
			case <-time.After(30 * time.Second):
				t.Fatalf("%s: no answer to the batch", v.version)
			}
		} else if m := r.Recv(t, 30*time.Second); m.Error == nil || m.Error.Code != -32600 || !strings.Contains(m.Error.Message, "has no batches") {
			t.Errorf("%s: batch got %+v, want -32600", v.version, m)
		}
		if m := r.Call(t, 22, "ping", map[string]any{}); m.Error != nil {
			t.Errorf("%s: ping after the batch: %+v", v.version, m.Error)
		}
		r.CloseStdin()
		<-r.Exited()
	}

	events := in.WaitEvents(t, func(events []store.Event) error {
		n := 0
		for _, ev := range events {
			if ev.Kind == store.KindBadInput {
				n++
			}
		}
		if n < len(hostile)+1 {
			return fmt.Errorf("%d bad_input events, want %d", n, len(hostile)+1)
		}
		return allAnswered(events)
	})
	for _, h := range hostile {
		found := false
		for _, ev := range events {
			found = found || (ev.Kind == store.KindBadInput && strings.Contains(ev.Detail, h.reason) && ev.Upstream == "conf")
		}
		if !found {
			t.Errorf("%s: no bad_input event says %q", h.name, h.reason)
		}
	}
	for _, ev := range events {
		if ev.Kind == store.KindRequest && ev.Method == "ping" && (string(ev.JSONRPCID) == "12" || string(ev.JSONRPCID) == "13") {
			t.Errorf("the refused batch's ping %s is recorded as a request", ev.JSONRPCID)
		}
	}
	validUTF8Exports(t, in)
}

// TestStrictParseMCPGoServe: the corpus through `mcptrail serve` (Streamable
// HTTP, a stdio upstream) to the mcp-go server; the HTTP gateway routes on
// the same reading the record holds.
func TestStrictParseMCPGoServe(t *testing.T) {
	t.Parallel()
	ctx := scenarioContext(t)
	in := newInstance(t)
	execLog := filepath.Join(t.TempDir(), "executed.jsonl")
	in.WriteConfig(t, fmt.Sprintf("upstreams:\n  mcpgo:\n    command: [%q, \"-log\", %q]\n", binary(t, "mcpgo"), execLog))
	d := in.Serve(t)
	h := newRawHTTP(d.Endpoint("mcpgo"))
	h.initialize(t, ctx)
	corpus := ambiguousCorpus("list_repos", "delete_repo")
	refusals := map[string]RawMessage{}
	for _, c := range corpus {
		for _, m := range readAllMessages(t, h.post(t, ctx, strings.ReplaceAll(c.msg, "{TAG}", c.tag))) {
			if m.Error != nil && strings.HasPrefix(m.Error.Message, "mcptrail:") {
				refusals[c.tag] = m
			}
		}
	}
	var ran []executed
	b, err := os.ReadFile(execLog)
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		var e executed
		if err := json.Unmarshal([]byte(line), &e); err != nil {
			t.Fatalf("server log line %q: %v", line, err)
		}
		if e.Tool != "" {
			ran = append(ran, e)
		}
	}
	events := in.WaitEvents(t, allAnswered)
	checkServerTruth(t, corpus, refusals, ran, taggedRequests(events), events)
}

func describeOutcome(out *store.Event) string {
	if out == nil {
		return "no outcome"
	}
	return out.Outcome + " (" + out.Detail + ")"
}
