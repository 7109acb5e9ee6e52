package ingest

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mcptrail/mcptrail/internal/testkit"
	"github.com/mcptrail/mcptrail/store"
	"github.com/modelcontextprotocol/go-sdk/mcp"
)

var echoServer string

func TestMain(m *testing.M) {
	testkit.MainWithPrograms(m, map[string]*string{"./testdata/echoserver": &echoServer})
}

func openStore(t *testing.T) *store.Store {
	t.Helper()
	st, err := store.Open(filepath.Join(t.TempDir(), "test.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

func allEvents(t *testing.T, st *store.Store) []store.Event {
	t.Helper()
	if err := st.Flush(); err != nil {
		t.Fatal(err)
	}
	p, err := st.Query(store.Query{Limit: 10000})
	if err != nil {
		t.Fatal(err)
	}
	return p.Events
}

type pumpRun struct {
	code int
	err  error
	done chan struct{}
}

// startPump runs the stdio gateway in-process between pipes and the echo server.
func startPump(t *testing.T, rec Recorder, limits Limits) (clientIn io.WriteCloser, clientOut io.Reader, sess *Session, run *pumpRun) {
	t.Helper()
	return startPumpHooks(t, rec, Hooks{}, limits)
}

// startPumpHooks is startPump with hooks.
func startPumpHooks(t *testing.T, rec Recorder, hooks Hooks, limits Limits) (clientIn io.WriteCloser, clientOut io.Reader, sess *Session, run *pumpRun) {
	t.Helper()
	inR, inW := io.Pipe()
	outR, outW := io.Pipe()
	sess = NewSession(SessionInfo{
		ID: "s-" + t.Name(), Upstream: "echo", Transport: "stdio",
		Agent:     store.Agent{ID: "bot", Name: "bot"},
		Principal: &store.Principal{Subject: "tester", Kind: "os_user"},
		Task:      &store.Task{ID: "TASK-1"},
	}, rec, hooks, limits, nil)
	p := &Stdio{Session: sess, Child: ChildOptions{Command: []string{echoServer}, MaxMessageBytes: limits.MaxMessageBytes, GracePeriod: 500 * time.Millisecond}, In: inR, Out: outW}
	run = &pumpRun{done: make(chan struct{})}
	go func() {
		run.code, run.err = p.Run(context.Background())
		outW.Close()
		close(run.done)
	}()
	t.Cleanup(func() {
		inW.Close()
		<-run.done
	})
	return inW, outR, sess, run
}

func connectClient(t *testing.T, in io.WriteCloser, out io.Reader, opts *mcp.ClientOptions) *mcp.ClientSession {
	t.Helper()
	c := mcp.NewClient(&mcp.Implementation{Name: "test-client", Version: "0.1"}, opts)
	cs, err := c.Connect(context.Background(), &mcp.IOTransport{Reader: io.NopCloser(out), Writer: in}, &mcp.ClientSessionOptions{ProtocolVersion: "2025-11-25"})
	if err != nil {
		t.Fatal(err)
	}
	return cs
}

func TestStdioRelaysAndRecordsCalls(t *testing.T) {
	st := openStore(t)
	in, out, _, run := startPump(t, st, Limits{})
	var mu sync.Mutex
	var progress []float64
	cs := connectClient(t, in, out, &mcp.ClientOptions{ProgressNotificationHandler: func(_ context.Context, r *mcp.ProgressNotificationClientRequest) {
		mu.Lock()
		progress = append(progress, r.Params.Progress)
		mu.Unlock()
	}})
	ctx := context.Background()
	if _, err := cs.ListTools(ctx, nil); err != nil {
		t.Fatal(err)
	}
	res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "echo", Arguments: map[string]any{"text": "hello"},
		Meta: mcp.Meta{"traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"}})
	if err != nil || res.Content[0].(*mcp.TextContent).Text != "hello" {
		t.Fatalf("echo: %v %+v", err, res)
	}
	if res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "fail", Arguments: map[string]any{"text": "x"}}); err != nil || !res.IsError {
		t.Fatalf("fail: %v %+v", err, res)
	}
	if _, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "progress", Arguments: map[string]any{"text": "x"}, Meta: mcp.Meta{"progressToken": "p1"}}); err != nil {
		t.Fatal(err)
	}
	cs.Close()
	<-run.done
	if run.err != nil || run.code != 0 {
		t.Fatalf("pump ended with %d, %v", run.code, run.err)
	}
	mu.Lock()
	if len(progress) != 3 {
		t.Errorf("client saw %d progress notifications, want 3", len(progress))
	}
	mu.Unlock()

	evs := allEvents(t, st)
	bySeq := map[uint64]store.Event{}
	for _, e := range evs {
		bySeq[e.Seq] = e
	}
	outcomes := map[string]store.Event{}
	for _, e := range evs {
		if e.Kind == store.KindCall && e.Method == "tools/call" {
			outcomes[e.Tool] = e
			req, ok := bySeq[e.Call]
			if !ok || req.Kind != store.KindRequest || req.Tool != e.Tool || req.Seq >= e.Seq {
				t.Errorf("outcome %d links to %d: %+v", e.Seq, e.Call, req)
			}
		}
	}
	echo := outcomes["echo"]
	if echo.Outcome != store.OutcomeOK || echo.DurationNS <= 0 || !strings.Contains(string(echo.Result), "hello") {
		t.Errorf("echo outcome: %+v", echo)
	}
	if echo.Agent == nil || echo.Agent.ID != "bot" || echo.Agent.ClientName != "test-client" || echo.Agent.ClientVersion != "0.1" {
		t.Errorf("echo agent: %+v", echo.Agent)
	}
	if echo.Principal == nil || echo.Principal.Subject != "tester" {
		t.Errorf("echo principal: %+v", echo.Principal)
	}
	if echo.Task == nil || echo.Task.ID != "TASK-1" || echo.Task.TraceID != "4bf92f3577b34da6a3ce929d0e0e4736" {
		t.Errorf("echo task: %+v", echo.Task)
	}
	if echo.Class != "read" || echo.ClassSource != store.ClassSourceAnnotations || echo.Annotations == nil || echo.Annotations.ReadOnly == nil || !*echo.Annotations.ReadOnly {
		t.Errorf("echo class %q (%s) annotations %+v", echo.Class, echo.ClassSource, echo.Annotations)
	}
	// "fail" has no annotations: the MCP specification's defaults
	// (readOnlyHint false, destructiveHint true) make it a write, on its
	// request and on its outcome, which stands alone in a SIEM.
	for _, e := range []store.Event{outcomes["fail"], bySeq[outcomes["fail"].Call]} {
		if e.Class != "write" || e.ClassSource != store.ClassSourceSpecDefault {
			t.Errorf("unannotated fail's %s: class %q from %q, want write from %q", e.Kind, e.Class, e.ClassSource, store.ClassSourceSpecDefault)
		}
	}
	req := bySeq[echo.Call]
	if !strings.Contains(string(req.Params), `"hello"`) || req.ProtocolVersion != "2025-11-25" {
		t.Errorf("echo request: %+v", req)
	}
	if outcomes["fail"].Outcome != store.OutcomeToolError {
		t.Errorf("fail outcome %q, want tool_error", outcomes["fail"].Outcome)
	}
	var notes int
	for _, e := range evs {
		if e.Kind == store.KindNotification && e.Method == "notifications/progress" && e.From == store.FromServer {
			notes++
		}
	}
	if notes != 3 {
		t.Errorf("%d progress notifications recorded, want 3", notes)
	}
	if evs[0].Kind != store.KindSessionStart || evs[len(evs)-1].Kind != store.KindSessionEnd {
		t.Errorf("session not bracketed: first %s, last %s", evs[0].Kind, evs[len(evs)-1].Kind)
	}
}

