package store

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"
)

// held opens a strict store whose logged events are not committed until a
// reader asks (the apply window follows a long batch window), so the file
// and its log can be copied as a crash would leave them.
func held(t *testing.T, path string) *Store {
	return openStore(t, path, signed(Options{BatchWindow: time.Hour, CheckpointEvery: 3}))
}

// crashImage copies the store file and its log as they are now.
func crashImage(t *testing.T, from, to string) {
	t.Helper()
	copyFile(t, from, to)
	copyFile(t, walPath(from), walPath(to))
}

// crashImageOf copies the store at path and its log beside it, as a
// crash would leave them, and checks that the copy's file alone (without
// its log) holds inFile events. It returns the copy's path.
func crashImageOf(t *testing.T, path string, inFile uint64) string {
	t.Helper()
	crashed := filepath.Join(filepath.Dir(path), "crashed.db")
	crashImage(t, path, crashed)
	ro := openStore(t, crashed, Options{ReadOnly: true})
	defer ro.Close()
	if st := ro.Stats(); st.Events != inFile {
		t.Fatalf("crash image's file holds %d events, want %d (the rest only in the log)", st.Events, inFile)
	}
	return crashed
}

// An acknowledged strict append is in the log before the file has it, and
// the next open applies it: after a crash every acknowledged event is
// there, indexed, summarized and chained.
func TestWALReplaysAcknowledgedEvents(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "mcptrail.db")
	s := held(t, path)
	mustAppend(t, s, call("s1", "first"))
	s.Flush() // committed: the log is applied up to here
	var ids []string
	for i := range 7 {
		ev := call("s1", "later")
		if i == 6 {
			ev.Tool = "last"
		}
		mustAppend(t, s, ev)
		ids = append(ids, ev.ID)
	}
	// The image's file alone has only the first event.
	crashed := crashImageOf(t, path, 1)

	c := openStore(t, crashed, signed(Options{CheckpointEvery: 3}))
	if c.Last() != 8 {
		t.Fatalf("after replay Last = %d, want 8", c.Last())
	}
	for i, id := range ids {
		ev, err := c.Get(uint64(i + 2))
		if err != nil || ev.ID != id {
			t.Fatalf("seq %d: %+v, %v (want id %s)", i+2, ev, err, id)
		}
	}
	if p, err := c.Query(Query{Tool: "last"}); err != nil || len(p.Events) != 1 || p.Events[0].Seq != 8 {
		t.Fatalf("index of a replayed event: %+v, %v", p.Events, err)
	}
	if sum, err := c.Session("s1"); err != nil || sum.Events != 8 {
		t.Fatalf("session summary after replay: %+v, %v", sum, err)
	}
	if seq := mustAppend(t, c, call("s1", "after")); seq != 9 {
		t.Fatalf("append after replay: seq %d, want 9", seq)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	r, err := VerifyFile(crashed, VerifyOptions{Keys: []string{testVKey}})
	if err != nil || !r.OK || r.Events != 9 || r.Covered != 9 {
		t.Fatalf("Verify after replay: %+v, %v", r, err)
	}

	// A second open finds nothing more to apply.
	again := openStore(t, crashed, Options{})
	if again.Last() != 9 {
		t.Fatalf("second reopen: Last = %d", again.Last())
	}
}

// A batch the log failed to write is refused, and stays refused though its
// records reached the file: a crash right after must not replay them. The
// next event takes the refused one's seq and place.
func TestWALRefusedBatchIsNotReplayed(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "mcptrail.db")
	s := held(t, path)
	mustAppend(t, s, call("s1", "kept")) // logged, not yet committed
	FailCommits(s, errors.New("disk on fire"))
	if _, err := s.Append(call("s1", "refused")); err == nil {
		t.Fatal("an append whose log write failed succeeded")
	}
	crashed := filepath.Join(dir, "crashed.db")
	crashImage(t, path, crashed)
	c := openStore(t, crashed, Options{})
	if c.Last() != 1 {
		t.Fatalf("after replay Last = %d, want 1 (the refused event must not come back)", c.Last())
	}
	c.Close()

	FailCommits(s, nil)
	if seq := mustAppend(t, s, call("s1", "after")); seq != 2 {
		t.Fatalf("append after the failure: seq %d, want 2", seq)
	}
	again := filepath.Join(dir, "again.db")
	crashImage(t, path, again)
	c = openStore(t, again, Options{})
	if ev, err := c.Get(2); err != nil || ev.Tool != "after" || c.Last() != 2 {
		t.Fatalf("after replay: event 2 = %+v, %v; Last = %d (want the event that followed the failure)", ev, err, c.Last())
	}
}

