package detect

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/mcptrail/mcptrail/store"
)

// collected records a write request as a collector merges one: with the
// origin it was recorded on and that host's timestamp, and runs the engine
// on it as the collector's observer does.
func (s *scenario) collected(host string, seq uint64, agent, tool string, at time.Time) uint64 {
	s.t.Helper()
	ev := &store.Event{Kind: store.KindRequest, Time: at, Session: "sess-" + host, Upstream: "fs", From: store.FromClient,
		Method: "tools/call", Tool: tool, Class: "write", JSONRPCID: json.RawMessage(`1`), Agent: &store.Agent{ID: agent},
		Origin: &store.Origin{Store: "store-" + host, Host: host, Seq: seq, Hash: "00"}}
	central, err := s.st.Append(ev)
	if err != nil {
		s.t.Fatal(err)
	}
	s.eng.Observe(ev)
	return central
}

// A collector merges hosts' events in arrival order, and a host whose
// stream lags delivers calls older than those already counted. The write
// burst counts the fleet's calls by their time: 30 writes on the laptop
// now and 30 on a CI runner twenty minutes ago (arriving late) are not a
// burst, though 51 arrived in a row; 21 more from the runner, now, are.
// First use fires once for the fleet, whichever host is first.
func TestFleetBurstByTimeNotArrival(t *testing.T) {
	s := newScenario(t, Defaults(), weekday)
	var first uint64
	for i := range 30 {
		seq := s.collected("laptop", uint64(i+1), "bot", "write_file", weekday.Add(time.Duration(i)*time.Second))
		if i == 0 {
			first = seq
		}
	}
	s.expect("the laptop's 30 writes", id("mcp-first-tool-use", first))
	old := weekday.Add(-20 * time.Minute)
	for i := range 30 {
		s.collected("ci", uint64(i+1), "bot", "write_file", old.Add(time.Duration(i)*time.Second))
	}
	s.expect("the runner's 30 writes of 20 minutes ago, arriving late")
	var last uint64
	for i := range 21 {
		last = s.collected("ci", uint64(31+i), "bot", "write_file", weekday.Add(time.Minute+time.Duration(i)*time.Second))
	}
	s.expect("30 on the laptop and 21 on the runner within 5 minutes", id("mcp-write-burst", last))
}
