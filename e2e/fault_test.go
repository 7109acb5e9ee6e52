package e2e

// Fault injection (issue #8): an upstream killed from outside mid-call, a
// client that walks away from its SSE stream, a client that stops reading,
// a SIEM collector that flaps, and kill -9 of the daemon under load from
// wrap clients. Each fault is injected into real processes; what the tests
// check is what the fault must not cost: an answer for every pending call,
// an outcome for every recorded request, bounded memory, no leaked
// goroutines, no event lost on the way to the SIEM, and nothing forwarded
// that the record does not hold.
//
// The short form runs in CI; MCPTRAIL_LONG=1 runs more clients, more
// rounds and longer floods.

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/mcptrail/mcptrail/siem/siemtest"
	"github.com/mcptrail/mcptrail/store"
	"github.com/modelcontextprotocol/go-sdk/jsonrpc"
	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// longForm reports whether MCPTRAIL_LONG=1 asks for the long form.
func longForm() bool { return os.Getenv("MCPTRAIL_LONG") == "1" }

// pick returns short, or long in the long form.
func pick(short, long int) int {
	if longForm() {
		return long
	}
	return short
}

// ---------------------------------------------------------------------------
// The faulty server's log (testdata/faulty).

// faultyLog is the file testdata/faulty appends what it receives to.
type faultyLog string

// (Not a .log file in the data directory: a failing test shows those.)
func newFaultyLog(in *Instance) faultyLog {
	return faultyLog(filepath.Join(filepath.Dir(in.Home), "faulty-received.txt"))
}

// lines returns the log's lines that start with prefix+" ", split in fields.
func (l faultyLog) lines(prefix string) [][]string {
	data, _ := os.ReadFile(string(l))
	var out [][]string
	for _, line := range strings.Split(string(data), "\n") {
		f := strings.Fields(line)
		if len(f) > 0 && f[0] == prefix {
			out = append(out, f)
		}
	}
	return out
}

// waitPID waits for `block MARKER PID` or `wait MARKER PID` and returns the
// pid, after checking that it is a faulty process this test started (so a
// test never signals somebody else's process).
func (l faultyLog) waitPID(t testing.TB, verb, marker string) int {
	t.Helper()
	pid := 0
	if !pollUntil(30*time.Second, func() bool {
		for _, f := range l.lines(verb) {
			if len(f) == 3 && f[1] == marker {
				pid, _ = strconv.Atoi(f[2])
				return true
			}
		}
		return false
	}) {
		t.Fatalf("the upstream never received %s %s", verb, marker)
	}
	if exe, err := os.Readlink(fmt.Sprintf("/proc/%d/exe", pid)); err != nil || exe != filepath.Join(binDir, "faulty") {
		t.Fatalf("pid %d from the log is not our faulty server (%q, %v)", pid, exe, err)
	}
	return pid
}

// killUpstream kills a faulty process with SIGKILL, from outside, and waits
// until it is gone.
func killUpstream(t testing.TB, pid int) {
	t.Helper()
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatalf("kill -9 %d: %v", pid, err)
	}
	if !pollUntil(stopTimeout, func() bool { return processGone(pid) }) {
		t.Fatalf("upstream pid %d survived SIGKILL", pid)
	}
}

// ---------------------------------------------------------------------------
// Process memory and daemon metrics.

// rssAnonKB is a process's resident anonymous memory (/proc/PID/status
// RssAnon): its heap and stacks, without the store file bbolt maps.
func rssAnonKB(t testing.TB, pid int) int {
	t.Helper()
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatalf("reading the memory of pid %d: %v", pid, err)
	}
	for _, line := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, "RssAnon:"); ok {
			n, err := strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(v), " kB"))
			if err == nil {
				return n
			}
		}
	}
	t.Fatalf("no RssAnon in /proc/%d/status", pid)
	return 0
}

// memWatch samples a process's RssAnon in the background and keeps the peak.
type memWatch struct {
	stop chan struct{}
	done chan struct{}
	mu   sync.Mutex
	peak int
}

func watchMemory(t testing.TB, pid int) *memWatch {
	m := &memWatch{stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(m.done)
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for {
			data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
			if err == nil {
				for _, line := range strings.Split(string(data), "\n") {
					if v, ok := strings.CutPrefix(line, "RssAnon:"); ok {
						n, _ := strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(v), " kB"))
						m.mu.Lock()
						m.peak = max(m.peak, n)
						m.mu.Unlock()
					}
				}
			}
			select {
			case <-m.stop:
				return
			case <-tick.C:
			}
		}
	}()
	t.Cleanup(func() { m.Stop() })
	return m
}

// Stop ends the sampling and returns the peak in kB.
func (m *memWatch) Stop() int {
	select {
	case <-m.stop:
	default:
		close(m.stop)
	}
	<-m.done
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.peak
}

// metricsURL is the daemon's metrics endpoint (serve --metrics).
func metricsURL(t testing.TB, in *Instance) string {
	t.Helper()
	st := in.Status(t)
	r, _ := st["readiness"].(map[string]any)
	u, _ := r["metrics"].(string)
	if u == "" {
		t.Fatalf("mcptrail status --json shows no metrics URL: %v", st)
	}
	return u
}

// scrape reads an unlabelled gauge or counter from the metrics endpoint.
func scrape(t testing.TB, url, name string) float64 {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	for _, line := range strings.Split(string(body), "\n") {
		if v, ok := strings.CutPrefix(line, name+" "); ok {
			f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
			if err == nil {
				return f
			}
		}
	}
	t.Fatalf("no %s in %s:\n%s", name, url, body)
	return 0
}

// ---------------------------------------------------------------------------
// A raw Streamable HTTP client, for what the SDK client will not do: walk
// away from a stream, or stop reading one.

type rawHTTP struct {
	endpoint string
	sid      string
	client   *http.Client
}

func newRawHTTP(endpoint string) *rawHTTP {
	return &rawHTTP{endpoint: endpoint, client: &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}}
}

