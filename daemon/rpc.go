// Package daemon runs mcptrail's one store-owning process (`mcptrail serve`)
// and lets every other command reach it: wrap sends records over the
// daemon's unix socket, and the read commands query through it while bbolt's
// file lock keeps them out of the file.
package daemon

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/rpc"
	"net/rpc/jsonrpc"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/mcptrail/mcptrail/collect"
	"github.com/mcptrail/mcptrail/store"
)

// Paths are the files of one instance, all in its data directory.
type Paths struct {
	Home   string
	DB     string
	Socket string
	PID    string
	Log    string
}

// PathsFor lays out an instance's data directory.
func PathsFor(home string) Paths {
	return Paths{
		Home:   home,
		DB:     filepath.Join(home, "mcptrail.db"),
		Socket: filepath.Join(home, "mcptrail.sock"),
		PID:    filepath.Join(home, "mcptrail.pid"),
		Log:    filepath.Join(home, "daemon.log"),
	}
}

// AppendArgs carries one event to record.
type AppendArgs struct {
	Event   store.Event
	Durable bool
}

// AppendReply is the recorded event's place in the sequence.
type AppendReply struct{ Seq uint64 }

// Status describes a running daemon.
type Status struct {
	PID        int              `json:"pid"`
	Version    string           `json:"version"`
	Started    time.Time        `json:"started"`
	Listen     string           `json:"listen"`
	Socket     string           `json:"socket"`
	DB         string           `json:"db"`
	StoreID    string           `json:"store_id,omitempty"` // the store's id: what a collector calls this origin
	Durability string           `json:"durability"`
	Events     uint64           `json:"events"`
	FileBytes  int64            `json:"file_bytes"`
	Upstreams  []string         `json:"upstreams"`
	Sessions   int              `json:"active_sessions"`
	Store      store.Stats      `json:"store"`
	Sinks      []map[string]any `json:"sinks"`
	Collector  *collect.Status  `json:"collector,omitempty"` // collect.go
	Ready      *Readiness       `json:"readiness,omitempty"` // ops.go
}

// Client talks to a running daemon. It is an ingest.Recorder.
type Client struct {
	rpc    *rpc.Client
	socket string

	// Records travel in order, in batches: a record nobody waits for
	// (an outcome, a notification) is queued and the caller goes on —
	// wrap relays a server's response without a round trip to the daemon
	// — while one that must be in the store first (a request) waits for
	// its batch. One batch is in flight at a time, so the daemon appends
	// in the order wrap recorded.
	mu          sync.Mutex
	idle        sync.Cond // signalled when a flush takes the queue or ends
	queue       []*queuedRecord
	queuedBytes int
	sending     bool
	broken      error // the connection failed: every later record fails
	linger      *time.Timer
	lingering   bool // linger is set to send what the queue holds

	// Batch durability: a request waits for no round trip. Record gives
	// it a provisional seq (see provisional) and the caller goes on; the
	// daemon's answer fills resolved, the store's seq of each.
	ahead    bool
	lastProv uint64
	resolved map[uint64]uint64 // 0: the record was not stored
	order    []uint64          // resolved's keys, oldest first

	// With a daemon that takes them, records go to a segment (segment.go),
	// not in batches over the socket: under batch durability each as it
	// comes; under strict durability too, and a durable one is then synced
	// (Segment.Sync) before Record returns.
	seg *segWriter
}

// A wrap holds at most this many records, or bytes of them, for the
// daemon (besides the batch being sent).
const (
	maxQueuedRecords = 256
	maxQueuedBytes   = 256 << 10
)

// A record nobody waits for lingers in the queue up to lingerFor (or until
// lingerMax have queued), so that it rides with the next request's batch:
// sent at once, a call's outcome took a round trip to the daemon of its
// own, and the next request had to wait for it (one batch is in flight at
// a time).
const (
	lingerFor = 2 * time.Millisecond
	lingerMax = 32
)

