package store

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

func openStore(t testing.TB, path string, opts Options) *Store {
	t.Helper()
	s, err := Open(path, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil && !errors.Is(err, ErrClosed) {
			t.Error(err)
		}
	})
	return s
}

func tempStore(t testing.TB, opts Options) *Store {
	return openStore(t, filepath.Join(t.TempDir(), "state", "mcptrail.db"), opts)
}

func call(session, tool string) *Event {
	return &Event{
		Kind: KindRequest, From: FromClient, Session: session, Upstream: "fs", Method: "tools/call", Tool: tool,
		Agent:  &Agent{ID: "agent-1", ClientName: "claude-code"},
		Params: json.RawMessage(`{"name": "` + tool + `", "arguments": {"path": "/tmp/<x>"}}`),
	}
}

func mustAppend(t testing.TB, s *Store, ev *Event) uint64 {
	t.Helper()
	seq, err := s.Append(ev)
	if err != nil {
		t.Fatal(err)
	}
	return seq
}

func mustVerify(t testing.TB, s *Store, events uint64) {
	t.Helper()
	r, err := s.Verify()
	if err != nil {
		t.Fatal(err)
	}
	if want := (VerifyResult{OK: true, Events: events}); r != want {
		t.Fatalf("Verify = %+v, want %+v", r, want)
	}
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	data, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, data, 0o600); err != nil {
		t.Fatal(err)
	}
}