// Readers see what the log holds: a query waits for it to be committed.
func TestWALReadersSeeLoggedEvents(t *testing.T) {
	s := held(t, filepath.Join(t.TempDir(), "mcptrail.db"))
	seq := mustAppend(t, s, call("s1", "x"))
	if ev, err := s.Get(seq); err != nil || ev.Tool != "x" {
		t.Fatalf("Get of a logged event: %+v, %v", ev, err)
	}
	if st := s.Stats(); st.Events != seq || st.Pending != 0 {
		t.Fatalf("Stats after a read: %+v", st)
	}
}

// walChain builds log records for seqs from..to chained from prev: a
// version byte, prev hash, hash, body (as the stored value is laid out).
func walChain(from, to uint64, prev [32]byte) (log []byte, hashes map[uint64][32]byte) {
	hashes = map[uint64][32]byte{}
	for seq := from; seq <= to; seq++ {
		var h [32]byte
		binary.BigEndian.PutUint64(h[:], seq*7919)
		h[31] = byte(prev[0] ^ 0x5a)
		value := append(append(append([]byte{1}, prev[:]...), h[:]...), []byte(`{"body":1}`)...)
		log = appendWALRecord(log, seq, value)
		hashes[seq], prev = h, h
	}
	return log, hashes
}

func replayed(t *testing.T, log []byte, head uint64, headHash [32]byte) []uint64 {
	t.Helper()
	var got []uint64
	if err := walRecords(log, head, headHash, func(seq uint64, _ []byte) error {
		got = append(got, seq)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return got
}

func TestWALRecords(t *testing.T) {
	var head [32]byte
	head[0] = 9
	chain, hashes := walChain(4, 6, head)
	rec := len(chain) / 3
	stale, _ := walChain(1, 3, [32]byte{})
	newer, _ := walChain(7, 8, hashes[6])
	for _, tc := range []struct {
		name string
		log  []byte
		head uint64
		hash [32]byte
		want []uint64
	}{
		{"chain", chain, 3, head, []uint64{4, 5, 6}},
		{"applied already", chain, 6, hashes[6], nil},
		{"partly applied", chain, 4, hashes[4], []uint64{5, 6}},
		{"torn last record", chain[:len(chain)-3], 3, head, []uint64{4, 5}},
		{"corrupt second record", flip(chain, rec+walHeader+40), 3, head, []uint64{4}},
		{"another chain", chain, 3, [32]byte{1}, nil},
		{"gap", chain[rec:], 3, head, nil},
		{"rewound over older records", append(bytes.Clone(chain), stale...), 3, head, []uint64{4, 5, 6}},
		{"stale records after a rewind", append(bytes.Clone(newer), chain...), 6, hashes[6], []uint64{7, 8}},
		{"zeros", append(bytes.Clone(chain), make([]byte, 4096)...), 3, head, []uint64{4, 5, 6}},
	} {
		got := replayed(t, tc.log, tc.head, tc.hash)
		if !slices.Equal(got, tc.want) {
			t.Errorf("%s: replayed %v, want %v", tc.name, got, tc.want)
		}
	}
}

func flip(b []byte, at int) []byte {
	c := bytes.Clone(b)
	c[at] ^= 0xff
	return c
}

// The log is read back after crashes: whatever its bytes, replay does not
// panic, and what it applies continues the chain one seq at a time.
func FuzzWALRecords(f *testing.F) {
	chain, _ := walChain(4, 6, [32]byte{9})
	f.Add(chain, uint64(3), byte(9))
	f.Add(chain[:len(chain)-5], uint64(3), byte(9))
	f.Add([]byte{}, uint64(0), byte(0))
	f.Fuzz(func(t *testing.T, log []byte, head uint64, h0 byte) {
		prev := [32]byte{h0}
		next := head + 1
		walRecords(log, head, prev, func(seq uint64, value []byte) error {
			if seq != next || [32]byte(value[1:33]) != prev {
				t.Fatalf("record %d applied after %d (chain %x, want %x)", seq, next-1, value[1:33], prev)
			}
			next, prev = seq+1, [32]byte(value[33:65])
			return nil
		})
	})
}

// A log that is there but cannot be read may hold acknowledged events:
// the store does not open without them.
func TestWALUnreadable(t *testing.T) {
	path := filepath.Join(t.TempDir(), "mcptrail.db")
	if err := os.Mkdir(walPath(path), 0o700); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(path, Options{}); err == nil || !strings.Contains(err.Error(), "write-ahead log") {
		t.Fatalf("Open with an unreadable log: %v", err)
	}
}

// A log that cannot be made (no room for it) leaves a working strict store
// that commits each append.
func TestWALNoRoom(t *testing.T) {
	mnt := filepath.Join(t.TempDir(), "mnt")
	os.Mkdir(mnt, 0o700)
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=512k", "tmpfs", mnt).CombinedOutput(); err != nil {
		t.Skipf("cannot mount a tmpfs: %v: %s", err, strings.TrimSpace(string(out)))
	}
	t.Cleanup(func() { syscall.Unmount(mnt, syscall.MNT_DETACH) })
	path := filepath.Join(mnt, "mcptrail.db")
	s := openStore(t, path, Options{})
	if s.wal != nil {
		t.Fatal("a 1 MiB log on a 512 KiB disk")
	}
	seq := mustAppend(t, s, call("s1", "x"))
	if st := s.Stats(); st.Events != seq {
		t.Fatalf("strict append without a log not committed: %+v", st)
	}
}

// Under steady load the log is never all committed at the moment of a
// write, so it would grow for ever; at walPrealloc it has the writer commit
// what it holds and starts over, and a crash image taken then still
// replays every acknowledged event.
func TestWALStaysBounded(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "mcptrail.db")
	// Nothing commits unless asked; bodies stored as they are.
	s := openStore(t, path, Options{BatchWindow: time.Hour, LargeBody: -1})
	var last uint64
	for range 3 * walPrealloc / (32 << 10) { // three times what the log holds
		last = mustAppend(t, s, bigEvent()) // 32 KiB that do not compress
	}
	fi, err := os.Stat(walPath(path))
	if err != nil {
		t.Fatal(err)
	}
	if max := int64(walPrealloc + 64<<10); fi.Size() > max {
		t.Fatalf("log grew to %d bytes (bound %d)", fi.Size(), max)
	}
	crashed := filepath.Join(dir, "crashed.db")
	crashImage(t, path, crashed)
	c := openStore(t, crashed, Options{})
	if c.Last() != last {
		t.Fatalf("crash image replays to %d, want %d", c.Last(), last)
	}
}