type queuedRecord struct {
	ev      store.Event // a copy: the caller may reuse its buffers
	kind    string
	durable bool
	prov    uint64            // the provisional seq Record gave it, or 0
	refs    [2]uint64         // its call and logical_call, if provisional
	done    chan appendResult // nil: nobody waits
}

// provisional marks a seq that wrap gave a record before the daemon
// appended it (batch durability): the top bit, which no store reaches.
// The daemon puts the store's seq in place of a provisional one wherever a
// later record refers to it (call, logical_call).
const provisional = 1 << 63

// maxResolved is how many provisional seqs a client remembers the store's
// seq of: a call's outcome that comes more records than that after its
// request is recorded without the link (and says so).
const maxResolved = 1 << 16

// size is about what q takes in memory: its bodies, and the rest.
func (q *queuedRecord) size() int {
	e := &q.ev
	return 512 + len(e.Params) + len(e.Result) + len(e.Error) + len(e.Detail) + len(e.Prestate)
}

type appendResult struct {
	seq uint64
	err error
}

// AppendBatchArgs are records to append in order. On the wire each event
// is its JSON object, as when wraps sent them encoded (json.RawMessage):
// either side may be the older.
type AppendBatchArgs struct {
	Events  []store.Event
	Durable []bool
	// Provisional seqs (batch durability): Provisional[i] is the one wrap
	// gave Events[i] (0: none), Resolved pairs those of earlier batches
	// with the store's. Daemons from before provisional seqs ignore both,
	// and wraps use them only with a daemon that says it takes them.
	Provisional []uint64    `json:",omitempty"`
	Resolved    [][2]uint64 `json:",omitempty"`
}

// RecordingInfo tells a wrap how the daemon records (Daemon.Recording).
type RecordingInfo struct {
	Durability      string
	ProvisionalSeqs bool
	Segments        bool // a wrap may record through a segment (segment.go)
	// SegmentSync: the segment's connection answers Segment.Sync, so a
	// strict wrap may record through a segment too. Daemons from before
	// it leave it false, and such a wrap records over the socket.
	SegmentSync bool
}

// plan is how a wrap records with a daemon that says info: ahead (batch
// durability, provisional seqs) or waiting for each durable record, and
// through a segment or over the socket. Without ahead only with
// Segment.Sync: an older daemon's segment has no way to tell a wrap that a
// durable record was refused, or to answer once it is committed.
func (info RecordingInfo) plan() (ahead, segment bool) {
	ahead = info.Durability == store.DurabilityBatch && info.ProvisionalSeqs
	return ahead, info.Segments && (ahead || info.SegmentSync)
}

// AppendBatchReply has each record's seq, or its error ("" when none).
type AppendBatchReply struct {
	Seqs   []uint64
	Errors []string
}

// ErrNotRunning means no daemon answers on the instance's socket.
var ErrNotRunning = errors.New("no mcptrail daemon is running")

// Dial connects to the daemon of the instance at home.
func Dial(home string) (*Client, error) {
	conn, err := net.DialTimeout("unix", PathsFor(home).Socket, 2*time.Second)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) || isRefused(err) {
			return nil, ErrNotRunning
		}
		return nil, err
	}
	c := &Client{rpc: jsonrpc.NewClient(conn), socket: PathsFor(home).Socket}
	c.idle.L = &c.mu
	c.linger = time.AfterFunc(time.Hour, c.lingered)
	c.linger.Stop()
	return c, nil
}

func isRefused(err error) bool {
	var op *net.OpError
	if errors.As(err, &op) {
		var se *os.SyscallError
		if errors.As(op.Err, &se) {
			return se.Syscall == "connect"
		}
	}
	return false
}

// Close sends what is queued, then hangs up.
func (c *Client) Close() error {
	c.linger.Stop()
	c.mu.Lock()
	seg := c.seg
	c.seg = nil
	c.mu.Unlock()
	if seg != nil {
		if err := seg.close(); err != nil {
			slog.Warn("records may be missing", "err", err)
		}
	}
	c.mu.Lock()
	for c.sending {
		c.idle.Wait()
	}
	send := len(c.queue) > 0
	c.sending = send
	c.mu.Unlock()
	if send {
		c.flush(nil)
	}
	return c.rpc.Close()
}

