package store

import (
	"bytes"
	"errors"
	"path/filepath"
	"strings"
	"testing"
)

func TestRollbackBuckets(t *testing.T) {
	path := filepath.Join(t.TempDir(), "rb.db")
	st, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.Rollback().Prestate(1); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Prestate of nothing: %v", err)
	}
	data := []byte(strings.Repeat(`{"file":{"exists":true,"text":"hello"}}`, 100))
	ref, err := st.Rollback().PutPrestate(3, data)
	if err != nil || ref != PrestateRef(data) || !strings.HasPrefix(ref, "sha256:") {
		t.Fatalf("PutPrestate: %q %v", ref, err)
	}
	for _, id := range []string{"01A", "01B", "01C"} {
		if err := st.Rollback().PutPlan(id, []byte(`{"plan":"`+id+`"}`)); err != nil {
			t.Fatal(err)
		}
	}
	if prev, err := st.Rollback().MarkReverted(3, "01A 1"); err != nil || prev != "" {
		t.Fatalf("first mark: %q %v", prev, err)
	}
	if prev, err := st.Rollback().MarkReverted(3, "01B 1"); err != nil || prev != "01A 1" {
		t.Fatalf("second mark must not win: %q %v", prev, err)
	}
	st.Close()

	ro, err := Open(path, Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer ro.Close()
	got, err := ro.Rollback().Prestate(3)
	if err != nil || string(got) != string(data) {
		t.Fatalf("Prestate: %v", err)
	}
	plans, err := ro.Rollback().Plans(2)
	if err != nil || len(plans) != 2 || string(plans[0]) != `{"plan":"01C"}` {
		t.Fatalf("Plans newest first: %q %v", plans, err)
	}
	if p, err := ro.Rollback().Plan("01B"); err != nil || string(p) != `{"plan":"01B"}` {
		t.Fatalf("Plan: %q %v", p, err)
	}
	if _, err := ro.Rollback().Plan("nope"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("missing plan: %v", err)
	}
	rev, err := ro.Rollback().Reverted([]uint64{3, 4})
	if err != nil || len(rev) != 1 || rev[3] != "01A 1" {
		t.Fatalf("Reverted: %v %v", rev, err)
	}
	if err := ro.Rollback().PutPlan("x", nil); !errors.Is(err, ErrReadOnly) {
		t.Fatalf("read-only PutPlan: %v", err)
	}
}

// The rollback queue is bounded — MaxMarks marks of at most MaxMarkBytes —
// and a refused change changes nothing; what it holds outlives the store's
// process and a read-only open reads it.
func TestMarksBoundedAndKept(t *testing.T) {
	path := filepath.Join(t.TempDir(), "rb.db")
	st, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Rollback().SetMarks(map[uint64][]byte{1: bytes.Repeat([]byte("x"), MaxMarkBytes+1)}, nil); err == nil {
		t.Fatal("a mark over MaxMarkBytes was kept")
	}
	if err := st.Rollback().SetMarks(map[uint64][]byte{0: []byte(`{}`)}, nil); err == nil {
		t.Fatal("a mark of call 0 was kept")
	}
	full := map[uint64][]byte{}
	for i := uint64(1); i <= MaxMarks; i++ {
		full[i] = []byte(`{"Seq":1}`)
	}
	if err := st.Rollback().SetMarks(full, nil); err != nil {
		t.Fatal(err)
	}
	if err := st.Rollback().SetMarks(map[uint64][]byte{MaxMarks + 1: []byte(`{"Seq":2}`)}, []uint64{}); !errors.Is(err, ErrTooManyMarks) {
		t.Fatalf("mark %d: %v, want ErrTooManyMarks", MaxMarks+1, err)
	}
	// Room made in the same change is room.
	if err := st.Rollback().SetMarks(map[uint64][]byte{MaxMarks + 1: []byte(`{"Seq":2}`)}, []uint64{1, 2}); err != nil {
		t.Fatal(err)
	}
	st.Close()
	ro, err := Open(path, Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer ro.Close()
	marks, err := ro.Rollback().Marks()
	if err != nil || len(marks) != MaxMarks-1 || string(marks[len(marks)-1]) != `{"Seq":2}` {
		t.Fatalf("%d marks kept (%v), want %d ending with the newest", len(marks), err, MaxMarks-1)
	}
	if err := ro.Rollback().SetMarks(nil, []uint64{3}); !errors.Is(err, ErrReadOnly) {
		t.Fatalf("read-only SetMarks: %v", err)
	}
}
