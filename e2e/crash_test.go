package e2e

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/mcptrail/mcptrail/store"
	"github.com/modelcontextprotocol/go-sdk/jsonrpc"
	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// An upstream that dies while a call is pending (testdata/crashy, whose
// "crash" tool exits with status 3 before answering).

// crashOutcome checks the record of the crashed call: a request with an
// outcome that says no response came.
func crashOutcome(t *testing.T, in *Instance) {
	t.Helper()
	events := in.WaitEvents(t, func(events []store.Event) error {
		ci := indexCalls(events)
		reqs := ci.requests(store.FromClient, "tools/call", "crash")
		if len(reqs) == 0 {
			return errors.New("no request event for the crash call")
		}
		if ci.outcome[reqs[0].Seq] == nil {
			return fmt.Errorf("the crash call (seq %d) has no outcome", reqs[0].Seq)
		}
		return nil
	}, "--tool", "crash")
	ci := indexCalls(events)
	req := ci.requests(store.FromClient, "tools/call", "crash")[0]
	out := ci.outcome[req.Seq]
	checkOutcome(t, req, out)
	if out.Outcome != store.OutcomeTransportError && out.Outcome != store.OutcomeUnknown {
		t.Errorf("crashed call: outcome %q, want %q or %q", out.Outcome, store.OutcomeTransportError, store.OutcomeUnknown)
	}
}

func TestCrashWrap(t *testing.T) {
	t.Parallel()
	in := newInstance(t)
	cmd, stderr := in.WrapCommand(t, WrapOptions{Name: "crashy"}, binary(t, "crashy"))
	r := startRaw(t, "mcptrail wrap", cmd)
	rawInitialize(t, r, "raw-client")
	if m := r.Call(t, 2, "tools/call", map[string]any{"name": "echo", "arguments": map[string]any{"text": "before"}}); m.Error != nil || !strings.Contains(string(m.Result), "before") {
		t.Fatalf("echo: %+v", m)
	}
	// The pending call gets an error response before wrap exits.
	if m := r.Call(t, 3, "tools/call", map[string]any{"name": "crash", "arguments": map[string]any{}}); m.Error == nil {
		t.Fatalf("crash: got %+v, want a JSON-RPC error response", m)
	}
	select {
	case <-r.Exited():
		if code := commandExitCode(r.WaitErr()); code != 3 {
			t.Errorf("mcptrail wrap exited with %v, want its child's status 3", r.WaitErr())
		}
	case <-time.After(stopTimeout):
		t.Fatalf("mcptrail wrap still running %v after its server died", stopTimeout)
	}
	if !strings.Contains(stderr.String(), "crashy: exiting mid-call") {
		t.Errorf("wrap did not pass the server's stderr on: %q", stderr.String())
	}
	crashOutcome(t, in)
}

func TestCrashServe(t *testing.T) {
	t.Parallel()
	ctx := scenarioContext(t)
	in := newInstance(t)
	d := in.Serve(t, "--upstream", "crashy=stdio:"+binary(t, "crashy"), "--upstream", "conf=stdio:"+binary(t, "everything-server"))
	client := mcp.NewClient(&mcp.Implementation{Name: "crash-client", Version: "1.0.0"}, nil)
	other := connect(t, ctx, client, &mcp.StreamableClientTransport{Endpoint: d.Endpoint("conf")}, nil)
	victim := connect(t, ctx, client, &mcp.StreamableClientTransport{Endpoint: d.Endpoint("crashy")}, nil)
	if err := echoCall(ctx, victim, "before"); err != nil {
		t.Fatal(err)
	}
	_, err := victim.CallTool(ctx, &mcp.CallToolParams{Name: "crash"})
	var rpcErr *jsonrpc.Error
	if !errors.As(err, &rpcErr) {
		t.Fatalf("crash: got %v, want a JSON-RPC error response", err)
	}

	serveSurvived(t, ctx, d, client, other, "crashy")
	crashOutcome(t, in)
}

// echoCall calls the echo tool and checks that the text comes back.
func echoCall(ctx context.Context, cs *mcp.ClientSession, text string) error {
	res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "echo", Arguments: map[string]any{"text": text}})
	if err != nil {
		return err
	}
	if got := string(mustJSON(res.Content)); !strings.Contains(got, text) {
		return fmt.Errorf("echo %q returned %s", text, got)
	}
	return nil
}

// serveSurvived checks what must hold once upstream up of d failed: the
// other upstream answers, in a session opened before (other), a new
// session to up works, and the daemon is still running.
func serveSurvived(t *testing.T, ctx context.Context, d *Daemon, client *mcp.Client, other *mcp.ClientSession, up string) {
	t.Helper()
	if res, err := other.CallTool(ctx, &mcp.CallToolParams{Name: "test_simple_text"}); err != nil || res.IsError {
		t.Fatalf("the other upstream after %s failed: %v %+v", up, err, res)
	}
	again := connect(t, ctx, client, &mcp.StreamableClientTransport{Endpoint: d.Endpoint(up)}, nil)
	if err := echoCall(ctx, again, "again"); err != nil {
		t.Fatalf("a new session to the failed upstream %s: %v", up, err)
	}
	select {
	case <-d.Exited():
		t.Fatalf("mcptrail serve exited after upstream %s failed: %v", up, d.WaitErr())
	default:
	}
}
