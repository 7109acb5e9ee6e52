package ingest

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mcptrail/mcptrail/store"
	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// TestSharedChildCrashFailsOnlyInFlight: three 2026-07-28 clients share
// one stdio child. While A's call is running in it, B's call crashes it.
// Only the calls in flight fail (A's and B's, each with its own error and
// a transport_error outcome); C, idle, is untouched; the next calls of all
// three succeed through a new child.
func TestSharedChildCrashFailsOnlyInFlight(t *testing.T) {
	f := newHTFixture(t, nil)
	a := f.connect(t, "local", "", nil)
	b := f.connect(t, "local", "", nil)
	c := f.connect(t, "local", "", nil)
	if got := resultText(c.call(t, "echo", map[string]any{"text": "before"}, nil)); got != "before" {
		t.Fatalf("echo = %q", got)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	errA := make(chan error, 1)
	go func() {
		_, err := a.cs.CallTool(ctx, &mcp.CallToolParams{Name: "slow", Arguments: map[string]any{"ms": 60000},
			Meta: mcp.Meta{"progressToken": "a-slow"}})
		errA <- err
	}()
	// The slow tool reports progress once it runs: A's call is in the child.
	eventually(t, "A's call to run in the child", func() bool {
		a.mu.Lock()
		defer a.mu.Unlock()
		return len(a.progress) > 0
	})
	_, err := b.cs.CallTool(ctx, &mcp.CallToolParams{Name: "crash", Arguments: map[string]any{}})
	if err == nil || !strings.Contains(err.Error(), "upstream exited with status 3") {
		t.Fatalf("B's crash call: %v, want the gateway's transport error", err)
	}
	if err := <-errA; err == nil || !strings.Contains(err.Error(), "upstream exited with status 3") {
		t.Fatalf("A's call in flight: %v, want the gateway's transport error", err)
	}
	for name, cl := range map[string]*htClient{"A": a, "B": b, "C": c} {
		if got := resultText(cl.call(t, "echo", map[string]any{"text": "after " + name}, nil)); got != "after "+name {
			t.Errorf("%s after the crash: echo = %q", name, got)
		}
	}
	evs := f.events(t)
	if got := outcomes(evs, "slow"); len(got) != 1 || got[0] != store.OutcomeTransportError {
		t.Errorf("slow outcomes %v, want [transport_error]", got)
	}
	if got := outcomes(evs, "crash"); len(got) != 1 || got[0] != store.OutcomeTransportError {
		t.Errorf("crash outcomes %v, want [transport_error]", got)
	}
	if got := outcomes(evs, "echo"); len(got) != 4 || strings.Join(got, ",") != "ok,ok,ok,ok" {
		t.Errorf("echo outcomes %v, want four ok", got)
	}
	if n := len(f.gw.upstreams["local"].(*stdioUpstream).restarts.starts); n != 2 {
		t.Errorf("the shared child was started %d times, want 2", n)
	}
}

// modernCall is a raw 2026-07-28 tools/call.
func modernCall(id int, tool string) string {
	b, _ := json.Marshal(map[string]any{"jsonrpc": "2.0", "id": id, "method": "tools/call", "params": map[string]any{
		"name": tool, "arguments": map[string]any{"text": "x"},
		"_meta": map[string]any{"io.modelcontextprotocol/protocolVersion": modernVersion,
			"io.modelcontextprotocol/clientInfo":         map[string]any{"name": "raw", "version": "1"},
			"io.modelcontextprotocol/clientCapabilities": map[string]any{}},
	}})
	return string(b)
}

// TestSharedChildRestartLimit: a shared child that keeps crashing is
// started again at most maxRestarts times a window; beyond, calls get 503
// with a JSON-RPC error and Retry-After, and their outcome is recorded;
// once the window has passed, it starts again.
func TestSharedChildRestartLimit(t *testing.T) {
	f := newHTFixture(t, nil)
	budget := f.gw.upstreams["local"].(*stdioUpstream).restarts
	clk := newFakeClock()
	var mu sync.Mutex
	budget.mu.Lock()
	budget.max = 2
	budget.now = func() time.Time { mu.Lock(); defer mu.Unlock(); return clk.now() }
	budget.mu.Unlock()
	hdr := http.Header{"Mcp-Protocol-Version": {modernVersion}}
	for i := range 2 {
		resp, body := rawPost(t, f.url("local"), modernCall(10+i, "crash"), hdr)
		if !strings.Contains(string(body), "upstream exited with status 3") {
			t.Fatalf("crash %d: %d %s", i, resp.StatusCode, body)
		}
	}
	resp, body := rawPost(t, f.url("local"), modernCall(20, "echo"), hdr)
	var rpc struct {
		ID    int `json:"id"`
		Error *struct {
			Code    int    `json:"code"`
			Message string `json:"message"`
		} `json:"error"`
	}
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" ||
		json.Unmarshal(body, &rpc) != nil || rpc.ID != 20 || rpc.Error == nil || rpc.Error.Code != -32603 ||
		!strings.Contains(rpc.Error.Message, "started 2 times") {
		t.Fatalf("a call after 2 crashes in a minute: %d Retry-After %q %s; want 503 with a -32603 error for id 20",
			resp.StatusCode, resp.Header.Get("Retry-After"), body)
	}
	var refused *store.Event
	for _, ev := range f.events(t) {
		if ev.Kind == store.KindCall && ev.Tool == "echo" {
			refused = &ev
		}
	}
	if refused == nil || refused.Outcome != store.OutcomeTransportError || !strings.Contains(refused.Detail, "started 2 times") {
		t.Fatalf("the refused call's outcome: %+v", refused)
	}
	mu.Lock()
	clk.add(restartWindow)
	mu.Unlock()
	resp, body = rawPost(t, f.url("local"), modernCall(21, "echo"), hdr)
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), `"text":"x"`) {
		t.Fatalf("a call a minute later: %d %s", resp.StatusCode, body)
	}
}
