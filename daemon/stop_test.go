package daemon

import (
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"testing"

	"github.com/mcptrail/mcptrail/internal/testkit"
	"github.com/mcptrail/mcptrail/store"
)

// When the daemon has stopped (what `mcptrail stop` waits for), its file
// sink holds every event the store committed, including the ones appended
// without waiting just before the stop.
func TestStopDeliversEveryCommittedEventToTheFileSink(t *testing.T) {
	d, _, sinkFile := startWithFileSink(t)
	for i := range 2000 {
		ev := store.Event{Session: "s1", Kind: store.KindNotification, From: store.FromServer, Method: "notifications/progress", Detail: string(rune('a' + i%26))}
		if _, err := d.Record(&ev, false); err != nil { // as outcomes are: not waited for
			t.Fatal(err)
		}
	}
	d.Shutdown()
	if err := d.close(); err != nil {
		t.Fatal(err)
	}
	if last := checkSinkHasEverything(t, d.paths.DB, sinkFile); last < 2000 {
		t.Fatalf("the store committed %d events, want at least 2000", last)
	}
}

// A wrap still connected to the socket keeps recording while the daemon
// stops: what it manages to record is in the sink too, and what it
// records after the sinks drained is refused, not committed behind them.
func TestStopDeliversWhatASocketClientRecordedDuringTheStop(t *testing.T) {
	d, home, sinkFile := startWithFileSink(t)
	c, err := Dial(home)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	recorded := make(chan int)
	go func() {
		n := 0
		defer func() { recorded <- n }()
		for {
			ev := store.Event{Session: "wrap-1", Kind: store.KindNotification, From: store.FromServer, Method: "notifications/progress"}
			if _, err := c.Record(&ev, n%2 == 0); err != nil {
				return
			}
			n++
			if n == 200 {
				d.Shutdown() // what `mcptrail stop` asks
				go d.close()
			}
		}
	}()
	if n := <-recorded; n < 200 {
		t.Fatalf("recorded only %d events", n)
	}
	if err := WaitStopped(home); err != nil {
		t.Fatal(err)
	}
	checkSinkHasEverything(t, d.paths.DB, sinkFile)
}

// startWithFileSink starts a strict daemon in a new home whose one sink is
// a JSON-lines file.
func startWithFileSink(t *testing.T) (d *Daemon, home, sinkFile string) {
	t.Helper()
	home = t.TempDir()
	sinkFile = filepath.Join(t.TempDir(), "out.jsonl")
	cfg := strictConfig()
	cfg.Sinks = []string{"file://" + sinkFile + "?format=jsonl"}
	d, err := start(Options{Config: cfg, Home: home, Version: "test", Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	return d, home, sinkFile
}

// checkSinkHasEverything checks that the file sink holds every event the
// store at db committed.
func checkSinkHasEverything(t *testing.T, db, sinkFile string) (last uint64) {
	t.Helper()
	st, err := store.Open(db, store.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	last = st.Last()
	st.Close()
	data, err := os.ReadFile(sinkFile)
	if err != nil {
		t.Fatal(err)
	}
	seen := testkit.SinkSeqs(t, data)
	for seq := uint64(1); seq <= last; seq++ {
		if !seen[seq] {
			t.Fatalf("the file sink lacks committed event %d of %d (has %d)", seq, last, len(seen))
		}
	}
	return last
}