func (h *rawHTTP) request(ctx context.Context, method, body, accept string) *http.Request {
	req, err := http.NewRequestWithContext(ctx, method, h.endpoint, strings.NewReader(body))
	if err != nil {
		panic(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Accept", accept)
	if h.sid != "" {
		req.Header.Set("Mcp-Session-Id", h.sid)
		req.Header.Set("Mcp-Protocol-Version", "2025-11-25")
	}
	return req
}

// post sends one JSON-RPC message and returns the response (its body unread).
func (h *rawHTTP) post(t testing.TB, ctx context.Context, body string) *http.Response {
	t.Helper()
	resp, err := h.client.Do(h.request(ctx, http.MethodPost, body, "application/json, text/event-stream"))
	if err != nil {
		t.Fatalf("POST %s: %v", h.endpoint, err)
	}
	return resp
}

// initialize opens a session.
func (h *rawHTTP) initialize(t testing.TB, ctx context.Context) {
	t.Helper()
	resp := h.post(t, ctx, `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"fault-client","version":"1.0"}}}`)
	msgs := readAllMessages(t, resp)
	if len(msgs) != 1 || msgs[0].Result == nil || resp.Header.Get("Mcp-Session-Id") == "" {
		t.Fatalf("initialize: %s %v (session %q)", resp.Status, msgs, resp.Header.Get("Mcp-Session-Id"))
	}
	h.sid = resp.Header.Get("Mcp-Session-Id")
	resp = h.post(t, ctx, `{"jsonrpc":"2.0","method":"notifications/initialized"}`)
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("notifications/initialized: %s", resp.Status)
	}
}

// call makes a tools/call and returns its response, wherever it comes on
// the stream.
func (h *rawHTTP) call(t testing.TB, ctx context.Context, id int, tool string, args any) RawMessage {
	t.Helper()
	resp := h.post(t, ctx, fmt.Sprintf(`{"jsonrpc":"2.0","id":%d,"method":"tools/call","params":{"name":%q,"arguments":%s}}`, id, tool, mustJSON(args)))
	for _, m := range readAllMessages(t, resp) {
		if m.Method == "" && string(m.ID) == strconv.Itoa(id) {
			return m
		}
	}
	t.Fatalf("tools/call %s (id %d): no response on its stream", tool, id)
	return RawMessage{}
}

// readAllMessages reads a POST's answer to its end: one JSON body or an
// SSE stream.
func readAllMessages(t testing.TB, resp *http.Response) []RawMessage {
	t.Helper()
	defer resp.Body.Close()
	if !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
		var m RawMessage
		body, _ := io.ReadAll(resp.Body)
		if err := json.Unmarshal(body, &m); err != nil {
			t.Fatalf("%s: body %q: %v", resp.Status, body, err)
		}
		return []RawMessage{m}
	}
	var out []RawMessage
	r := newSSEReader(resp.Body)
	for {
		ev, err := r.next()
		if err != nil {
			return out
		}
		out = append(out, ev.msg(t))
	}
}

// sseReader reads the events of a text/event-stream (the gateway writes
// "id:", "event:" and "data:" lines and a blank line after each event).
type sseReader struct{ br *bufio.Reader }

type sseEv struct {
	id   string
	data []byte
}

func newSSEReader(r io.Reader) *sseReader { return &sseReader{br: bufio.NewReaderSize(r, 64<<10)} }

func (r *sseReader) next() (sseEv, error) {
	var ev sseEv
	for {
		line, err := r.br.ReadBytes('\n')
		if err != nil {
			return ev, err
		}
		line = bytes.TrimRight(line, "\r\n")
		switch {
		case len(line) == 0:
			if ev.data != nil {
				return ev, nil
			}
		case bytes.HasPrefix(line, []byte("id:")):
			ev.id = string(bytes.TrimSpace(line[3:]))
		case bytes.HasPrefix(line, []byte("data:")):
			ev.data = append(ev.data, bytes.TrimPrefix(line[5:], []byte(" "))...)
		}
	}
}

func (ev sseEv) msg(t testing.TB) RawMessage {
	t.Helper()
	var m RawMessage
	if err := json.Unmarshal(ev.data, &m); err != nil {
		t.Fatalf("SSE event %s: %v: %.200s", ev.id, err, ev.data)
	}
	return m
}

// floodN is the number in a flood notification (testdata/faulty), 0 when
// the message is not one.
func floodN(m RawMessage) int {
	var p struct {
		N    int `json:"n"`
		Data struct {
			N int `json:"n"`
		} `json:"data"`
	}
	json.Unmarshal(m.Params, &p)
	return p.N + p.Data.N
}

// ---------------------------------------------------------------------------
// 1. The upstream is killed (SIGKILL, from outside) while calls are in flight.
//
// crash_test.go covers a server that exits by itself mid-call; here the
// kill comes from outside, with two calls in flight at once, one of them
// streaming progress: each gets a JSON-RPC error, each is recorded as a
// transport_error, the exit status says SIGKILL, and in serve the other
// sessions (of the same upstream and of another) live on.

// killedOutcomes waits for the outcomes of the tools/call requests whose
// tools are in tools, and requires transport_error for each.
func killedOutcomes(t *testing.T, in *Instance, want int, tools ...string) {
	t.Helper()
	isKilled := func(ev *store.Event) bool {
		for _, tool := range tools {
			if ev.Tool == tool {
				return true
			}
		}
		return false
	}
	events := in.WaitEvents(t, func(events []store.Event) error {
		ci := indexCalls(events)
		n := 0
		for _, req := range ci.requests(store.FromClient, "tools/call", "") {
			if !isKilled(req) {
				continue
			}
			n++
			if ci.outcome[req.Seq] == nil {
				return fmt.Errorf("the %s call (seq %d) has no outcome", req.Tool, req.Seq)
			}
		}
		if n != want {
			return fmt.Errorf("%d killed calls recorded, want %d", n, want)
		}
		return nil
	})
	ci := indexCalls(events)
	for _, req := range ci.requests(store.FromClient, "tools/call", "") {
		if !isKilled(req) {
			continue
		}
		out := ci.outcome[req.Seq]
		checkOutcome(t, req, out)
		if out.Outcome != store.OutcomeTransportError || !strings.Contains(out.Detail, "137") {
			t.Errorf("the %s call in flight when its upstream was killed: outcome %q (%s), want %q naming status 137 (SIGKILL)",
				req.Tool, out.Outcome, out.Detail, store.OutcomeTransportError)
		}
	}
}

