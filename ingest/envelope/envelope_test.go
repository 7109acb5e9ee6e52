package envelope

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
)

func parse(raw string) (Message, *Error) {
	if err := Check([]byte(raw), 0); err != nil {
		return Message{}, err
	}
	return Parse([]byte(raw))
}

// Every message here is one that two mainstream decoders read differently,
// or that a server's SDK cannot take: each must be refused, with a reason.
func TestRefuses(t *testing.T) {
	deep := strings.Repeat("[", DefaultMaxDepth) + strings.Repeat("]", DefaultMaxDepth)
	for _, c := range []struct{ name, msg, reason string }{
		{"case variant of a params member", `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"Name":"delete_repo"}}`, `"Name" in params is not "name"`},
		{"case duplicate in params", `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"list_repos","NAME":"delete_repo"}}`, `"NAME" in params is not "name"`},
		{"case variant of id", `{"jsonrpc":"2.0","Id":15,"method":"tools/call","params":{"name":"x"}}`, `"Id" in the envelope is not "id"`},
		{"case variant of method", `{"jsonrpc":"2.0","id":1,"METHOD":"tools/call"}`, `"METHOD"`},
		{"kelvin sign", "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"tools/call\",\"params\":{\"name\":\"a\",\"_meta\":{\"progressTo\u212aen\":1}}}", "progressToken"},
		{"long s", "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"tools/call\",\"params\":{\"name\":\"a\",\"argument\u017f\":{}}}", `not "arguments"`},
		{"escaped member", `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"n\u0061me":"delete_repo"}}`, "spelled with escapes"},
		{"escaped duplicate", `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"a","n\u0061me":"b"}}`, `duplicate member "name"`},
		{"escaped envelope member", `{"jsonrpc":"2.0","\u0069d":1,"method":"x"}`, "spelled with escapes"},
		{"exact duplicate", `{"jsonrpc":"2.0","id":1,"method":"tools/call","method":"tools/list"}`, `duplicate member "method"`},
		{"duplicate id", `{"jsonrpc":"2.0","id":1,"id":2,"result":{}}`, `duplicate member "id"`},
		{"duplicate non-protocol params member", `{"jsonrpc":"2.0","id":1,"method":"x","params":{"foo":1,"foo":2}}`, `duplicate member "foo"`},
		{"meta duplicate", `{"jsonrpc":"2.0","id":1,"method":"x","params":{"_meta":{"progressToken":1,"progressToken":2}}}`, "duplicate"},
		{"meta variant", `{"jsonrpc":"2.0","id":1,"method":"x","params":{"_meta":{"io.modelcontextprotocol/ProtocolVersion":"2026-07-28"}}}`, "not"},
		{"clientInfo variant", `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"clientInfo":{"name":"a","Name":"b"}}}`, "params.clientInfo"},
		{"meta clientInfo variant", `{"jsonrpc":"2.0","id":1,"method":"x","params":{"_meta":{"io.modelcontextprotocol/clientInfo":{"NAME":"b"}}}}`, "_meta clientInfo"},
		{"task variant", `{"jsonrpc":"2.0","id":1,"method":"x","params":{"_meta":{"io.mcptrail/task":{"ID":"a"}}}}`, "io.mcptrail/task"},
		{"duplicate argument", `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"write_file","arguments":{"path":"/a","path":"/etc/passwd"}}}`, `duplicate member "path" in arguments`},
		{"escaped duplicate argument", `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"write_file","arguments":{"path":"/a","p\u0061th":"/b"}}}`, `duplicate member "path" in arguments`},
		{"case variants among arguments", `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"write_file","arguments":{"path":"/a","Path":"/etc/passwd"}}}`, `"Path" in arguments differs from another only in case`},
		{"kelvin sign among arguments", "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"tools/call\",\"params\":{\"name\":\"a\",\"arguments\":{\"key\":1,\"\u212aey\":2}}}", "in arguments"},
		{"duplicate deep in arguments", `{"jsonrpc":"2.0","id":1,"method":"prompts/get","params":{"name":"p","arguments":{"a":[{"b":{"c":1,"c":2}}]}}}`, `duplicate member "c" in arguments`},
		{"invalid UTF-8", "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"tools/call\",\"params\":{\"name\":\"a\xff\"}}", "invalid UTF-8"},
		{"lone high surrogate", `{"jsonrpc":"2.0","id":1,"method":"x","params":{"a":"\ud800"}}`, "lone UTF-16 surrogate"},
		{"lone low surrogate", `{"jsonrpc":"2.0","id":1,"method":"x","params":{"a":"x\udc00y"}}`, "lone UTF-16 surrogate"},
		{"high surrogate then non-low", `{"jsonrpc":"2.0","id":1,"method":"x","params":{"a":"\ud800\u0041"}}`, "lone UTF-16 surrogate"},
		{"too deep", `{"jsonrpc":"2.0","id":1,"method":"x","params":{"a":` + deep + `}}`, "nesting deeper than 128"},
		{"id 1.0", `{"jsonrpc":"2.0","id":1.0,"method":"x"}`, "not an integer"},
		{"id 1e2", `{"jsonrpc":"2.0","id":1e2,"method":"x"}`, "not an integer"},
		{"id -0", `{"jsonrpc":"2.0","id":-0,"method":"x"}`, "not an integer"},
		{"id 01", `{"jsonrpc":"2.0","id":01,"method":"x"}`, "malformed JSON"},
		{"id past 2^53", `{"jsonrpc":"2.0","id":9007199254740993,"method":"x"}`, "beyond 2^53"},
		{"id of 17 digits", `{"jsonrpc":"2.0","id":12345678901234567,"method":"x"}`, "not an integer"},
		{"id object", `{"jsonrpc":"2.0","id":{},"method":"x"}`, "neither a string nor a number"},
		{"id true", `{"jsonrpc":"2.0","id":true,"method":"x"}`, "neither a string nor a number"},
		{"null id on a request", `{"jsonrpc":"2.0","id":null,"method":"tools/call"}`, "must not be null"},
		{"response without id", `{"jsonrpc":"2.0","result":{}}`, "needs an id"},
		{"request with a result", `{"jsonrpc":"2.0","id":1,"method":"x","result":{}}`, "with a result or error"},
		{"result and error", `{"jsonrpc":"2.0","id":1,"result":{},"error":{"code":1,"message":"m"}}`, "both"},
		{"wrong version", `{"jsonrpc":"1.0","id":1,"method":"x"}`, "version tag"},
		{"method not a string", `{"jsonrpc":"2.0","id":1,"method":5}`, "not a string"},
		{"params a string", `{"jsonrpc":"2.0","id":1,"method":"x","params":"a"}`, "neither an object nor an array"},
		{"not JSON", `{"jsonrpc":`, "malformed JSON"},
		{"not an object", `"x"`, "not an object"},
		{"bad requestId", `{"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":1.5}}`, "not an integer"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := parse(c.msg)
			if err == nil {
				t.Fatalf("accepted %s", c.msg)
			}
			if !strings.Contains(err.Reason, c.reason) {
				t.Fatalf("reason %q, want it to say %q", err.Reason, c.reason)
			}
		})
	}
}