// rawClient speaks bytes to the pump, to send what no SDK would.
type rawClient struct {
	in  io.WriteCloser
	out *bufio.Reader
}

func (c rawClient) send(t *testing.T, line string) {
	t.Helper()
	if _, err := io.WriteString(c.in, line+"\n"); err != nil {
		t.Fatal(err)
	}
}

func (c rawClient) recv(t *testing.T) map[string]any {
	t.Helper()
	line, err := c.out.ReadBytes('\n')
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(line, &m); err != nil {
		t.Fatalf("gateway sent non-JSON %q: %v", line, err)
	}
	return m
}

func errorCode(m map[string]any) float64 {
	e, _ := m["error"].(map[string]any)
	c, _ := e["code"].(float64)
	return c
}

func TestStdioBadInput(t *testing.T) {
	st := openStore(t)
	in, out, _, _ := startPump(t, st, Limits{MaxMessageBytes: 1024})
	c := rawClient{in, bufio.NewReader(out)}

	c.send(t, `{"jsonrpc":"2.0","id":1,"method":`) // truncated JSON
	if m := c.recv(t); errorCode(m) != -32700 {
		t.Errorf("malformed: got %v, want -32700", m)
	}
	c.send(t, `{"jsonrpc":"1.0","id":7,"method":"ping"}`) // not JSON-RPC 2.0
	if m := c.recv(t); errorCode(m) != -32600 || m["id"] != float64(7) {
		t.Errorf("invalid: got %v, want -32600 for id 7", m)
	}
	c.send(t, `{"jsonrpc":"2.0","id":2,"method":"ping","params":{"pad":"`+strings.Repeat("x", 4096)+`"}}`)
	if m := c.recv(t); errorCode(m) != -32600 {
		t.Errorf("oversized: got %v, want -32600", m)
	}
	// The gateway still works.
	c.send(t, `{"jsonrpc":"2.0","id":3,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"raw","version":"1"}}}`)
	if m := c.recv(t); m["id"] != float64(3) || m["result"] == nil {
		t.Errorf("initialize after bad input: %v", m)
	}
	in.Close()

	var bad []string
	for _, e := range allEvents(t, st) {
		if e.Kind == store.KindBadInput {
			bad = append(bad, e.Detail)
		}
	}
	if len(bad) != 3 || !strings.Contains(bad[2], "exceeds the 1024-byte limit") {
		t.Errorf("bad_input events: %q", bad)
	}
}