func TestAppendAssignsFieldsAndReopenContinuesChain(t *testing.T) {
	path := filepath.Join(t.TempDir(), "a", "b", "mcptrail.db")
	s := openStore(t, path, Options{})
	prev := strings.Repeat("0", 64)
	for i := 1; i <= 3; i++ {
		ev := call("s1", "read_file")
		if seq := mustAppend(t, s, ev); seq != uint64(i) || ev.Seq != uint64(i) {
			t.Fatalf("append %d: seq %d, ev.Seq %d", i, seq, ev.Seq)
		}
		if len(ev.ID) != 26 || ev.Time.IsZero() || ev.Time.Location() != time.UTC {
			t.Fatalf("ID %q Time %v not assigned", ev.ID, ev.Time)
		}
		if ev.PrevHash != prev || len(ev.Hash) != 64 {
			t.Fatalf("seq %d: prev_hash %s (want %s), hash %q", i, ev.PrevHash, prev, ev.Hash)
		}
		prev = ev.Hash
		got, err := s.Get(ev.Seq)
		if err != nil {
			t.Fatal(err)
		}
		if got.Hash != ev.Hash || got.ID != ev.ID || !got.Time.Equal(ev.Time) {
			t.Fatalf("Get(%d) = %+v, appended %+v", i, got, ev)
		}
	}
	if s.Last() != 3 {
		t.Fatalf("Last = %d", s.Last())
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	s = openStore(t, path, Options{})
	if s.Last() != 3 {
		t.Fatalf("reopened Last = %d", s.Last())
	}
	ev := &Event{Kind: KindNotification, ID: "caller-id", Time: time.Date(2026, 5, 1, 12, 0, 0, 5, time.FixedZone("x", 3600))}
	if seq := mustAppend(t, s, ev); seq != 4 || ev.PrevHash != prev {
		t.Fatalf("after reopen: seq %d prev %s, want 4 %s", seq, ev.PrevHash, prev)
	}
	if ev.ID != "caller-id" || ev.Time.Location() != time.UTC || ev.Time.Hour() != 11 {
		t.Fatalf("caller's ID/Time not kept (as UTC): %q %v", ev.ID, ev.Time)
	}
	mustVerify(t, s, 4)
}

// The stored bytes are json.Marshal of the sealed event, and decoding them
// gives back what Append recorded: raw JSON compacted as Marshal writes it.
func TestStoredFormIsMarshal(t *testing.T) {
	s := tempStore(t, Options{})
	yes := true
	ev := call("s1", "write_file")
	ev.JSONRPCID = json.RawMessage(" 7 ")
	ev.Result = json.RawMessage("null")
	ev.Error = json.RawMessage("  ")
	ev.Principal = &Principal{Subject: "alice", Verified: true}
	ev.Task = &Task{ID: "t1", TraceID: "abc"}
	ev.Authorization = &Authorization{Reviewed: true, Approver: "bob", Time: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	ev.Annotations = &Annotations{Destructive: &yes}
	ev.Detail = "bad \xff utf8 is replaced"
	ev.Principal.Issuer = "ok \ufffd"
	var recorded Event
	ch, _ := s.Subscribe(1)
	mustAppend(t, s, ev)
	recorded = <-ch

	var stored []byte
	if err := s.view(func(tx *bolt.Tx) error {
		stored = append([]byte(nil), tx.Bucket(bEvents).Get(u64(1))...)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	got, err := s.Get(1)
	if err != nil {
		t.Fatal(err)
	}
	// The stored JSON (schema 2: seq 0, no hashes) is Marshal of the event
	// as read back, so Verify's re-marshal hashes what was hashed.
	st, err := parseStored(stored)
	if err != nil {
		t.Fatal(err)
	}
	lean := *got
	lean.Seq, lean.PrevHash, lean.Hash = 0, "", ""
	again, _ := json.Marshal(&lean)
	if string(again) != string(st.json) {
		t.Fatalf("stored\n%s\nre-marshaled\n%s", st.json, again)
	}
	if string(got.Params) != `{"name":"write_file","arguments":{"path":"/tmp/\u003cx\u003e"}}` || string(got.JSONRPCID) != "7" || got.Error != nil {
		t.Fatalf("raw fields not compacted: params %s id %s error %q", got.Params, got.JSONRPCID, got.Error)
	}
	if !reflect.DeepEqual(&recorded, got) {
		t.Fatalf("recorded\n%+v\nread back\n%+v", recorded, *got)
	}
	mustVerify(t, s, 1)
}

func TestAppendRejectsInvalidJSON(t *testing.T) {
	s := tempStore(t, Options{})
	ev := call("s1", "x")
	ev.Params = json.RawMessage(`{"a":`)
	if _, err := s.Append(ev); err == nil || ev.Seq != 0 {
		t.Fatalf("Append with invalid params: err %v, seq %d", err, ev.Seq)
	}
	if seq := mustAppend(t, s, call("s1", "x")); seq != 1 {
		t.Fatalf("seq after rejected event = %d, want 1", seq)
	}
}

func TestCallerMayReuseEvent(t *testing.T) {
	s := tempStore(t, Options{Durability: DurabilityBatch, BatchWindow: time.Hour})
	ev := call("s1", "x")
	if _, err := s.Append(ev); err != nil {
		t.Fatal(err)
	}
	ev.Agent.ID = "changed"
	ev.Params[2] = 'X'
	if err := s.Flush(); err != nil {
		t.Fatal(err)
	}
	got, err := s.Get(1)
	if err != nil {
		t.Fatal(err)
	}
	if got.Agent.ID != "agent-1" || !strings.HasPrefix(string(got.Params), `{"name"`) {
		t.Fatalf("stored event changed with the caller's: %+v %s", got.Agent, got.Params)
	}
	sum, err := s.Session("s1")
	if err != nil || sum.Agent.ID != "agent-1" {
		t.Fatalf("summary agent %+v, %v", sum, err)
	}
}

func TestReadOnly(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "live.db")
	s := openStore(t, path, Options{})
	for range 5 {
		mustAppend(t, s, call("s1", "x"))
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	evidence := filepath.Join(dir, "evidence.db")
	copyFile(t, path, evidence)
	os.Chmod(evidence, 0o444)

	ro := openStore(t, evidence, Options{ReadOnly: true})
	if _, err := ro.Append(call("s1", "x")); !errors.Is(err, ErrReadOnly) {
		t.Fatalf("Append on read-only store: %v", err)
	}
	if err := ro.Flush(); err != nil {
		t.Fatal(err)
	}
	if ro.Last() != 5 || ro.Stats().Events != 5 || ro.Stats().Durability != "read-only" {
		t.Fatalf("Last %d Stats %+v", ro.Last(), ro.Stats())
	}
	p, err := ro.Query(Query{Tool: "x"})
	if err != nil || len(p.Events) != 5 {
		t.Fatalf("Query: %d events, %v", len(p.Events), err)
	}
	mustVerify(t, ro, 5)
	if r, err := Verify(path); err != nil || !r.OK {
		t.Fatalf("Verify(path) = %+v, %v", r, err)
	}
	if fi, _ := os.Stat(evidence); fi.Mode().Perm() != 0o444 {
		t.Fatalf("read-only open changed the evidence file's mode to %v", fi.Mode())
	}

	_, err = Open(filepath.Join(dir, "missing.db"), Options{ReadOnly: true})
	if !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("read-only open of a missing file: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "missing.db")); !errors.Is(err, fs.ErrNotExist) {
		t.Fatal("read-only open created the file")
	}
}

func TestLocked(t *testing.T) {
	s := tempStore(t, Options{})
	for _, opts := range []Options{{Timeout: 20 * time.Millisecond}, {ReadOnly: true, Timeout: 20 * time.Millisecond}} {
		_, err := Open(s.Path(), opts)
		if !errors.Is(err, ErrLocked) {
			t.Fatalf("Open(%+v) of a store open elsewhere: %v", opts, err)
		}
	}
	if _, err := Verify(s.Path()); !errors.Is(err, ErrLocked) {
		t.Fatalf("Verify(path) of a store open elsewhere: %v", err)
	}
}

func TestOpenRejectsUnknownDurability(t *testing.T) {
	if _, err := Open(filepath.Join(t.TempDir(), "x.db"), Options{Durability: "fast"}); err == nil {
		t.Fatal("no error for durability fast")
	}
}

func TestFileMode(t *testing.T) {
	old := syscall.Umask(0)
	defer syscall.Umask(old)
	dir := filepath.Join(t.TempDir(), "home")
	path := filepath.Join(dir, "mcptrail.db")
	s := openStore(t, path, Options{})
	mustAppend(t, s, call("s1", "x"))
	for p, want := range map[string]fs.FileMode{path: 0o600, walPath(path): 0o600, dir: 0o700} {
		if fi, err := os.Stat(p); err != nil || fi.Mode().Perm() != want {
			t.Fatalf("%s: mode %v, %v; want %v", p, fi.Mode().Perm(), err, want)
		}
	}
	s.Close()

	// A file someone loosened is tightened by the next writable open.
	for _, p := range []string{path, walPath(path)} {
		if err := os.Chmod(p, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	openStore(t, path, Options{})
	for _, p := range []string{path, walPath(path)} {
		if fi, _ := os.Stat(p); fi.Mode().Perm() != 0o600 {
			t.Fatalf("reopened %s: mode %v", p, fi.Mode().Perm())
		}
	}
}

func appendConcurrently(t *testing.T, s *Store, goroutines, each int) {
	t.Helper()
	var wg sync.WaitGroup
	seqs := make(chan uint64, goroutines*each)
	for g := range goroutines {
		wg.Go(func() {
			for i := range each {
				seq, err := s.Append(call(fmt.Sprintf("s%d", g), fmt.Sprintf("t%d", i%3)))
				if err != nil {
					t.Error(err)
					return
				}
				seqs <- seq
			}
		})
	}
	wg.Wait()
	close(seqs)
	seen := map[uint64]bool{}
	for seq := range seqs {
		if seen[seq] || seq < 1 || seq > uint64(goroutines*each) {
			t.Fatalf("seq %d duplicated or out of range", seq)
		}
		seen[seq] = true
	}
	if len(seen) != goroutines*each {
		t.Fatalf("%d seqs, want %d", len(seen), goroutines*each)
	}
}

func TestConcurrentAppend(t *testing.T) {
	for _, mode := range []string{DurabilityStrict, DurabilityBatch} {
		t.Run(mode, func(t *testing.T) {
			s := tempStore(t, Options{Durability: mode})
			const goroutines, each = 32, 40
			appendConcurrently(t, s, goroutines, each)
			if err := s.Flush(); err != nil {
				t.Fatal(err)
			}
			mustVerify(t, s, goroutines*each)
			st := s.Stats()
			if st.Events != goroutines*each || st.Pending != 0 || st.Durability != mode || st.FileBytes == 0 || st.Failed != 0 {
				t.Fatalf("Stats = %+v", st)
			}
			t.Logf("%s: %d events in %d commits", mode, st.Events, st.Commits)
			for g := range goroutines {
				sum, err := s.Session(fmt.Sprintf("s%d", g))
				if err != nil || sum.Calls != each || sum.Events != each {
					t.Fatalf("session s%d: %+v, %v", g, sum, err)
				}
			}
		})
	}
}

// With an endless window, batches are cut by MaxBatch and Flush only.
func TestBatchCommitsAtMaxBatchAndFlush(t *testing.T) {
	s := tempStore(t, Options{Durability: DurabilityBatch, BatchWindow: time.Hour, MaxBatch: 10})
	for i := 1; i <= 25; i++ {
		if seq, err := s.Append(call("s1", "x")); err != nil || seq != uint64(i) {
			t.Fatalf("append %d: %d, %v", i, seq, err)
		}
	}
	if err := s.Flush(); err != nil {
		t.Fatal(err)
	}
	if st := s.Stats(); st.Commits != 3 || st.Events != 25 || st.Pending != 0 {
		t.Fatalf("Stats = %+v, want 3 commits of 25 events", st)
	}
	if err := s.Flush(); err != nil { // nothing pending
		t.Fatal(err)
	}
	mustVerify(t, s, 25)
}

func TestBatchWindowCommitsWithoutFlush(t *testing.T) {
	s := tempStore(t, Options{Durability: DurabilityBatch, BatchWindow: time.Millisecond})
	ch, cancel := s.Subscribe(4)
	defer cancel()
	mustAppend(t, s, call("s1", "x"))
	select {
	case ev := <-ch:
		if ev.Seq != 1 {
			t.Fatalf("got seq %d", ev.Seq)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("batch window passed and nothing was committed")
	}
}

func TestAppendNoWait(t *testing.T) {
	s := tempStore(t, Options{})
	ch, cancel := s.Subscribe(4)
	defer cancel()
	seq, err := s.AppendNoWait(call("s1", "x"))
	if err != nil || seq != 1 {
		t.Fatalf("AppendNoWait = %d, %v", seq, err)
	}
	// A strict store commits it without being asked.
	if ev := <-ch; ev.Seq != 1 {
		t.Fatalf("got seq %d", ev.Seq)
	}
}

func failCommits(s *Store, err error) { FailCommits(s, err) }

func TestCommitFailureStrict(t *testing.T) {
	s := tempStore(t, Options{})
	first := call("s1", "x")
	mustAppend(t, s, first)

	boom := errors.New("disk on fire")
	failCommits(s, boom)
	ev := call("s1", "y")
	if _, err := s.Append(ev); !errors.Is(err, boom) {
		t.Fatalf("Append during failure: %v", err)
	}
	if ev.Seq != 0 || ev.Hash != "" {
		t.Fatalf("failed event was given seq %d hash %q", ev.Seq, ev.Hash)
	}
	if s.Last() != 1 {
		t.Fatalf("Last after failure = %d, want 1", s.Last())
	}
	s.failHook.Store(nil)

	ev = call("s1", "z")
	if seq := mustAppend(t, s, ev); seq != 2 || ev.PrevHash != first.Hash {
		t.Fatalf("after failure: seq %d prev %s, want 2 %s", seq, ev.PrevHash, first.Hash)
	}
	// The commit that succeeded queued the outage's alert after z. Flush
	// commits it, and reports the failure since the last Flush.
	if err := s.Flush(); !errors.Is(err, boom) {
		t.Fatalf("Flush = %v, want the failed commit's error", err)
	}
	mustVerify(t, s, 3)
	if alert, err := s.Get(3); err != nil || alert.Kind != KindAlert || alert.Method != "mcptrail/store_outage" {
		t.Fatalf("event 3 = %+v, %v; want the outage alert", alert, err)
	}
	if st := s.Stats(); st.Failed != 1 || st.Events != 3 {
		t.Fatalf("Stats = %+v", st)
	}
	if sum, _ := s.Session("s1"); sum.Events != 2 {
		t.Fatalf("failed event counted in the summary: %+v", sum)
	}
	if p, _ := s.Query(Query{Tool: "y"}); len(p.Events) != 0 {
		t.Fatalf("failed event indexed: %+v", p.Events)
	}
}

// Events queued behind a failing commit fail with it, strict waiters get
// the error, and the chain restarts from the last committed event.
func TestCommitFailureFailsEventsQueuedBehind(t *testing.T) {
	s := tempStore(t, Options{})
	mustAppend(t, s, call("s1", "ok"))
	s.Flush() // its commit out of the way: the hook below sees seq 2's

	entered, release := make(chan struct{}), make(chan error)
	hook := func() error {
		entered <- struct{}{}
		return <-release
	}
	s.failHook.Store(&hook)

	failed := make(chan error, 1)
	go func() {
		_, err := s.Append(call("s1", "in-flight"))
		failed <- err
	}()
	<-entered // the writer is inside the commit of seq 2
	for range 3 {
		if _, err := s.AppendNoWait(call("s1", "queued")); err != nil {
			t.Fatal(err)
		}
	}
	behind := make(chan error, 1)
	go func() {
		_, err := s.Append(call("s1", "queued-strict"))
		behind <- err
	}()
	for s.Stats().Pending < 5 {
		runtime.Gosched()
	}
	flushed := make(chan error, 1)
	go func() { flushed <- s.Flush() }()
	s.failHook.Store(nil)
	boom := errors.New("boom")
	release <- boom

	for name, ch := range map[string]chan error{"in-flight": failed, "queued strict": behind, "flush": flushed} {
		if err := <-ch; !errors.Is(err, boom) {
			t.Fatalf("%s: %v", name, err)
		}
	}
	if st := s.Stats(); st.Failed != 5 || st.Pending != 0 || st.Events != 1 || s.Last() != 1 {
		t.Fatalf("after failure: Last %d Stats %+v", s.Last(), st)
	}
	if seq := mustAppend(t, s, call("s1", "after")); seq != 2 {
		t.Fatalf("seq after failure = %d", seq)
	}
	mustVerify(t, s, 2)
}

func TestCommitFailureBatch(t *testing.T) {
	s := tempStore(t, Options{Durability: DurabilityBatch, BatchWindow: time.Hour, MaxBatch: 3})
	ch, _ := s.Subscribe(10)
	boom := errors.New("boom")
	failCommits(s, boom)
	for range 3 { // a full batch: the writer commits it unasked
		mustAppend(t, s, call("s1", "x"))
	}
	if err := s.Flush(); !errors.Is(err, boom) {
		t.Fatalf("Flush after a failed commit: %v", err)
	}
	if err := s.Flush(); err != nil {
		t.Fatalf("second Flush reported the failure again: %v", err)
	}
	if len(ch) != 0 {
		t.Fatal("subscriber got events that were never committed")
	}
	if st := s.Stats(); st.Failed != 3 || st.Events != 0 || s.Last() != 0 {
		t.Fatalf("Last %d Stats %+v", s.Last(), st)
	}
	s.failHook.Store(nil)
	if seq := mustAppend(t, s, call("s1", "y")); seq != 1 {
		t.Fatalf("seq after failure = %d", seq)
	}
	if err := s.Flush(); err != nil {
		t.Fatal(err)
	}
	mustVerify(t, s, 1)
	if _, err := s.Session("s1"); err != nil {
		t.Fatal(err)
	}
}

func TestSubscribe(t *testing.T) {
	s := tempStore(t, Options{Durability: DurabilityBatch})
	ch, cancel := s.Subscribe(200)
	slow, _ := s.Subscribe(1)
	for i := range 150 {
		mustAppend(t, s, call("s1", fmt.Sprint(i)))
	}
	if err := s.Flush(); err != nil {
		t.Fatal(err)
	}
	for i := range 150 {
		ev := <-ch
		stored, err := s.Get(uint64(i + 1))
		if err != nil {
			t.Fatal(err)
		}
		if ev.Seq != uint64(i+1) || ev.Hash == "" || ev.Hash != stored.Hash {
			t.Fatalf("event %d: seq %d hash %q, want the stored %q", i, ev.Seq, ev.Hash, stored.Hash)
		}
	}
	// The slow subscriber was dropped, not waited for.
	n := 0
	for range slow {
		n++
	}
	if n > 1 {
		t.Fatalf("slow subscriber got %d events with a buffer of 1", n)
	}
	cancel()
	cancel()
	if _, ok := <-ch; ok {
		t.Fatal("channel open after cancel")
	}

	last, _ := s.Subscribe(1)
	s.Close()
	if _, ok := <-last; ok {
		t.Fatal("channel open after Close")
	}
	if after, _ := s.Subscribe(1); after != nil {
		if _, ok := <-after; ok {
			t.Fatal("subscription after Close is open")
		}
	}
}

func TestCloseCommitsQueued(t *testing.T) {
	path := filepath.Join(t.TempDir(), "mcptrail.db")
	s, err := Open(path, Options{Durability: DurabilityBatch, BatchWindow: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	for range 10 {
		mustAppend(t, s, call("s1", "x"))
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); !errors.Is(err, ErrClosed) {
		t.Fatalf("second Close: %v", err)
	}
	if _, err := s.Append(call("s1", "x")); !errors.Is(err, ErrClosed) {
		t.Fatalf("Append after Close: %v", err)
	}
	if _, err := s.Query(Query{}); !errors.Is(err, ErrClosed) {
		t.Fatalf("Query after Close: %v", err)
	}
	if err := s.Flush(); !errors.Is(err, ErrClosed) {
		t.Fatalf("Flush after Close: %v", err)
	}
	r, err := Verify(path)
	if err != nil || r != (VerifyResult{OK: true, Events: 10}) {
		t.Fatalf("after Close: %+v, %v", r, err)
	}
}

func TestEventTime(t *testing.T) {
	s := tempStore(t, Options{})
	ev := call("s1", "x")
	ev.ID = `odd,"time":"2001-01-01T00:00:00Z`
	ev.Time = time.Date(2026, 3, 4, 5, 6, 7, 890, time.UTC)
	mustAppend(t, s, ev)
	s.view(func(tx *bolt.Tx) error {
		got, ok := eventTime(tx.Bucket(bEvents).Get(u64(1)))
		if !ok || !got.Equal(ev.Time) {
			t.Errorf("eventTime = %v %v, want %v", got, ok, ev.Time)
		}
		return nil
	})
	if got, ok := eventTime([]byte(`{"kind":"x","time":"2026-01-01T00:00:00Z"}`)); !ok || got.Year() != 2026 {
		t.Errorf("fallback eventTime = %v %v", got, ok)
	}
}

// An append that does not wait for its event is not held up by a scan of
// its bodies: bodies that are not JSON are dropped by the writer, and the
// event is kept, saying so — whether the appender or the writer encodes it.
func TestAppendNoWaitDropsInvalidBodies(t *testing.T) {
	// The window holds both events in the queue, so the backlog set
	// below is what the second append sees.
	s := tempStore(t, Options{Durability: DurabilityBatch, BatchWindow: time.Hour})
	bad := call("s1", "x")
	bad.Params = json.RawMessage(`{"a":`)
	bad.Result = json.RawMessage(`{"ok":true}`)
	seq, err := s.Append(bad)
	if err != nil || seq != 1 {
		t.Fatalf("Append = %d, %v", seq, err)
	}
	bad.Params[1] = 'X' // the caller reuses its buffer
	// Under load the appender encodes its own event: the same outcome.
	s.backlog.Store(selfEncodeBacklog)
	again := call("s1", "y")
	again.Params = json.RawMessage(`[1,`)
	if _, err := s.AppendNoWait(again); err != nil {
		t.Fatal(err)
	}
	if err := s.Flush(); err != nil {
		t.Fatal(err)
	}
	for _, seq := range []uint64{1, 2} {
		got, err := s.Get(seq)
		if err != nil {
			t.Fatal(err)
		}
		if got.Params != nil || got.Result != nil || !strings.Contains(got.Detail, "bodies dropped") {
			t.Errorf("seq %d: params %s result %s detail %q", seq, got.Params, got.Result, got.Detail)
		}
	}
	mustVerify(t, s, 2)
}
