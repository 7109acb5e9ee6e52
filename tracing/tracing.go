// Package tracing turns mcptrail's recorded events into OpenTelemetry
// spans, exported over OTLP/HTTP, per the OpenTelemetry semantic
// conventions for MCP (development status): one span per MCP request,
// from its request event to its outcome (call) event.
//
// Tracing is off the call path. Observe copies what a span needs out of
// the event and hands it to a bounded channel without blocking; a single
// goroutine pairs requests with outcomes and ends the spans, and the SDK's
// batch processor exports them. When the channel is full the event is
// dropped and counted (Dropped); an exporter that fails or hangs slows
// only that goroutine, never a call.
//
// Span kind is SERVER for every span, whichever peer sent the request:
// the span is the gateway receiving an MCP request from a remote peer,
// whose traceparent (from params._meta) is the span's remote parent. The
// gateway does not emit a CLIENT span for the forwarded hop because it
// relays _meta byte for byte: the upstream sees the agent's span as its
// parent, not ours, so our span and the upstream's are siblings under the
// agent's span, and a CLIENT span would claim a parent link the upstream
// never saw.
package tracing

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/url"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"

	"github.com/mcptrail/mcptrail/store"
)

// Options configure a Tracer.
type Options struct {
	// Endpoint is the OTLP/HTTP collector's base URL, e.g.
	// http://127.0.0.1:4318; spans go to /v1/traces under it unless the
	// URL has a path of its own.
	Endpoint string
	// SampleRatio is the share of new traces sampled, 0 to 1; a request
	// carrying a traceparent follows its parent's sampled flag.
	SampleRatio float64
	// IncludeBodies adds params and results (as recorded, after
	// redaction) to spans. Off by default: they are sensitive.
	IncludeBodies bool
	Version       string // service.version
	Logger        *slog.Logger
	// Buffer bounds the events waiting for the tracing goroutine
	// (default 4096); MaxPending bounds requests awaiting their outcome
	// (default 65536).
	Buffer     int
	MaxPending int
	// Exporter replaces the OTLP exporter (tests).
	Exporter sdktrace.SpanExporter
}

// Tracer makes spans from recorded events.
type Tracer struct {
	opts     Options
	log      *slog.Logger
	provider *sdktrace.TracerProvider
	tracer   trace.Tracer
	ch       chan item
	done     chan struct{}
	dropped  atomic.Uint64
	close    sync.Once
	// pending is owned by the run goroutine.
	pending map[uint64]item
}

// item is what a span needs from one event, copied on the call path.
// Params and Result share the event's (immutable) byte slices.
type item struct {
	kind, session, upstream, transport, pv string
	from, method, tool, outcome            string
	agent                                  string
	seq, call                              uint64
	id, params, result, rpcErr             json.RawMessage
	time                                   time.Time
	duration                               time.Duration
	traceID, spanID                        string
}

// New starts a tracer exporting to opts.Endpoint.
func New(opts Options) (*Tracer, error) {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.Buffer <= 0 {
		opts.Buffer = 4096
	}
	if opts.MaxPending <= 0 {
		opts.MaxPending = 65536
	}
	if opts.SampleRatio < 0 || opts.SampleRatio > 1 {
		return nil, fmt.Errorf("tracing: sample_ratio %v: want 0 to 1", opts.SampleRatio)
	}
	exp := opts.Exporter
	if exp == nil {
		u, err := TracesURL(opts.Endpoint)
		if err != nil {
			return nil, err
		}
		exp, err = otlptracehttp.New(context.Background(),
			otlptracehttp.WithEndpointURL(u),
			otlptracehttp.WithTimeout(10*time.Second),
			otlptracehttp.WithRetry(otlptracehttp.RetryConfig{Enabled: true, InitialInterval: time.Second, MaxInterval: 5 * time.Second, MaxElapsedTime: 30 * time.Second}))
		if err != nil {
			return nil, fmt.Errorf("tracing: %w", err)
		}
	}
	setErrorHandler(opts.Logger)
	res := resource.NewSchemaless(
		attribute.String("service.name", "mcptrail"),
		attribute.String("service.version", opts.Version),
	)
	// WithBlocking: a full export queue holds up the tracing goroutine,
	// not the call path, so every drop happens (and is counted) at our
	// own channel.
	tp := sdktrace.NewTracerProvider(
		sdktrace.WithResource(res),
		sdktrace.WithSampler(sdktrace.ParentBased(sdktrace.TraceIDRatioBased(opts.SampleRatio))),
		sdktrace.WithBatcher(exp, sdktrace.WithBlocking(), sdktrace.WithBatchTimeout(time.Second)),
	)
	t := &Tracer{
		opts:     opts,
		log:      opts.Logger,
		provider: tp,
		tracer:   tp.Tracer("github.com/mcptrail/mcptrail/tracing"),
		ch:       make(chan item, opts.Buffer),
		done:     make(chan struct{}),
		pending:  make(map[uint64]item),
	}
	go t.run()
	return t, nil
}