func TestStdioUpstreamCrashMidCall(t *testing.T) {
	st := openStore(t)
	in, out, _, run := startPump(t, st, Limits{})
	cs := connectClient(t, in, out, nil)
	_, err := cs.CallTool(context.Background(), &mcp.CallToolParams{Name: "crash", Arguments: map[string]any{"text": "x"}})
	if err == nil {
		t.Fatal("call to a crashing server succeeded")
	}
	<-run.done
	if run.code != 3 {
		t.Errorf("pump exit code %d, want the server's 3", run.code)
	}
	var found bool
	for _, e := range allEvents(t, st) {
		if e.Kind == store.KindCall && e.Tool == "crash" {
			found = e.Outcome == store.OutcomeTransportError && strings.Contains(e.Detail, "status 3")
		}
	}
	if !found {
		t.Error("no transport_error outcome for the crashed call")
	}
}

// failingRecorder cannot write: the gateway must refuse calls (fail closed).
type failingRecorder struct{ calls int }

func (f *failingRecorder) Record(ev *store.Event, durable bool) (uint64, error) {
	if ev.Kind == store.KindSessionStart {
		return 1, nil
	}
	f.calls++
	return 0, errors.New("disk full")
}

func TestStdioFailsClosedWhenRecordingFails(t *testing.T) {
	in, out, _, _ := startPump(t, &failingRecorder{}, Limits{})
	c := rawClient{in, bufio.NewReader(out)}
	c.send(t, `{"jsonrpc":"2.0","id":"a","method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"raw","version":"1"}}}`)
	m := c.recv(t)
	if m["id"] != "a" || errorCode(m) != -32603 || !strings.Contains(fmt.Sprint(m["error"]), "not forwarded") {
		t.Fatalf("got %v, want a refusal", m)
	}
}

// A tool's class follows its annotations, and the specification's defaults
// where the server leaves the read-only hint out.
func TestClassFromAnnotations(t *testing.T) {
	yes, no := true, false
	for _, c := range []struct {
		ann           *store.Annotations
		class, source string
	}{
		{nil, "write", store.ClassSourceSpecDefault},
		{&store.Annotations{}, "write", store.ClassSourceSpecDefault},
		{&store.Annotations{Destructive: &no}, "write", store.ClassSourceSpecDefault},
		{&store.Annotations{ReadOnly: &yes}, "read", store.ClassSourceAnnotations},
		{&store.Annotations{ReadOnly: &no}, "write", store.ClassSourceAnnotations},
	} {
		if class, source := ClassFromAnnotations(c.ann); class != c.class || source != c.source {
			t.Errorf("ClassFromAnnotations(%+v) = %q, %q; want %q, %q", c.ann, class, source, c.class, c.source)
		}
	}
}