func TestFaultUpstreamKilledWrap(t *testing.T) {
	t.Parallel()
	in := newInstance(t)
	in.Serve(t)
	log := newFaultyLog(in)
	cmd, _ := in.WrapCommand(t, WrapOptions{Name: "faulty"}, binary(t, "faulty"), "-log", string(log))
	r := startRaw(t, "mcptrail wrap", cmd)
	rawInitialize(t, r, "raw-client")
	if m := r.Call(t, 2, "tools/call", map[string]any{"name": "echo", "arguments": map[string]any{"text": "before"}}); m.Error != nil {
		t.Fatalf("echo: %+v", m)
	}
	release := filepath.Join(in.Home, "never")
	r.Send(t, `{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"block","arguments":{"marker":"b3"}}}`)
	r.Send(t, fmt.Sprintf(`{"jsonrpc":"2.0","id":4,"method":"tools/call","params":{"name":"wait","arguments":{"marker":"w4","file":%q},"_meta":{"progressToken":"p4"}}}`, release))
	pid := log.waitPID(t, "block", "b3")
	if log.waitPID(t, "wait", "w4") != pid {
		t.Fatal("the two calls reached different server processes")
	}
	// The wait call is streaming progress when the kill comes.
	if m := r.Recv(t, 30*time.Second); m.Method != "notifications/progress" {
		t.Fatalf("before the kill: got %+v, want a progress notification", m)
	}
	killUpstream(t, pid)

	// Each pending call gets its error response before wrap exits.
	answered := map[string]bool{}
	for len(answered) < 2 {
		m := r.Recv(t, 30*time.Second)
		if m.Method != "" {
			continue // progress sent before the kill
		}
		if m.Error == nil || (string(m.ID) != "3" && string(m.ID) != "4") {
			t.Fatalf("after the kill: got %+v, want error responses to 3 and 4", m)
		}
		answered[string(m.ID)] = true
	}
	select {
	case <-r.Exited():
		if code := commandExitCode(r.WaitErr()); code != 137 {
			t.Errorf("mcptrail wrap exited with %v, want 137 (its server's SIGKILL)", r.WaitErr())
		}
	case <-time.After(stopTimeout):
		t.Fatalf("mcptrail wrap still running %v after its server was killed", stopTimeout)
	}
	killedOutcomes(t, in, 2, "block", "wait")
	in.WaitEvents(t, func(events []store.Event) error {
		for _, ev := range events {
			if ev.Kind == store.KindSessionEnd && strings.Contains(ev.Detail, "137") {
				return nil
			}
		}
		return errors.New("no session_end naming the server's exit status")
	})
}

func TestFaultUpstreamKilledServe(t *testing.T) {
	t.Parallel()
	ctx := scenarioContext(t)
	in := newInstance(t)
	log := newFaultyLog(in)
	d := in.Serve(t, "--upstream", "faulty=stdio:"+binary(t, "faulty")+" -log "+string(log),
		"--upstream", "conf=stdio:"+binary(t, "everything-server"))
	progress := make(chan struct{}, 100)
	client := mcp.NewClient(&mcp.Implementation{Name: "fault-client", Version: "1.0.0"}, &mcp.ClientOptions{
		ProgressNotificationHandler: func(context.Context, *mcp.ProgressNotificationClientRequest) {
			select {
			case progress <- struct{}{}:
			default:
			}
		},
	})
	other := connect(t, ctx, client, &mcp.StreamableClientTransport{Endpoint: d.Endpoint("conf")}, nil)
	bystander := connect(t, ctx, client, &mcp.StreamableClientTransport{Endpoint: d.Endpoint("faulty")}, nil)
	victim := connect(t, ctx, client, &mcp.StreamableClientTransport{Endpoint: d.Endpoint("faulty")}, nil)
	for _, cs := range []*mcp.ClientSession{bystander, victim} {
		if err := echoCall(ctx, cs, "before"); err != nil {
			t.Fatal(err)
		}
	}

	errs := make(chan error, 2)
	go func() {
		_, err := victim.CallTool(ctx, &mcp.CallToolParams{Name: "block", Arguments: map[string]any{"marker": "b1"}})
		errs <- err
	}()
	go func() {
		_, err := victim.CallTool(ctx, &mcp.CallToolParams{Name: "wait", Meta: mcp.Meta{"progressToken": "p2"},
			Arguments: map[string]any{"marker": "w2", "file": filepath.Join(in.Home, "never")}})
		errs <- err
	}()
	pid := log.waitPID(t, "block", "b1")
	if log.waitPID(t, "wait", "w2") != pid {
		t.Fatal("the victim's two calls reached different server processes")
	}
	select {
	case <-progress: // the wait call's stream is carrying progress
	case <-ctx.Done():
		t.Fatal("no progress notification reached the client")
	}
	killUpstream(t, pid)
	for range 2 {
		err := <-errs
		var rpcErr *jsonrpc.Error
		if !errors.As(err, &rpcErr) {
			t.Fatalf("a call in flight when its upstream was killed: got %v, want a JSON-RPC error response", err)
		}
	}

	// The other sessions, of the same upstream and of another, live on.
	if err := echoCall(ctx, bystander, "after"); err != nil {
		t.Fatalf("another session of the killed upstream: %v", err)
	}
	serveSurvived(t, ctx, d, client, other, "faulty")
	killedOutcomes(t, in, 2, "block", "wait")
}

// ---------------------------------------------------------------------------
// 2. The client walks away from its SSE stream mid-call (serve).
//
// A call streams progress; the client reads some of it and closes the
// connection. The call is still the upstream's: when it answers, the
// record gets the outcome (ok), the answer waits for a client that resumes
// with Last-Event-ID, and nothing the abandoned stream held stays behind:
// after many such calls the daemon runs no more goroutines than before and
// still has one session. A 2026-07-28 client (no session) that closes its
// stream cancels the call instead: outcome cancelled.

// walkAway starts the wait call id on h's session, reads three progress
// events from its stream, and closes the connection. It returns the id of
// the last event read.
func walkAway(t *testing.T, ctx context.Context, h *rawHTTP, id int, release string) string {
	t.Helper()
	resp := h.post(t, ctx, fmt.Sprintf(`{"jsonrpc":"2.0","id":%d,"method":"tools/call","params":{"name":"wait","arguments":{"marker":"w%d","file":%q},"_meta":{"progressToken":"t%d"}}}`, id, id, release, id))
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/event-stream") {
		t.Fatalf("wait call %d: %s %s, want an event stream", id, resp.Status, ct)
	}
	r := newSSEReader(resp.Body)
	last := ""
	for n := 0; n < 3; {
		ev, err := r.next()
		if err != nil {
			t.Fatalf("wait call %d: the stream ended after %d events: %v", id, n, err)
		}
		if m := ev.msg(t); m.Method != "notifications/progress" {
			t.Fatalf("wait call %d: got %+v before the answer was released", id, m)
		}
		last = ev.id
		n++
	}
	return last // the deferred Close drops the connection mid-stream
}