// lingered sends the records that waited lingerFor without a request to
// take them along.
func (c *Client) lingered() {
	c.mu.Lock()
	c.lingering = false
	send := !c.sending && len(c.queue) > 0
	if send {
		c.sending = true
	}
	c.mu.Unlock()
	if send {
		c.flush(nil)
	}
}

// RecordAhead asks the daemon how it records and, under batch durability,
// lets Record give requests provisional seqs instead of waiting for the
// daemon's. It reports whether it does. Call it before any Record. Either
// way it opens a segment when the daemon takes one for that durability.
func (c *Client) RecordAhead() (bool, error) {
	var info RecordingInfo
	if err := c.rpc.Call("Daemon.Recording", struct{}{}, &info); err != nil {
		return false, err
	}
	ahead, segment := info.plan()
	var seg *segWriter
	if segment {
		var err error
		if seg, err = openSegment(c.socket); err != nil {
			slog.Debug("recording over the socket: no segment", "err", err)
			seg = nil
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.ahead, c.seg = ahead, seg
	return c.ahead, nil
}

func (c *Client) aheadNow() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.ahead
}

// Record sends ev to the daemon's store. With durable set it returns once
// the daemon has appended it (and committed it, under strict durability),
// and sets ev.Seq, through the segment as over the socket — unless
// RecordAhead is on: then, as without durable, it returns at once and the
// record follows the ones before it; ev.Seq is a provisional seq (Resolve
// tells the store's), or 0 without durable.
func (c *Client) Record(ev *store.Event, durable bool) (uint64, error) {
	// Checked now, and copied: one event that cannot be encoded must not
	// sink its batch, and the caller may reuse the buffers its raw fields
	// point into. It is encoded with its batch, off the call's path.
	if err := ev.ValidRaw(); err != nil {
		return 0, fmt.Errorf("daemon: a %s record: %w", ev.Kind, err)
	}
	if durable && ev.Kind == store.KindCall && c.aheadNow() {
		// Under batch durability nothing waits for a commit, and no event
		// refers to an outcome: it needs no provisional seq either.
		durable = false
	}
	if seq, ok, err := c.recordToSegment(ev, durable); ok {
		return seq, err
	}
	q := &queuedRecord{ev: ev.Clone(), kind: ev.Kind, durable: durable}
	for i, ref := range [2]uint64{ev.Call, ev.LogicalCall} {
		if ref&provisional != 0 {
			q.refs[i] = ref
		}
	}
	c.mu.Lock()
	// Bounded: a server that talks faster than the daemon records waits
	// for it here, as the pipes then hold it back, instead of wrap
	// holding its records in memory.
	for (len(c.queue) >= maxQueuedRecords || c.queuedBytes >= maxQueuedBytes) && c.broken == nil {
		c.idle.Wait()
	}
	if c.broken != nil {
		err := c.broken
		c.mu.Unlock()
		return 0, err
	}
	if durable && c.ahead {
		c.lastProv++
		q.prov = provisional | c.lastProv
		ev.Seq = q.prov
	} else if durable {
		q.done = make(chan appendResult, 1)
	}
	c.queue = append(c.queue, q)
	c.queuedBytes += q.size()
	if q.done == nil {
		flush := !c.sending && len(c.queue) >= lingerMax
		if flush {
			c.sending = true
		} else if !c.sending && !c.lingering {
			c.lingering = true
			c.linger.Reset(lingerFor)
		}
		c.mu.Unlock()
		if flush {
			go c.flush(nil)
		}
		return q.prov, nil
	}
	flush := !c.sending
	c.sending = true
	c.mu.Unlock()
	if flush {
		c.flush(q) // it waits anyway: send from here, sparing a hand-off
	}
	r := <-q.done
	if r.err != nil {
		return 0, r.err
	}
	ev.Seq = r.seq
	return r.seq, nil
}

// recordToSegment records ev through the segment, if there is one (ok):
// encoded and in the daemon's reach before Record returns. Under strict
// durability a durable record is also recorded, committed, and its store
// seq learnt (Segment.Sync) before it returns: one round trip carrying a
// number, where the socket's carried the whole event each way and had it
// encoded and decoded by net/rpc's reflection.
func (c *Client) recordToSegment(ev *store.Event, durable bool) (seq uint64, ok bool, err error) {
	seg, prov, wait, err := c.appendToSegment(ev, durable)
	switch {
	case seg == nil:
		return 0, false, nil
	case err != nil:
		return 0, true, err
	case !wait:
		if prov != 0 {
			ev.Seq = prov
		}
		return prov, true, nil
	}
	// Synced outside c.mu, so that the records of other calls go into the
	// segment meanwhile; a rewind waits for it (syncing).
	seq, err = seg.sync(prov)
	seg.syncing.RUnlock()
	var refused rpc.ServerError
	switch {
	case errors.As(err, &refused):
		// The store's refusal of this record, or a segment the daemon
		// stopped reading: the caller fails closed, as over the socket.
		return 0, true, fmt.Errorf("daemon: %w", err)
	case err != nil:
		c.mu.Lock()
		defer c.mu.Unlock()
		if c.broken == nil {
			c.broken = fmt.Errorf("daemon: %w", err)
		}
		return 0, true, c.broken
	}
	ev.Seq = seq
	return seq, true, nil
}

// appendToSegment writes ev's record into the segment, if there is one
// (seg), with a provisional seq when durable. wait: a strict wrap must
// sync it before the call goes on; seg.syncing is then held shared, taken
// before c.mu is let go so that no rewind comes between the record and its
// sync, for the caller to release once synced.
func (c *Client) appendToSegment(ev *store.Event, durable bool) (seg *segWriter, prov uint64, wait bool, err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if seg = c.seg; seg == nil || c.broken != nil {
		return seg, 0, false, c.broken
	}
	if durable {
		c.lastProv++
		prov = provisional | c.lastProv
	}
	if err := seg.append(ev, durable, prov); err != nil {
		c.broken = fmt.Errorf("daemon: %w", err)
		return seg, 0, false, c.broken
	}
	if prov == 0 || c.ahead {
		return seg, prov, false, nil
	}
	seg.syncing.RLock()
	return seg, prov, true, nil
}

// flush sends queued records, a batch at a time, until none are left. A
// caller flushing for its own record (own) hands the rest to a goroutine
// once that record is through, so a server's flood of notifications never
// holds up the request it is waiting to forward.
func (c *Client) flush(own *queuedRecord) {
	for {
		c.mu.Lock()
		batch := c.queue
		c.queue, c.queuedBytes = nil, 0
		if len(batch) == 0 {
			c.sending = false
		}
		c.idle.Broadcast() // room in the queue, or the flush is over
		c.mu.Unlock()
		if len(batch) == 0 {
			return
		}
		args := c.batchArgs(batch)
		var reply AppendBatchReply
		err := c.rpc.Call("Daemon.AppendBatch", args, &reply)
		if err == nil && (len(reply.Seqs) != len(batch) || len(reply.Errors) != len(batch)) {
			err = errors.New("malformed reply")
		}
		if err != nil {
			err = fmt.Errorf("daemon: %w", err)
			c.mu.Lock()
			c.broken = err
			c.idle.Broadcast()
			c.mu.Unlock()
		}
		results := make([]appendResult, len(batch))
		for i := range batch {
			r := &results[i]
			r.err = err
			if err == nil {
				r.seq = reply.Seqs[i]
				if reply.Errors[i] != "" {
					r.err = fmt.Errorf("daemon: %s", reply.Errors[i])
				}
			}
		}
		c.resolve(batch, results)
		for i, q := range batch {
			r := results[i]
			switch {
			case q.done != nil:
				q.done <- r
			case r.err != nil:
				slog.Warn("a record was not stored", "kind", q.kind, "err", r.err)
			}
		}
		if own != nil && slices.Contains(batch, own) {
			go c.flush(nil)
			return
		}
	}
}

// batchArgs is what flush sends for batch: with the provisional seqs its
// records carry and refer to, the latter resolved where an earlier batch
// has been answered.
func (c *Client) batchArgs(batch []*queuedRecord) *AppendBatchArgs {
	args := &AppendBatchArgs{Events: make([]store.Event, len(batch)), Durable: make([]bool, len(batch))}
	c.mu.Lock()
	defer c.mu.Unlock()
	for i, q := range batch {
		args.Events[i], args.Durable[i] = q.ev, q.durable
		if q.prov != 0 {
			if args.Provisional == nil {
				args.Provisional = make([]uint64, len(batch))
			}
			args.Provisional[i] = q.prov
		}
		for _, ref := range q.refs {
			if seq, ok := c.resolved[ref]; ok && ref != 0 {
				args.Resolved = append(args.Resolved, [2]uint64{ref, seq})
			}
		}
	}
	return args
}

// resolve keeps the store's seq of each provisional one in batch (0 for a
// record that was not stored), forgetting the oldest beyond maxResolved,
// and wakes Resolve.
func (c *Client) resolve(batch []*queuedRecord, results []appendResult) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for i, q := range batch {
		if q.prov == 0 {
			continue
		}
		if c.resolved == nil {
			c.resolved = map[uint64]uint64{}
		}
		if len(c.order) == maxResolved {
			delete(c.resolved, c.order[0])
			c.order = c.order[1:]
		}
		c.resolved[q.prov] = results[i].seq
		c.order = append(c.order, q.prov)
	}
	c.idle.Broadcast()
}

