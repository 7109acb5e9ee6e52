package siem

import (
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/mcptrail/mcptrail/store"
)

// Source is what a forwarder needs of the store. *store.Store is one.
// Forwarders only read committed events (bbolt read transactions run
// beside the writer without blocking it) and learn of new ones from a
// subscription that the store closes rather than wait on, so a slow or
// dead sink never slows the gateway's calls.
type Source interface {
	Query(store.Query) (store.Page, error)
	Subscribe(buffer int) (<-chan store.Event, func())
	Cursors() store.Cursors
	Stats() store.Stats
}

// Retention: the store never prunes an event after any cursor (see
// store.RetentionPolicy), so a sink's saved cursor is also its retention floor:
// what a sink has not accepted stays, however long it is down.

// Checkpoint is a signed checkpoint of the store's chain, as forwarded.
type Checkpoint struct {
	Size uint64    // the number of events it covers (the seq of the last)
	Hash string    // the chain's head hash at Size
	Time time.Time // when it was made
	Note string    // the signed note (C2SP format), verbatim
}

// CheckpointFeed lists the store's checkpoints with Size > after, oldest
// first. The daemon provides it once the store signs checkpoints; a
// forwarder sends each checkpoint after the events it covers.
type CheckpointFeed func(after uint64) ([]Checkpoint, error)

// KindCheckpoint is the kind of the synthetic events checkpoints are
// forwarded as.
const KindCheckpoint = store.KindCheckpoint

// ForwarderOptions tune forwarders; the zero value is the default.
type ForwarderOptions struct {
	Encoding    Options
	Logger      *slog.Logger
	SaveEvery   time.Duration  // how often a moving cursor is saved (default 5s)
	MinBackoff  time.Duration  // first retry delay (default 250ms)
	MaxBackoff  time.Duration  // longest retry delay (default 30s)
	Poll        time.Duration  // how often to look for events and settle without news (default 250ms)
	Linger      time.Duration  // default for sinks without ?linger= (default 200ms)
	Checkpoints CheckpointFeed // nil: the store has no checkpoints (yet)
}

func (o ForwarderOptions) withDefaults() ForwarderOptions {
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.SaveEvery <= 0 {
		// Each save is a write transaction (and fsync) that the store's own
		// commits queue behind; a cursor that lags only means duplicates
		// after a crash.
		o.SaveEvery = 5 * time.Second
	}
	if o.MinBackoff <= 0 {
		o.MinBackoff = 250 * time.Millisecond
	}
	if o.MaxBackoff <= 0 {
		o.MaxBackoff = 30 * time.Second
	}
	if o.Poll <= 0 {
		o.Poll = 250 * time.Millisecond
	}
	if o.Linger <= 0 {
		o.Linger = 200 * time.Millisecond
	}
	return o
}

// SinkStatus is a forwarder's state, for `mcptrail status` and the console.
type SinkStatus struct {
	Name           string     `json:"name"`
	URL            string     `json:"url"` // secrets masked
	Kind           string     `json:"kind"`
	Format         string     `json:"format"`
	State          string     `json:"state"`  // starting, delivering, caught up, failing, stopped
	Cursor         uint64     `json:"cursor"` // the last seq the sink has accepted (persisted)
	Last           uint64     `json:"last"`   // the store's last committed seq
	Lag            uint64     `json:"lag"`    // events not yet accepted
	Delivered      uint64     `json:"delivered"`
	Failures       uint64     `json:"failures"`
	Checkpoints    uint64     `json:"checkpoints,omitempty"` // size of the last checkpoint forwarded
	LastError      string     `json:"last_error,omitempty"`
	LastErrorAt    *time.Time `json:"last_error_at,omitempty"`
	LastDeliveryAt *time.Time `json:"last_delivery_at,omitempty"`
}

// Forwarder moves events from the store to one sink.
type Forwarder struct {
	spec *SinkSpec
	sink Sink
	enc  Encoder
	src  Source
	o    ForwarderOptions
	name string // cursor name in the store

	mu sync.Mutex
	st SinkStatus

	stop    chan struct{}
	done    chan struct{}
	drainBy time.Time // set by Stop: keep delivering until then
}

