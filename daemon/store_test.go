package daemon

import (
	"errors"
	"log/slog"
	"path/filepath"
	"testing"

	"github.com/mcptrail/mcptrail/config"
	"github.com/mcptrail/mcptrail/store"
)

func TestFailOpen(t *testing.T) {
	boom := errors.New("no space left on device")
	for _, open := range []bool{false, true} {
		cfg := config.Default()
		cfg.FailOpen = open
		d := &Daemon{opts: Options{Config: cfg}, log: slog.Default()}
		seq, err := d.failOpen(&store.Event{Kind: store.KindRequest}, 0, boom)
		if open && (err != nil || seq != 0) {
			t.Errorf("fail_open: %d, %v; want the call to go on unrecorded", seq, err)
		}
		if !open && !errors.Is(err, boom) {
			t.Errorf("fail closed: %v; want the store's error", err)
		}
		if seq, err := d.failOpen(&store.Event{}, 7, nil); seq != 7 || err != nil {
			t.Errorf("success passed through as %d, %v", seq, err)
		}
		if _, err := d.failOpen(&store.Event{}, 0, store.ErrClosed); !errors.Is(err, store.ErrClosed) {
			t.Errorf("a closed store is not an outage: %v", err)
		}
	}
}

// The daemon creates its signing key on first start, reuses it after, and
// signs checkpoints with it.
func TestOpenStoreSigns(t *testing.T) {
	home := t.TempDir()
	paths := PathsFor(home)
	cfg := config.Default()
	st, err := openStore(paths, cfg, slog.Default())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.Append(&store.Event{Kind: store.KindRequest, Session: "s"}); err != nil {
		t.Fatal(err)
	}
	st.Close()
	vkey, err := LocalVerifierKey(home)
	if err != nil {
		t.Fatal(err)
	}
	r, err := store.VerifyFile(filepath.Join(home, "mcptrail.db"), store.VerifyOptions{Keys: []string{vkey}})
	if err != nil || !r.OK || r.Checkpoints != 1 || r.Covered != 1 {
		t.Fatalf("Verify = %+v, %v", r, err)
	}
	st, err = openStore(paths, cfg, slog.Default())
	if err != nil {
		t.Fatal(err)
	}
	st.Close()
	if again, _ := LocalVerifierKey(home); again != vkey {
		t.Fatal("a second start made a new key")
	}
}