// Resolve returns the store's seq of seq, a provisional one that Record
// returned (any other is returned as it is), once the daemon has appended
// its record: rollback's pre-state capture needs it before the call goes on.
func (c *Client) Resolve(seq uint64) (uint64, error) {
	if seq&provisional == 0 {
		return seq, nil
	}
	c.mu.Lock()
	if seg := c.seg; seg != nil {
		seg.syncing.RLock() // no rewind is half done while the daemon looks
		c.mu.Unlock()
		s, err := seg.resolve(seq)
		seg.syncing.RUnlock()
		if err != nil {
			return 0, fmt.Errorf("daemon: %w", err)
		}
		return s, nil
	}
	defer c.mu.Unlock()
	for {
		if s, ok := c.resolved[seq]; ok {
			if s == 0 {
				return 0, errors.New("daemon: the record was not stored")
			}
			return s, nil
		}
		if c.broken != nil {
			return 0, c.broken
		}
		if seq > provisional|c.lastProv {
			return 0, fmt.Errorf("daemon: no record has the provisional seq %d", seq&^provisional)
		}
		if !c.sending {
			// It waits in the queue for the linger: send it now.
			c.sending = true
			c.mu.Unlock()
			c.flush(nil)
			c.mu.Lock()
			continue
		}
		c.idle.Wait()
	}
}

