// Package daemon runs mcptrail's one store-owning process (`mcptrail serve`)
// and lets every other command reach it: wrap sends records over the
// daemon's unix socket, and the read commands query through it while bbolt's
// file lock keeps them out of the file.
package daemon

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/rpc"
	"net/rpc/jsonrpc"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

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
	Durability string           `json:"durability"`
	Events     uint64           `json:"events"`
	FileBytes  int64            `json:"file_bytes"`
	Upstreams  []string         `json:"upstreams"`
	Sessions   int              `json:"active_sessions"`
	Store      store.Stats      `json:"store"`
	Sinks      []map[string]any `json:"sinks"`
	Ready      *Readiness       `json:"readiness,omitempty"` // ops.go
}

// Client talks to a running daemon. It is an ingest.Recorder.
type Client struct {
	rpc *rpc.Client

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
	ev      json.RawMessage // the event, encoded when it was recorded
	kind    string
	durable bool
	done    chan appendResult // nil: nobody waits
}

type appendResult struct {
	seq uint64
	err error
}

// AppendBatchArgs are records to append in order, each a JSON store.Event.
type AppendBatchArgs struct {
	Events  []json.RawMessage
	Durable []bool
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
	c := &Client{rpc: jsonrpc.NewClient(conn)}
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

// Record sends ev to the daemon's store. With durable set it returns once
// the daemon has appended it (and committed it, under strict durability),
// and sets ev.Seq; otherwise it returns at once, with seq 0, and the record
// follows the ones before it.
func (c *Client) Record(ev *store.Event, durable bool) (uint64, error) {
	// Encoded now: the caller may reuse the buffers its raw fields point
	// into, and one event that cannot be encoded must not sink its batch.
	data, err := json.Marshal(ev)
	if err != nil {
		return 0, fmt.Errorf("daemon: encoding a %s record: %w", ev.Kind, err)
	}
	q := &queuedRecord{ev: data, kind: ev.Kind, durable: durable}
	if durable {
		q.done = make(chan appendResult, 1)
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
	c.queue = append(c.queue, q)
	c.queuedBytes += len(q.ev)
	if !durable {
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
		return 0, nil
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
		args := AppendBatchArgs{Events: make([]json.RawMessage, len(batch)), Durable: make([]bool, len(batch))}
		for i, q := range batch {
			args.Events[i], args.Durable[i] = q.ev, q.durable
		}
		var reply AppendBatchReply
		err := c.rpc.Call("Daemon.AppendBatch", &args, &reply)
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
		for i, q := range batch {
			r := appendResult{err: err}
			if err == nil {
				r.seq = reply.Seqs[i]
				if reply.Errors[i] != "" {
					r.err = fmt.Errorf("daemon: %s", reply.Errors[i])
				}
			}
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
	r.Seqs, r.Errors = make([]uint64, len(a.Events)), make([]string, len(a.Events))
	for i, raw := range a.Events {
		var ev store.Event
		err := json.Unmarshal(raw, &ev)
		if err == nil {
			r.Seqs[i], err = s.d.Record(&ev, a.Durable[i])
		}
		if err != nil {
			r.Errors[i] = err.Error()
		}
	}
	return nil
}

// Append records one event: what wraps of earlier versions call.
func (s *service) Append(a *AppendArgs, r *AppendReply) error {
	ev := a.Event
	seq, err := s.d.Record(&ev, a.Durable)
	r.Seq = seq
	return err
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
