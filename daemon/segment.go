package daemon

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/rpc"
	"net/rpc/jsonrpc"
	"os"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/mcptrail/mcptrail/store"
	"golang.org/x/sys/unix"
)

// A segment is how a wrap records under batch durability without a round
// trip to the daemon per group of records: wrap appends each record to a
// memory file (memfd) it shares with the daemon, and the daemon tails it
// (segment_tail.go). A record leaves wrap's memory the moment it is made,
// before the call it records goes on, so a wrap that is killed loses
// nothing it recorded: the daemon holds the file and reads it to the end.
// Under strict durability a wrap appends its records the same way, and for
// one it must wait for (a request, an answered call's outcome) asks the
// daemon to record up to it (Segment.Sync): a round trip carrying a
// number, where over the socket the whole event went through net/rpc's
// JSON each way.
//
// The file, sealed against growing and shrinking before wrap hands it
// over, is:
//
//	[0:8)    segMagic
//	[8:16)   end: the offset past the last whole record (little-endian,
//	         stored atomically once the record is in place)
//	[16:64)  reserved
//	[64:end) records: a 4-byte little-endian length n, then n bytes: a
//	         flags byte (segDurable), the provisional seq wrap gave the
//	         record (8 bytes, little-endian; 0: none), and the event's
//	         JSON (store.AppendJSON)
//
// When a record does not fit in what is left, wrap has the daemon take
// everything up to end (Segment.Rewind) and starts again at 64.
const (
	segMagic     = "MTSEG\x00\x00\x01"
	segHeader    = 64
	segEndAt     = 8
	segSize      = 1 << 20
	segMaxRecord = segSize / 4 // larger records go over the socket (Segment.Append)
	// segHello is the first thing a segment's connection sends, with the
	// file's descriptor attached.
	segHello = "mcptrail-segment 1\n"
	// The daemon reads a segment every segPoll while records keep coming,
	// and stops after segIdle without any; a wrap wakes it (Segment.Kick)
	// when its last wake-up is segKick old.
	segPoll = 10 * time.Millisecond
	segIdle = time.Second
	segKick = 250 * time.Millisecond
)

// A record's flags and the bytes before its event.
const (
	segDurable   = 1
	segRecordPre = 1 + 8
)

// segWriter is wrap's side of a segment. Client.mu guards it.
type segWriter struct {
	mem      []byte
	end      uint64
	rpc      *rpc.Client // the segment's connection
	lastKick time.Time
	// syncing is held shared by a Sync or Resolve in flight, which runs
	// outside Client.mu, and exclusively by a rewind: the daemon must not
	// look at the segment while wrap has moved end back and not yet had it
	// take what came before (it would not find the record asked about).
	syncing sync.RWMutex
}

// openSegment makes a segment and hands it to the daemon of home over a
// connection of its own.
func openSegment(socket string) (*segWriter, error) {
	fd, err := unix.MemfdCreate("mcptrail-segment", unix.MFD_CLOEXEC|unix.MFD_ALLOW_SEALING)
	if err != nil {
		return nil, fmt.Errorf("memfd: %w", err)
	}
	f := os.NewFile(uintptr(fd), "mcptrail-segment")
	defer f.Close() // the mapping and the daemon's copy keep it
	if err := f.Truncate(segSize); err != nil {
		return nil, err
	}
	if _, err := unix.FcntlInt(f.Fd(), unix.F_ADD_SEALS, unix.F_SEAL_SHRINK|unix.F_SEAL_GROW|unix.F_SEAL_SEAL); err != nil {
		return nil, fmt.Errorf("sealing the segment: %w", err)
	}
	// Populated now: a page's first write faulted on the call's path.
	mem, err := unix.Mmap(fd, 0, segSize, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED|unix.MAP_POPULATE)
	if err != nil {
		return nil, fmt.Errorf("mapping the segment: %w", err)
	}
	copy(mem, segMagic)
	w := &segWriter{mem: mem, end: segHeader}
	w.publish()
	conn, err := net.DialTimeout("unix", socket, 2*time.Second)
	if err != nil {
		unix.Munmap(mem)
		return nil, err
	}
	uc, ok := conn.(*net.UnixConn)
	if !ok {
		conn.Close()
		unix.Munmap(mem)
		return nil, errors.New("the daemon's socket is not a unix socket")
	}
	if _, _, err := uc.WriteMsgUnix([]byte(segHello), unix.UnixRights(fd), nil); err != nil {
		conn.Close()
		unix.Munmap(mem)
		return nil, fmt.Errorf("handing the segment over: %w", err)
	}
	w.rpc = jsonrpc.NewClient(conn)
	// The daemon answers once it has taken the segment; one that cannot
	// (an older daemon, a refused file) fails this and wrap records over
	// the socket instead.
	if err := w.rpc.Call("Segment.Kick", struct{}{}, &struct{}{}); err != nil {
		w.rpc.Close()
		unix.Munmap(mem)
		return nil, err
	}
	w.lastKick = time.Now()
	return w, nil
}

