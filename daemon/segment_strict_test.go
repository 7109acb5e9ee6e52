package daemon

import (
	"encoding/binary"
	"fmt"
	"io"
	"log/slog"
	"net/rpc/jsonrpc"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mcptrail/mcptrail/config"
	"github.com/mcptrail/mcptrail/store"
	"golang.org/x/sys/unix"
)

// dialStrictSegment is a wrap's client of a strict daemon: it waits for
// each durable record, and records through a segment.
func dialStrictSegment(t *testing.T, d *Daemon) *Client {
	t.Helper()
	c := dialSegment(t, d, false)
	t.Cleanup(func() { c.Close() })
	return c
}

// startHeld starts a strict daemon whose store commits its file only when
// a reader asks (the batch window is an hour): what a strict Record has
// made durable is then in the write-ahead log, and a copy of the files is
// what a crash of the machine would leave.
func startHeld(t *testing.T) *Daemon {
	t.Helper()
	cfg := config.Default()
	cfg.Listen, cfg.SSH, cfg.Durability = "127.0.0.1:0", "127.0.0.1:0", store.DurabilityStrict
	cfg.BatchWindow = config.Duration(time.Hour)
	d, err := start(Options{Config: cfg, Home: t.TempDir(), Version: "v-test", Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.close() })
	return d
}