// In batch mode the log is mapped, and each logged value aliases its
// record there until it is committed. Three times what the log holds, in
// batches of uneven size (some past the mapping's end, written instead),
// rewind it again and again while earlier events wait for their commit:
// the file must hold every event intact (a rewind over a value that waits
// would fail Verify), and a crash image must replay the rest.
func TestWALBatchMappedRewinds(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "mcptrail.db")
	s := openStore(t, path, signed(Options{Durability: DurabilityBatch, BatchWindow: time.Millisecond, LargeBody: -1, MaxBatch: 7}))
	if s.wal.m == nil {
		t.Fatal("batch mode did not map the log")
	}
	s.mu.Lock()
	s.applyAfter = time.Hour // commits only when the log must start over
	s.mu.Unlock()
	var last uint64
	for i := range 3 * walPrealloc / (32 << 10) {
		ev := bigEvent() // 32 KiB that do not compress
		if i%5 == 0 {
			ev = call("s1", fmt.Sprintf("tool%d", i))
		}
		last = mustAppend(t, s, ev)
	}
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(time.Millisecond) {
		s.mu.Lock()
		logged, done := s.walSeq, s.doneSeq
		s.mu.Unlock()
		if logged == last {
			if done == 0 || done == last {
				t.Fatalf("committed up to %d of %d: the log never started over with events waiting", done, last)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after 10 s the log holds up to seq %d, want %d", logged, last)
		}
	}
	crashed := filepath.Join(dir, "crashed.db")
	crashImage(t, path, crashed)
	c := openStore(t, crashed, signed(Options{}))
	if c.Last() != last {
		t.Fatalf("crash image replays to %d, want %d", c.Last(), last)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if r, err := VerifyFile(crashed, VerifyOptions{Keys: []string{testVKey}}); err != nil || !r.OK || r.Events != last {
		t.Fatalf("Verify after replay: %+v, %v", r, err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if r, err := VerifyFile(path, VerifyOptions{Keys: []string{testVKey}}); err != nil || !r.OK || r.Events != last {
		t.Fatalf("Verify: %+v, %v", r, err)
	}
}

// In batch mode the log is written each window but not synced (a commit
// into the file syncs what a crash of the machine could lose): what a
// crash of the process leaves in it is still replayed, every event the
// window had passed for, chained and indexed.
func TestWALBatchReplaysUnsyncedLog(t *testing.T) {
	s, path := openLogOnly(t, time.Millisecond)
	const n = 40
	for i := range n {
		mustAppend(t, s, call("s1", fmt.Sprintf("tool%d", i%4)))
	}
	// The logger writes them within a window or so: wait for it.
	waitLogged(t, s, n)
	crashed := replaysFromLog(t, path, n, "tool3", n/4)
	if r, err := VerifyFile(crashed, VerifyOptions{Keys: []string{testVKey}}); err != nil || !r.OK || r.Events != n {
		t.Fatalf("Verify after replay: %+v, %v", r, err)
	}
}

// openLogOnly opens a batch-mode store with window whose events reach only
// its log: nothing is applied to the file unless a reader asks.
func openLogOnly(t *testing.T, window time.Duration) (s *Store, path string) {
	t.Helper()
	path = filepath.Join(t.TempDir(), "mcptrail.db")
	s = openStore(t, path, signed(Options{Durability: DurabilityBatch, BatchWindow: window}))
	s.mu.Lock()
	s.applyAfter = time.Hour
	s.mu.Unlock()
	return s, path
}

// replaysFromLog checks that an image of path as a crash of the process
// leaves it replays up to seq last, chained and indexed (want events of
// tool), and returns the image's path.
func replaysFromLog(t *testing.T, path string, last uint64, tool string, want int) string {
	t.Helper()
	crashed := crashImageOf(t, path, 0)
	c := openStore(t, crashed, signed(Options{}))
	if c.Last() != last {
		t.Fatalf("after replay Last = %d, want %d", c.Last(), last)
	}
	if p, err := c.Query(Query{Tool: tool}); err != nil || len(p.Events) != want {
		t.Fatalf("replayed events by tool: %d, %v; want %d", len(p.Events), err, want)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	return crashed
}

// The outcome of an answered call is recorded with AppendLogged before the
// answer goes on: in strict mode it is written to the log, not synced (the
// request's sync is the one the call pays), and a crash of the process
// after it returned still finds it in the log.
func TestWALLoggedEventOutlivesTheProcessWithoutASync(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "mcptrail.db")
	s := held(t, path)
	req := call("s1", "write_file")
	mustAppend(t, s, req)
	synced := s.Stats().LogSyncs
	if synced == 0 {
		t.Fatalf("a strict Append did not sync the log")
	}
	out := call("s1", "write_file")
	out.Kind, out.Call, out.Outcome = KindCall, req.Seq, OutcomeOK
	if _, err := s.AppendLogged(out); err != nil {
		t.Fatal(err)
	}
	if got := s.Stats().LogSyncs; got != synced {
		t.Fatalf("AppendLogged synced the log (%d syncs, want %d)", got, synced)
	}
	crashed := crashImageOf(t, path, 0)
	re := openStore(t, crashed, Options{})
	defer re.Close()
	got, err := re.Get(out.Seq)
	if err != nil {
		t.Fatalf("the logged outcome is not in the store after the crash: %v", err)
	}
	if got.Kind != KindCall || got.Call != req.Seq || got.Outcome != OutcomeOK {
		t.Fatalf("replayed %+v, want the outcome of call %d", got, req.Seq)
	}
	// The next strict Append syncs what was only written.
	mustAppend(t, s, call("s1", "next"))
	if got := s.Stats().LogSyncs; got != synced+1 {
		t.Fatalf("the next Append made %d syncs, want 1", got-synced)
	}
}
