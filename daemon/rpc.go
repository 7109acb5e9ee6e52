// Package daemon runs mcptrail's one store-owning process (`mcptrail serve`)
// and lets every other command reach it: wrap sends records over the
// daemon's unix socket, and the read commands query through it while bbolt's
// file lock keeps them out of the file.
package daemon

import (
	"errors"
	"fmt"
	"net"
	"net/rpc"
	"net/rpc/jsonrpc"
	"os"
	"path/filepath"
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
	return &Client{rpc: jsonrpc.NewClient(conn)}, nil
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

// Close hangs up.
func (c *Client) Close() error { return c.rpc.Close() }

// Record sends ev to the daemon's store and sets ev.Seq.
func (c *Client) Record(ev *store.Event, durable bool) (uint64, error) {
	var r AppendReply
	if err := c.rpc.Call("Daemon.Append", &AppendArgs{Event: *ev, Durable: durable}, &r); err != nil {
		return 0, fmt.Errorf("daemon: %w", err)
	}
	ev.Seq = r.Seq
	return r.Seq, nil
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
