package ingest

// Hostile input (SECURITY.md): deeply nested and oversized JSON is refused
// as bad input, on both transports, without the gateway's memory growing
// with the attack.

import (
	"bytes"
	"net/http"
	"runtime"
	"strings"
	"testing"

	"github.com/mcptrail/mcptrail/store"
)

// heapGrowth runs f and returns how much the live heap grew (after a GC on
// both sides), and the bytes allocated during f in total.
func heapGrowth(f func()) (live int64, allocated uint64) {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	f()
	runtime.GC()
	runtime.ReadMemStats(&after)
	return int64(after.HeapAlloc) - int64(before.HeapAlloc), after.TotalAlloc - before.TotalAlloc
}

// nestedCall is a tools/call whose arguments hold depth nested arrays.
func nestedCall(depth int) string {
	return `{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"echo","arguments":{"x":` +
		strings.Repeat("[", depth) + strings.Repeat("]", depth) + `}}}`
}

// TestHostileJSONOverHTTP: 100k nested arrays and a body 16 times the
// message limit, on a stdio and an HTTP upstream. Each is refused (4xx,
// never forwarded), recorded as bad_input, and the gateway's heap does not
// grow with it: nesting is not expanded into a tree, and an oversized body
// is not read past the limit.
func TestHostileJSONOverHTTP(t *testing.T) {
	const limit = 1 << 20
	f := newHTFixture(t, func(o *HTTPOptions) { o.Limits.MaxMessageBytes = limit })
	deep := nestedCall(100_000)
	huge := `{"jsonrpc":"2.0","id":8,"method":"tools/call","params":{"name":"echo","arguments":{"text":"` +
		strings.Repeat("x", 16*limit) + `"}}}`

	for _, up := range []string{"local", "web"} {
		c := f.connect(t, up, era2025, nil)
		sid := c.cs.ID()
		hdr := http.Header{"Mcp-Session-Id": {sid}, "Mcp-Protocol-Version": {era2025}}
		for _, tc := range []struct {
			name string
			body string
			max  int64 // bound on live heap growth
		}{
			{"100k nested arrays", deep, 8 << 20},
			{"16 MiB body over a 1 MiB limit", huge, 8 << 20},
		} {
			var status int
			var reply []byte
			live, total := heapGrowth(func() {
				resp, body := rawPost(t, f.url(up), tc.body, hdr)
				status, reply = resp.StatusCode, body
			})
			t.Logf("%s / %s: status %d, live heap %+d B, allocated %d B", up, tc.name, status, live, total)
			if status < 400 || status >= 500 {
				t.Errorf("%s / %s: status %d (%s), want a 4xx refusal", up, tc.name, status, reply)
			}
			if live > tc.max {
				t.Errorf("%s / %s: live heap grew by %d bytes, want under %d", up, tc.name, live, tc.max)
			}
			// Loose: the gateway may copy the message a few times, but not
			// build a tree of it or read a body without limit.
			if bound := uint64(len(tc.body)); tc.body == huge {
				bound = 4 * limit
				if total > bound+(8<<20) {
					t.Errorf("%s / %s: %d bytes allocated for a body refused at %d", up, tc.name, total, limit)
				}
			} else if total > 16*bound+(8<<20) {
				t.Errorf("%s / %s: %d bytes allocated for a %d-byte message", up, tc.name, total, len(tc.body))
			}
		}
		// The session still works after the attack.
		if got := resultText(c.call(t, "echo", map[string]any{"text": "still here"}, nil)); got != "still here" {
			t.Errorf("%s: echo after hostile input = %q", up, got)
		}
	}
	bad, tooBig := 0, 0
	for _, ev := range f.events(t) {
		if ev.Kind == store.KindBadInput {
			t.Logf("bad_input: %s", ev.Detail)
			bad++
		}
		// An oversized body is refused by the HTTP gateway before any
		// session reads it: a refusal event.
		if ev.Kind == store.KindRefusal && ev.Refusal.Reason == RefusedSize {
			tooBig++
		}
		if ev.Kind == store.KindRequest && string(ev.JSONRPCID) == "7" {
			t.Errorf("the nested call was recorded as a request (so it was forwarded): %+v", ev)
		}
	}
	if bad != 2 || tooBig != 2 {
		t.Errorf("%d bad_input events and %d size refusals, want 2 and 2 (one each per upstream)", bad, tooBig)
	}
}

