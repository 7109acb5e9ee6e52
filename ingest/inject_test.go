package ingest

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mcptrail/mcptrail/store"
	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// captureHook calls echo on the upstream with the tool's text and keeps
// what came back as the pre-state.
type captureHook struct {
	mu      sync.Mutex
	servers []string
	fail    bool
}

func (h *captureHook) capture(ev *store.Event, up Conn) error {
	var p struct {
		Arguments struct {
			Text string `json:"text"`
		} `json:"arguments"`
	}
	json.Unmarshal(ev.Params, &p)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	res, err := up.Call(ctx, "tools/call", map[string]any{"name": "echo", "arguments": map[string]any{"text": "before " + p.Arguments.Text}})
	if err != nil {
		return err
	}
	var r mcp.CallToolResult
	if err := json.Unmarshal(res, &r); err != nil {
		return err
	}
	h.mu.Lock()
	h.servers = append(h.servers, up.ServerName())
	fail := h.fail
	h.mu.Unlock()
	if fail {
		return errors.New("no pre-state, no write")
	}
	ev.Prestate = "test:" + r.Content[0].(*mcp.TextContent).Text
	return nil
}

func TestStdioCaptureOnTheSameConnection(t *testing.T) {
	st := openStore(t)
	hook := &captureHook{}
	inR, inW := io.Pipe()
	outR, outW := io.Pipe()
	sess := NewSession(SessionInfo{ID: "cap", Upstream: "echo", Transport: "stdio", StartParams: json.RawMessage(`{"command":["echoserver"]}`)},
		st, Hooks{Capture: hook.capture}, Limits{}, nil)
	p := &Stdio{Session: sess, Child: ChildOptions{Command: []string{echoServer}, GracePeriod: 500 * time.Millisecond}, In: inR, Out: outW}
	done := make(chan struct{})
	go func() {
		p.Run(context.Background())
		outW.Close()
		close(done)
	}()
	defer func() { inW.Close(); <-done }()
	cs := connectClient(t, inW, outR, nil)
	defer cs.Close()
	ctx := context.Background()
	res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "write", Arguments: map[string]any{"text": "x"}})
	if err != nil || res.Content[0].(*mcp.TextContent).Text != "stored x" {
		t.Fatalf("write through the gateway: %v %+v", err, res)
	}
	hook.mu.Lock()
	hook.fail = true
	hook.mu.Unlock()
	res, err = cs.CallTool(ctx, &mcp.CallToolParams{Name: "write", Arguments: map[string]any{"text": "y"}})
	if err == nil && !res.IsError {
		t.Fatalf("a failed capture must refuse the call, got %+v", res)
	}
	cs.Close()
	inW.Close()
	<-done

	evs := allEvents(t, st)
	var start *store.Event
	var calls, reqs []store.Event
	for _, ev := range evs {
		switch {
		case ev.Kind == store.KindSessionStart:
			start = &ev
		case ev.Kind == store.KindCall && ev.Tool != "":
			calls = append(calls, ev)
		case ev.Kind == store.KindRequest && ev.Tool != "":
			reqs = append(reqs, ev)
		}
	}
	if start == nil || string(start.Params) != `{"command":["echoserver"]}` {
		t.Errorf("session_start should carry the start params: %+v", start)
	}
	// The injected echo is neither relayed nor recorded.
	if len(reqs) != 2 || reqs[0].Tool != "write" || reqs[1].Tool != "write" {
		t.Fatalf("requests recorded: %+v", reqs)
	}
	if len(calls) != 2 || calls[0].Prestate != "test:before x" || calls[0].Outcome != store.OutcomeOK {
		t.Fatalf("the first outcome should carry the pre-state: %+v", calls)
	}
	if calls[1].Outcome != store.OutcomeDenied || !strings.Contains(calls[1].Detail, "no pre-state") {
		t.Fatalf("the second call should be denied: %+v", calls[1])
	}
	if hook.servers[0] != "echoserver" {
		t.Errorf("ServerName = %q", hook.servers[0])
	}
}

func TestHTTPCaptureOnTheSessionsChild(t *testing.T) {
	hook := &captureHook{}
	f := newHTFixture(t, func(o *HTTPOptions) { o.Hooks.Capture = hook.capture })
	for _, up := range []string{"local", "web"} {
		c := f.connectTo(t, up)
		res := c.call(t, "fail", map[string]any{"text": up}, nil)
		if !strings.Contains(resultText(res), "failed: "+up) {
			t.Fatalf("%s: %s", up, resultText(res))
		}
	}
	evs := f.events(t)
	got := map[string]string{}
	for _, ev := range evs {
		if ev.Kind == store.KindCall && ev.Tool == "fail" {
			got[ev.Upstream] = ev.Prestate
		}
		if ev.Kind == store.KindRequest && ev.Tool == "echo" {
			t.Errorf("an injected call was recorded: %+v", ev)
		}
	}
	if got["local"] != "test:before local" || got["web"] != "test:before web" {
		t.Fatalf("pre-states: %v", got)
	}
}