// TracesURL is the OTLP/HTTP traces URL for a configured endpoint: a base
// URL without a path gets /v1/traces, as OTEL_EXPORTER_OTLP_ENDPOINT does.
func TracesURL(endpoint string) (string, error) {
	u, err := url.Parse(endpoint)
	if err != nil {
		return "", fmt.Errorf("tracing: otlp_endpoint %q: %w", endpoint, err)
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return "", fmt.Errorf("tracing: otlp_endpoint %q: want http(s)://host:port", endpoint)
	}
	if u.Path == "" || u.Path == "/" {
		u.Path = "/v1/traces"
	}
	return u.String(), nil
}

// Observe takes a recorded event (after the store gave it its seq and
// time). It never blocks: when the buffer is full the event is dropped.
func (t *Tracer) Observe(ev *store.Event) {
	if t == nil || (ev.Kind != store.KindRequest && ev.Kind != store.KindCall) {
		return
	}
	it := item{
		kind: ev.Kind, session: ev.Session, upstream: ev.Upstream, transport: ev.Transport,
		pv: ev.ProtocolVersion, from: ev.From, method: ev.Method, tool: ev.Tool,
		outcome: ev.Outcome, seq: ev.Seq, call: ev.Call, id: ev.JSONRPCID,
		rpcErr: ev.Error, time: ev.Time, duration: time.Duration(ev.DurationNS),
	}
	if ev.Agent != nil {
		it.agent = ev.Agent.ID
		if it.agent == "" {
			it.agent = ev.Agent.Name
		}
		if it.agent == "" {
			it.agent = ev.Agent.ClientName
		}
	}
	if ev.Task != nil {
		it.traceID, it.spanID = ev.Task.TraceID, ev.Task.SpanID
	}
	if ev.Kind == store.KindRequest {
		// The target (prompt name, resource URI) is read from the params
		// on the tracing goroutine.
		it.params = ev.Params
	} else if t.opts.IncludeBodies {
		it.result = ev.Result
	}
	select {
	case t.ch <- it:
	default:
		t.dropped.Add(1)
	}
}

// Dropped counts events dropped because the buffer was full or too many
// requests awaited their outcome.
func (t *Tracer) Dropped() uint64 {
	if t == nil {
		return 0
	}
	return t.dropped.Load()
}

// Close ends the goroutine and flushes what is queued, waiting at most
// until ctx ends.
func (t *Tracer) Close(ctx context.Context) error {
	if t == nil {
		return nil
	}
	var err error
	t.close.Do(func() {
		close(t.ch)
		select {
		case <-t.done:
		case <-ctx.Done():
		}
		err = t.provider.Shutdown(ctx)
		if n := t.dropped.Load(); n > 0 {
			t.log.Warn("tracing: events dropped (buffer full)", "dropped", n)
		}
	})
	return err
}

func (t *Tracer) run() {
	defer close(t.done)
	for it := range t.ch {
		switch it.kind {
		case store.KindRequest:
			if len(t.pending) >= t.opts.MaxPending {
				t.dropped.Add(1)
				continue
			}
			t.pending[it.seq] = it
		case store.KindCall:
			req, ok := t.pending[it.call]
			if !ok {
				continue // its request was dropped, or recorded before we started
			}
			delete(t.pending, it.call)
			t.span(req, it)
		}
	}
}

// LegacyBefore is the first protocol version without sessions: only
// earlier sessions carry mcp.session.id.
const LegacyBefore = "2026-07-28"

