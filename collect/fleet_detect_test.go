package collect

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/mcptrail/mcptrail/detect"
	"github.com/mcptrail/mcptrail/store"
)

// writes appends n write calls by agent to st: a request and its outcome each.
func writes(t testing.TB, st *store.Store, agent, tool string, n int) {
	t.Helper()
	for i := range n {
		req := &store.Event{Kind: store.KindRequest, Session: "s-" + st.ID(), Upstream: "fs", From: store.FromClient, Method: "tools/call",
			Agent: &store.Agent{ID: agent}, Tool: tool, Class: "write", JSONRPCID: json.RawMessage(strconv.Itoa(i)),
			Params: json.RawMessage(fmt.Sprintf(`{"name":%q,"arguments":{"path":"/srv/%d"}}`, tool, i))}
		seq, err := st.Append(req)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := st.Append(&store.Event{Kind: store.KindCall, Session: req.Session, Call: seq, Outcome: store.OutcomeOK, Tool: tool,
			Agent: req.Agent, Result: json.RawMessage(`{"content":[]}`)}); err != nil {
			t.Fatal(err)
		}
	}
}

// The built-in detections run on the events the collector merges, keyed
// without their origin, so the fleet counts as one: an agent's first use
// of a tool fires once however many hosts it uses it on, and a write
// burst split across two hosts fires when the sum crosses the threshold
// (50 in 5 minutes) though neither host's share (30) does.
func TestDetectionsSpanTheFleet(t *testing.T) {
	_, url := cluster(t)
	a, b := originStore(t, "laptop"), originStore(t, "ci")
	forward(t, a, url, "laptop")
	forward(t, b, url, "ci-runner")
	central := centralStore(t, filepath.Join(t.TempDir(), "central.db"))
	defer central.Close()
	eng, err := detect.New(detect.Defaults(), central, detect.Options{})
	if err != nil {
		t.Fatal(err)
	}
	spec, err := ParseURL(url + "?group=central")
	if err != nil {
		t.Fatal(err)
	}
	c, err := Start(central, spec, Options{Keys: map[string]string{a.ID(): a.VerifierKey(), b.ID(): b.VerifierKey()}, Observe: eng.Observe})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Stop()

	// First, each host alone: 30 writes, under the threshold. The agent
	// "bot" uses write_file on the laptop first, then on the CI runner.
	writes(t, a, "bot", "write_file", 30)
	waitFor(t, "the laptop's writes", func() bool { return c.Status().Stats.Events == 60 })
	central.Flush()
	got := fired(t, central)
	if got["mcp-first-tool-use"] != 1 || got["mcp-write-burst"] != 0 {
		t.Fatalf("after one host's 30 writes: %v", got)
	}
	// The other host's share takes the fleet's sum to 60 in 5 minutes.
	writes(t, b, "bot", "write_file", 30)
	waitFor(t, "the runner's writes", func() bool { return c.Status().Stats.Events == 120 })
	central.Flush()
	got = fired(t, central)
	if got["mcp-first-tool-use"] != 1 {
		t.Fatalf("first use of write_file fired %d times across the fleet, want once: %v", got["mcp-first-tool-use"], got)
	}
	if got["mcp-write-burst"] != 1 {
		t.Fatalf("a burst of 60 writes across two hosts fired %d times, want once: %v", got["mcp-write-burst"], got)
	}
	// A tool new to the agent on the second host is a first use too.
	writes(t, b, "bot", "delete_file", 1)
	waitFor(t, "delete_file", func() bool { return c.Status().Stats.Events == 122 })
	central.Flush()
	if got = fired(t, central); got["mcp-first-tool-use"] != 2 {
		t.Fatalf("delete_file on ci-runner: %v", got)
	}
}

// fired counts the central store's detection alerts by rule id, waiting
// for none: the engine appends its alert when it observes the trigger,
// before the merger's commit that follows, so a flushed store holds it.
func fired(t testing.TB, st *store.Store) map[string]int {
	t.Helper()
	if err := st.Flush(); err != nil {
		t.Fatal(err)
	}
	out := map[string]int{}
	page, err := st.Query(store.Query{Kind: store.KindAlert, Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	for _, ev := range page.Events {
		var p struct {
			Rule struct {
				ID string `json:"id"`
			} `json:"rule"`
		}
		if json.Unmarshal(ev.Params, &p) == nil && ev.Origin == nil {
			out[p.Rule.ID]++
		}
	}
	return out
}