// Status asks the daemon how it is.
func (c *Client) Status() (*Status, error) {
	var s Status
	return &s, c.rpc.Call("Daemon.Status", struct{}{}, &s)
}

// Stop asks the daemon to shut down cleanly; it returns once the daemon has
// agreed, not once it has exited.
func (c *Client) Stop() error { return c.rpc.Call("Daemon.Stop", struct{}{}, &struct{}{}) }

// Query runs a store query in the daemon.
func (c *Client) Query(q store.Query) (store.Page, error) {
	var p store.Page
	return p, c.rpc.Call("Daemon.Query", q, &p)
}

// Sessions lists session summaries through the daemon.
func (c *Client) Sessions(q store.SessionQuery) ([]store.SessionSummary, error) {
	var s []store.SessionSummary
	return s, c.rpc.Call("Daemon.Sessions", q, &s)
}

// Get fetches one event through the daemon.
func (c *Client) Get(seq uint64) (*store.Event, error) {
	var ev store.Event
	if err := c.rpc.Call("Daemon.Get", seq, &ev); err != nil {
		return nil, err
	}
	return &ev, nil
}

// Verify checks the store's chain in the daemon.
func (c *Client) Verify() (store.VerifyResult, error) {
	var r store.VerifyResult
	return r, c.rpc.Call("Daemon.Verify", struct{}{}, &r)
}

