package daemon

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/mcptrail/mcptrail/config"
	"github.com/mcptrail/mcptrail/internal/testkit"
	"github.com/mcptrail/mcptrail/store"
)

var (
	echoOnce sync.Once
	echoBin  string
	echoErr  error
)

// echoServer builds ingest/testdata/echoserver once per test binary.
func echoServer(t *testing.T) string {
	t.Helper()
	echoOnce.Do(func() {
		dir, err := os.MkdirTemp("", "mcptrail-ops-test")
		if err != nil {
			echoErr = err
			return
		}
		echoBin = filepath.Join(dir, "echoserver")
		echoErr = testkit.GoBuild(".", echoBin, "../ingest/testdata/echoserver")
	})
	if echoErr != nil {
		t.Fatal(echoErr)
	}
	return echoBin
}

func startOpsDaemon(t *testing.T, cfg *config.Config) (*Daemon, *bytes.Buffer) {
	t.Helper()
	cfg.Listen, cfg.SSH = "127.0.0.1:0", "127.0.0.1:0"
	logs, mu := &bytes.Buffer{}, &sync.Mutex{}
	d, err := start(Options{Config: cfg, Home: t.TempDir(), Version: "v-test", Logger: slog.New(slog.NewTextHandler(lockedBuf{logs, mu}, nil))})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.close() })
	return d, logs
}

// scrape fetches /metrics over HTTP and parses it with the Prometheus
// text parser.
func scrape(t *testing.T, addr string) map[string]*dto.MetricFamily {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("GET /metrics: %s", resp.Status)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("parsing the exposition: %v", err)
	}
	return fams
}

// value finds the sample of family name whose labels include want; found
// is false when there is none.
func value(fams map[string]*dto.MetricFamily, name string, want map[string]string) (v float64, found bool) {
	f := fams[name]
	if f == nil {
		return 0, false
	}
next:
	for _, m := range f.GetMetric() {
		have := map[string]string{}
		for _, l := range m.GetLabel() {
			have[l.GetName()] = l.GetValue()
		}
		for k, w := range want {
			if have[k] != w {
				continue next
			}
		}
		switch {
		case m.Counter != nil:
			return m.Counter.GetValue(), true
		case m.Gauge != nil:
			return m.Gauge.GetValue(), true
		case m.Histogram != nil:
			return float64(m.Histogram.GetSampleCount()), true
		case m.Untyped != nil:
			return m.Untyped.GetValue(), true
		}
	}
	return 0, false
}