// CursorName is the store cursor of the sink named name.
func CursorName(name string) string { return "siem:" + name }

// NewForwarder builds a forwarder for spec; Start runs it.
func NewForwarder(src Source, spec *SinkSpec, o ForwarderOptions) (*Forwarder, error) {
	o = o.withDefaults()
	enc := o.Encoding
	enc.Bodies = enc.Bodies || spec.Bodies
	e, err := NewEncoder(spec.Format, enc)
	if err != nil {
		return nil, err
	}
	sink, err := spec.Open(enc)
	if err != nil {
		return nil, err
	}
	f := &Forwarder{
		spec: spec, sink: sink, enc: e, src: src, o: o, name: CursorName(spec.Name),
		stop: make(chan struct{}), done: make(chan struct{}),
		st: SinkStatus{Name: spec.Name, URL: spec.Redacted, Kind: spec.Kind, Format: string(spec.Format), State: "starting"},
	}
	return f, nil
}

// Start loads the cursor and starts delivering in the background.
func (f *Forwarder) Start() error {
	cur, err := f.src.Cursors().Get(f.name)
	if err != nil {
		return fmt.Errorf("sink %s: reading its cursor: %w", f.spec.Redacted, err)
	}
	var cp uint64
	if f.o.Checkpoints != nil {
		if cp, err = f.src.Cursors().Get(f.name + "#checkpoints"); err != nil {
			return err
		}
	}
	if cur == 0 && f.spec.Start == "end" {
		// A new sink that starts at the end skips the old checkpoints too.
		cur = f.src.Stats().Events
		if err := f.src.Cursors().Set(f.name, cur); err != nil {
			return fmt.Errorf("sink %s: saving its cursor: %w", f.spec.Redacted, err)
		}
		if f.o.Checkpoints != nil && cp == 0 {
			cp = cur
			if err := f.src.Cursors().Set(f.name+"#checkpoints", cp); err != nil {
				return err
			}
		}
	}
	f.mu.Lock()
	f.st.Cursor, f.st.Checkpoints = cur, cp
	f.mu.Unlock()
	go f.run(cur, cp)
	return nil
}

// Stop stops the forwarder, first giving it up to drain to deliver what
// is left, and saves its cursor.
func (f *Forwarder) Stop(drain time.Duration) {
	f.mu.Lock()
	f.drainBy = time.Now().Add(drain)
	f.mu.Unlock()
	select {
	case <-f.stop:
	default:
		close(f.stop)
	}
	<-f.done
}

// Status reports the forwarder's state.
func (f *Forwarder) Status() SinkStatus {
	last := f.src.Stats().Events
	f.mu.Lock()
	defer f.mu.Unlock()
	st := f.st
	st.Last = last
	if last > st.Cursor {
		st.Lag = last - st.Cursor
	}
	return st
}

func (f *Forwarder) linger() time.Duration {
	if f.spec.Linger >= 0 {
		return f.spec.Linger
	}
	return f.o.Linger
}

// sleep waits d or until Stop.
func (f *Forwarder) sleep(d time.Duration) {
	if d <= 0 {
		return
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-f.stop:
	}
}

func (f *Forwarder) failing() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.st.State == "failing"
}

// checkpointer is a store that signs checkpoints (*store.Store).
type checkpointer interface {
	Checkpoints() store.Checkpoints
}

// StoreCheckpoints is the CheckpointFeed of a store that signs
// checkpoints; nil for one that does not.
func StoreCheckpoints(src any) CheckpointFeed {
	cs, ok := src.(checkpointer)
	if !ok {
		return nil
	}
	return func(after uint64) ([]Checkpoint, error) {
		list, err := cs.Checkpoints().After(after)
		if err != nil {
			return nil, err
		}
		out := make([]Checkpoint, len(list))
		for i, c := range list {
			out[i] = Checkpoint{Size: c.Size, Hash: c.Hash, Time: c.Time, Note: c.Note}
		}
		return out, nil
	}
}
