package ingest

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mcptrail/mcptrail/ingest/redact"
	"github.com/mcptrail/mcptrail/internal/callbench"
	"github.com/mcptrail/mcptrail/store"
	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// The gateway's cost per tools/call: the same echo server, called directly
// and through the stdio gateway with a real store, in the same run. Each
// benchmark reports p50 and p99 latency; compare them with benchstat or the
// table in BENCHMARKS.md.

func BenchmarkToolCallDirect(b *testing.B) {
	benchCalls(b, []*mcp.ClientSession{directSession(b)})
}

func directSession(b *testing.B) *mcp.ClientSession {
	c := mcp.NewClient(&mcp.Implementation{Name: "bench", Version: "1"}, nil)
	cs, err := c.Connect(context.Background(), &mcp.CommandTransport{Command: exec.Command(echoServer)}, &mcp.ClientSessionOptions{ProtocolVersion: "2025-11-25"})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { cs.Close() })
	return cs
}

func BenchmarkToolCallGatewayStrict(b *testing.B) { benchGateway(b, "strict", 1) }
func BenchmarkToolCallGatewayBatch(b *testing.B)  { benchGateway(b, "batch", 1) }

// 32 concurrent clients, each with its own gateway session and server.
func BenchmarkToolCallGatewayStrict32(b *testing.B) { benchGateway(b, "strict", 32) }
func BenchmarkToolCallGatewayBatch32(b *testing.B)  { benchGateway(b, "batch", 32) }

// The relay alone: the batch gateway's pumps and Session with a recorder
// that does nothing, so the relay's cost can be told apart from the store's.
func BenchmarkToolCallGatewayNoStore(b *testing.B) { benchRelay(b, &nopRecorder{}, 1) }

func benchGateway(b *testing.B, durability string, clients int) {
	rec := &timedRecorder{Recorder: benchStore(b, durability)}
	benchRelay(b, rec, clients)
	rec.report(b)
}

func benchStore(b *testing.B, durability string) *store.Store {
	st, err := store.Open(filepath.Join(b.TempDir(), "bench.db"), store.Options{Durability: durability})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { st.Close() })
	return st
}

// Paired: a direct session and one through the gateway in one process,
// their calls alternating (callbench.Paired), so that what the gateway adds
// is measured against the direct path at the same moments. The client's
// garbage and the gateway's share one heap here, as in the benchmarks
// above; in a deployment they are different processes.
func BenchmarkToolCallPairedNoStore(b *testing.B) { benchPaired(b, &nopRecorder{}) }
func BenchmarkToolCallPairedBatch(b *testing.B) {
	benchPaired(b, benchStore(b, "batch"))
}
func BenchmarkToolCallPairedStrict(b *testing.B) {
	benchPaired(b, benchStore(b, "strict"))
}

func benchPaired(b *testing.B, rec Recorder) {
	direct := directSession(b)
	callbench.Paired(b, direct, relaySessions(b, rec, 1)[0], benchParams)
}

// timedRecorder times each Record on the call's path: what the store costs
// the gateway directly, as against what its writer's work in the background
// costs the call (the rest of the difference to NoStore). It counts into a
// fixed histogram rather than keep every time: a list growing with the run
// would add to the heap the collector paces by, in the store's benchmarks
// only.
type timedRecorder struct {
	Recorder
	mu   sync.Mutex
	hist [4000]uint32 // 25 ns buckets; the last one holds everything above
}

const recordBucket = 25 * time.Nanosecond

func (t *timedRecorder) Record(ev *store.Event, durable bool) (uint64, error) {
	start := time.Now()
	seq, err := t.Recorder.Record(ev, durable)
	i := min(int(time.Since(start)/recordBucket), len(t.hist)-1)
	t.mu.Lock()
	t.hist[i]++
	t.mu.Unlock()
	return seq, err
}