func TestMetricsCountCallsOverHTTP(t *testing.T) {
	cfg := config.Default()
	cfg.Metrics.Listen = "127.0.0.1:0"
	cfg.Upstreams = map[string]config.Upstream{"echo": {Command: []string{echoServer(t)}}}
	sinkFile := filepath.Join(t.TempDir(), "out.jsonl")
	cfg.Sinks = []string{"file://" + sinkFile + "?format=jsonl"}
	d, logs := startOpsDaemon(t, cfg)
	if d.MetricsAddr() == "" {
		t.Fatalf("metrics not listening; log:\n%s", logs)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	client := mcp.NewClient(&mcp.Implementation{Name: "ops-test-agent", Version: "1"}, nil)
	cs, err := client.Connect(ctx, &mcp.StreamableClientTransport{Endpoint: "http://" + d.listen + "/mcp/echo"}, nil)
	if err != nil {
		t.Fatalf("connect: %v; log:\n%s", err, logs)
	}
	for i := range 3 {
		if _, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "echo", Arguments: map[string]any{"text": fmt.Sprint(i)}}); err != nil {
			t.Fatal(err)
		}
	}
	res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "fail", Arguments: map[string]any{"text": "x"}})
	if err != nil || !res.IsError {
		t.Fatalf("fail: %v %+v", err, res)
	}
	if _, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "write", Arguments: map[string]any{"text": "y"}}); err != nil {
		t.Fatal(err)
	}
	fams := scrape(t, d.MetricsAddr())
	if n, _ := value(fams, "mcptrail_active_sessions", nil); n != 1 {
		t.Errorf("active sessions with one client connected = %v, want 1", n)
	}
	cs.Close()

	// A wrap session records through the socket; its calls count too.
	c, err := Dial(d.paths.Home)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	base := store.Event{Session: "wrap-1", Upstream: "fs", Transport: "stdio"}
	for _, e := range []store.Event{
		{Kind: store.KindSessionStart},
		{Kind: store.KindRequest, From: store.FromClient, Method: "tools/call", Tool: "read_file"},
		{Kind: store.KindCall, Method: "tools/call", Tool: "read_file", Outcome: store.OutcomeRPCError, DurationNS: int64(3 * time.Millisecond)},
	} {
		ev := base
		ev.Kind, ev.From, ev.Method, ev.Tool, ev.Outcome, ev.DurationNS = e.Kind, e.From, e.Method, e.Tool, e.Outcome, e.DurationNS
		if _, err := c.Record(&ev, true); err != nil {
			t.Fatal(err)
		}
	}

	// The sink catches up with the store on its own goroutine.
	deadline := time.Now().Add(30 * time.Second)
	for {
		fams = scrape(t, d.MetricsAddr())
		lag, ok := value(fams, "mcptrail_sink_lag_events", map[string]string{"kind": "file"})
		if ok && lag == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("sink lag %v (found %v) after 30s", lag, ok)
		}
		time.Sleep(50 * time.Millisecond)
	}

	calls := func(up, tool, outcome string) float64 {
		v, _ := value(fams, "mcptrail_calls_total", map[string]string{"upstream": up, "method": "tools/call", "tool": tool, "outcome": outcome})
		return v
	}
	for _, c := range []struct {
		up, tool, outcome string
		want              float64
	}{
		{"echo", "echo", "ok", 3},
		{"echo", "fail", "tool_error", 1},
		{"echo", "write", "ok", 1},
		{"echo", "echo", "tool_error", 0},
		{"fs", "read_file", "rpc_error", 1},
	} {
		if got := calls(c.up, c.tool, c.outcome); got != c.want {
			t.Errorf("mcptrail_calls_total{upstream=%q,tool=%q,outcome=%q} = %v, want %v", c.up, c.tool, c.outcome, got, c.want)
		}
	}
	if n, _ := value(fams, "mcptrail_call_duration_seconds", map[string]string{"upstream": "echo", "method": "tools/call"}); n != 5 {
		t.Errorf("echo tools/call latency observations = %v, want 5", n)
	}
	// Every echo call's duration splits into the gateway's and the upstream's.
	if n, _ := value(fams, "mcptrail_upstream_duration_seconds", map[string]string{"upstream": "echo", "method": "tools/call"}); n != 5 {
		t.Errorf("echo upstream latency observations = %v, want 5", n)
	}
	if n, _ := value(fams, "mcptrail_gateway_added_seconds", map[string]string{"upstream": "echo"}); n != 6 {
		t.Errorf("echo gateway-added observations = %v, want 6 (the handshake and 5 tool calls)", n)
	}
	if n, _ := value(fams, "mcptrail_call_duration_seconds", map[string]string{"upstream": "fs", "method": "tools/call"}); n != 1 {
		t.Errorf("fs tools/call latency observations = %v, want 1", n)
	}
	if n, _ := value(fams, "mcptrail_sessions_started_total", map[string]string{"upstream": "fs", "transport": "stdio"}); n != 1 {
		t.Errorf("fs sessions started = %v, want 1", n)
	}
	if n, _ := value(fams, "mcptrail_sessions_started_total", map[string]string{"upstream": "echo"}); n < 1 {
		t.Errorf("echo sessions started = %v, want at least 1", n)
	}
	// Every recorded event went through one append, and the store holds them.
	var recorded float64
	for _, m := range fams["mcptrail_events_recorded_total"].GetMetric() {
		recorded += m.GetCounter().GetValue()
	}
	var appends float64
	for _, m := range fams["mcptrail_store_append_duration_seconds"].GetMetric() {
		appends += float64(m.GetHistogram().GetSampleCount())
	}
	d.store.Flush()
	fams = scrape(t, d.MetricsAddr())
	events, _ := value(fams, "mcptrail_store_events", nil)
	if recorded == 0 || appends != recorded || events < recorded {
		t.Errorf("recorded %v events, %v appends timed, store holds %v", recorded, appends, events)
	}
	if v, _ := value(fams, "mcptrail_events_recorded_total", map[string]string{"kind": "call"}); v != 7 {
		t.Errorf("call events = %v, want 7 (the handshake, 5 tool calls, 1 over the socket)", v)
	}
	if b, _ := value(fams, "mcptrail_store_file_bytes", nil); b <= 0 {
		t.Errorf("store_file_bytes = %v", b)
	}
	if v, ok := value(fams, "mcptrail_sink_errors_total", map[string]string{"kind": "file"}); !ok || v != 0 {
		t.Errorf("sink errors = %v (found %v), want 0", v, ok)
	}
	if v, _ := value(fams, "mcptrail_sink_delivered_events_total", map[string]string{"kind": "file"}); v < recorded {
		t.Errorf("sink delivered %v, want at least %v", v, recorded)
	}
	if v, _ := value(fams, "mcptrail_sink_up", map[string]string{"kind": "file"}); v != 1 {
		t.Errorf("sink_up = %v", v)
	}
	if v, _ := value(fams, "mcptrail_build_info", map[string]string{"version": "v-test"}); v != 1 {
		t.Errorf("build_info{version=v-test} = %v", v)
	}
	// The default rules (first use of a tool, ...) fired on these calls.
	if v, ok := value(fams, "mcptrail_detections_fired_total", nil); d.detect != nil && (!ok || v != float64(d.detect.Alerts()) || v == 0) {
		t.Errorf("detections fired = %v (found %v), engine says %d", v, ok, d.detect.Alerts())
	}
	if _, ok := value(fams, "go_goroutines", nil); !ok {
		t.Errorf("the Go runtime collector is missing")
	}

	// /readyz on the gateway listener: the store and the one upstream are fine.
	resp, err := http.Get("http://" + d.listen + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("/readyz: %s %s", resp.Status, body)
	}
	var rd Readiness
	if err := json.Unmarshal(body, &rd); err != nil || !rd.Ready || rd.Store != "ok" || rd.Upstreams["echo"] != "ok" || !strings.HasSuffix(rd.Metrics, "/metrics") {
		t.Errorf("/readyz body %s (%v)", body, err)
	}
	// status carries the same.
	s, err := c.Status()
	if err != nil || s.Ready == nil || !s.Ready.Ready {
		t.Errorf("status readiness %+v (%v)", s.Ready, err)
	}
}

