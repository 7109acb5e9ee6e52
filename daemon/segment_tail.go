package daemon

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/rpc"
	"net/rpc/jsonrpc"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/mcptrail/mcptrail/store"
	segjson "github.com/segmentio/encoding/json"
	"golang.org/x/sys/unix"
)

// serveConn serves one connection to the socket: a wrap's segment (see
// segment.go) when it opens with segHello and the file's descriptor, the
// daemon's RPC service otherwise. Whoever is on the other end is only
// trusted as far as the socket's permissions say (the operator's own
// processes, which an agent may be): a descriptor is taken only with the
// hello, and a segment only as segment.go lays it out, sealed.
func (d *Daemon) serveConn(conn net.Conn, srv *rpc.Server) {
	uc, ok := conn.(*net.UnixConn)
	if !ok {
		srv.ServeCodec(jsonrpc.NewServerCodec(conn))
		return
	}
	buf := make([]byte, len(segHello))
	oob := make([]byte, unix.CmsgSpace(4*4))
	n, oobn, _, _, err := uc.ReadMsgUnix(buf, oob)
	if err != nil {
		conn.Close()
		return
	}
	fds := receivedFDs(oob[:oobn])
	if n == len(segHello) && string(buf) == segHello && len(fds) == 1 {
		t, err := d.openTail(fds[0])
		if err != nil {
			d.log.Warn("refused a wrap's segment", "err", err)
			conn.Close()
			return
		}
		t.serve(conn)
		return
	}
	for _, fd := range fds {
		unix.Close(fd)
	}
	prefixed := struct {
		io.Reader
		io.Writer
		io.Closer
	}{io.MultiReader(bytes.NewReader(buf[:n]), conn), conn, conn}
	srv.ServeCodec(jsonrpc.NewServerCodec(prefixed))
}

// receivedFDs are the descriptors in a message's control data; a message
// may carry any number, all of which the caller owns.
func receivedFDs(oob []byte) []int {
	msgs, err := unix.ParseSocketControlMessage(oob)
	if err != nil {
		return nil
	}
	var fds []int
	for _, m := range msgs {
		if got, err := unix.ParseUnixRights(&m); err == nil {
			fds = append(fds, got...)
		}
	}
	return fds
}

// tail is the daemon's side of one wrap's segment: it reads the records
// wrap appends and records them, in order, linking each to the store's seq
// of the provisional one it refers to.
type tail struct {
	d    *Daemon
	mem  []byte
	kick chan struct{}
	done chan struct{}

	mu       sync.Mutex
	consumed uint64
	broken   error
	seqs     map[uint64]uint64 // provisional → store seq (0: not stored)
	failed   map[uint64]string // provisional → why the store refused it
	order    []uint64          // seqs' keys, oldest first
	// ev is the record being recorded, decoded afresh into a zero Event
	// each time: Record keeps no pointer to it (the store, detect and
	// the tracer copy what they keep), and one Event less allocated per
	// record is a seventh of the bytes allocated for a call
	// (BenchmarkClientRecordAheadSegment, wrap's side included: 7.1 KB
	// per call before, 6.1 KB after), and so of the collector's work.
	ev store.Event
	// buf holds the record being recorded, copied out of the mapping, and
	// is reused for the next: the decode copies what it keeps (segjson
	// without its ZeroCopy flag), and a copy per record was a tenth of the
	// bytes allocated for a call (BenchmarkClientRecordAheadSegment: 6.1
	// KB per call before, 5.5 KB after).
	buf []byte
}

// openTail takes fd (closing it) as a segment if it is one: a memory file
// sealed against changing size, of segSize, with segMagic.
func (d *Daemon) openTail(fd int) (*tail, error) {
	defer unix.Close(fd)
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return nil, err
	}
	if st.Mode&unix.S_IFMT != unix.S_IFREG || st.Size != segSize {
		return nil, fmt.Errorf("not a segment: mode %o, %d bytes", st.Mode, st.Size)
	}
	// Unsealed, the file could shrink under the mapping, and reading it
	// would fault the daemon.
	seals, err := unix.FcntlInt(uintptr(fd), unix.F_GET_SEALS, 0)
	if err != nil {
		return nil, fmt.Errorf("segment seals: %w", err)
	}
	if want := unix.F_SEAL_SHRINK | unix.F_SEAL_GROW; seals&want != want {
		return nil, errors.New("the segment is not sealed against changing size")
	}
	mem, err := unix.Mmap(fd, 0, segSize, unix.PROT_READ, unix.MAP_SHARED)
	if err != nil {
		return nil, err
	}
	if string(mem[:len(segMagic)]) != segMagic {
		unix.Munmap(mem)
		return nil, errors.New("not a segment: bad magic")
	}
	return &tail{d: d, mem: mem, kick: make(chan struct{}, 1), done: make(chan struct{}),
		consumed: segHeader, seqs: map[uint64]uint64{}, failed: map[uint64]string{}}, nil
}