// waitOutcome waits for the outcome of the tools/call whose marker argument is
// marker, and returns it.
func waitOutcome(t *testing.T, in *Instance, marker string) *store.Event {
	t.Helper()
	var out *store.Event
	in.WaitEvents(t, func(events []store.Event) error {
		ci := indexCalls(events)
		for _, req := range ci.requests(store.FromClient, "tools/call", "") {
			if strings.Contains(string(req.Params), `"`+marker+`"`) {
				if out = ci.outcome[req.Seq]; out == nil {
					return fmt.Errorf("the call %s (seq %d) has no outcome", marker, req.Seq)
				}
				return nil
			}
		}
		return fmt.Errorf("no request for %s", marker)
	}, "--tool", "wait")
	return out
}

func TestFaultClientDisconnectSSE(t *testing.T) {
	t.Parallel()
	ctx := scenarioContext(t)
	in := newInstance(t)
	d := in.Serve(t, "--metrics", "127.0.0.1:0", "--upstream", "faulty=stdio:"+binary(t, "faulty"))
	metrics := metricsURL(t, in)
	h := newRawHTTP(d.Endpoint("faulty"))
	h.initialize(t, ctx)
	release := func(id int) string { return filepath.Join(in.Home, fmt.Sprintf("release-%d", id)) }
	open := func(id int) {
		if err := os.WriteFile(release(id), nil, 0o600); err != nil {
			t.Fatal(err)
		}
	}

	// The first call: walk away, let the upstream answer, resume.
	last := walkAway(t, ctx, h, 10, release(10))
	open(10)
	if out := waitOutcome(t, in, "w10"); out.Outcome != store.OutcomeOK {
		t.Fatalf("the abandoned call answered later: outcome %q (%s), want ok", out.Outcome, out.Detail)
	}
	req := h.request(ctx, http.MethodGet, "", "text/event-stream")
	req.Header.Set("Last-Event-ID", last)
	resp, err := h.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	msgs := readAllMessages(t, resp)
	if n := len(msgs); resp.StatusCode != http.StatusOK || n == 0 || string(msgs[n-1].ID) != "10" || !strings.Contains(string(msgs[n-1].Result), "released w10") {
		t.Fatalf("resuming the abandoned stream after event %s: %s, %d messages, last %+v; want the call's answer", last, resp.Status, len(msgs), msgs[len(msgs)-1])
	}

	// Baseline, then many abandoned streams.
	h.client.CloseIdleConnections()
	settled := func() float64 {
		var g, prev float64 = -1, -2
		pollUntil(10*time.Second, func() bool {
			prev, g = g, scrape(t, metrics, "go_goroutines")
			return g == prev
		})
		return g
	}
	base := settled()
	rounds := pick(8, 40)
	for i := range rounds {
		id := 100 + i
		walkAway(t, ctx, h, id, release(id))
		open(id)
	}
	events := in.WaitEvents(t, allAnswered, "--tool", "wait")
	ci := indexCalls(events)
	for _, req := range ci.requests(store.FromClient, "tools/call", "wait") {
		if out := ci.outcome[req.Seq]; out.Outcome != store.OutcomeOK {
			t.Errorf("abandoned call %s: outcome %q (%s), want ok", req.JSONRPCID, out.Outcome, out.Detail)
		}
	}
	if n := len(ci.requests(store.FromClient, "tools/call", "wait")); n != rounds+1 {
		t.Errorf("%d wait calls recorded, want %d", n, rounds+1)
	}
	// The session still works, and nothing is pending in it.
	if m := h.call(t, ctx, 2, "echo", map[string]any{"text": "still here"}); m.Error != nil || !strings.Contains(string(m.Result), "still here") {
		t.Fatalf("the session after %d abandoned streams: %+v", rounds, m)
	}
	in.WaitEvents(t, allAnswered)
	const slack = 4 // the runtime's and net/http's own comings and goings
	var now float64
	if !pollUntil(20*time.Second, func() bool { now = scrape(t, metrics, "go_goroutines"); return now <= base+slack }) {
		t.Errorf("the daemon ran %v goroutines before %d abandoned streams and %v after: a leak", base, rounds, now)
	}
	t.Logf("daemon goroutines: %v before %d abandoned streams, %v after", base, rounds, now)
	if n := scrape(t, metrics, "mcptrail_active_sessions"); n != 1 {
		t.Errorf("mcptrail_active_sessions = %v after the abandoned streams, want 1", n)
	}

	// A 2026-07-28 client has no session: closing its stream cancels the call.
	modern := newRawHTTP(d.Endpoint("faulty"))
	body := fmt.Sprintf(`{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"wait","arguments":{"marker":"w7m","file":%q},"_meta":{"progressToken":"m7","io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientInfo":{"name":"modern-client","version":"1.0"}}}}`, release(7))
	req = modern.request(ctx, http.MethodPost, body, "application/json, text/event-stream")
	req.Header.Set("Mcp-Protocol-Version", "2026-07-28")
	resp, err = modern.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	r := newSSEReader(resp.Body)
	for range 2 {
		if ev, err := r.next(); err != nil || ev.msg(t).Method != "notifications/progress" {
			t.Fatalf("2026-07-28 wait call: %v %s", err, ev.data)
		}
	}
	resp.Body.Close()
	if out := waitOutcome(t, in, "w7m"); out.Outcome != store.OutcomeCancelled {
		t.Errorf("a 2026-07-28 call whose stream the client closed: outcome %q (%s), want cancelled", out.Outcome, out.Detail)
	}
	open(7) // the upstream answers now; nobody waits for it

	// A new session works.
	fresh := newRawHTTP(d.Endpoint("faulty"))
	fresh.initialize(t, ctx)
	if m := fresh.call(t, ctx, 2, "echo", map[string]any{"text": "fresh"}); m.Error != nil || !strings.Contains(string(m.Result), "fresh") {
		t.Fatalf("a new session after the abandoned streams: %+v", m)
	}
	in.WaitEvents(t, allAnswered)
}

// ---------------------------------------------------------------------------
// 3. A client that stops reading: backpressure, not memory.

// floodSize is the size of each flood notification's padding.
const floodSize = 32 << 10

// stalled waits until the flooding upstream has stopped making progress
// (its count of notifications written, less from, stays put for a second) short of
// count, and returns where it stopped. full says the upstream got to the
// end instead: somebody buffered the whole flood.
func stalled(t *testing.T, log faultyLog, from, count int, what string) (at int, full bool) {
	t.Helper()
	last, same := -1, 0
	ok := pollUntil(3*time.Minute, func() bool {
		n := len(log.lines("flood")) - from // the lines of earlier floods do not count
		if n >= count {
			full = true
			return true
		}
		if n > 0 && n == last {
			same++
		} else {
			last, same = n, 0
		}
		return same >= 20 // 20 polls of 50ms: a second without progress
	})
	if !ok {
		t.Fatalf("%s: the flood never stalled (last count %d of %d)", what, last, count)
	}
	return last, full
}

