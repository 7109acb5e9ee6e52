package rollback

import (
	"testing"

	"github.com/mcptrail/mcptrail/ingest"
	"github.com/mcptrail/mcptrail/store"
)

// Hook is the one wiring wrap and the daemon share: it always sets
// Capture, classifies by the rules when nothing classifies yet, and keeps
// a classifier the caller already set.
func TestHookKeepsAClassifierAlreadySet(t *testing.T) {
	rules, err := Load(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	var bare ingest.Hooks
	Hook(&bare, rules, nil, nil)
	if bare.Capture == nil || bare.Classify == nil {
		t.Fatalf("on empty hooks: Capture set %v, Classify set %v; want both", bare.Capture != nil, bare.Classify != nil)
	}
	if got := bare.Classify("filesystem", "", "read_text_file", nil); got != "read" {
		t.Fatalf("the rules' class of read_text_file: %q, want read", got)
	}

	own := ingest.Hooks{Classify: func(_, _, _ string, _ *store.Annotations) string { return "mine" }}
	Hook(&own, rules, nil, nil)
	if own.Capture == nil {
		t.Fatal("Capture not set")
	}
	if got := own.Classify("filesystem", "", "read_text_file", nil); got != "mine" {
		t.Fatalf("a classifier already set was replaced: got %q", got)
	}
}