// connectTo connects a 2025-era client to the named upstream.
func (f *htFixture) connectTo(t *testing.T, name string) *htClient {
	t.Helper()
	return f.connect(t, name, era2025, nil)
}

func TestOriginateRecordsRollbackSteps(t *testing.T) {
	st := openStore(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	o, err := Originate(ctx, OriginOptions{
		Info:     SessionInfo{Upstream: "echo", Agent: store.Agent{Name: "mcptrail-rollback"}},
		Upstream: Upstream{Command: []string{echoServer}},
		Recorder: st,
	})
	if err != nil {
		t.Fatal(err)
	}
	auth := &store.Authorization{Reviewed: true, Approver: "alice", Method: "cli"}
	res, seq, err := o.Call(ctx, "tools/call", map[string]any{"name": "write", "arguments": map[string]any{"text": "undo"}},
		&CallRecord{Kind: store.KindRollbackStep, Reverts: 7, Authorization: auth, Task: &store.Task{ID: "plan-1"}, Detail: "step 1"})
	if err != nil || seq == 0 || !strings.Contains(string(res), "stored undo") {
		t.Fatalf("call: %s %d %v", res, seq, err)
	}
	// An unrecorded-kind (ordinary) call works too.
	if _, _, err := o.Call(ctx, "tools/call", map[string]any{"name": "echo", "arguments": map[string]any{"text": "hi"}}, nil); err != nil {
		t.Fatal(err)
	}
	o.Close("done")
	evs := allEvents(t, st)
	var step, out *store.Event
	kinds := map[string]int{}
	for i, ev := range evs {
		kinds[ev.Kind]++
		if ev.Kind == store.KindRollbackStep {
			step = &evs[i]
		}
		if ev.Kind == store.KindCall && ev.Call == seq {
			out = &evs[i]
		}
	}
	if step == nil || step.Seq != seq || step.Reverts != 7 || step.Authorization == nil || step.Authorization.Approver != "alice" || step.Task.ID != "plan-1" || step.Tool != "write" {
		t.Fatalf("rollback_step: %+v", step)
	}
	if out == nil || out.Reverts != 7 || out.Authorization == nil || out.Outcome != store.OutcomeOK {
		t.Fatalf("its outcome: %+v", out)
	}
	if kinds[store.KindSessionStart] != 1 || kinds[store.KindSessionEnd] != 1 || kinds[store.KindRequest] < 2 {
		t.Fatalf("kinds: %v", kinds)
	}
}

func TestOriginateUnrecorded(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	o, err := Originate(ctx, OriginOptions{Info: SessionInfo{Upstream: "echo"}, Upstream: Upstream{Command: []string{echoServer}}})
	if err != nil {
		t.Fatal(err)
	}
	defer o.Close("")
	res, seq, err := o.Call(ctx, "tools/call", map[string]any{"name": "echo", "arguments": map[string]any{"text": "hi"}}, nil)
	if err != nil || seq != 0 || !strings.Contains(string(res), `"hi"`) {
		t.Fatalf("%s %d %v", res, seq, err)
	}
	_, _, err = o.Call(ctx, "no/such", nil, nil)
	var rpc *RPCError
	if !errors.As(err, &rpc) {
		t.Fatalf("want an RPCError, got %v", err)
	}
}

func TestOriginateHTTP(t *testing.T) {
	st := openStore(t)
	srv := httptest.NewServer(mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return htServer(nil) }, nil))
	defer srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	o, err := Originate(ctx, OriginOptions{Info: SessionInfo{Upstream: "web"}, Upstream: Upstream{URL: srv.URL}, Recorder: st})
	if err != nil {
		t.Fatal(err)
	}
	res, seq, err := o.Call(ctx, "tools/call", map[string]any{"name": "echo", "arguments": map[string]any{"text": "over http"}},
		&CallRecord{Kind: store.KindRollbackStep, Reverts: 3})
	if err != nil || seq == 0 || !strings.Contains(string(res), "over http") {
		t.Fatalf("%s %d %v", res, seq, err)
	}
	o.Close("done")
	var out *store.Event
	for _, ev := range allEvents(t, st) {
		if ev.Kind == store.KindCall && ev.Call == seq {
			out = &ev
		}
	}
	if out == nil || out.Outcome != store.OutcomeOK || out.Reverts != 3 || out.Transport != "http" {
		t.Fatalf("outcome: %+v", out)
	}
}
