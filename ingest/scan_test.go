package ingest

import (
	"bytes"
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
