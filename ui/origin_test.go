package ui

import (
	"testing"
	"time"

	"github.com/mcptrail/mcptrail/store"
)

// origin:HOST (or a store id) narrows a central store's sessions and
// events to one origin; a local session matches no origin filter.
func TestOriginFilter(t *testing.T) {
	f, err := ParseFilter("origin:laptop-7 agent:bot", Filter{})
	if err != nil {
		t.Fatal(err)
	}
	if f.Origin != "laptop-7" || f.String() != "agent:bot origin:laptop-7" {
		t.Fatalf("filter %+v %q", f, f.String())
	}
	now := time.Now()
	laptop := &store.SessionSummary{Agent: &store.Agent{ID: "bot"}, Origin: &store.Origin{Store: "01A", Host: "laptop-7"}}
	ci := &store.SessionSummary{Agent: &store.Agent{ID: "bot"}, Origin: &store.Origin{Store: "01B", Host: "ci-3"}}
	local := &store.SessionSummary{Agent: &store.Agent{ID: "bot"}}
	if !f.MatchSession(laptop, now) || f.MatchSession(ci, now) || f.MatchSession(local, now) {
		t.Fatal("origin filter on sessions")
	}
	if byID, _ := ParseFilter("origin:01B", Filter{}); !byID.MatchSession(ci, now) {
		t.Fatal("origin by store id")
	}
	if q := f.Apply(store.Query{}, now); q.Origin != "laptop-7" {
		t.Fatalf("query %+v", q)
	}
	if cleared, _ := ParseFilter("-origin", f); cleared.Origin != "" {
		t.Fatal("-origin")
	}
}
