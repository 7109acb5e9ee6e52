package ingest

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/mcptrail/mcptrail/store"
)

// gate is a Hold the test decides (the approval desk is one in the
// daemon): release approves, deny refuses; cancelled says why Cancel ran.
type gate struct {
	decided   chan error
	cancelled chan string
}

func newGate() *gate { return &gate{decided: make(chan error, 1), cancelled: make(chan string, 1)} }

func (g *gate) Wait() (*store.Authorization, error) {
	if err := <-g.decided; err != nil {
		return nil, err
	}
	return &store.Authorization{Reviewed: true, Approver: "SHA256:test", Method: "approval", Approval: 99}, nil
}

func (g *gate) Cancel(reason string) {
	g.cancelled <- reason
	g.decided <- errors.New("refused: " + reason)
}

// holdWrites holds every call of the tool "write", handing its gate over.
func holdWrites(gates chan *gate) Hooks {
	return Hooks{Approve: func(ev *store.Event, params json.RawMessage, _ string) Hold {
		if ev.Tool != "write" || ev.Seq == 0 || !json.Valid(params) {
			return nil
		}
		g := newGate()
		gates <- g
		return g
	}}
}

// heldSession is a stdio session whose writes an approval hook holds (each
// hold sent on gates), past its handshake with a raw client.
func heldSession(t *testing.T) (*store.Store, rawClient, *Session, chan *gate, *pumpRun) {
	t.Helper()
	st := openStore(t)
	gates := make(chan *gate, 4)
	in, out, sess, run := startPumpHooks(t, st, holdWrites(gates), Limits{})
	c := rawClient{in: in, out: bufio.NewReader(out)}
	// Runs before startPump's cleanup: a failed test leaves answers
	// unread, which must not keep the pump from ending.
	t.Cleanup(func() { go io.Copy(io.Discard, c.out) })
	c.send(t, `{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"raw","version":"1"}}}`)
	c.recv(t)
	c.send(t, `{"jsonrpc":"2.0","method":"notifications/initialized"}`)
	return st, c, sess, gates, run
}

// TestStdioHeldCall: over stdio a held call stays unanswered and unforwarded
// while the client's other calls go on; approval forwards exactly it, a
// denial answers the client with the reason; the record says so.
func TestStdioHeldCall(t *testing.T) {
	st, c, sess, gates, run := heldSession(t)

	c.send(t, `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"write","arguments":{"text":"held"}}}`)
	g1 := <-gates
	// Held: the next call is answered first.
	c.send(t, `{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"echo","arguments":{"text":"meanwhile"}}}`)
	if m := c.recv(t); m["id"] != 2.0 {
		t.Fatalf("while a call is held, the next answer is %v", m)
	}
	if sess.Held() != 1 {
		t.Fatalf("%d calls held", sess.Held())
	}
	g1.decided <- nil
	if m := c.recv(t); m["id"] != 1.0 || m["error"] != nil {
		t.Fatalf("the approved call's answer: %v", m)
	}

	c.send(t, `{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"write","arguments":{"text":"no"}}}`)
	g3 := <-gates
	g3.decided <- errors.New("denied by SHA256:x at 03:12:00Z: not now")
	m := c.recv(t)
	e, _ := m["error"].(map[string]any)
	if m["id"] != 3.0 || errorCode(m) != codeApprovalDenied || !strings.Contains(e["message"].(string), "denied by SHA256:x at 03:12:00Z: not now") {
		t.Fatalf("the denied call's answer: %v", m)
	}

	// Cancelled by its client while held: the hold ends, the call is never forwarded.
	c.send(t, `{"jsonrpc":"2.0","id":4,"method":"tools/call","params":{"name":"write","arguments":{"text":"cancel me"}}}`)
	g4 := <-gates
	c.send(t, `{"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":4,"reason":"user pressed stop"}}`)
	if r := <-g4.cancelled; r != "the client cancelled the call" {
		t.Errorf("cancel reason %q", r)
	}
	// And one still held when the client goes away is refused.
	c.send(t, `{"jsonrpc":"2.0","id":5,"method":"tools/call","params":{"name":"write","arguments":{"text":"orphan"}}}`)
	g5 := <-gates
	c.in.Close()
	if r := <-g5.cancelled; r != "the session ended" {
		t.Errorf("close reason %q", r)
	}
	// The hold is cancelled before its outcome is recorded: read the
	// record once the session has ended (its answers drained meanwhile).
	drained := make(chan struct{})
	go func() { io.Copy(io.Discard, c.out); close(drained) }()
	<-run.done
	<-drained

	outcomes := map[string]store.Event{}
	for _, ev := range allEvents(t, st) {
		if ev.Kind == store.KindCall && ev.Method == "tools/call" {
			outcomes[string(ev.JSONRPCID)] = ev
		}
	}
	for id, want := range map[string]string{"1": store.OutcomeOK, "2": store.OutcomeOK, "3": store.OutcomeDenied, "4": store.OutcomeCancelled, "5": store.OutcomeDenied} {
		if outcomes[id].Outcome != want {
			t.Errorf("call %s: outcome %q, want %q", id, outcomes[id].Outcome, want)
		}
	}
	if a := outcomes["1"].Authorization; a == nil || a.Approval != 99 || a.Approver != "SHA256:test" {
		t.Errorf("the approved call's outcome does not name its approval: %+v", a)
	}
	if strings.Contains(outcomes["3"].Detail, "denied by") == false {
		t.Errorf("the denied outcome's detail %q", outcomes["3"].Detail)
	}
}