// serve answers the segment's connection and reads the segment while wrap
// writes, until the connection ends; then it reads what is left.
func (t *tail) serve(conn net.Conn) {
	srv := rpc.NewServer()
	if err := srv.RegisterName("Segment", &segService{t}); err != nil {
		conn.Close()
		return
	}
	t.d.tails.add(t)
	go t.poll()
	srv.ServeCodec(jsonrpc.NewServerCodec(conn))
	close(t.done)
}

// tailSet is the segments a daemon reads, so that a stop records what
// their wraps wrote before it.
type tailSet struct {
	mu  sync.Mutex
	set map[*tail]bool
}

func (s *tailSet) add(t *tail) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.set == nil {
		s.set = map[*tail]bool{}
	}
	s.set[t] = true
}

func (s *tailSet) remove(t *tail) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.set, t)
}

func (s *tailSet) drainAll() {
	s.mu.Lock()
	all := make([]*tail, 0, len(s.set))
	for t := range s.set {
		all = append(all, t)
	}
	s.mu.Unlock()
	for _, t := range all {
		t.drain(0)
	}
}

// poll reads the segment every segPoll while records come, and on Kick.
func (t *tail) poll() {
	timer := time.NewTimer(segPoll)
	defer timer.Stop()
	idleSince := time.Now()
	for {
		select {
		case <-t.done:
			t.drain(0)
			t.d.tails.remove(t)
			t.mu.Lock()
			unix.Munmap(t.mem)
			t.mem = nil
			t.mu.Unlock()
			return
		case <-t.kick:
			idleSince = time.Now()
		case <-timer.C:
		}
		if t.drain(0) > 0 {
			idleSince = time.Now()
		}
		if time.Since(idleSince) < segIdle {
			timer.Reset(segPoll)
		}
	}
}

func (t *tail) end() uint64 { return atomic.LoadUint64((*uint64)(unsafe.Pointer(&t.mem[segEndAt]))) }

// drain records what wrap has published (upto 0), or everything up to
// upto (a rewind: wrap has already moved end back), and returns how many
// records it read.
func (t *tail) drain(upto uint64) int {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.mem == nil || t.broken != nil {
		return 0
	}
	end := upto
	if end == 0 {
		end = t.end()
		if end < t.consumed {
			return 0 // a rewind is under way
		}
	}
	if end > segSize {
		t.fail(fmt.Errorf("its end %d is past its size", end))
		return 0
	}
	if t.consumed >= end {
		return 0
	}
	// What wrap wrote since the last look is one burst to the store: it
	// wakes the store's logger once, when all of it is queued (store's
	// burst.go).
	t.d.store.BeginBurst()
	defer t.d.store.EndBurst()
	n := 0
	for t.consumed < end {
		rec, next, err := segNext(t.buf, t.mem, t.consumed, end)
		if err != nil {
			t.fail(err)
			return n
		}
		t.consumed = next
		t.record(rec)
		if cap(rec) <= segKeepBuf {
			t.buf = rec
		}
		n++
	}
	return n
}

// segKeepBuf is the largest buffer a tail keeps for the next record (most
// records are under 2 KB; a segment's largest, 256 KB, is not kept).
const segKeepBuf = 16 << 10

// segNext returns a copy of the record at off in mem, whose records end
// at end (off < end ≤ len(mem)), made in dst's memory, and the offset
// after it. The copy because wrap may write the mapping while the record
// is decoded.
func segNext(dst, mem []byte, off, end uint64) (rec []byte, next uint64, err error) {
	if end > uint64(len(mem)) || off >= end {
		return nil, off, fmt.Errorf("no record between %d and %d", off, end)
	}
	if end-off < 4 {
		return nil, off, fmt.Errorf("a record's length is cut at %d", off)
	}
	size := uint64(binary.LittleEndian.Uint32(mem[off:]))
	if size == 0 || size > end-off-4 {
		return nil, off, fmt.Errorf("a record of %d bytes at %d runs past its end %d", size, off, end)
	}
	return append(dst[:0], mem[off+4:off+4+size]...), off + 4 + size, nil
}