func TestAccepts(t *testing.T) {
	m, err := parse(`{"jsonrpc":"2.0","id":"a\u0062","method":"tools\/call","params":{"name":"t\u00e9","arguments":{"Name":1,"path":"/a","nested":{"Path":1,"path":2}},` +
		`"_meta":{"progressToken":7,"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientInfo":{"name":"c","version":"1"},"x-other":{"a":1,"a":2}}}}`)
	if err != nil {
		t.Fatal(err)
	}
	if !m.IsRequest() || string(m.ID) != `"ab"` || m.Method != "tools/call" || m.Name != "té" || string(m.MetaProgressToken) != "7" ||
		m.MetaProtocolVersion != "2026-07-28" || m.MetaClientName != "c" || m.MetaClientVersion != "1" {
		t.Fatalf("read %+v", m)
	}
	m, err = parse(`{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","clientInfo":{"name":"n","version":"v"},"capabilities":{}}}`)
	if err != nil || m.ClientName != "n" || m.ClientVersion != "v" || m.ProtocolVersion != "2025-06-18" {
		t.Fatalf("initialize: %+v %v", m, err)
	}
	m, err = parse(`{"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":"\u0041","reason":"r"}}`)
	if err != nil || !m.IsNotification() || string(m.RequestID) != `"A"` || m.Reason != "r" {
		t.Fatalf("cancelled: %+v %v", m, err)
	}
	// A surrogate pair is a character, not a lone surrogate.
	if _, err := parse(`{"jsonrpc":"2.0","id":-9007199254740991,"result":{"t":"\ud83d\ude00 \\ud800"}}`); err != nil {
		t.Fatal(err)
	}
	deep := strings.Repeat("[", DefaultMaxDepth-3) + strings.Repeat("]", DefaultMaxDepth-3)
	if _, err := parse(`{"jsonrpc":"2.0","id":1,"method":"x","params":{"a":` + deep + `}}`); err != nil {
		t.Fatalf("nesting at the limit: %v", err)
	}
}

