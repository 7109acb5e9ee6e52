package tracing

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/mcptrail/mcptrail/store"
)

func spanAttrs(s sdktrace.ReadOnlySpan) map[string]string {
	m := map[string]string{}
	for _, kv := range s.Attributes() {
		m[string(kv.Key)] = kv.Value.Emit()
	}
	return m
}

// keep is an in-memory exporter whose spans outlive Shutdown.
type keep struct{ *tracetest.InMemoryExporter }

func (keep) Shutdown(context.Context) error { return nil }

// run feeds events through a tracer with an in-memory exporter and
// returns the spans it ended.
func run(t *testing.T, opts Options, evs ...*store.Event) tracetest.SpanStubs {
	t.Helper()
	exp := tracetest.NewInMemoryExporter()
	opts.Exporter, opts.SampleRatio = keep{exp}, 1
	tr, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	for _, ev := range evs {
		tr.Observe(ev)
	}
	if err := tr.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	return exp.GetSpans()
}

func TestSpanFromEvents(t *testing.T) {
	t0 := time.Date(2026, 11, 27, 5, 0, 0, 0, time.UTC)
	evs := []*store.Event{
		// a 2026-07-28 prompts/get over stdio that gets a JSON-RPC error
		{Seq: 10, Kind: store.KindRequest, Time: t0, Session: "s1", Upstream: "fs", Transport: "stdio", ProtocolVersion: "2026-07-28",
			From: store.FromClient, Method: "prompts/get", JSONRPCID: json.RawMessage(`"a-1"`), Params: json.RawMessage(`{"name":"greet","arguments":{"who":"x"}}`),
			Agent: &store.Agent{ID: "agent-7"}},
		// a server→client request, number id, no target
		{Seq: 11, Kind: store.KindRequest, Time: t0.Add(time.Millisecond), Session: "s1", Transport: "stdio", ProtocolVersion: "2025-06-18",
			From: store.FromServer, Method: "sampling/createMessage", JSONRPCID: json.RawMessage(`7`)},
		{Seq: 12, Kind: store.KindCall, Call: 10, Time: t0.Add(9 * time.Millisecond), DurationNS: int64(5 * time.Millisecond),
			Outcome: store.OutcomeRPCError, Error: json.RawMessage(`{"code":-32602,"message":"bad"}`)},
		{Seq: 13, Kind: store.KindCall, Call: 11, Time: t0.Add(3 * time.Millisecond), DurationNS: int64(2 * time.Millisecond), Outcome: store.OutcomeOK},
		{Seq: 14, Kind: store.KindCall, Call: 99, Outcome: store.OutcomeOK}, // no request: no span
	}
	spans := run(t, Options{}, evs...)
	if len(spans) != 2 {
		t.Fatalf("%d spans, want 2", len(spans))
	}
	byName := map[string]tracetest.SpanStub{}
	for _, s := range spans {
		byName[s.Name] = s
	}
	p, ok := byName["prompts/get greet"]
	if !ok {
		t.Fatalf("no prompts/get span: %+v", spans)
	}
	a := spanAttrs(p.Snapshot())
	for k, want := range map[string]string{
		"mcp.method.name": "prompts/get", "gen_ai.prompt.name": "greet", "jsonrpc.request.id": "a-1",
		"mcp.protocol.version": "2026-07-28", "network.transport": "pipe", "rpc.response.status_code": "-32602",
		"error.type": "rpc_error", "mcptrail.seq": "10", "mcptrail.agent": "agent-7", "mcptrail.upstream": "fs",
	} {
		if a[k] != want {
			t.Errorf("prompts/get: %s = %q, want %q", k, a[k], want)
		}
	}
	if _, ok := a["mcp.session.id"]; ok {
		t.Errorf("mcp.session.id on a 2026-07-28 session")
	}
	if _, ok := a["mcptrail.params"]; ok {
		t.Errorf("params in a span without include_bodies")
	}
	if !p.StartTime.Equal(t0) || !p.EndTime.Equal(t0.Add(5*time.Millisecond)) {
		t.Errorf("prompts/get: %v–%v, want %v + 5ms", p.StartTime, p.EndTime, t0)
	}
	if p.SpanKind != trace.SpanKindServer || p.Status.Description != "rpc_error" {
		t.Errorf("prompts/get: kind %v status %+v", p.SpanKind, p.Status)
	}
	s := byName["sampling/createMessage"]
	sa := spanAttrs(s.Snapshot())
	if sa["jsonrpc.request.id"] != "7" || sa["mcp.session.id"] != "s1" || sa["mcptrail.from"] != "server" {
		t.Errorf("sampling: attrs %v", sa)
	}
	if _, ok := sa["error.type"]; ok {
		t.Errorf("sampling: error.type on ok")
	}
}

func TestIncludeBodies(t *testing.T) {
	evs := []*store.Event{
		{Seq: 1, Kind: store.KindRequest, Time: time.Now(), Method: "tools/call", Tool: "echo", Params: json.RawMessage(`{"name":"echo","arguments":{"text":"hi"}}`)},
		{Seq: 2, Kind: store.KindCall, Call: 1, Time: time.Now(), Outcome: store.OutcomeOK, Result: json.RawMessage(`{"content":[]}`)},
	}
	spans := run(t, Options{IncludeBodies: true}, evs...)
	if len(spans) != 1 {
		t.Fatalf("%d spans", len(spans))
	}
	a := spanAttrs(spans[0].Snapshot())
	if a["gen_ai.tool.call.arguments"] != `{"text":"hi"}` || a["gen_ai.tool.call.result"] != `{"content":[]}` {
		t.Errorf("bodies: %v", a)
	}
	want := attribute.String("gen_ai.operation.name", "execute_tool")
	if a[string(want.Key)] != want.Value.AsString() {
		t.Errorf("operation: %v", a)
	}
}

// Observe never blocks: a full buffer drops and counts.
func TestObserveDropsWhenFull(t *testing.T) {
	tr := &Tracer{ch: make(chan item, 1)}
	done := make(chan struct{})
	go func() {
		for range 3 {
			tr.Observe(&store.Event{Kind: store.KindRequest, Method: "tools/call"})
		}
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Observe blocked on a full buffer")
	}
	if n := tr.Dropped(); n != 2 {
		t.Errorf("dropped %d, want 2", n)
	}
}

func TestTracesURL(t *testing.T) {
	for in, want := range map[string]string{
		"http://127.0.0.1:4318":            "http://127.0.0.1:4318/v1/traces",
		"http://127.0.0.1:4318/":           "http://127.0.0.1:4318/v1/traces",
		"https://otel.example/custom/path": "https://otel.example/custom/path",
	} {
		if got, err := TracesURL(in); err != nil || got != want {
			t.Errorf("TracesURL(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "127.0.0.1:4318", "ftp://x"} {
		if _, err := TracesURL(bad); err == nil {
			t.Errorf("TracesURL(%q): no error", bad)
		}
	}
}