// TestFaultSlowClientWrap floods wrap's stdout while the client reads
// nothing: the pipes fill, wrap stops reading its server, and its memory
// stays put; then the client reads, and gets every notification in order
// and the answer.
func TestFaultSlowClientWrap(t *testing.T) {
	t.Parallel()
	in := newInstance(t)
	in.Serve(t)
	log := newFaultyLog(in)
	count := pick(400, 4000) // 32 KiB each: 12.5 MiB, or 125 MiB
	cmd, _ := in.WrapCommand(t, WrapOptions{Name: "faulty"}, binary(t, "faulty"), "-log", string(log))
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	p := startProc(t, "mcptrail wrap", cmd)
	t.Cleanup(func() { stdin.Close() })
	send := func(line string) {
		t.Helper()
		if _, err := io.WriteString(stdin, line+"\n"); err != nil {
			t.Fatal(err)
		}
	}
	out := bufio.NewReaderSize(stdout, 1<<20)
	recv := func() RawMessage {
		t.Helper()
		line, err := out.ReadBytes('\n')
		if err != nil {
			t.Fatalf("reading wrap's stdout: %v (exited: %v)", err, p.WaitErr())
		}
		var m RawMessage
		if err := json.Unmarshal(line, &m); err != nil {
			t.Fatalf("wrap wrote %.200q: %v", line, err)
		}
		return m
	}
	send(`{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"slow-client","version":"1.0"}}}`)
	if m := recv(); string(m.ID) != "1" || m.Result == nil {
		t.Fatalf("initialize: %+v", m)
	}
	send(`{"jsonrpc":"2.0","method":"notifications/initialized"}`)
	pid := p.Cmd.Process.Pid
	base := rssAnonKB(t, pid)
	mem := watchMemory(t, pid)

	send(fmt.Sprintf(`{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"flood","arguments":{"count":%d,"size":%d}}}`, count, floodSize))
	at, full := stalled(t, log, 0, count, "wrap")
	// The client is stalled too, but its requests still go through: the
	// client→server direction does not wait for the other.
	send(`{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"echo","arguments":{"text":"while stalled"}}}`)
	if !pollUntil(30*time.Second, func() bool { return len(log.lines("call")) == 1 }) {
		t.Error("a request sent while wrap's stdout was full did not reach the server")
	}
	peak := mem.Stop()
	t.Logf("wrap RssAnon: %d KiB before the flood, peak %d KiB with the flood stalled at %d of %d notifications", base, peak, at, count)
	const bound = 32 << 10 // KiB. Buffering the short flood (12.5 MiB) costs over 100 MiB under -race.
	if peak-base > bound {
		t.Errorf("wrap's memory grew by %d KiB while its client read nothing, want at most %d KiB", peak-base, bound)
	}
	if full {
		t.Fatalf("the upstream wrote all %d notifications (%d MiB) while the client read none: wrap buffered them instead of holding its server back", count, count*floodSize>>20)
	}

	// The client reads: everything, in order, then the answers. Wrap's
	// memory stays bounded meanwhile too (it relays at the pace of the
	// slower of its client and its daemon).
	mem = watchMemory(t, pid)
	next := 1
	answered := map[string]bool{}
	for len(answered) < 2 {
		m := recv()
		switch {
		case m.Method == "notifications/message":
			if n := floodN(m); n != next {
				t.Fatalf("flood notification %d arrived when %d was next", n, next)
			}
			next++
		case string(m.ID) == "2":
			if next != count+1 || !strings.Contains(string(m.Result), fmt.Sprintf("flooded %d", count)) {
				t.Fatalf("the flood's answer after %d of %d notifications: %+v", next-1, count, m)
			}
			answered["2"] = true
		case string(m.ID) == "3":
			if m.Error != nil {
				t.Fatalf("echo sent while stalled: %+v", m)
			}
			answered["3"] = true
		default:
			t.Fatalf("unexpected message: %+v", m)
		}
	}
	peak = mem.Stop()
	t.Logf("wrap RssAnon: peak %d KiB while it relayed the flood", peak)
	if peak-base > bound {
		t.Errorf("wrap's memory grew by %d KiB while it relayed the flood to its client, want at most %d KiB", peak-base, bound)
	}
	stdin.Close()
	select {
	case <-p.Exited():
		if p.WaitErr() != nil {
			t.Errorf("mcptrail wrap exited with %v, want status 0", p.WaitErr())
		}
	case <-time.After(stopTimeout):
		t.Fatalf("mcptrail wrap still running %v after its stdin closed", stopTimeout)
	}
	// Every notification is in the record: status counts what is committed
	// into the file, which follows the log within 100 ms.
	var events uint64
	if !pollUntil(10*time.Second, func() bool { events, _ = sinkStatus(t, in); return events >= uint64(count) }) {
		t.Errorf("the store holds %d events after a flood of %d notifications", events, count)
	}
}

// stuckConn is an HTTP/1.1 request sent on a connection nobody reads yet.
type stuckConn struct {
	conn net.Conn
	req  *http.Request
}

// sendUnread writes req on a new connection and reads nothing back.
func sendUnread(t *testing.T, req *http.Request) *stuckConn {
	t.Helper()
	conn, err := net.Dial("tcp", req.URL.Host)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	if err := req.Write(conn); err != nil {
		t.Fatal(err)
	}
	return &stuckConn{conn: conn, req: req}
}

// events starts reading the response at last and returns its SSE events.
func (c *stuckConn) events(t *testing.T) *sseReader {
	t.Helper()
	c.conn.SetReadDeadline(time.Now().Add(2 * time.Minute))
	resp, err := http.ReadResponse(bufio.NewReader(c.conn), c.req)
	if err != nil {
		t.Fatalf("reading the held-back response: %v", err)
	}
	if !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
		t.Fatalf("%s %s, want an event stream", resp.Status, resp.Header.Get("Content-Type"))
	}
	return newSSEReader(resp.Body)
}