// TestHostileJSONOverStdio: the same nesting through the stdio session core
// (`mcptrail wrap`): refused with a JSON-RPC error, not forwarded, bounded.
func TestHostileJSONOverStdio(t *testing.T) {
	rec := &memRecorder{}
	s := NewSession(SessionInfo{ID: "s"}, rec, Hooks{}, Limits{}, nil)
	deep := []byte(nestedCall(100_000))
	var fwd, reply []byte
	live, total := heapGrowth(func() { fwd, reply = s.FromClient(deep, nil) })
	t.Logf("live heap %+d B, allocated %d B", live, total)
	if fwd != nil {
		t.Errorf("a 100k-deep message was forwarded (%d bytes)", len(fwd))
	}
	if !bytes.Contains(reply, []byte(`"error"`)) {
		t.Errorf("reply %s, want a JSON-RPC error", reply)
	}
	if live > 8<<20 || total > 16*uint64(len(deep))+(8<<20) {
		t.Errorf("live heap +%d B, %d B allocated for a %d-byte message", live, total, len(deep))
	}
	if len(rec.evs) != 1 || rec.evs[0].Kind != store.KindBadInput {
		t.Errorf("recorded %+v, want one bad_input event", rec.evs)
	}
}

// TestAgentClaimsStayClaims: what an agent says about itself (clientInfo,
// the _meta on-behalf-of and task) is recorded as the agent's claim and as
// context; it never becomes a principal, never marks anything verified, and
// never replaces the on-behalf-of a verified credential gave the session.
func TestAgentClaimsStayClaims(t *testing.T) {
	call := `{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"echo","arguments":{},"_meta":{"io.mcptrail/on_behalf_of":"ceo@example.com","io.modelcontextprotocol/clientInfo":{"name":"trusted-admin-console","version":"9"}}}}`
	initialize := `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"trusted-admin-console","version":"9"}}}`
	for _, tc := range []struct {
		name    string
		info    SessionInfo
		wantOBO string
	}{
		{"no credential", SessionInfo{ID: "anon"}, "ceo@example.com"},
		{"verified credential", SessionInfo{ID: "tok", Principal: &store.Principal{Subject: "ci-agent", Kind: "token", Verified: true}, OnBehalfOf: "release-workflow"}, "release-workflow"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec := &memRecorder{}
			s := NewSession(tc.info, rec, Hooks{}, Limits{}, nil)
			s.FromClient([]byte(initialize), nil)
			s.FromClient([]byte(call), nil)
			var req *store.Event
			for i := range rec.evs {
				if rec.evs[i].Kind == store.KindRequest && rec.evs[i].Tool == "echo" {
					req = &rec.evs[i]
				}
			}
			if req == nil {
				t.Fatalf("no request event in %+v", rec.evs)
			}
			if req.Agent == nil || req.Agent.ClientName != "trusted-admin-console" {
				t.Errorf("agent %+v, want the clientInfo claim recorded as client_name", req.Agent)
			}
			p := req.Principal
			switch {
			case tc.info.Principal == nil && p != nil && (p.Verified || p.Subject != ""):
				t.Errorf("a claim became a principal: %+v", p)
			case tc.info.Principal != nil && (p == nil || !p.Verified || p.Subject != "ci-agent"):
				t.Errorf("principal %+v, want the verified credential's", p)
			}
			if req.OnBehalfOf != tc.wantOBO {
				t.Errorf("on_behalf_of %q, want %q", req.OnBehalfOf, tc.wantOBO)
			}
		})
	}
}
