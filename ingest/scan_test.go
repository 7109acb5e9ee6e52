package ingest

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
)

// The scanner must read every envelope exactly as encoding/json does
// (parseSlow), or fall back to it.
func FuzzEnvelopeScan(f *testing.F) {
	for _, s := range []string{
		`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"x","arguments":{"s":"}\"{"}}}`,
		`{"jsonrpc":"2.0","id":"a","result":{"content":[{"type":"text","text":"]"}]}}`,
		` { "id" : 2 , "jsonrpc" : "2.0" , "error" : {"code":-1,"message":"m"} } `,
		`{"jsonrpc":"2.0","method":null}`, `{"jsonrpc":"2.0","method":"a\u0062"}`, `{"jsonrpc":"2.0","ID":1,"Method":"x"}`,
		`{"jsonrpc":"2.0","id":1,"id":2,"method":"x","method":"y"}`, `{"jsonr\u0070c":"2.0"}`, `[1]`, `"x"`, `{}`,
		`{"jsonrpc":"2.0","id":-1.5e3,"params":[true,false,null]}`, `{"jsonrpc":2}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var fast, slow wireMsg
		ferr, serr := fast.parse(data), slow.parseSlow(data)
		if (ferr == nil) != (serr == nil) || (ferr != nil && ferr.Error() != serr.Error()) {
			t.Fatalf("scan: %v, encoding/json: %v", ferr, serr)
		}
		if ferr != nil {
			return
		}
		if fast.JSONRPC != slow.JSONRPC || (fast.Method == nil) != (slow.Method == nil) || (fast.Method != nil && *fast.Method != *slow.Method) {
			t.Fatalf("scan %q %v, encoding/json %q %v", fast.JSONRPC, fast.Method, slow.JSONRPC, slow.Method)
		}
		for _, p := range [][2][]byte{{fast.ID, slow.ID}, {fast.Params, slow.Params}, {fast.Result, slow.Result}, {fast.Error, slow.Error}} {
			if !bytes.Equal(p[0], p[1]) {
				t.Fatalf("member: scan %q, encoding/json %q", p[0], p[1])
			}
		}
	})
}

// The HTTP gateway's first look at a POST must agree with encoding/json's
// (readMessageSlow) wherever keys are spelled exactly; encoding/json also
// takes "ID" for "id", which MCP does not.
func FuzzReadMessage(f *testing.F) {
	for _, s := range []string{
		`{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"clientInfo":{"name":"c","version":"1"}}}`,
		`{"jsonrpc":"2.0","id":"x","method":"tools/call","params":{"name":"t","_meta":{"progressToken":7,"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientInfo":{"name":"m"}}}}`,
		`{"jsonrpc":"2.0","method":"notifications/initialized","params":[]}`, `{"jsonrpc":"2.0","id":1,"result":{}}`,
		`{"id":1,"method":5}`, `{"id":1,"method":"a","params":{"_meta":[1]}}`, `{"id":1,"method":"a","params":{"_m\u0065ta":{"progressToken":1}}}`,
	} {
		f.Add([]byte(s))
	}
	keys := []string{"id", "method", "params", "_meta", "clientInfo", "progressToken", "name",
		"io.modelcontextprotocol/protocolVersion", "io.modelcontextprotocol/clientInfo"}
	f.Fuzz(func(t *testing.T, data []byte) {
		fast, fok := readMessage(data)
		if !json.Valid(data) {
			return
		}
		rest := string(data)
		for _, k := range keys {
			rest = strings.ReplaceAll(rest, `"`+k+`"`, "")
		}
		for _, k := range keys {
			if strings.Contains(strings.ToLower(rest), strings.ToLower(k)) {
				return // a key only encoding/json's case folding would take
			}
		}
		slow, sok := readMessageSlow(data)
		if fok != sok {
			t.Fatalf("scan ok=%v, encoding/json ok=%v", fok, sok)
		}
		if (fast.method == nil) != (slow.method == nil) || (fast.method != nil && *fast.method != *slow.method) ||
			!bytes.Equal(fast.id, slow.id) || !bytes.Equal(fast.token, slow.token) || fast.protocolVersion != slow.protocolVersion ||
			fast.metaClient != slow.metaClient || fast.initClient != slow.initClient {
			t.Fatalf("scan %+v, encoding/json %+v", fast, slow)
		}
	})
}
