package store

import (
	"path/filepath"
	"testing"
)

func TestCursorSurvivesReopen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "c.db")
	s, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if seq, err := s.Cursors().Get("siem/a"); err != nil || seq != 0 {
		t.Fatalf("unset cursor = %d, %v; want 0, nil", seq, err)
	}
	if err := s.Cursors().Set("siem/a", 42); err != nil {
		t.Fatal(err)
	}
	if err := s.Cursors().Set("siem/b", 7); err != nil {
		t.Fatal(err)
	}
	if err := s.Cursors().Set("", 1); err == nil {
		t.Fatal("empty cursor name accepted")
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	ro, err := Open(path, Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer ro.Close()
	if seq, err := ro.Cursors().Get("siem/a"); err != nil || seq != 42 {
		t.Fatalf("cursor after reopen = %d, %v; want 42", seq, err)
	}
	all, err := ro.Cursors().All()
	if err != nil || len(all) != 2 || all["siem/b"] != 7 {
		t.Fatalf("Cursors() = %v, %v", all, err)
	}
	if err := ro.Cursors().Set("siem/a", 1); err != ErrReadOnly {
		t.Fatalf("Cursors().Set on a read-only store: %v, want ErrReadOnly", err)
	}
}
