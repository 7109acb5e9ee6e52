package e2e

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/mcptrail/mcptrail/internal/testkit"
	"github.com/mcptrail/mcptrail/store"
	"github.com/modelcontextprotocol/go-sdk/jsonrpc"
	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// An upstream that never answers (testdata/crashy's "hang" tool): the
// gateway's call_timeout ends the call (timeout outcome, -32001 to the
// client, notifications/cancelled to the server), a client's own
// cancellation ends it at once (cancelled), the session goes on, and each
// call has exactly one outcome — nothing is left pending for Close.

const timeoutConfig = "call_timeout: 2s\n"

func TestTimeoutWrap(t *testing.T) {
	t.Parallel()
	in := newInstance(t)
	in.WriteConfig(t, timeoutConfig)
	transport, stderr := in.Wrap(t, WrapOptions{Name: "crashy"}, binary(t, "crashy"))
	cs := connect(t, scenarioContext(t), mcp.NewClient(&mcp.Implementation{Name: "timeout-client", Version: "1.0.0"}, nil), transport, nil)
	neverAnswered(t, in, cs, stderr)
}

func TestTimeoutServe(t *testing.T) {
	t.Parallel()
	in := newInstance(t)
	in.WriteConfig(t, timeoutConfig)
	d := in.Serve(t, "--upstream", "crashy=stdio:"+binary(t, "crashy"))
	cs := connect(t, scenarioContext(t), mcp.NewClient(&mcp.Implementation{Name: "timeout-client", Version: "1.0.0"}, nil), &mcp.StreamableClientTransport{Endpoint: d.Endpoint("crashy")}, nil)
	neverAnswered(t, in, cs, d.Stderr)
}

// neverAnswered runs the scenario on a connected session; serverLog has the
// upstream's stderr.
func neverAnswered(t *testing.T, in *Instance, cs *mcp.ClientSession, serverLog *testkit.LogBuf) {
	ctx := scenarioContext(t)
	// The gateway's timeout: the client would wait a minute.
	callCtx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	start := time.Now()
	_, err := cs.CallTool(callCtx, &mcp.CallToolParams{Name: "hang", Arguments: map[string]any{"text": "gw"}})
	var rpcErr *jsonrpc.Error
	if !errors.As(err, &rpcErr) || rpcErr.Code != -32001 || !strings.Contains(rpcErr.Message, "did not answer within 2s") {
		t.Fatalf("hang under call_timeout: got %v after %v, want a -32001 error from the gateway", err, time.Since(start))
	}
	if _, err := serverLog.WaitMatch(regexp.MustCompile(`crashy: hang gw cancelled`), nil, startTimeout); err != nil {
		t.Errorf("the server never heard the gateway's cancellation: %v", err)
	}

	// The client's own timeout, well inside the gateway's.
	clientCtx, cancelClient := context.WithTimeout(ctx, 300*time.Millisecond)
	defer cancelClient()
	if _, err := cs.CallTool(clientCtx, &mcp.CallToolParams{Name: "hang", Arguments: map[string]any{"text": "client"}}); err == nil {
		t.Fatal("hang with a client deadline: no error")
	}
	if _, err := serverLog.WaitMatch(regexp.MustCompile(`crashy: hang client cancelled`), nil, startTimeout); err != nil {
		t.Errorf("the server never heard the client's cancellation: %v", err)
	}

	// The session goes on.
	if res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "echo", Arguments: map[string]any{"text": "still here"}}); err != nil || !strings.Contains(string(mustJSON(res.Content)), "still here") {
		t.Fatalf("echo after the timeouts: %v %+v", err, res)
	}

	// Each hang has exactly one outcome, already before the session ends.
	want := map[string]string{`"gw"`: store.OutcomeTimeout, `"client"`: store.OutcomeCancelled}
	in.WaitEvents(t, func(events []store.Event) error {
		ci := indexCalls(events)
		reqs := ci.requests(store.FromClient, "tools/call", "hang")
		if len(reqs) != 2 {
			return fmt.Errorf("%d hang requests recorded, want 2", len(reqs))
		}
		for _, req := range reqs {
			var n int
			var got string
			for _, ev := range events {
				if ev.Kind == store.KindCall && ev.Call == req.Seq {
					n++
					got = ev.Outcome
				}
			}
			text := string(mustJSON(req.Params))
			for marker, outcome := range want {
				if strings.Contains(text, `"text":`+marker) && (n != 1 || got != outcome) {
					return fmt.Errorf("hang %s: %d outcomes, last %q; want exactly one %q", marker, n, got, outcome)
				}
			}
		}
		return nil
	}, "--tool", "hang")
}