// endWord is the header's end, shared with the daemon.
func (w *segWriter) endWord() *uint64 { return (*uint64)(unsafe.Pointer(&w.mem[segEndAt])) }

// publish makes every record up to w.end visible to the daemon.
func (w *segWriter) publish() { atomic.StoreUint64(w.endWord(), w.end) }

// append writes ev's record. Under the caller's lock, so records keep
// the order of their provisional seqs.
func (w *segWriter) append(ev *store.Event, durable bool, prov uint64) error {
	rec, err := w.encode(ev, durable, prov)
	if err != nil {
		return err
	}
	if rec != nil {
		// Too large for the segment: over the socket, after everything
		// before it.
		return w.rpc.Call("Segment.Append", rec, &struct{}{})
	}
	w.publish()
	if now := time.Now(); now.Sub(w.lastKick) >= segKick {
		w.lastKick = now
		w.rpc.Go("Segment.Kick", struct{}{}, &struct{}{}, make(chan *rpc.Call, 1))
	}
	return nil
}

// encode writes ev's record into the segment, past end, and moves end (not
// yet published) past it; when it does not fit in what is left, it
// rewinds first, and when it is too large for the segment, it returns it
// instead.
func (w *segWriter) encode(ev *store.Event, durable bool, prov uint64) ([]byte, error) {
	var flags byte
	if durable {
		flags = segDurable
	}
	for rewound := false; ; rewound = true {
		start := w.end + 4
		if start+segRecordPre > segSize {
			if err := w.rewind(); err != nil {
				return nil, err
			}
			start = w.end + 4
		}
		// Encoded in place: AppendJSON appends within the mapping while it
		// has room, and moves to the heap when it does not.
		pre := w.mem[start : start+segRecordPre : segSize]
		pre[0] = flags
		binary.LittleEndian.PutUint64(pre[1:], prov)
		rec, err := store.AppendJSON(pre, ev)
		if err != nil {
			return nil, err
		}
		if &rec[0] == &w.mem[start] && len(rec) <= segMaxRecord {
			binary.LittleEndian.PutUint32(w.mem[w.end:], uint32(len(rec)))
			w.end = start + uint64(len(rec))
			return nil, nil
		}
		if len(rec) > segMaxRecord || rewound {
			return rec, nil
		}
		if err := w.rewind(); err != nil {
			return nil, err
		}
	}
}

// rewind has the daemon take every record, and starts again at the top.
func (w *segWriter) rewind() error {
	w.syncing.Lock()
	defer w.syncing.Unlock()
	old := w.end
	w.end = segHeader
	w.publish() // the daemon reads nothing new until Rewind is answered
	return w.rpc.Call("Segment.Rewind", old, &struct{}{})
}

// resolve asks the daemon for the store's seq of a provisional one.
func (w *segWriter) resolve(prov uint64) (uint64, error) {
	var seq uint64
	err := w.rpc.Call("Segment.Resolve", prov, &seq)
	return seq, err
}

// sync has the daemon record every record up to prov's, and returns the
// store's seq of that one (strict durability: committed by then).
func (w *segWriter) sync(prov uint64) (uint64, error) {
	var seq uint64
	err := w.rpc.Call("Segment.Sync", prov, &seq)
	return seq, err
}

// close has the daemon take every record, then hangs up.
func (w *segWriter) close() error {
	err := w.rpc.Call("Segment.Close", struct{}{}, &struct{}{})
	w.rpc.Close()
	unix.Munmap(w.mem)
	return err
}
