// Package collect is the central side of a fleet: it consumes the records
// every gateway's Kafka sink produces and merges each origin's events into
// the central store, checking each origin's chain as it goes (docs/fleet.md).
//
// Delivery is at least once end to end: a gateway's forwarder moves its
// cursor only after the brokers acknowledge, and the collector commits its
// consumer group's offsets only after the central store has committed what
// it merged. Redeliveries are dropped by (origin, seq); what does not
// extend an origin's chain is recorded as an alert and not merged.
package collect

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/mcptrail/mcptrail/siem"
	"github.com/mcptrail/mcptrail/store"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Spec is a parsed collector URL:
//
//	kafka://HOST:PORT[,HOST:PORT...]/TOPIC?group=NAME&start=beginning|end&… (connection options as the sink's)
type Spec struct {
	Conn  *siem.KafkaConn
	Group string // the consumer group (default mcptrail-collector)
	Start string // where a new group starts: beginning (default) or end
}

// ParseURL checks a collector URL without touching the network.
func ParseURL(raw string) (*Spec, error) {
	conn, q, err := siem.ParseKafkaURL(raw, "group", "start")
	if err != nil {
		return nil, err
	}
	s := &Spec{Conn: conn, Group: q.Get("group"), Start: q.Get("start")}
	if s.Group == "" {
		s.Group = "mcptrail-collector"
	}
	if len(s.Group) > 255 {
		return nil, &siem.SinkError{URL: conn.Redacted, Reason: "group: at most 255 characters"}
	}
	switch s.Start {
	case "":
		s.Start = "beginning"
	case "beginning", "end":
	default:
		return nil, &siem.SinkError{URL: conn.Redacted, Reason: fmt.Sprintf("start=%q: want beginning or end", s.Start)}
	}
	return s, nil
}

// Options tune a collector.
type Options struct {
	Keys       map[string]string  // origin store id → verifier key of its checkpoints, pinned
	PinnedOnly bool               // refuse (with an alert) the records of origins not in Keys
	Logger     *slog.Logger       // default slog.Default
	Observe    func(*store.Event) // sees every event merged (detections); must not keep it past the call (copy it)
	MaxPoll    int                // most records merged per store commit (default 10000)
}

// Status is a collector's state, for `mcptrail status`.
type Status struct {
	URL         string              `json:"url"` // secrets masked
	Group       string              `json:"group"`
	State       string              `json:"state"` // starting, collecting, failing, stopped
	LastError   string              `json:"last_error,omitempty"`
	LastErrorAt *time.Time          `json:"last_error_at,omitempty"`
	Stats       Stats               `json:"stats"`
	Origins     []store.OriginState `json:"origins,omitempty"`
}

// Collector consumes a topic into the central store.
type Collector struct {
	spec   *Spec
	st     *store.Store
	o      Options
	merger *Merger
	client *kgo.Client

	mu      sync.Mutex
	state   string
	lastErr string
	errAt   *time.Time
	origins []store.OriginState

	cancel context.CancelFunc
	done   chan struct{}
}

// Start resumes the origins' states from the store, joins the consumer
// group and starts merging in the background.
func Start(st *store.Store, spec *Spec, o Options) (*Collector, error) {
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.MaxPoll <= 0 {
		o.MaxPoll = 10000
	}
	m, err := newMerger(st, o.Keys, o.PinnedOnly, o.Logger, o.Observe)
	if err != nil {
		return nil, err
	}
	opts, err := spec.Conn.ClientOpts()
	if err != nil {
		return nil, err
	}
	reset := kgo.NewOffset().AtStart()
	if spec.Start == "end" {
		reset = kgo.NewOffset().AtEnd()
	}
	opts = append(opts,
		kgo.ConsumerGroup(spec.Group),
		kgo.ConsumeTopics(spec.Conn.Topic),
		kgo.ConsumeResetOffset(reset),
		kgo.DisableAutoCommit(),    // offsets move only after the store commits
		kgo.BlockRebalanceOnPoll(), // and no partition moves between a poll and its commit
		kgo.FetchMaxWait(100*time.Millisecond),
	)
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return nil, fmt.Errorf("collector %s: %w", spec.Conn.Redacted, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	c := &Collector{spec: spec, st: st, o: o, merger: m, client: cl, state: "starting", cancel: cancel, done: make(chan struct{})}
	c.origins = m.Origins()
	go c.run(ctx)
	return c, nil
}

// Stop stops consuming: what was merged and committed stays; what was
// polled and not committed is consumed again by the next start.
func (c *Collector) Stop() {
	c.cancel()
	<-c.done
}

// Status reports the collector's state.
func (c *Collector) Status() Status {
	c.mu.Lock()
	defer c.mu.Unlock()
	return Status{URL: c.spec.Conn.Redacted, Group: c.spec.Group, State: c.state, LastError: c.lastErr, LastErrorAt: c.errAt,
		Stats: c.merger.Stats(), Origins: c.origins}
}

func (c *Collector) setState(s string, err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	first := err != nil && c.state != "failing"
	c.state = s
	if err != nil {
		now := time.Now()
		c.lastErr, c.errAt = err.Error(), &now
	}
	if first {
		c.o.Logger.Warn("collector: failing; retrying (nothing is committed until the store has it)", "url", c.spec.Conn.Redacted, "err", err)
	}
}

func (c *Collector) run(ctx context.Context) {
	defer close(c.done)
	defer func() {
		c.client.AllowRebalance()
		c.client.Close()
		c.setState("stopped", nil)
	}()
	for {
		fs := c.client.PollRecords(ctx, c.o.MaxPoll)
		if ctx.Err() != nil || fs.IsClientClosed() {
			return
		}
		var fetchErr error
		fs.EachError(func(_ string, _ int32, err error) {
			if !errors.Is(err, context.Canceled) {
				fetchErr = err
			}
		})
		if fetchErr != nil {
			c.setState("failing", fetchErr)
		}
		recs := fs.Records()
		if len(recs) == 0 {
			c.client.AllowRebalance()
			continue
		}
		for _, r := range recs {
			h := recordHeaders(r.Headers)
			if err := c.merger.merge(r.Key, r.Value, &h); err != nil {
				c.fatal(err)
				return
			}
		}
		if err := c.merger.Commit(); err != nil {
			c.fatal(err)
			return
		}
		// The store has every merged record: now the group may move on.
		for ctx.Err() == nil {
			err := c.client.CommitRecords(ctx, recs...)
			if err == nil || ctx.Err() != nil { // stopping: the next start consumes these again
				break
			}
			c.setState("failing", fmt.Errorf("committing offsets: %w", err))
			t := time.NewTimer(time.Second)
			select {
			case <-t.C:
			case <-ctx.Done():
				t.Stop()
			}
		}
		c.client.AllowRebalance()
		c.mu.Lock()
		c.state, c.origins = "collecting", c.merger.Origins()
		c.mu.Unlock()
	}
}

// fatal stops collecting on a store failure: the records polled are not
// committed, so a restart consumes them again.
func (c *Collector) fatal(err error) {
	if !errors.Is(err, store.ErrClosed) {
		c.o.Logger.Error("collector: the central store failed; collecting stopped (uncommitted records are consumed again at the next start)", "err", err)
	}
	c.setState("failing", err)
}
