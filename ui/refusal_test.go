package ui

import (
	"testing"

	"github.com/mcptrail/mcptrail/store"
)

// A refusal shows as one in the timeline: its kind and what was refused.
func TestRefusalRow(t *testing.T) {
	ev := &store.Event{Kind: store.KindRefusal, Detail: "unknown token",
		Refusal: &store.Refusal{Reason: "auth", Status: 401, RemoteAddr: "192.0.2.7"}}
	if got := kindLabel(ev); got != "refused" {
		t.Errorf("kindLabel = %q", got)
	}
	if got, want := eventSummary(ev), "401 auth from 192.0.2.7: unknown token"; got != want {
		t.Errorf("eventSummary = %q, want %q", got, want)
	}
}
