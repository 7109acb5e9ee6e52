package daemon

import (
	"io"
	"log/slog"
	"testing"

	"github.com/mcptrail/mcptrail/config"
	"github.com/mcptrail/mcptrail/store"
)

// startQuiet starts a daemon on loopback ports with its log discarded.
func startQuiet(t testing.TB, durability string) *Daemon {
	t.Helper()
	cfg := config.Default()
	cfg.Listen, cfg.SSH, cfg.Durability = "127.0.0.1:0", "127.0.0.1:0", durability
	d, err := start(Options{Config: cfg, Home: t.TempDir(), Version: "v-test", Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.close() })
	return d
}

func note(method string) *store.Event {
	return &store.Event{Kind: store.KindNotification, Session: "s", From: store.FromServer, Method: method}
}

// A record nobody waits for lingers for the next request's batch, but not
// for ever: with no request after it, it still reaches the store, in order.
func TestClientLingeringRecordsArrive(t *testing.T) {
	d := startQuiet(t, "strict")
	events, stop := d.store.Subscribe(16)
	defer stop()
	c, err := Dial(d.paths.Home)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for _, m := range []string{"notifications/a", "notifications/b"} {
		if seq, err := c.Record(note(m), false); err != nil || seq != 0 {
			t.Fatalf("Record(%s) = %d, %v", m, seq, err)
		}
	}
	for _, want := range []string{"notifications/a", "notifications/b"} {
		ev, ok := <-events
		if !ok || ev.Method != want {
			t.Fatalf("got %+v (open %v), want %s", ev, ok, want)
		}
	}
}

// Records still queued when a wrap hangs up are sent first, and a request
// takes the records before it along, in order.
func TestClientCloseSendsLingeringRecords(t *testing.T) {
	d := startQuiet(t, "strict")
	c, err := Dial(d.paths.Home)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Record(note("notifications/before"), false); err != nil {
		t.Fatal(err)
	}
	seq, err := c.Record(&store.Event{Kind: store.KindRequest, Session: "s", From: store.FromClient, Method: "tools/call", Tool: "x"}, true)
	if err != nil {
		t.Fatal(err)
	}
	if prev, err := d.store.Get(seq - 1); err != nil || prev.Method != "notifications/before" {
		t.Fatalf("before the request (seq %d): %+v, %v", seq, prev, err)
	}
	if _, err := c.Record(note("notifications/last"), false); err != nil {
		t.Fatal(err)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	d.store.Flush() // the daemon appended it without waiting
	if last, err := d.store.Get(seq + 1); err != nil || last.Method != "notifications/last" {
		t.Fatalf("after Close: %+v, %v", last, err)
	}
}