// fail stops reading a segment whose layout is broken, and records why.
func (t *tail) fail(err error) {
	t.broken = fmt.Errorf("a wrap's segment is unreadable: %w", err)
	t.d.log.Warn("stopped reading a wrap's segment", "err", err)
	t.refuse(0, t.broken.Error())
}

// record records one record (segment.go's layout, after its length).
func (t *tail) record(raw []byte) {
	t.ev = store.Event{}
	ev := &t.ev
	if len(raw) <= segRecordPre {
		t.refuse(len(raw), "a record in a wrap's segment is too short")
		return
	}
	durable, prov := raw[0]&segDurable != 0, binary.LittleEndian.Uint64(raw[1:])
	// segmentio's decoder decodes what encoding/json does (wrap encodes
	// with encoding/json) at about a third of its CPU; this decode was the
	// daemon's largest cost per wrap call.
	if err := segjson.Unmarshal(raw[segRecordPre:], ev); err != nil {
		t.refuse(len(raw), "a record in a wrap's segment could not be decoded: "+err.Error())
		return
	}
	linkProvisional(ev, t.seqs)
	seq, err := t.d.Record(ev, durable)
	if err != nil {
		t.d.log.Warn("a record from a wrap's segment was not stored", "kind", ev.Kind, "err", err)
	}
	if prov&provisional != 0 {
		if len(t.order) == maxResolved {
			delete(t.seqs, t.order[0])
			delete(t.failed, t.order[0])
			t.order = t.order[1:]
		}
		t.seqs[prov] = seq
		if err != nil {
			t.failed[prov] = err.Error()
		}
		t.order = append(t.order, prov)
	}
}

// refuse records a record the daemon could not take.
func (t *tail) refuse(size int, why string) {
	t.d.Record(&store.Event{Kind: store.KindBadInput, Time: time.Now().UTC(), Size: size, Detail: why}, false)
}

// segService is what a segment's connection answers.
type segService struct{ t *tail }

// Kick wakes the reader.
func (s *segService) Kick(_ struct{}, _ *struct{}) error {
	select {
	case s.t.kick <- struct{}{}:
	default:
	}
	return nil
}

// Rewind records everything up to upto: wrap starts again at the top.
func (s *segService) Rewind(upto uint64, _ *struct{}) error {
	s.t.drain(upto)
	s.t.mu.Lock()
	defer s.t.mu.Unlock()
	if s.t.broken != nil {
		return s.t.broken
	}
	s.t.consumed = segHeader
	return nil
}

// Append records one record too large for the segment, after the
// segment's.
func (s *segService) Append(rec []byte, _ *struct{}) error {
	s.t.drain(0)
	s.t.mu.Lock()
	defer s.t.mu.Unlock()
	if s.t.broken != nil {
		return s.t.broken
	}
	s.t.record(rec)
	return nil
}

// Resolve gives the store's seq of a provisional one, once its record is
// read.
func (s *segService) Resolve(prov uint64, seq *uint64) error {
	got, _, err := s.t.settled(prov)
	switch {
	case err != nil:
		return err
	case got == 0:
		return errors.New("the record was not stored")
	}
	*seq = got
	return nil
}

// Sync records everything wrap has published, up to and past the record
// with the provisional seq prov, and gives the store's seq of that record,
// or the store's reason for refusing it: a strict wrap's Record. The
// record is then as durable as the daemon's Record makes it (a request
// committed, an answered call's outcome in the write-ahead log), since
// drain records each record before the next, and seqs learns prov only
// after its Record returned. A seq not yet in the segment, or never, is
// an error at once: this never waits for wrap to write.
func (s *segService) Sync(prov uint64, seq *uint64) error {
	got, refused, err := s.t.settled(prov)
	switch {
	case err != nil:
		return err
	case refused != "":
		return errors.New(refused)
	}
	*seq = got // 0 when fail_open let the call go on unrecorded
	return nil
}

// settled reads what wrap has published and says what became of the
// record with the provisional seq prov: its store seq (0: not stored) and,
// if the store refused it, why.
func (t *tail) settled(prov uint64) (seq uint64, refused string, err error) {
	t.drain(0)
	t.mu.Lock()
	defer t.mu.Unlock()
	got, ok := t.seqs[prov]
	switch {
	case !ok && t.broken != nil:
		return 0, "", t.broken
	case !ok:
		return 0, "", fmt.Errorf("no record has the provisional seq %d", prov&^provisional)
	}
	return got, t.failed[prov], nil
}

// Close records everything wrap wrote: it hangs up next.
func (s *segService) Close(_ struct{}, _ *struct{}) error {
	s.t.drain(0)
	s.t.mu.Lock()
	defer s.t.mu.Unlock()
	return s.t.broken
}