func (t *timedRecorder) report(b *testing.B) {
	var n uint64
	for _, c := range t.hist {
		n += uint64(c)
	}
	if n == 0 {
		return
	}
	// quantile is the upper edge of the bucket that holds the q-th time.
	quantile := func(q float64) float64 {
		var sum uint64
		for i, c := range t.hist {
			if sum += uint64(c); float64(sum) >= q*float64(n) {
				return float64(time.Duration(i+1)*recordBucket) / 1e3
			}
		}
		return float64(time.Duration(len(t.hist))*recordBucket) / 1e3
	}
	b.ReportMetric(quantile(0.5), "record-p50-µs")
	b.ReportMetric(quantile(0.9), "record-p90-µs")
}

func benchRelay(b *testing.B, rec Recorder, clients int) {
	benchCalls(b, relaySessions(b, rec, clients))
}

// relaySessions connects clients through stdio gateways of their own, each
// with its own echo server. Cleanups run last-in first-out: each client
// hangs up before its gateway's input closes.
func relaySessions(b *testing.B, rec Recorder, clients int) []*mcp.ClientSession {
	var sessions []*mcp.ClientSession
	for i := 0; i < clients; i++ {
		inR, inW := io.Pipe()
		outR, outW := io.Pipe()
		sess := NewSession(SessionInfo{ID: "bench", Upstream: "echo", Transport: "stdio"}, rec, defaultHooks(), Limits{}, nil)
		p := &Stdio{Session: sess, Child: ChildOptions{Command: []string{echoServer}}, In: inR, Out: outW}
		done := make(chan struct{})
		go func() { p.Run(context.Background()); outW.Close(); close(done) }()
		b.Cleanup(func() { inW.Close(); <-done })
		c := mcp.NewClient(&mcp.Implementation{Name: "bench", Version: "1"}, nil)
		cs, err := c.Connect(context.Background(), &mcp.IOTransport{Reader: io.NopCloser(outR), Writer: inW}, &mcp.ClientSessionOptions{ProtocolVersion: "2025-11-25"})
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { cs.Close() })
		sessions = append(sessions, cs)
	}
	return sessions
}

// defaultHooks redacts with the built-in rules, as mcptrail does unless
// configured otherwise: the gateway benchmarks measure the default.
func defaultHooks() Hooks {
	red, _ := redact.New(redact.Rules{})
	return Hooks{Redact: func(r json.RawMessage) json.RawMessage { o, _ := red.JSON(r); return o }}
}

var benchParams = &mcp.CallToolParams{Name: "echo", Arguments: map[string]any{"text": "benchmark payload of a typical small size"}}

// benchCalls makes the calls and reports latency percentiles and throughput.
func benchCalls(b *testing.B, sessions []*mcp.ClientSession) {
	callbench.Run(b, sessions, benchParams)
}

// HTTP in: the same echo server as a stdio upstream behind the HTTP gateway
// (the deployment the bridges compete with), and a go-sdk HTTP server called
// directly and through the gateway's reverse proxy.

func BenchmarkHTTPStdioUpstreamStrict(b *testing.B) {
	benchHTTPGateway(b, "strict", Upstream{Command: []string{echoServer}}, 1)
}
func BenchmarkHTTPStdioUpstreamBatch(b *testing.B) {
	benchHTTPGateway(b, "batch", Upstream{Command: []string{echoServer}}, 1)
}
func BenchmarkHTTPStdioUpstreamBatch32(b *testing.B) {
	benchHTTPGateway(b, "batch", Upstream{Command: []string{echoServer}}, 32)
}

func BenchmarkHTTPDirect(b *testing.B) {
	up := httptest.NewServer(echoHTTPHandler())
	b.Cleanup(up.Close)
	benchCalls(b, httpClients(b, up.URL, 1))
}

func BenchmarkHTTPProxyStrict(b *testing.B) { benchHTTPProxy(b, "strict") }
func BenchmarkHTTPProxyBatch(b *testing.B)  { benchHTTPProxy(b, "batch") }

