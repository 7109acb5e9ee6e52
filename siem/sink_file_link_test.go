package siem

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mcptrail/mcptrail/store"
)

// A link planted where a file sink writes (the daemon may run as root) is
// refused: the send fails and names it, the target is left as it was, and
// the forwarder keeps the events to send again.
func TestFileSinkRefusesAPlantedLink(t *testing.T) {
	dir := t.TempDir()
	target := filepath.Join(t.TempDir(), "precious")
	os.WriteFile(target, []byte("keep\n"), 0o600)
	path := filepath.Join(dir, "events.jsonl")
	if err := os.Symlink(target, path); err != nil {
		t.Fatal(err)
	}
	spec, err := ParseSinkURL("file://" + path)
	if err != nil {
		t.Fatal(err)
	}
	sink, err := spec.Open(Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer sink.Close()
	err = sink.Send(context.Background(), []Item{{Event: &store.Event{Seq: 1}, Body: []byte("{}\n")}})
	if err == nil || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), "symbolic link") {
		t.Fatalf("Send through a planted link: %v", err)
	}
	if got, _ := os.ReadFile(target); string(got) != "keep\n" {
		t.Fatalf("the target was written: %q", got)
	}
}
