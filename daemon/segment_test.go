package daemon

import (
	"encoding/binary"
	"encoding/json"
	"net"
	"net/rpc/jsonrpc"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/mcptrail/mcptrail/internal/testkit"
	"github.com/mcptrail/mcptrail/store"
	"golang.org/x/sys/unix"
)

// dialAhead is a wrap's client of a batch daemon: it records through a
// segment.
func dialAhead(t *testing.T, d *Daemon) *Client { return dialSegment(t, d, true) }

// dialSegment is a wrap's client of d, which must record through a
// segment, ahead (batch durability) or waiting for each durable record.
func dialSegment(t *testing.T, d *Daemon, ahead bool) *Client {
	t.Helper()
	c, err := Dial(d.paths.Home)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := c.RecordAhead(); err != nil || got != ahead {
		t.Fatalf("RecordAhead = %v, %v, want %v", got, err, ahead)
	}
	if c.seg == nil {
		t.Fatal("the wrap records without a segment")
	}
	return c
}

func request(tool string) *store.Event {
	return &store.Event{Kind: store.KindRequest, Session: "s", From: store.FromClient, Method: "tools/call", Tool: tool}
}

// Records through a segment reach the store in the order wrap made them,
// each outcome linked to its request's store seq; enough of them to wrap
// the segment around several times, and one too large for it.
func TestSegmentRecordsInOrder(t *testing.T) {
	d := startQuiet(t, store.DurabilityBatch)
	c := dialAhead(t, d)
	filler := strings.Repeat("x", 3000)
	const calls = 1500 // about 9 MB: the 1 MB segment rewinds several times
	for i := range calls {
		tool := "t" + itoa(i)
		req := request(tool)
		prov, err := c.Record(req, true)
		if err != nil || prov&provisional == 0 {
			t.Fatalf("Record(request %d) = %d, %v", i, prov, err)
		}
		out := &store.Event{Kind: store.KindCall, Session: "s", From: store.FromClient, Method: "tools/call", Tool: tool,
			Call: prov, Outcome: store.OutcomeOK, Detail: filler}
		if i == 700 {
			out.Detail = strings.Repeat("y", segMaxRecord) // over the socket, in its place
		}
		if _, err := c.Record(out, true); err != nil {
			t.Fatal(err)
		}
	}
	page := sessionAfterClose(t, d, c, 2*calls)
	for i := range calls {
		req, out := page.Events[2*i], page.Events[2*i+1]
		want := "t" + itoa(i)
		if req.Tool != want || req.Kind != store.KindRequest || out.Kind != store.KindCall {
			t.Fatalf("call %d: %s %q then %s, want request %q then its outcome", i, req.Kind, req.Tool, out.Kind, want)
		}
		if out.Call != req.Seq {
			t.Fatalf("call %d: the outcome refers to seq %d, its request is %d", i, out.Call, req.Seq)
		}
	}
}

func itoa(i int) string { return strconv.Itoa(i) }

// sessionAfterClose closes wrap's client c (the daemon then reads its
// segment to the end) and returns session "s" as the store holds it, which
// must be want events.
func sessionAfterClose(t *testing.T, d *Daemon, c *Client, want int) store.Page {
	t.Helper()
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if err := d.store.Flush(); err != nil {
		t.Fatal(err)
	}
	page, err := d.store.Query(store.Query{Session: "s", Limit: want})
	if err != nil {
		t.Fatal(err)
	}
	if len(page.Events) != want {
		t.Fatalf("%d events in the store, want %d", len(page.Events), want)
	}
	return page
}

// A wrap that dies without hanging up cleanly loses nothing it recorded:
// the daemon reads its segment to the end once the connection drops.
func TestSegmentKilledWrapLosesNothing(t *testing.T) {
	d := startQuiet(t, store.DurabilityBatch)
	c := dialAhead(t, d)
	for i := range 50 {
		if _, err := c.Record(request("before-kill-"+itoa(i)), true); err != nil {
			t.Fatal(err)
		}
	}
	// As the kernel does when wrap is killed: its descriptors close, no
	// Segment.Close, nothing else sent.
	c.seg.rpc.Close()
	c.rpc.Close()
	if !testkit.PollUntil(10*time.Second, 5*time.Millisecond, func() bool {
		d.store.Flush()
		p, err := d.store.Query(store.Query{Session: "s", Limit: 100})
		return err == nil && len(p.Events) == 50
	}) {
		p, _ := d.store.Query(store.Query{Session: "s", Limit: 100})
		t.Fatalf("%d of 50 records reached the store after the wrap died", len(p.Events))
	}
}

// handOver sends a memory file to the daemon as a segment would be, and
// returns the connection's RPC client.
func handOver(t *testing.T, d *Daemon, fd int) *net.UnixConn {
	t.Helper()
	conn, err := net.Dial("unix", d.paths.Socket)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	uc := conn.(*net.UnixConn)
	if _, _, err := uc.WriteMsgUnix([]byte(segHello), unix.UnixRights(fd), nil); err != nil {
		t.Fatal(err)
	}
	return uc
}