// span makes and ends the span of one request and its outcome.
func (t *Tracer) span(req, out item) {
	var p struct {
		Name      string          `json:"name"`
		URI       string          `json:"uri"`
		Arguments json.RawMessage `json:"arguments"`
	}
	if len(req.params) > 0 {
		_ = json.Unmarshal(req.params, &p)
	}
	target := ""
	switch req.method {
	case "tools/call":
		target = req.tool
		if target == "" {
			target = p.Name
		}
	case "prompts/get":
		target = p.Name
	case "resources/read", "resources/subscribe", "resources/unsubscribe":
		target = p.URI
	}
	name := req.method
	if target != "" {
		name += " " + target
	}

	attrs := []attribute.KeyValue{
		attribute.String("mcp.method.name", req.method),
		attribute.Int64("mcptrail.seq", int64(req.seq)),
	}
	switch req.method {
	case "tools/call":
		attrs = append(attrs, attribute.String("gen_ai.tool.name", target), attribute.String("gen_ai.operation.name", "execute_tool"))
	case "prompts/get":
		attrs = append(attrs, attribute.String("gen_ai.prompt.name", target))
	case "resources/read", "resources/subscribe", "resources/unsubscribe":
		attrs = append(attrs, attribute.String("mcp.resource.uri", target))
	}
	if id := store.JSONRPCIDText(req.id); id != "" {
		attrs = append(attrs, attribute.String("jsonrpc.request.id", id))
	}
	pv := req.pv
	if pv == "" {
		pv = out.pv
	}
	if pv != "" {
		attrs = append(attrs, attribute.String("mcp.protocol.version", pv))
	}
	if req.session != "" && pv < LegacyBefore {
		attrs = append(attrs, attribute.String("mcp.session.id", req.session))
	}
	switch req.transport {
	case "stdio":
		attrs = append(attrs, attribute.String("network.transport", "pipe"))
	case "http":
		attrs = append(attrs, attribute.String("network.transport", "tcp"))
	}
	if req.agent != "" {
		attrs = append(attrs, attribute.String("mcptrail.agent", req.agent))
	}
	if req.upstream != "" {
		attrs = append(attrs, attribute.String("mcptrail.upstream", req.upstream))
	}
	if req.from != "" {
		attrs = append(attrs, attribute.String("mcptrail.from", req.from))
	}
	attrs = append(attrs, attribute.String("mcptrail.outcome", out.outcome))
	if code, ok := rpcCode(out.rpcErr); ok {
		attrs = append(attrs, attribute.String("rpc.response.status_code", code))
	}
	errType := ""
	switch out.outcome {
	case store.OutcomeOK, store.OutcomeInputRequired, "":
		// input_required is an MRTR continuation, not a failure.
	default:
		errType = out.outcome
		attrs = append(attrs, attribute.String("error.type", errType))
	}
	if t.opts.IncludeBodies {
		if req.method == "tools/call" {
			if len(p.Arguments) > 0 {
				attrs = append(attrs, attribute.String("gen_ai.tool.call.arguments", string(p.Arguments)))
			}
			if len(out.result) > 0 {
				attrs = append(attrs, attribute.String("gen_ai.tool.call.result", string(out.result)))
			}
		} else {
			if len(req.params) > 0 {
				attrs = append(attrs, attribute.String("mcptrail.params", string(req.params)))
			}
			if len(out.result) > 0 {
				attrs = append(attrs, attribute.String("mcptrail.result", string(out.result)))
			}
		}
	}

	ctx := context.Background()
	if sc, ok := remoteParent(req.traceID, req.spanID); ok {
		ctx = trace.ContextWithRemoteSpanContext(ctx, sc)
	}
	start := req.time
	end := out.time
	if out.duration > 0 {
		end = start.Add(out.duration)
	}
	if end.Before(start) {
		end = start
	}
	_, span := t.tracer.Start(ctx, name,
		trace.WithSpanKind(trace.SpanKindServer),
		trace.WithTimestamp(start),
		trace.WithAttributes(attrs...))
	if errType != "" {
		span.SetStatus(codes.Error, errType)
	}
	span.End(trace.WithTimestamp(end))
}

// rpcCode is the code of a JSON-RPC error object.
func rpcCode(raw json.RawMessage) (string, bool) {
	if len(raw) == 0 || string(raw) == "null" {
		return "", false
	}
	var e struct {
		Code *json.Number `json:"code"`
	}
	if json.Unmarshal(raw, &e) != nil || e.Code == nil {
		return "", false
	}
	return e.Code.String(), true
}

// remoteParent is the span context of a traceparent's trace and span ids.
func remoteParent(traceID, spanID string) (trace.SpanContext, bool) {
	if traceID == "" || spanID == "" {
		return trace.SpanContext{}, false
	}
	tid, err1 := trace.TraceIDFromHex(traceID)
	sid, err2 := trace.SpanIDFromHex(spanID)
	if err1 != nil || err2 != nil {
		return trace.SpanContext{}, false
	}
	// Task carries no flags: a request that bothered to send a
	// traceparent is taken as sampled.
	sc := trace.NewSpanContext(trace.SpanContextConfig{TraceID: tid, SpanID: sid, TraceFlags: trace.FlagsSampled, Remote: true})
	return sc, sc.IsValid()
}

var (
	handlerOnce sync.Once
	handlerLog  atomic.Pointer[slog.Logger]
	lastErrLog  atomic.Int64
)

// setErrorHandler sends the SDK's errors (a failing collector) to the
// daemon log, at most one line a minute.
func setErrorHandler(log *slog.Logger) {
	handlerLog.Store(log)
	handlerOnce.Do(func() {
		otel.SetErrorHandler(otel.ErrorHandlerFunc(func(err error) {
			now := time.Now().UnixNano()
			last := lastErrLog.Load()
			if now-last < int64(time.Minute) || !lastErrLog.CompareAndSwap(last, now) {
				return
			}
			if l := handlerLog.Load(); l != nil {
				l.Warn("tracing: export failed", "err", err)
			}
		}))
	})
}