// An escaped string id is the same id as its plain spelling, and the form
// servers write back.
func TestCanonicalID(t *testing.T) {
	for in, want := range map[string]string{`"a"`: `"a"`, `"\u0061"`: `"a"`, `"\/<"`: `"/<"`, `"\n"`: `"\n"`, `0`: `0`, `-5`: `-5`,
		`9007199254740991`: `9007199254740991`, `null`: ``} {
		got, err := CanonicalID([]byte(in))
		if err != nil || string(got) != want {
			t.Errorf("CanonicalID(%s) = %s, %v; want %s", in, got, err, want)
		}
	}
}

// What a case-insensitive, last-wins decoder (encoding/json into structs,
// as mark3labs/mcp-go reads) acts on.
type folded struct {
	JSONRPC string          `json:"jsonrpc"`
	ID      json.RawMessage `json:"id"`
	Method  *string         `json:"method"`
	Params  *struct {
		Name         string          `json:"name"`
		URI          string          `json:"uri"`
		RequestID    json.RawMessage `json:"requestId"`
		RequestState string          `json:"requestState"`
		ClientInfo   struct {
			Name string `json:"name"`
		} `json:"clientInfo"`
		Meta struct {
			ProgressToken   json.RawMessage `json:"progressToken"`
			ProtocolVersion string          `json:"io.modelcontextprotocol/protocolVersion"`
			ClientInfo      struct {
				Name string `json:"name"`
			} `json:"io.modelcontextprotocol/clientInfo"`
		} `json:"_meta"`
	} `json:"params"`
}

// reading is what a decoder acts on, for comparison.
type reading struct {
	hasMethod                                       bool
	method, id, name, uri, requestID, state, client string
	token, metaVersion, metaClient                  string
}

// exactReading reads as JSON.parse, Python's json and the go-sdk do:
// member names matched exactly, the last duplicate wins (a Go map does
// both).
func exactReading(raw []byte) (r reading, ok bool) {
	var top, params, meta, ci, mci map[string]json.RawMessage
	if json.Unmarshal(raw, &top) != nil {
		return r, false
	}
	_ = json.Unmarshal(top["params"], &params)
	_ = json.Unmarshal(params["_meta"], &meta)
	_ = json.Unmarshal(params["clientInfo"], &ci)
	_ = json.Unmarshal(meta["io.modelcontextprotocol/clientInfo"], &mci)
	str := func(v json.RawMessage) string {
		var s string
		_ = json.Unmarshal(v, &s)
		return s
	}
	_, r.hasMethod = top["method"]
	r.method, r.id = str(top["method"]), canon(top["id"])
	r.name, r.uri, r.requestID, r.state, r.client = str(params["name"]), str(params["uri"]), canon(params["requestId"]), str(params["requestState"]), str(ci["name"])
	r.token, r.metaVersion, r.metaClient = canon(meta["progressToken"]), str(meta["io.modelcontextprotocol/protocolVersion"]), str(mci["name"])
	return r, true
}

