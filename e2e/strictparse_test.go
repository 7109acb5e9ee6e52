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
	ranByTag := map[string][]executed{}
	for _, e := range ran {
		ranByTag[e.Tag] = append(ranByTag[e.Tag], e)
	}
	for _, c := range corpus {
		got, reqs := ranByTag[c.tag], recorded[c.tag]
		for _, e := range got {
			// The server ran it: the record must name what it ran.
			found := false
			for _, ev := range reqs {
				found = found || (ev.Tool == e.Tool && sameID(ev.JSONRPCID, e.ID))
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