func memfd(t *testing.T, size int64, seals int) (int, []byte) {
	t.Helper()
	fd, err := unix.MemfdCreate("test-segment", unix.MFD_CLOEXEC|unix.MFD_ALLOW_SEALING)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Close(fd) })
	if err := unix.Ftruncate(fd, size); err != nil {
		t.Fatal(err)
	}
	mem, err := unix.Mmap(fd, 0, int(size), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Munmap(mem) })
	copy(mem, segMagic)
	binary.LittleEndian.PutUint64(mem[segEndAt:], segHeader)
	if seals != 0 {
		if _, err := unix.FcntlInt(uintptr(fd), unix.F_ADD_SEALS, seals); err != nil {
			t.Fatal(err)
		}
	}
	return fd, mem
}

// A segment that could shrink under the daemon's mapping (unsealed), or is
// not the size segments are, is refused: reading a shrunk mapping would
// fault the daemon. The socket still serves everyone else.
func TestSegmentRefusesUnsealedFile(t *testing.T) {
	d := startQuiet(t, store.DurabilityBatch)
	for name, tc := range map[string]struct {
		size  int64
		seals int
	}{
		"unsealed":   {segSize, 0},
		"shrinkable": {segSize, unix.F_SEAL_GROW},
		"wrong size": {segSize / 2, unix.F_SEAL_SHRINK | unix.F_SEAL_GROW},
	} {
		fd, _ := memfd(t, tc.size, tc.seals)
		uc := handOver(t, d, fd)
		err := jsonrpc.NewClient(uc).Call("Segment.Kick", struct{}{}, &struct{}{})
		if err == nil {
			t.Errorf("%s: the daemon took the file as a segment", name)
		}
	}
	c, err := Dial(d.paths.Home)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Status(); err != nil {
		t.Fatalf("the socket after refused segments: %v", err)
	}
}

// A segment whose records lie about their length is read no further, and
// the daemon records why; what came before is kept.
func TestSegmentBrokenRecordIsRecorded(t *testing.T) {
	d := startQuiet(t, store.DurabilityBatch)
	fd, mem := memfd(t, segSize, unix.F_SEAL_SHRINK|unix.F_SEAL_GROW)
	good, err := store.AppendJSON(make([]byte, segRecordPre), request("fine"))
	if err != nil {
		t.Fatal(err)
	}
	off := uint64(segHeader)
	binary.LittleEndian.PutUint32(mem[off:], uint32(len(good)))
	copy(mem[off+4:], good)
	off += 4 + uint64(len(good))
	binary.LittleEndian.PutUint32(mem[off:], 1<<30) // past the end
	off += 4 + 10
	binary.LittleEndian.PutUint64(mem[segEndAt:], off)
	uc := handOver(t, d, fd)
	rc := jsonrpc.NewClient(uc)
	if err := rc.Call("Segment.Close", struct{}{}, &struct{}{}); err == nil || !strings.Contains(err.Error(), "runs past its end") {
		t.Fatalf("Close of a broken segment: %v", err)
	}
	d.store.Flush()
	p, err := d.store.Query(store.Query{Limit: 10})
	if err != nil {
		t.Fatal(err)
	}
	var fine, refusal bool
	for _, ev := range p.Events {
		fine = fine || ev.Tool == "fine"
		refusal = refusal || (ev.Kind == store.KindBadInput && strings.Contains(ev.Detail, "runs past its end"))
	}
	if !fine || !refusal {
		t.Fatalf("the record before the broken one kept: %v; the refusal recorded: %v (%d events)", fine, refusal, len(p.Events))
	}
}

// A daemon that stops records what wraps wrote to their segments before
// the stop, though it has not read them yet.
func TestSegmentStopRecordsWhatWasWritten(t *testing.T) {
	d := startQuiet(t, store.DurabilityBatch)
	c := dialAhead(t, d)
	defer c.rpc.Close()
	defer c.seg.rpc.Close()
	const n = 30
	for i := range n {
		if _, err := c.Record(request("before-stop-"+itoa(i)), true); err != nil {
			t.Fatal(err)
		}
	}
	if err := d.close(); err != nil {
		t.Fatal(err)
	}
	r, err := OpenReader(d.paths.Home, d.paths.DB)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	p, err := r.Query(store.Query{Session: "s", Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Events) != n {
		t.Fatalf("%d of %d records written before the stop are in the store", len(p.Events), n)
	}
}

// The daemon copies each record out of the segment into one buffer it
// reuses: every event keeps its own bytes (strings and bodies), though the
// store holds it queued while the next records are read into that buffer.
func TestSegmentRecordsKeepTheirOwnBytes(t *testing.T) {
	d := startQuiet(t, store.DurabilityBatch)
	c := dialAhead(t, d)
	const n = 300
	detail := func(i int) string { return strings.Repeat(string(rune('a'+i%26)), 40+i%97) }
	params := func(i int) string { return `{"name":"t","arguments":{"i":` + itoa(i) + `,"s":"` + detail(i+7) + `"}}` }
	for i := range n {
		ev := request("t" + itoa(i))
		ev.Detail, ev.Params = detail(i), json.RawMessage(params(i))
		if _, err := c.Record(ev, true); err != nil {
			t.Fatal(err)
		}
	}
	page := sessionAfterClose(t, d, c, n)
	for i, ev := range page.Events {
		if ev.Tool != "t"+itoa(i) || ev.Detail != detail(i) || string(ev.Params) != params(i) {
			t.Fatalf("event %d: tool %q, detail %q, params %s; want %q, %q, %s", i, ev.Tool, ev.Detail, ev.Params, "t"+itoa(i), detail(i), params(i))
		}
	}
}