func foldedReading(raw []byte) (r reading, ok bool) {
	var f folded
	if json.Unmarshal(raw, &f) != nil {
		return r, false
	}
	r.hasMethod = f.Method != nil
	if f.Method != nil {
		r.method = *f.Method
	}
	r.id = canon(f.ID)
	if p := f.Params; p != nil {
		r.name, r.uri, r.requestID, r.state, r.client = p.Name, p.URI, canon(p.RequestID), p.RequestState, p.ClientInfo.Name
		r.token, r.metaVersion, r.metaClient = canon(p.Meta.ProgressToken), p.Meta.ProtocolVersion, p.Meta.ClientInfo.Name
	}
	return r, true
}

// canon is an id's value as a server holds it: a string, or a number as a
// float64 (what JSON.parse and encoding/json into any make of it).
func canon(v json.RawMessage) string {
	var x any
	if len(v) == 0 || json.Unmarshal(v, &x) != nil || x == nil {
		return ""
	}
	b, _ := json.Marshal(x)
	if _, isString := x.(string); isString {
		return "s" + string(b)
	}
	return "n" + string(b)
}

func ours(m Message) reading {
	return reading{hasMethod: m.HasMethod, method: m.Method, id: canon(m.ID), name: m.Name, uri: m.URI, requestID: canon(m.RequestID),
		state: m.RequestState, client: m.ClientName, token: canon(m.MetaProgressToken), metaVersion: m.MetaProtocolVersion, metaClient: m.MetaClientName}
}

// FuzzEnvelope holds the envelope against a case-insensitive last-wins
// decoder (encoding/json) and a case-sensitive last-wins one (JSON.parse's
// rules): whatever the envelope accepts, both read with the same method,
// id, tool, URI, progress token and client; so wherever they differ, the
// envelope refused the message.
func FuzzEnvelope(f *testing.F) {
	for _, s := range []string{
		`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"x","arguments":{"a":1}}}`,
		`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"Name":"delete_repo"}}`,
		`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"list_repos","NAME":"delete_repo"}}`,
		`{"jsonrpc":"2.0","Id":15,"method":"tools/call","params":{"name":"x"}}`,
		`{"jsonrpc":"2.0","id":"a\u0062","method":"resources/read","params":{"uri":"file:///x","_meta":{"progressToken":"t"}}}`,
		`{"jsonrpc":"2.0","id":1e2,"method":"x"}`, `{"jsonrpc":"2.0","id":-0,"result":{}}`,
		"{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"x\",\"params\":{\"\u212aey\":1,\"name\":\"n\"}}",
		`{"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":3,"reason":"r"}}`,
		`{"jsonrpc":"2.0","id":2,"method":"initialize","params":{"clientInfo":{"name":"c","version":"1"},"protocolVersion":"2025-06-18"}}`,
		`{"jsonrpc":"2.0","id":3,"result":{"content":[]},"method":null}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		if Check(raw, 0) != nil {
			return
		}
		m, err := Parse(raw)
		if err != nil {
			return
		}
		got := ours(m)
		if want, ok := foldedReading(raw); ok && got != want {
			t.Fatalf("accepted %s\nours:          %+v\nencoding/json: %+v", raw, got, want)
		}
		if want, ok := exactReading(raw); ok && got != want {
			t.Fatalf("accepted %s\nours:        %+v\ncase-exact:  %+v", raw, got, want)
		}
		if bytes.Equal(m.ID, []byte("null")) {
			t.Fatalf("null id kept: %s", raw)
		}
	})
}
