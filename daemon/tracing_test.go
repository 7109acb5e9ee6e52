package daemon

import (
	"context"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/proto"

	"github.com/mcptrail/mcptrail/config"
)

// otlpReceiver is a test OTLP/HTTP collector: it decodes each
// ExportTraceServiceRequest and keeps the spans.
type otlpReceiver struct {
	mu    sync.Mutex
	spans []*tracepb.Span
	paths []string
}

func (r *otlpReceiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	body, err := io.ReadAll(req.Body)
	if err != nil {
		http.Error(w, err.Error(), 400)
		return
	}
	var ex coltracepb.ExportTraceServiceRequest
	if err := proto.Unmarshal(body, &ex); err != nil {
		http.Error(w, err.Error(), 400)
		return
	}
	r.mu.Lock()
	r.paths = append(r.paths, req.URL.Path)
	for _, rs := range ex.GetResourceSpans() {
		for _, ss := range rs.GetScopeSpans() {
			r.spans = append(r.spans, ss.GetSpans()...)
		}
	}
	r.mu.Unlock()
	w.Header().Set("Content-Type", "application/x-protobuf")
	out, _ := proto.Marshal(&coltracepb.ExportTraceServiceResponse{})
	w.Write(out)
}

// waitSpans waits until the receiver holds n spans named with prefix.
func (r *otlpReceiver) waitSpans(t *testing.T, prefix string, n int) []*tracepb.Span {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		r.mu.Lock()
		var got []*tracepb.Span
		for _, s := range r.spans {
			if strings.HasPrefix(s.GetName(), prefix) {
				got = append(got, s)
			}
		}
		r.mu.Unlock()
		if len(got) >= n {
			return got
		}
		if time.Now().After(deadline) {
			t.Fatalf("receiver has %d %q spans after 30s, want %d", len(got), prefix, n)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func attrs(s *tracepb.Span) map[string]string {
	m := map[string]string{}
	for _, kv := range s.GetAttributes() {
		m[kv.GetKey()] = anyValue(kv.GetValue())
	}
	return m
}

func anyValue(v *commonpb.AnyValue) string {
	switch x := v.GetValue().(type) {
	case *commonpb.AnyValue_StringValue:
		return x.StringValue
	case *commonpb.AnyValue_IntValue:
		return fmt.Sprint(x.IntValue)
	case *commonpb.AnyValue_BoolValue:
		return fmt.Sprint(x.BoolValue)
	case *commonpb.AnyValue_DoubleValue:
		return fmt.Sprint(x.DoubleValue)
	}
	return v.String()
}

// teeUpstream is the echo server behind a tee that keeps every byte the
// gateway sends it, to see what reached the upstream.
func teeUpstream(t *testing.T) (config.Upstream, string) {
	wire := filepath.Join(t.TempDir(), "to-upstream.jsonl")
	return config.Upstream{Command: []string{"sh", "-c", `tee -a "$0" | "$1"`, wire, echoServer(t)}}, wire
}

func TestTracingSpansOverOTLP(t *testing.T) {
	recv := &otlpReceiver{}
	col := httptest.NewServer(recv)
	defer col.Close()

	cfg := config.Default()
	up, wire := teeUpstream(t)
	cfg.Upstreams = map[string]config.Upstream{"echo": up}
	cfg.Tracing.OTLPEndpoint = col.URL // no path: /v1/traces
	d, logs := startOpsDaemon(t, cfg)

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	client := mcp.NewClient(&mcp.Implementation{Name: "trace-test-agent", Version: "1"}, nil)
	cs, err := client.Connect(ctx, &mcp.StreamableClientTransport{Endpoint: "http://" + d.listen + "/mcp/echo"}, nil)
	if err != nil {
		t.Fatalf("connect: %v; log:\n%s", err, logs)
	}
	if _, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "echo", Arguments: map[string]any{"text": "secret-arg"}}); err != nil {
		t.Fatal(err)
	}
	res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "fail", Arguments: map[string]any{"text": "x"}})
	if err != nil || !res.IsError {
		t.Fatalf("fail: %v %+v", err, res)
	}
	const traceID, parentID = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
	traceparent := "00-" + traceID + "-" + parentID + "-01"
	if _, err := cs.CallTool(ctx, &mcp.CallToolParams{
		Meta: mcp.Meta{"traceparent": traceparent},
		Name: "write", Arguments: map[string]any{"text": "y"},
	}); err != nil {
		t.Fatal(err)
	}
	cs.Close()

	spans := recv.waitSpans(t, "tools/call ", 3)
	byName := map[string]*tracepb.Span{}
	for _, s := range spans {
		byName[s.GetName()] = s
	}
	for _, name := range []string{"tools/call echo", "tools/call fail", "tools/call write"} {
		s := byName[name]
		if s == nil {
			t.Fatalf("no span %q among %d", name, len(spans))
		}
		if s.GetKind() != tracepb.Span_SPAN_KIND_SERVER {
			t.Errorf("%s: kind %v, want SERVER", name, s.GetKind())
		}
		if s.GetEndTimeUnixNano() <= s.GetStartTimeUnixNano() {
			t.Errorf("%s: end %d not after start %d", name, s.GetEndTimeUnixNano(), s.GetStartTimeUnixNano())
		}
		a := attrs(s)
		tool := strings.TrimPrefix(name, "tools/call ")
		for k, want := range map[string]string{
			"mcp.method.name":       "tools/call",
			"gen_ai.tool.name":      tool,
			"gen_ai.operation.name": "execute_tool",
			"mcp.protocol.version":  a["mcp.protocol.version"],
			"network.transport":     "tcp",
			"mcptrail.upstream":     "echo",
			"mcptrail.agent":        "trace-test-agent",
		} {
			if a[k] != want || want == "" {
				t.Errorf("%s: %s = %q, want %q (attrs %v)", name, k, a[k], want, a)
			}
		}
		if a["jsonrpc.request.id"] == "" || a["mcptrail.seq"] == "" {
			t.Errorf("%s: missing jsonrpc.request.id or mcptrail.seq: %v", name, a)
		}
		// mcp.session.id only for sessions before 2026-07-28 (the unit
		// tests cover both eras).
		if _, has := a["mcp.session.id"]; has != (a["mcp.protocol.version"] < "2026-07-28") {
			t.Errorf("%s: mcp.session.id %q with protocol %q", name, a["mcp.session.id"], a["mcp.protocol.version"])
		}
		for k, v := range a {
			if strings.Contains(v, "secret-arg") || strings.HasPrefix(k, "gen_ai.tool.call.") {
				t.Errorf("%s: body in span without include_bodies: %s=%q", name, k, v)
			}
		}
		if tool == "fail" {
			if a["error.type"] != "tool_error" {
				t.Errorf("fail: error.type = %q, want tool_error", a["error.type"])
			}
		} else if _, ok := a["error.type"]; ok {
			t.Errorf("%s: error.type = %q on a successful call", name, a["error.type"])
		}
	}
	// The traceparent continues the agent's trace ...
	w := byName["tools/call write"]
	if got := hex.EncodeToString(w.GetTraceId()); got != traceID {
		t.Errorf("write: trace id %s, want %s", got, traceID)
	}
	if got := hex.EncodeToString(w.GetParentSpanId()); got != parentID {
		t.Errorf("write: parent span id %s, want %s", got, parentID)
	}
	if e := byName["tools/call echo"]; hex.EncodeToString(e.GetTraceId()) == traceID || len(e.GetParentSpanId()) != 0 {
		t.Errorf("echo (no traceparent): trace %x parent %x, want a new root", e.GetTraceId(), e.GetParentSpanId())
	}
	// ... and reaches the upstream as the agent sent it.
	sent, err := os.ReadFile(wire)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(sent), `"traceparent":"`+traceparent+`"`) {
		t.Errorf("the upstream did not receive the traceparent; it got:\n%s", sent)
	}
	recv.mu.Lock()
	if recv.paths[0] != "/v1/traces" {
		t.Errorf("exported to %q, want /v1/traces", recv.paths[0])
	}
	recv.mu.Unlock()
}