// service is what the daemon exposes over its socket (net/rpc's method shape).
type service struct{ d *Daemon }

// AppendBatch appends a wrap's records in the order sent; one that fails
// does not stop the others.
func (s *service) AppendBatch(a *AppendBatchArgs, r *AppendBatchReply) error {
	if len(a.Durable) != len(a.Events) {
		return errors.New("AppendBatch: one durability per event")
	}
	if a.Provisional != nil && len(a.Provisional) != len(a.Events) {
		return errors.New("AppendBatch: one provisional seq per event")
	}
	r.Seqs, r.Errors = make([]uint64, len(a.Events)), make([]string, len(a.Events))
	var seqs map[uint64]uint64 // provisional → store seq
	if a.Provisional != nil || a.Resolved != nil {
		seqs = map[uint64]uint64{}
		for _, p := range a.Resolved {
			seqs[p[0]] = p[1]
		}
	}
	for i := range a.Events {
		ev := &a.Events[i]
		linkProvisional(ev, seqs)
		var err error
		r.Seqs[i], err = s.d.Record(ev, a.Durable[i])
		if err != nil {
			r.Errors[i] = err.Error()
		} else if a.Provisional != nil && a.Provisional[i] != 0 {
			seqs[a.Provisional[i]] = r.Seqs[i]
		}
	}
	return nil
}

// linkProvisional puts the store's seqs in place of the provisional ones
// ev refers to. One it does not know (its record failed, or the wrap no
// longer remembers it) is dropped, and the event says so.
func linkProvisional(ev *store.Event, seqs map[uint64]uint64) {
	for _, ref := range []*uint64{&ev.Call, &ev.LogicalCall} {
		if *ref&provisional == 0 {
			continue
		}
		seq := seqs[*ref]
		if seq == 0 {
			ev.Detail = strings.TrimSpace(ev.Detail + " (the seq of the request this refers to was not known when it was recorded)")
		}
		*ref = seq
	}
}

// Append records one event: what wraps of earlier versions call.
func (s *service) Append(a *AppendArgs, r *AppendReply) error {
	ev := a.Event
	seq, err := s.d.Record(&ev, a.Durable)
	r.Seq = seq
	return err
}

// Recording tells a wrap the durability and that AppendBatch takes
// provisional seqs.
func (s *service) Recording(_ struct{}, r *RecordingInfo) error {
	*r = RecordingInfo{Durability: s.d.store.Stats().Durability, ProvisionalSeqs: true, Segments: true, SegmentSync: true}
	return nil
}

func (s *service) Status(_ struct{}, r *Status) error {
	*r = s.d.Status()
	return nil
}

func (s *service) Stop(_ struct{}, _ *struct{}) error {
	s.d.Shutdown()
	return nil
}

func (s *service) Query(q store.Query, p *store.Page) error {
	var err error
	*p, err = s.d.store.Query(q)
	return err
}

func (s *service) Sessions(q store.SessionQuery, r *[]store.SessionSummary) error {
	var err error
	*r, err = s.d.store.Sessions(q)
	return err
}

func (s *service) Get(seq uint64, ev *store.Event) error {
	e, err := s.d.store.Get(seq)
	if err != nil {
		return err
	}
	*ev = *e
	return nil
}

func (s *service) Verify(_ struct{}, r *store.VerifyResult) error {
	var err error
	*r, err = s.d.store.Verify()
	return err
}