// TestFaultSlowClientServe floods a client that reads nothing, on a POST's
// event stream and on the session's GET stream. Whatever the gateway does
// about it — hold the upstream back, or give up on the stream past its
// bound — it must not hold the whole flood: the daemon's memory stays
// bounded, and what the client reads later is in order. Later calls work.
func TestFaultSlowClientServe(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Minute)
	defer cancel()
	in := newInstance(t)
	log := newFaultyLog(in)
	d := in.Serve(t, "--upstream", "faulty=stdio:"+binary(t, "faulty")+" -log "+string(log))
	count := pick(800, 4000) // 32 KiB each: 25 MiB, or 125 MiB; a stream holds 16 MiB for a slow reader
	h := newRawHTTP(d.Endpoint("faulty"))
	h.initialize(t, ctx)

	pid := d.Cmd.Process.Pid
	base := rssAnonKB(t, pid)
	mem := watchMemory(t, pid)
	// bound is what the daemon's memory may grow by: a slow stream's 16 MiB
	// and the chunk its writer is stuck on, several times over under -race.
	// The short flood is too small for memory alone to tell a bounded
	// stream from an unbounded one (the checks on what the client reads do
	// that); the long form's 125 MiB flood tells by memory too: it caught
	// the standalone stream keeping every message it had dropped.
	const bound = 320 << 10 // KiB

	// (a) The POST's own event stream: progress notifications.
	req := h.request(ctx, http.MethodPost, fmt.Sprintf(`{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"flood","arguments":{"count":%d,"size":%d},"_meta":{"progressToken":"f2"}}}`, count, floodSize), "application/json, text/event-stream")
	req.Header.Set("Connection", "close")
	stuck := sendUnread(t, req)
	at, full := stalled(t, log, 0, count, "serve POST stream")
	if !full {
		t.Logf("the gateway held the upstream back at %d of %d notifications", at, count)
	} else {
		// Wait until the daemon has taken in the whole flood: its outcome.
		in.WaitEvents(t, func(events []store.Event) error {
			if len(events) < 2 {
				return errors.New("the flood call has no outcome yet")
			}
			return nil
		}, "--tool", "flood")
	}
	peak := mem.Stop()
	t.Logf("daemon RssAnon: %d KiB before, peak %d KiB while a client read none of a %d MiB POST stream", base, peak, count*floodSize>>20)
	if peak-base > bound {
		t.Errorf("the daemon's memory grew by %d KiB while its client read nothing, want at most %d KiB", peak-base, bound)
	}
	r := stuck.events(t)
	next, answered := 1, false
	for {
		ev, err := r.next()
		if err != nil {
			if err != io.EOF {
				t.Errorf("POST stream: ended with %v, want a clean end", err)
			}
			break
		}
		m := ev.msg(t)
		if m.Method == "notifications/progress" {
			if n := floodN(m); n != next {
				t.Fatalf("POST stream: notification %d arrived when %d was next", n, next)
			}
			next++
			continue
		}
		if string(m.ID) == "2" {
			answered = true
			if next != count+1 {
				t.Fatalf("POST stream: the answer came after %d of %d notifications", next-1, count)
			}
		}
	}
	stuck.conn.Close()
	t.Logf("POST stream: the client read %d of %d notifications, answer: %v", next-1, count, answered)
	if full && answered {
		t.Errorf("the gateway neither held the upstream back nor gave up on a stream %d MiB behind: it held all of it for the client", count*floodSize>>20)
	}

	// (b) The session's GET stream: notifications that belong to no
	// request stream (the flood call is answered as one JSON body).
	base = rssAnonKB(t, pid)
	mem = watchMemory(t, pid)
	get := h.request(ctx, http.MethodGet, "", "text/event-stream")
	get.Header.Set("Connection", "close")
	stuck = sendUnread(t, get)
	before := len(log.lines("flood"))
	jreq := h.request(ctx, http.MethodPost, fmt.Sprintf(`{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"flood","arguments":{"count":%d,"size":%d}}}`, count, floodSize), "application/json")
	jdone := make(chan string, 1) // the flood call's answer, or what went wrong
	go func() {
		jresp, err := h.client.Do(jreq)
		if err != nil {
			jdone <- err.Error()
			return
		}
		defer jresp.Body.Close()
		body, _ := io.ReadAll(jresp.Body)
		jdone <- jresp.Status + " " + string(body)
	}()
	at, full = stalled(t, log, before, count, "serve GET stream")
	if full {
		// The flood's answer comes once the daemon has taken it all in.
		if a := <-jdone; !strings.Contains(a, fmt.Sprintf("flooded %d", count)) {
			t.Fatalf("the flood call for the GET stream: %.300s", a)
		}
	} else {
		t.Logf("the gateway held the upstream back at %d of %d notifications", at, count)
	}
	peak = mem.Stop()
	t.Logf("daemon RssAnon: %d KiB before, peak %d KiB while a client read none of a %d MiB GET stream", base, peak, count*floodSize>>20)
	if peak-base > bound {
		t.Errorf("the daemon's memory grew by %d KiB while its client read nothing, want at most %d KiB", peak-base, bound)
	}
	r = stuck.events(t)
	prev, got := 0, 0
	for prev < count {
		ev, err := r.next()
		if err != nil {
			t.Fatalf("GET stream: ended after notification %d of %d: %v", prev, count, err)
		}
		m := ev.msg(t)
		if m.Method != "notifications/message" {
			continue
		}
		n := floodN(m)
		if n <= prev {
			t.Fatalf("GET stream: notification %d arrived after %d", n, prev)
		}
		prev = n
		got++
	}
	stuck.conn.Close() // (closing the body would read the endless stream to its end)
	if !full {
		if a := <-jdone; !strings.Contains(a, fmt.Sprintf("flooded %d", count)) {
			t.Errorf("the flood call for the GET stream: %.300s", a)
		}
	}
	t.Logf("GET stream: the client read %d of %d notifications, the newest last", got, count)
	if full && got == count {
		t.Errorf("the gateway kept every notification of a GET stream %d MiB behind for a client that read none", count*floodSize>>20)
	}

	// Later calls work, in this session and in a new one.
	if m := h.call(t, ctx, 4, "echo", map[string]any{"text": "after"}); m.Error != nil || !strings.Contains(string(m.Result), "after") {
		t.Fatalf("the session after the floods: %+v", m)
	}
	fresh := newRawHTTP(d.Endpoint("faulty"))
	fresh.initialize(t, ctx)
	if m := fresh.call(t, ctx, 2, "echo", map[string]any{"text": "fresh"}); m.Error != nil {
		t.Fatalf("a new session after the floods: %+v", m)
	}
	events := in.WaitEvents(t, allAnswered, "--tool", "flood")
	for _, ev := range events {
		if ev.Kind == store.KindCall && ev.Outcome != store.OutcomeOK {
			t.Errorf("flood call %s: outcome %q (%s), want ok: the upstream answered", ev.JSONRPCID, ev.Outcome, ev.Detail)
		}
	}
}

// ---------------------------------------------------------------------------
// 4. A SIEM collector that flaps.