func TestReadyzReportsUnreachableUpstreamAndStore(t *testing.T) {
	cfg := config.Default()
	cfg.Upstreams = map[string]config.Upstream{
		"down":    {URL: "http://127.0.0.1:1/mcp"},
		"missing": {Command: []string{"/nonexistent/mcp-server"}},
		"echo":    {Command: []string{echoServer(t)}},
	}
	d, _ := startOpsDaemon(t, cfg)
	if d.MetricsAddr() != "" {
		t.Errorf("metrics listening at %s without being asked", d.MetricsAddr())
	}
	get := func() (int, Readiness) {
		resp, err := http.Get("http://" + d.listen + "/readyz")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var rd Readiness
		if err := json.NewDecoder(resp.Body).Decode(&rd); err != nil {
			t.Fatal(err)
		}
		return resp.StatusCode, rd
	}
	code, rd := get()
	if code != http.StatusServiceUnavailable || rd.Ready {
		t.Fatalf("/readyz = %d %+v, want 503", code, rd)
	}
	if rd.Store != "ok" || rd.Upstreams["echo"] != "ok" ||
		!strings.Contains(rd.Upstreams["down"], "unreachable") || rd.Upstreams["missing"] == "ok" {
		t.Errorf("readiness %+v", rd)
	}
	// A store file that cannot be written makes the daemon not ready.
	if runtime.GOOS != "windows" && os.Getuid() != 0 {
		os.Chmod(d.paths.DB, 0o400)
		defer os.Chmod(d.paths.DB, 0o600)
		if _, rd := get(); !strings.Contains(rd.Store, "not writable") {
			t.Errorf("store readiness with a read-only file: %q", rd.Store)
		}
	}
	// An append that failed does too, until one succeeds.
	d.recorded(&store.Event{Kind: store.KindRequest}, time.Now(), true, fmt.Errorf("disk full"))
	if _, rd := get(); !strings.Contains(rd.Store, "disk full") {
		t.Errorf("store readiness after a failed append: %q", rd.Store)
	}
	d.recorded(&store.Event{Kind: store.KindRequest}, time.Now(), true, nil)
	if _, rd := get(); strings.Contains(rd.Store, "disk full") {
		t.Errorf("store readiness after a good append: %q", rd.Store)
	}
}

func TestMetricsListenFailureStopsStart(t *testing.T) {
	cfg := config.Default()
	cfg.Metrics.Listen = "127.0.0.1:notaport"
	cfg.Listen, cfg.SSH = "127.0.0.1:0", "127.0.0.1:0"
	_, err := start(Options{Config: cfg, Home: t.TempDir(), Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err == nil || !strings.Contains(err.Error(), "metrics") {
		t.Fatalf("start with a bad metrics address: %v", err)
	}
}