// crashedEvent copies the daemon's store file and its log as they are
// now, opens the copy (which replays the log) and returns its event seq.
func crashedEvent(t *testing.T, d *Daemon, seq uint64) (*store.Event, error) {
	t.Helper()
	dir := t.TempDir()
	copy := filepath.Join(dir, "crashed.db")
	for _, suffix := range []string{"", "-wal"} {
		data, err := os.ReadFile(d.paths.DB + suffix)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(copy+suffix, data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	st, err := store.Open(copy, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	return st.Get(seq)
}

// Under strict durability a wrap's record goes through its segment, and
// Record returns the store's seq once the record is on disk: a copy of the
// store's files taken the moment it returns (a crash) has the request, and
// then its outcome, linked to the request's store seq — with the
// notification recorded before them, in order.
func TestSegmentStrictRecordIsOnDiskWhenRecordReturns(t *testing.T) {
	d := startHeld(t)
	c := dialStrictSegment(t, d)
	for i := range 3 {
		tool := "strict-" + itoa(i)
		if seq, err := c.Record(note("notifications/before-"+tool), false); err != nil || seq != 0 {
			t.Fatalf("Record(notification) = %d, %v", seq, err)
		}
		req := request(tool)
		seq, err := c.Record(req, true)
		if err != nil || seq == 0 || seq&provisional != 0 || req.Seq != seq {
			t.Fatalf("Record(request %s) = %d, %v (ev.Seq %d), want the store's seq", tool, seq, err, req.Seq)
		}
		if got, err := crashedEvent(t, d, seq); err != nil || got.Tool != tool || got.Kind != store.KindRequest {
			t.Fatalf("the crashed store's event %d: %+v, %v; want the request %s", seq, got, err, tool)
		}
		if got, err := crashedEvent(t, d, seq-1); err != nil || got.Method != "notifications/before-"+tool {
			t.Fatalf("the crashed store's event before the request: %+v, %v", got, err)
		}
		out := &store.Event{Kind: store.KindCall, Session: "s", From: store.FromClient, Method: "tools/call", Tool: tool,
			Call: seq, Outcome: store.OutcomeOK}
		oseq, err := c.Record(out, true)
		if err != nil || oseq != seq+1 || out.Seq != oseq {
			t.Fatalf("Record(outcome %s) = %d, %v (ev.Seq %d), want %d", tool, oseq, err, out.Seq, seq+1)
		}
		if got, err := crashedEvent(t, d, oseq); err != nil || got.Kind != store.KindCall || got.Call != seq {
			t.Fatalf("the crashed store's outcome %d: %+v, %v; want the outcome of %d", oseq, got, err, seq)
		}
	}
}

// A record the store refuses fails Record under strict durability through
// the segment with the store's reason, as over the socket, so the gateway
// fails closed; the wrap's later records go on.
func TestSegmentStrictRefusedRecordFailsRecord(t *testing.T) {
	d := startQuiet(t, store.DurabilityStrict)
	socket, err := Dial(d.paths.Home)
	if err != nil {
		t.Fatal(err)
	}
	defer socket.Close()
	seg := dialStrictSegment(t, d)
	refused := func() *store.Event {
		ev := request("too-long-session")
		ev.Session = strings.Repeat("s", 2000) // longer than the store takes
		return ev
	}
	_, want := socket.Record(refused(), true)
	if want == nil || !strings.Contains(want.Error(), "too long") {
		t.Fatalf("over the socket: %v, want the store's refusal", want)
	}
	ev := refused()
	seq, err := seg.Record(ev, true)
	if err == nil || err.Error() != want.Error() || seq != 0 {
		t.Fatalf("through the segment: %d, %v; want %q as over the socket", seq, err, want)
	}
	if seq, err := seg.Record(request("after"), true); err != nil || seq != d.store.Last() {
		t.Fatalf("a record after the refused one: %d, %v (last %d)", seq, err, d.store.Last())
	}
	// Too large for the segment, a record goes over its connection, and
	// is answered the same way.
	large := refused()
	large.Detail = strings.Repeat("l", segMaxRecord)
	if seq, err := seg.Record(large, true); err == nil || err.Error() != want.Error() || seq != 0 {
		t.Fatalf("a refused record too large for the segment: %d, %v; want %q", seq, err, want)
	}
	large = request("large")
	large.Detail = strings.Repeat("l", segMaxRecord)
	if seq, err := seg.Record(large, true); err != nil || seq != d.store.Last() {
		t.Fatalf("a record too large for the segment: %d, %v (last %d)", seq, err, d.store.Last())
	}
}

// A strict wrap records through a segment only with a daemon that says it
// answers Segment.Sync: an older daemon's segment could not tell it that a
// durable record failed. A batch wrap's plan is as before.
func TestRecordingPlan(t *testing.T) {
	for _, tc := range []struct {
		info           RecordingInfo
		ahead, segment bool
	}{
		{RecordingInfo{Durability: "strict", ProvisionalSeqs: true, Segments: true, SegmentSync: true}, false, true},
		{RecordingInfo{Durability: "strict", ProvisionalSeqs: true, Segments: true}, false, false}, // the daemon before Sync
		{RecordingInfo{Durability: "strict"}, false, false},
		{RecordingInfo{Durability: "batch", ProvisionalSeqs: true, Segments: true}, true, true},
		{RecordingInfo{Durability: "batch", ProvisionalSeqs: true, Segments: true, SegmentSync: true}, true, true},
		{RecordingInfo{Durability: "batch", ProvisionalSeqs: true}, true, false},
		{RecordingInfo{Durability: "batch"}, false, false},
	} {
		if ahead, segment := tc.info.plan(); ahead != tc.ahead || segment != tc.segment {
			t.Errorf("%+v: ahead %v, segment %v; want %v, %v", tc.info, ahead, segment, tc.ahead, tc.segment)
		}
	}
	d := startQuiet(t, store.DurabilityStrict)
	c, err := Dial(d.paths.Home)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var info RecordingInfo
	if err := c.rpc.Call("Daemon.Recording", struct{}{}, &info); err != nil || !info.SegmentSync {
		t.Fatalf("the daemon says %+v, %v; want SegmentSync", info, err)
	}
}

// A wrap's Sync is answered at once: naming a provisional seq the segment
// does not hold (not yet, never, not provisional at all) is an error, not
// a wait, and a segment whose end lies is an error too.
func TestSegmentSyncOfWhatIsNotThere(t *testing.T) {
	d := startQuiet(t, store.DurabilityStrict)
	fd, mem := memfd(t, segSize, unix.F_SEAL_SHRINK|unix.F_SEAL_GROW)
	const prov = provisional | 1
	rec, err := store.AppendJSON(make([]byte, segRecordPre), request("synced"))
	if err != nil {
		t.Fatal(err)
	}
	rec[0] = segDurable
	binary.LittleEndian.PutUint64(rec[1:], prov)
	binary.LittleEndian.PutUint32(mem[segHeader:], uint32(len(rec)))
	copy(mem[segHeader+4:], rec)
	binary.LittleEndian.PutUint64(mem[segEndAt:], segHeader+4+uint64(len(rec)))
	rc := jsonrpc.NewClient(handOver(t, d, fd))
	var seq uint64
	if err := rc.Call("Segment.Sync", uint64(prov), &seq); err != nil || seq != d.store.Last() {
		t.Fatalf("Sync of the record there: %d, %v (last %d)", seq, err, d.store.Last())
	}
	for _, bogus := range []uint64{provisional | 2, provisional | 1<<40, 0, 1, 1 << 62, ^uint64(0)} {
		seq = 0
		if err := rc.Call("Segment.Sync", bogus, &seq); err == nil || seq != 0 {
			t.Errorf("Sync(%#x) of a seq the segment does not hold: %d, %v", bogus, seq, err)
		}
	}
	binary.LittleEndian.PutUint64(mem[segEndAt:], segSize+100) // past the mapping
	if err := rc.Call("Segment.Sync", uint64(provisional|2), &seq); err == nil || !strings.Contains(err.Error(), "past its size") {
		t.Fatalf("Sync on a segment whose end lies: %v", err)
	}
	// The daemon goes on serving.
	if _, err := dialStrictSegment(t, d).Record(request("after"), true); err != nil {
		t.Fatal(err)
	}
}

// Strict records from several calls at once, large enough that the segment
// rewinds every few dozen: each Record still gets its own record's store
// seq. A Sync that reached the daemon while another call's rewind had
// moved the segment's end back and not yet had it read what came before
// would not find its record, and fail a call that was recorded.
func TestSegmentStrictConcurrentRecordsAcrossRewinds(t *testing.T) {
	d := startQuiet(t, store.DurabilityStrict)
	c := dialStrictSegment(t, d)
	const callers, each = 4, 150
	filler := strings.Repeat("r", 20_000) // about 50 to a segment
	errs := make(chan error, callers)
	for g := range callers {
		go func() {
			for i := range each {
				ev := request("g" + itoa(g) + "-" + itoa(i))
				ev.Detail = filler
				seq, err := c.Record(ev, true)
				if err != nil {
					errs <- err
					return
				}
				got, err := d.store.Get(seq)
				if err != nil || got.Tool != ev.Tool {
					errs <- fmt.Errorf("Record(%s) = %d, which the store holds as %+v, %v", ev.Tool, seq, got, err)
					return
				}
			}
			errs <- nil
		}()
	}
	for range callers {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
}