// hecReceiver is a Splunk HTTP Event Collector (POST
// /services/collector/event, Authorization: Splunk TOKEN, envelopes
// concatenated) that fails on a schedule: "503" answers 503 Server is busy,
// "reset" closes the connection before reading the request, "drop" reads
// the whole batch and closes the connection without an answer (the batch
// arrived but was never acknowledged), "ok" accepts it. Only accepted
// batches count as delivered.
type hecReceiver struct {
	token string
	addr  string

	watched
	flap     []string // the schedule, repeated while flapping
	flapping bool
	requests int
	modes    map[string]int
	batches  [][]uint64 // accepted batches' event seqs, in arrival order
	problems []string
}

func startHEC(t *testing.T, token string, flap []string) *hecReceiver {
	t.Helper()
	h := &hecReceiver{token: token, flap: flap, flapping: true, modes: map[string]int{}}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	h.addr = l.Addr().String()
	srv := &http.Server{Handler: h}
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
	return h
}

func (h *hecReceiver) problem(format string, a ...any) {
	h.update(func() { h.problems = append(h.problems, fmt.Sprintf(format, a...)) })
}

func (h *hecReceiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost || r.URL.Path != "/services/collector/event" {
		h.problem("%s %s: not the HEC event endpoint", r.Method, r.URL.Path)
		http.NotFound(w, r)
		return
	}
	if got := r.Header.Get("Authorization"); got != "Splunk "+h.token {
		h.problem("Authorization %q", got)
		http.Error(w, `{"text":"Invalid token","code":4}`, http.StatusForbidden)
		return
	}
	mode := "ok"
	h.update(func() {
		if h.flapping {
			mode = h.flap[h.requests%len(h.flap)]
		}
		h.requests++
		h.modes[mode]++
	})
	hangUp := func() {
		conn, _, err := http.NewResponseController(w).Hijack()
		if err != nil {
			h.problem("hijack: %v", err)
			return
		}
		conn.Close()
	}
	switch mode {
	case "503":
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusServiceUnavailable)
		io.WriteString(w, `{"text":"Server is busy","code":9}`)
		return
	case "reset":
		hangUp()
		return
	}
	body, err := io.ReadAll(r.Body)
	if err != nil {
		h.problem("reading a batch: %v", err)
		return
	}
	if mode == "drop" {
		hangUp()
		return
	}
	var seqs []uint64
	dec := json.NewDecoder(bytes.NewReader(body))
	for dec.More() {
		var env struct {
			Time   json.Number     `json:"time"`
			Event  json.RawMessage `json:"event"`
			Fields struct {
				Seq  string `json:"mcptrail_seq"`
				Kind string `json:"mcptrail_kind"`
			} `json:"fields"`
		}
		if err := dec.Decode(&env); err != nil {
			h.problem("batch is not HEC envelopes: %v", err)
			http.Error(w, `{"text":"Invalid data format","code":6}`, http.StatusBadRequest)
			return
		}
		seq, err := strconv.ParseUint(env.Fields.Seq, 10, 64)
		if err != nil || env.Time == "" || len(env.Event) == 0 || string(env.Event) == "null" {
			h.problem("envelope without a seq, time or event: %+v", env)
			continue
		}
		if env.Fields.Kind != "checkpoint" {
			seqs = append(seqs, seq)
		}
	}
	h.update(func() { h.batches = append(h.batches, seqs) })
	w.Header().Set("Content-Type", "application/json")
	io.WriteString(w, `{"text":"Success","code":0}`)
}

func TestFaultSIEMFlapping(t *testing.T) {
	t.Parallel()
	ctx := scenarioContext(t)
	flap := []string{"503", "ok", "reset", "ok", "drop", "503", "reset", "ok"}
	hec := startHEC(t, "fault-token", flap)
	in := newInstance(t)
	d := in.Serve(t, "--upstream", "faulty=stdio:"+binary(t, "faulty"),
		"--sink", "hec+http://fault-token@"+hec.addr+"?format=ocsf&batch=20&linger=50ms")

	// Calls flow while the collector flaps through its schedule.
	cs := connect(t, ctx, mcp.NewClient(&mcp.Implementation{Name: "siem-flap", Version: "1.0.0"}, nil),
		&mcp.StreamableClientTransport{Endpoint: d.Endpoint("faulty")}, nil)
	stop := make(chan struct{})
	callErr := make(chan error, 1)
	go func() {
		for i := 0; ; i++ {
			select {
			case <-stop:
				callErr <- nil
				return
			default:
			}
			if _, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "echo", Arguments: map[string]any{"text": fmt.Sprint("call ", i)}}); err != nil {
				callErr <- err
				return
			}
		}
	}()
	rounds := pick(3, 15)
	seen := 0
	if err := hec.wait(2*time.Minute, nil, func() bool { seen = hec.requests; return seen >= rounds*len(flap) }); err != nil {
		t.Fatalf("the sink made %d requests, want %d: %v", seen, rounds*len(flap), err)
	}
	close(stop)
	if err := <-callErr; err != nil {
		t.Fatalf("a call while the collector flapped: %v", err)
	}
	// The collector recovers; the sink catches up.
	hec.update(func() { hec.flapping = false })
	cs.Close()
	total := waitSinksCaughtUp(t, in)

	hec.mu.Lock()
	defer hec.mu.Unlock()
	for _, p := range hec.problems {
		t.Errorf("the collector got: %s", p)
	}
	t.Logf("collector: %d requests %v, %d batches accepted, %d events in the store", hec.requests, hec.modes, len(hec.batches), total)
	for _, m := range []string{"503", "reset", "drop", "ok"} {
		if hec.modes[m] == 0 {
			t.Errorf("the flapping never answered %q: the test did not test it", m)
		}
	}
	var seqs []uint64
	for i, b := range hec.batches {
		for j := 1; j < len(b); j++ {
			if b[j] != b[j-1]+1 {
				t.Errorf("accepted batch %d is not in order without gaps: %v", i, b)
				break
			}
		}
		seqs = append(seqs, b...)
	}
	siemtest.CheckAtLeastOnceInOrder(t, seqs, total)
	_, sinks := sinkStatus(t, in)
	if len(sinks) != 1 {
		t.Fatalf("status shows %d sinks, want 1: %v", len(sinks), sinks)
	}
	s := sinks[0]
	if s["state"] == "failing" || s["lag"].(float64) != 0 || s["failures"].(float64) == 0 || s["last_delivery_at"] == nil {
		t.Errorf("the sink's status after the collector recovered: %v; want not failing, lag 0, its failures counted, a last delivery", s)
	}
}