// TestHTTPHeldCallWithdrawnWithItsRequest: over HTTP a held call lives in
// the POST that carries it; a client that closes that request withdraws
// the call (the hold is refused, outcome cancelled), so a later approval
// cannot run a call nobody waits for. Both eras: a 2025 session through the
// proxy and a 2026-07-28 stateless call to a stdio child.
func TestHTTPHeldCallWithdrawnWithItsRequest(t *testing.T) {
	for _, tc := range []struct{ up, version string }{{"web", "2025-11-25"}, {"local", ""}} {
		t.Run(tc.up, func(t *testing.T) {
			gates := make(chan *gate, 2)
			f := newHTFixture(t, func(o *HTTPOptions) {
				o.Hooks.Approve = func(ev *store.Event, params json.RawMessage, _ string) Hold {
					if ev.Tool != "echo" || !strings.Contains(string(params), "hold me") {
						return nil
					}
					g := newGate()
					gates <- g
					return g
				}
			})
			c := f.connect(t, tc.up, tc.version, nil)
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error, 1)
			go func() {
				_, err := c.cs.CallTool(ctx, &mcp.CallToolParams{Name: "echo", Arguments: map[string]any{"text": "hold me"}})
				done <- err
			}()
			g := <-gates
			cancel()
			select {
			case r := <-g.cancelled:
				// A 2025 client also sends notifications/cancelled, which may come first.
				if !strings.Contains(r, "closed its request") && !strings.Contains(r, "cancelled the call") {
					t.Fatalf("the hold ended with %q", r)
				}
			case <-time.After(20 * time.Second):
				g.decided <- errors.New("test over") // let the handler go
				t.Fatal("the client closed its request and the call is still held")
			}
			if err := <-done; err == nil {
				t.Fatal("the withdrawn call returned a result")
			}
			eventually(t, "the cancelled outcome", func() bool {
				got := outcomes(f.events(t), "echo")
				return len(got) == 1 && got[0] == store.OutcomeCancelled
			})
			// Calls no rule holds go on.
			if got := resultText(c.call(t, "echo", map[string]any{"text": "free"}, nil)); got != "free" {
				t.Errorf("echo = %q", got)
			}
		})
	}
}

// A request that closes before its call is held (the hook still deciding)
// leaves its id withdrawn: when the hold begins it is refused at once, not
// held for an approval nobody waits for. whileHeld is driven directly so
// that the close surely comes first.
func TestHeldCallWithdrawnBeforeItIsHeld(t *testing.T) {
	_, c, sess, gates, _ := heldSession(t)

	ctx, cancel := context.WithCancel(context.Background())
	cancel() // the client has gone already
	stop := sess.whileHeld(ctx, []json.RawMessage{json.RawMessage("5")}, nil)
	defer stop()
	eventually(t, "the id marked withdrawn", func() bool {
		sess.mu.Lock()
		defer sess.mu.Unlock()
		_, ok := sess.withdrawn[key(store.FromClient, json.RawMessage("5"))]
		return ok
	})
	c.send(t, `{"jsonrpc":"2.0","id":5,"method":"tools/call","params":{"name":"write","arguments":{"text":"nobody waits"}}}`)
	g := <-gates
	select {
	case r := <-g.cancelled:
		if r != withdrawnReason {
			t.Fatalf("the hold ended with %q", r)
		}
	case <-time.After(10 * time.Second):
		g.decided <- errors.New("test over")
		t.Fatal("the call whose request had closed is held")
	}
	if m := c.recv(t); m["id"] != 5.0 || errorCode(m) != codeApprovalDenied {
		t.Fatalf("the withdrawn call's answer: %v", m)
	}
	if sess.Held() != 0 {
		t.Fatalf("%d calls still held", sess.Held())
	}
}
