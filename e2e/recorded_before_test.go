package e2e

import (
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// TestRecordedBeforeForward: in strict durability a request is in the record
// before the server gets it. The recordcheck server (testdata/recordcheck)
// looks itself, from inside the call, with `mcptrail export`; a string no
// call sends is the control that shows the check can come out false.
func TestRecordedBeforeForward(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name    string
		connect func(t *testing.T, in *Instance) mcp.Transport
	}{
		{"wrap", func(t *testing.T, in *Instance) mcp.Transport {
			// Strict is wrap's default durability (docs/recording.md).
			transport, _ := in.Wrap(t, WrapOptions{Name: "rc"}, binary(t, "recordcheck"))
			return transport
		}},
		{"serve-stdio", func(t *testing.T, in *Instance) mcp.Transport {
			d := in.Serve(t, "--durability", "strict", "--upstream", "rc=stdio:"+binary(t, "recordcheck"))
			return &mcp.StreamableClientTransport{Endpoint: d.Endpoint("rc")}
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			ctx := scenarioContext(t)
			client := mcp.NewClient(&mcp.Implementation{Name: "recordcheck-client", Version: "1.0.0"}, nil)

			in := newInstance(t)
			cs := connect(t, ctx, client, c.connect(t, in), nil)
			for i := range 3 {
				out, isErr := checkRecorded(t, cs, fmt.Sprint(i))
				if isErr {
					t.Fatalf("call %d: check_recorded failed (see its message above)", i)
				}
				if !out.Recorded || out.ControlRecorded || out.OutcomeRecorded {
					t.Errorf("call %d: when the server got the request, the record said %+v; want recorded, no control string, no outcome yet", i, out)
				}
			}
		})
	}
}

type recordCheck struct {
	Recorded        bool `json:"recorded"`
	ControlRecorded bool `json:"control_recorded"`
	OutcomeRecorded bool `json:"outcome_recorded"`
	Events          int  `json:"events"`
}

// checkRecorded calls check_recorded with a fresh marker. isErr reports a tool
// error (logged), e.g. when export failed.
func checkRecorded(t *testing.T, cs *mcp.ClientSession, tag string) (out recordCheck, isErr bool) {
	t.Helper()
	res, err := cs.CallTool(t.Context(), &mcp.CallToolParams{Name: "check_recorded", Arguments: map[string]any{
		"marker": fmt.Sprintf("marker-%s-%d", tag, time.Now().UnixNano()),
	}})
	if err != nil {
		t.Fatalf("check_recorded: %v", err)
	}
	if res.IsError {
		t.Logf("check_recorded: tool error: %s", mustJSON(res.Content))
		return out, true
	}
	if err := json.Unmarshal(mustJSON(res.StructuredContent), &out); err != nil {
		t.Fatalf("check_recorded: structured content %s: %v", mustJSON(res.StructuredContent), err)
	}
	return out, false
}