// ---------------------------------------------------------------------------
// 5. kill -9 of the daemon under load from wrap clients.
//
// Several wrap clients call without pause (strict durability); the daemon
// is killed and started again. A wrap client must never hang and never
// forward a call the record does not hold: it fails closed while no daemon
// records, or, if it can reach one again, records before it forwards. The
// upstream notes every call it receives; every one of those must be a
// request event in the store. The restarted daemon closes the calls the kill
// interrupted (outcome unknown), and verify passes.

// loadClient is one wrap client calling echo in a loop.
type loadClient struct {
	id      int
	results []loadResult
}

type loadResult struct {
	phase int // what the test had done when the call began: 0 nothing, 1 killed the daemon, 2 restarted it
	err   error
}

func TestFaultDaemonKillNineWrapLoad(t *testing.T) {
	t.Parallel()
	in := newInstance(t)
	log := newFaultyLog(in)
	clients, rounds := pick(3, 8), pick(1, 3)
	warm := pick(10, 40) // calls each client makes before the kill
	d := in.Serve(t, "--durability", "strict")
	for round := range rounds {
		d = killNineRound(t, in, d, log, round, clients, warm)
	}

	// A wrap client started now records and works.
	ctx := scenarioContext(t)
	transport, _ := in.Wrap(t, WrapOptions{Name: "faulty", Agent: "after"}, binary(t, "faulty"), "-log", string(log))
	cs := connect(t, ctx, mcp.NewClient(&mcp.Implementation{Name: "after", Version: "1"}, nil), transport, nil)
	if _, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "echo", Arguments: map[string]any{"text": "after-restart"}}); err != nil {
		t.Fatalf("a new wrap client after the restart: %v", err)
	}
	cs.Close()

	// Nothing reached the upstream unrecorded.
	events := in.WaitEvents(t, allAnswered)
	recorded := map[string]bool{}
	for _, ev := range events {
		if ev.Kind == store.KindRequest && ev.Tool == "echo" {
			var p struct {
				Arguments struct {
					Text string `json:"text"`
				} `json:"arguments"`
			}
			json.Unmarshal(ev.Params, &p)
			recorded[p.Arguments.Text] = true
		}
	}
	seen := log.lines("call")
	missing := 0
	for _, f := range seen {
		if len(f) != 2 || !recorded[f[1]] {
			missing++
			t.Errorf("the upstream received %q, which the record does not hold", strings.Join(f, " "))
		}
	}
	unknown := 0
	for _, ev := range events {
		if ev.Kind == store.KindCall && ev.Outcome == store.OutcomeUnknown {
			unknown++
		}
	}
	t.Logf("%d rounds: the upstream received %d calls, all recorded but %d; %d calls interrupted by the kills (outcome unknown)", rounds, len(seen), missing, unknown)
	if res := in.Run(t, "verify"); res.Code != 0 || !strings.Contains(res.Stdout, "ok:") {
		t.Fatalf("verify after kill -9 under load: exit %d\n%s%s", res.Code, res.Stdout, res.Stderr)
	}
}

// killNineRound runs clients wrap clients against the daemon d, kills it
// with SIGKILL once each made warm calls, starts a new one and returns it
// once each client has called again under it.
func killNineRound(t *testing.T, in *Instance, d *Daemon, log faultyLog, round, clients, warm int) *Daemon {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	var state watched
	phase := 0
	all := make([]*loadClient, clients)
	done := make([]bool, clients) // the client stopped calling (its wrap is gone)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for i := range clients {
		c := &loadClient{id: i}
		all[i] = c
		transport, _ := in.Wrap(t, WrapOptions{Name: "faulty", Agent: fmt.Sprintf("load-%d-%d", round, i)}, binary(t, "faulty"), "-log", string(log))
		cs := connect(t, ctx, mcp.NewClient(&mcp.Implementation{Name: "load", Version: "1"}, nil), transport, nil)
		wg.Go(func() {
			defer cs.Close()
			defer state.update(func() { done[i] = true })
			for n := 0; ; n++ {
				select {
				case <-stop:
					return
				default:
				}
				var p int
				state.update(func() { p = phase })
				callCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
				_, err := cs.CallTool(callCtx, &mcp.CallToolParams{Name: "echo", Arguments: map[string]any{"text": fmt.Sprintf("r%d-c%d-%d", round, i, n)}})
				cancel()
				if errors.Is(err, context.DeadlineExceeded) {
					err = fmt.Errorf("the call hung: %w", err)
				}
				state.update(func() { c.results = append(c.results, loadResult{phase: p, err: err}) })
				if errors.Is(err, mcp.ErrConnectionClosed) || errors.Is(err, context.DeadlineExceeded) {
					return // this client is done for
				}
			}
		})
	}
	defer func() {
		close(stop)
		wg.Wait()
	}()
	// each waits until every client has count results begun in phase p, or
	// has stopped calling.
	each := func(what string, p, count int) {
		t.Helper()
		if err := state.wait(2*time.Minute, nil, func() bool {
			for i, c := range all {
				n := 0
				for _, r := range c.results {
					if r.phase == p {
						n++
					}
				}
				if n < count && !done[i] {
					return false
				}
			}
			return true
		}); err != nil {
			t.Fatalf("round %d: %s: %v", round, what, err)
		}
	}
	var failed error
	if err := state.wait(2*time.Minute, nil, func() bool {
		for _, c := range all {
			for _, r := range c.results {
				if r.err != nil {
					failed = fmt.Errorf("client %d failed before the kill: %w", c.id, r.err)
					return true
				}
			}
			if len(c.results) < warm {
				return false
			}
		}
		return true
	}); err != nil || failed != nil {
		t.Fatalf("round %d: the clients did not make %d calls each: %v %v", round, warm, err, failed)
	}

	state.update(func() { phase = 1 })
	d.Cmd.Process.Signal(syscall.SIGKILL)
	select {
	case <-d.Exited():
	case <-time.After(stopTimeout):
		t.Fatal("the daemon survived SIGKILL")
	}
	each("calls with no daemon", 1, 3)
	state.update(func() { phase = 2 })
	d = in.Serve(t, "--durability", "strict")
	each("calls after the restart", 2, 3)

	state.mu.Lock()
	defer state.mu.Unlock()
	for _, c := range all {
		counts := [3][2]int{} // phase → [ok, failed]
		for _, r := range c.results {
			if r.err != nil {
				counts[r.phase][1]++
				if strings.Contains(r.err.Error(), "hung") {
					t.Errorf("round %d: client %d: %v", round, c.id, r.err)
				}
			} else {
				counts[r.phase][0]++
			}
		}
		t.Logf("round %d client %d: [ok failed] before the kill %v, without a daemon %v, after the restart %v", round, c.id, counts[0], counts[1], counts[2])
	}
	return d
}