// A collector that fails, hangs or is down never fails or slows a call.
func TestTracingCollectorFailureNeverTouchesCalls(t *testing.T) {
	release := make(chan struct{})
	failing := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		http.Error(w, "collector broken", http.StatusInternalServerError)
	}))
	defer failing.Close()
	hanging := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	defer hanging.Close()
	defer close(release) // before hanging.Close, which waits for its handlers
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	down := "http://" + ln.Addr().String()
	ln.Close()

	for name, endpoint := range map[string]string{"500": failing.URL, "hanging": hanging.URL, "down": down} {
		t.Run(name, func(t *testing.T) {
			cfg := config.Default()
			cfg.Upstreams = map[string]config.Upstream{"echo": {Command: []string{echoServer(t)}}}
			cfg.Tracing.OTLPEndpoint = endpoint
			d, logs := startOpsDaemon(t, cfg)
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			client := mcp.NewClient(&mcp.Implementation{Name: "trace-fail-agent", Version: "1"}, nil)
			cs, err := client.Connect(ctx, &mcp.StreamableClientTransport{Endpoint: "http://" + d.listen + "/mcp/echo"}, nil)
			if err != nil {
				t.Fatalf("connect: %v; log:\n%s", err, logs)
			}
			defer cs.Close()
			const calls = 30
			began := time.Now()
			for i := range calls {
				callStart := time.Now()
				res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "echo", Arguments: map[string]any{"text": fmt.Sprint(i)}})
				if err != nil || res.IsError {
					t.Fatalf("call %d failed with the collector %s: %v %+v", i, name, err, res)
				}
				// The exporter's timeout is 10s and the batch interval 1s:
				// an export on the call path would show here.
				if took := time.Since(callStart); took > 900*time.Millisecond {
					t.Errorf("call %d took %v with the collector %s", i, took, name)
				}
			}
			if took := time.Since(began); took > 5*time.Second {
				t.Errorf("%d calls took %v with the collector %s", calls, took, name)
			}
		})
	}
}