func benchHTTPProxy(b *testing.B, durability string) {
	up := httptest.NewServer(echoHTTPHandler())
	b.Cleanup(up.Close)
	benchHTTPGateway(b, durability, Upstream{URL: up.URL}, 1)
}

func echoHTTPHandler() http.Handler {
	srv := mcp.NewServer(&mcp.Implementation{Name: "echo-http", Version: "1"}, nil)
	mcp.AddTool(srv, &mcp.Tool{Name: "echo"}, func(_ context.Context, _ *mcp.CallToolRequest, in struct {
		Text string `json:"text"`
	}) (*mcp.CallToolResult, any, error) {
		return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: in.Text}}}, nil, nil
	})
	return mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return srv }, nil)
}

func benchHTTPGateway(b *testing.B, durability string, up Upstream, clients int) {
	gw := NewHTTPGateway(HTTPOptions{Upstreams: map[string]Upstream{"echo": up}, Recorder: benchStore(b, durability), Hooks: defaultHooks()})
	srv := httptest.NewServer(gw)
	// Cleanups run last-in first-out: the clients (registered next) hang up
	// before the gateway and its server close.
	b.Cleanup(func() { gw.Close(); srv.Close() })
	benchCalls(b, httpClients(b, srv.URL+"/mcp/echo", clients))
}

func httpClients(b *testing.B, url string, n int) []*mcp.ClientSession {
	var out []*mcp.ClientSession
	for i := 0; i < n; i++ {
		c := mcp.NewClient(&mcp.Implementation{Name: fmt.Sprintf("bench-%d", i), Version: "1"}, nil)
		cs, err := c.Connect(context.Background(), &mcp.StreamableClientTransport{Endpoint: url}, &mcp.ClientSessionOptions{ProtocolVersion: "2025-11-25"})
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { cs.Close() })
		out = append(out, cs)
	}
	return out
}

// The gateway's own work per call, without pumps or store: a tools/call with
// _meta and its response through a Session with the default redaction.
func BenchmarkSessionRoundTrip(b *testing.B) {
	s := NewSession(SessionInfo{ID: "s"}, &nopRecorder{}, defaultHooks(), Limits{}, nil)
	req := []byte(`{"jsonrpc":"2.0","id":9,"method":"tools/call","params":{"_meta":{"traceparent":"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01","io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientInfo":{"name":"c","version":"1"}},"name":"echo","arguments":{"text":"benchmark payload of a typical small size"}}}`)
	resp := []byte(`{"jsonrpc":"2.0","id":9,"result":{"content":[{"type":"text","text":"benchmark payload of a typical small size"}]}}`)
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		s.FromClient(req, nil)
		s.FromServer(resp)
	}
}

type nopRecorder struct{ n uint64 }

func (r *nopRecorder) Record(ev *store.Event, _ bool) (uint64, error) { r.n++; return r.n, nil }

// The Session's own work for a call whose response is large (a 112 KB
// file a tool read), with the default redaction: every byte is checked,
// walked and scanned for secrets before the response is relayed.
func BenchmarkSessionLargeResponse(b *testing.B) {
	s := NewSession(SessionInfo{ID: "s"}, &nopRecorder{}, defaultHooks(), Limits{}, nil)
	req := []byte(`{"jsonrpc":"2.0","id":9,"method":"tools/call","params":{"name":"read_file","arguments":{"path":"/tmp/x"}}}`)
	resp := []byte(`{"jsonrpc":"2.0","id":9,"result":{"content":[{"type":"text","text":"` + strings.Repeat(`lorem ipsum dolor sit amet, consectetur adipiscing elit `, 2000) + `"}]}}`)
	b.SetBytes(int64(len(resp)))
	for b.Loop() {
		s.FromClient(req, nil)
		s.FromServer(resp)
	}
}
