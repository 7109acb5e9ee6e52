package store

import (
	"path/filepath"
	"testing"
)

// A collected request is another gateway's call in flight: never one a
// crash of this store's daemon interrupted.
func TestCollectedRequestsAreNotOpenCalls(t *testing.T) {
	s, err := Open(filepath.Join(t.TempDir(), "c.db"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := s.Append(&Event{Kind: KindRequest, Method: "tools/call", Origin: &Origin{Store: "o", Seq: 7, Hash: "ab"}}); err != nil {
		t.Fatal(err)
	}
	own, err := s.Append(&Event{Kind: KindRequest, Method: "tools/call"})
	if err != nil {
		t.Fatal(err)
	}
	open, err := s.OpenCalls()
	if err != nil {
		t.Fatal(err)
	}
	if len(open) != 1 || open[0].Seq != own {
		t.Fatalf("open calls: %+v", open)
	}
}

func TestOriginStatesRoundTrip(t *testing.T) {
	s, err := Open(filepath.Join(t.TempDir(), "c.db"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if got, through, err := s.Origins().Load(); err != nil || len(got) != 0 || through != 0 {
		t.Fatalf("empty: %v %d %v", got, through, err)
	}
	want := OriginState{Store: "o1", Host: "h", Key: "k", Seq: 9, Hash: "ab", Checkpoint: 5, NoteHash: "cd", First: 1}
	if err := s.Origins().Save([]OriginState{want}, 42); err != nil {
		t.Fatal(err)
	}
	got, through, err := s.Origins().Load()
	if err != nil || got["o1"] != want || through != 42 {
		t.Fatalf("got %+v %d %v", got, through, err)
	}
	if err := s.Origins().Save([]OriginState{{}}, 1); err == nil {
		t.Fatal("an origin without an id saved")
	}
}
