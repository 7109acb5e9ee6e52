package siem

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/mcptrail/mcptrail/store"
)

// delivery is one run of a forwarder's loop, from Start to Stop: where
// the sink stands (acked, the cursor; sent, what it has been handed), when
// the cursor was last saved, and how long to back off after a failure.
// One goroutine owns it; what others may read (the status) is copied into
// the Forwarder under its lock.
//
// On any failure, sent goes back to acked and delivery resumes from there
// after a backoff: events are delivered at least once, in seq order, and
// those the sink has not accepted stay in the store (the cursor holds
// retention back) however long it is down.
type delivery struct {
	f       *Forwarder
	settler Settler // nil: Send returning is acceptance
	ctx     context.Context
	cancel  context.CancelFunc

	acked    uint64 // the cursor: the last seq the sink has accepted
	sent     uint64 // the last seq handed to the sink
	lastItem uint64 // seq of the last event actually sent and not known settled; 0: none
	cpDone   uint64 // the size of the last checkpoint forwarded

	saved   uint64 // the cursor as last saved in the store
	savedAt time.Time
	backoff time.Duration // the last retry delay; 0 after a success

	events <-chan store.Event // the store's wake-ups
	unsub  func()
	poll   *time.Ticker
}

func newDelivery(f *Forwarder, acked, cpDone uint64) *delivery {
	d := &delivery{f: f, acked: acked, sent: acked, cpDone: cpDone, saved: acked, savedAt: time.Now()}
	d.settler, _ = f.sink.(Settler)
	d.ctx, d.cancel = context.WithCancel(context.Background())
	d.events, d.unsub = f.src.Subscribe(1024)
	d.poll = time.NewTicker(f.o.Poll)
	return d
}

// run is the forwarder's goroutine: it delivers until Stop (and the drain)
// or until the store closes.
func (f *Forwarder) run(acked, cpDone uint64) {
	defer close(f.done)
	defer f.sink.Close()
	d := newDelivery(f, acked, cpDone)
	defer d.close()
	for d.step() {
	}
}

// close saves the cursor, says where delivery stopped, and lets go of the
// subscription.
func (d *delivery) close() {
	d.save(true)
	d.reportStop()
	d.poll.Stop()
	d.unsub()
	d.cancel()
}

// step is one turn of the loop: settle, forward due checkpoints, read a
// page after what was sent, and send it, or wait for news when there is
// none. It returns false when delivery is over.
func (d *delivery) step() bool {
	if d.stopping() && (d.drainLeft() <= 0 || d.f.failing()) {
		return false
	}
	if err := d.settle(); err != nil {
		d.fail(err)
		return true
	}
	d.save(false)
	if d.f.o.Checkpoints != nil && d.acked > d.cpDone {
		if err := d.sendCheckpoints(); err != nil {
			d.fail(err)
			return true
		}
	}
	page, err := d.f.src.Query(store.Query{Cursor: d.sent + 1, Limit: d.f.spec.Batch})
	if err != nil {
		if errors.Is(err, store.ErrClosed) {
			return false
		}
		d.fail(fmt.Errorf("reading the store: %w", err))
		return true
	}
	if len(page.Events) == 0 {
		return d.idle()
	}
	items := d.encode(page.Events)
	if err := d.f.sink.Send(d.ctx, items); err != nil {
		d.fail(err)
		return true
	}
	d.advance(page.Events[len(page.Events)-1].Seq, items)
	return true
}

// settle moves the cursor to what the transport has settled (everything
// sent, for a sink that is not a Settler).
func (d *delivery) settle() error {
	if d.settler != nil {
		s, err := d.settler.Settled()
		if err != nil {
			return err
		}
		switch {
		case d.lastItem == 0 || s >= d.lastItem:
			d.acked, d.lastItem = d.sent, 0
		case s > d.acked:
			d.acked = s
		}
	} else {
		d.acked, d.lastItem = d.sent, 0
	}
	d.f.mu.Lock()
	d.f.st.Cursor = d.acked
	d.f.mu.Unlock()
	return nil
}

// encode encodes the events of a page the sink takes. One that cannot be
// encoded is logged and skipped.
func (d *delivery) encode(events []store.Event) []Item {
	items := make([]Item, 0, len(events))
	for i := range events {
		ev := &events[i]
		if d.f.spec.Kinds != nil && !d.f.spec.Kinds[ev.Kind] {
			continue
		}
		body, err := d.f.enc.Encode(ev)
		if err != nil {
			// Cannot happen for events the store accepted; never stall
			// every later event behind one.
			d.f.o.Logger.Error("siem: event cannot be encoded; skipped", "sink", d.f.spec.Redacted, "seq", ev.Seq, "err", err)
			continue
		}
		items = append(items, Item{Event: ev, Body: body})
	}
	return items
}

// advance records a successful Send of items, the events of a page up to
// seq last (the others were not the sink's kinds).
func (d *delivery) advance(last uint64, items []Item) {
	d.backoff = 0
	d.sent = last
	if len(items) > 0 {
		d.lastItem = items[len(items)-1].Event.Seq
	}
	if d.settler == nil {
		d.acked, d.lastItem = d.sent, 0
	}
	now := time.Now()
	f := d.f
	f.mu.Lock()
	recovered := f.st.State == "failing"
	f.st.Cursor = d.acked
	f.st.Delivered += uint64(len(items))
	if len(items) > 0 {
		f.st.LastDeliveryAt = &now
	}
	if f.st.State != "caught up" || len(items) > 0 {
		f.st.State = "delivering"
	}
	f.mu.Unlock()
	if recovered {
		f.o.Logger.Info("siem: sink recovered", "sink", f.spec.Redacted)
	}
}

// idle runs when the store has nothing after what was sent: while
// stopping it waits for the sink to settle and then ends; otherwise it
// waits for new events, the poll, or Stop.
func (d *delivery) idle() bool {
	f := d.f
	if d.stopping() {
		if d.lastItem == 0 {
			return false // drained
		}
		// Nothing to wake on but the transport settling: look again
		// after a poll interval (or what is left of the drain).
		time.Sleep(max(0, min(f.o.Poll, d.drainLeft())))
		return true
	}
	if d.lastItem == 0 {
		f.mu.Lock()
		if f.st.State != "failing" {
			f.st.State = "caught up"
		}
		f.mu.Unlock()
	}
	select {
	case _, ok := <-d.events:
		if !ok {
			// Fell behind: the store dropped us rather than wait.
			d.unsub()
			d.events, d.unsub = f.src.Subscribe(1024)
		}
		drain(d.events)
		// Let the burst that woke us gather into one batch: one send (one
		// fsync, one HTTP request) per linger, not per call, keeps the
		// forwarder's cost off the gateway's CPU and disk.
		f.sleep(f.linger())
	case <-d.poll.C:
	case <-f.stop:
	}
	return true
}

// fail resets the sink, rewinds to the cursor and waits out the backoff
// (or Retry-After, if longer), unless stopping.
func (d *delivery) fail(err error) {
	f := d.f
	f.sink.Reset()
	d.sent, d.lastItem = d.acked, 0
	wait := time.Duration(0)
	var ra *RetryAfterError
	if errors.As(err, &ra) {
		wait = ra.After
	}
	if d.backoff == 0 {
		d.backoff = f.o.MinBackoff
	} else {
		d.backoff = min(d.backoff*2, f.o.MaxBackoff)
	}
	// Full jitter on top of the floor, so that many gateways behind one
	// collector do not retry in step.
	wait = max(wait, d.backoff/2+rand.N(d.backoff/2+1))
	now := time.Now()
	f.mu.Lock()
	first := f.st.State != "failing"
	f.st.State, f.st.LastError, f.st.LastErrorAt = "failing", err.Error(), &now
	f.st.Failures++
	f.mu.Unlock()
	if first {
		f.o.Logger.Warn("siem: sink failing; retrying with backoff (events are kept until it accepts them)", "sink", f.spec.Redacted, "err", err)
	}
	if d.stopping() {
		return // no retrying while stopping: the next start resumes from the cursor
	}
	t := time.NewTimer(wait)
	select {
	case <-t.C:
	case <-f.stop:
		t.Stop()
	}
}

// save writes the cursor to the store if it moved, at most every
// SaveEvery unless forced.
func (d *delivery) save(force bool) {
	if d.acked == d.saved || (!force && time.Since(d.savedAt) < d.f.o.SaveEvery) {
		return
	}
	if err := d.f.src.Cursors().Set(d.f.name, d.acked); err != nil {
		if !errors.Is(err, store.ErrClosed) {
			d.f.o.Logger.Warn("siem: saving the cursor", "sink", d.f.spec.Redacted, "err", err)
		}
		return
	}
	d.saved, d.savedAt = d.acked, time.Now()
}

// reportStop logs, on the way out of a Stop, what the sink has and what it
// does not, so that whoever stopped the daemon knows where delivery will
// resume.
func (d *delivery) reportStop() {
	if !d.stopping() {
		return
	}
	f := d.f
	last := f.src.Stats().Events
	f.mu.Lock()
	lastErr := f.st.LastError
	f.mu.Unlock()
	if d.acked >= last {
		f.o.Logger.Info("siem: sink stopped with every committed event delivered", "sink", f.spec.Redacted, "cursor", d.acked)
		return
	}
	f.o.Logger.Warn("siem: sink stopped before delivering every committed event; the next start resumes after its cursor",
		"sink", f.spec.Redacted, "cursor", d.acked, "last", last, "undelivered", last-d.acked, "last_error", lastErr)
}

func (d *delivery) stopping() bool {
	select {
	case <-d.f.stop:
		return true
	default:
		return false
	}
}

// drainLeft is how much of Stop's drain is left.
func (d *delivery) drainLeft() time.Duration {
	d.f.mu.Lock()
	defer d.f.mu.Unlock()
	return time.Until(d.f.drainBy)
}

// sendCheckpoints forwards the checkpoints covering events up to acked.
func (d *delivery) sendCheckpoints() error {
	f := d.f
	cps, err := f.o.Checkpoints(d.cpDone)
	if err != nil {
		return fmt.Errorf("reading checkpoints: %w", err)
	}
	var items []Item
	for _, cp := range cps {
		if cp.Size > d.acked {
			break // its events are not all delivered yet
		}
		ev := &store.Event{Seq: cp.Size, Time: cp.Time, Kind: KindCheckpoint, Hash: cp.Hash, Detail: cp.Note}
		body, err := f.enc.Encode(ev)
		if err != nil {
			return err
		}
		items = append(items, Item{Event: ev, Body: body})
	}
	if len(items) == 0 {
		return nil
	}
	if err := f.sink.Send(d.ctx, items); err != nil {
		return err
	}
	d.cpDone = items[len(items)-1].Event.Seq
	if err := f.src.Cursors().Set(f.name+"#checkpoints", d.cpDone); err != nil {
		return err
	}
	f.mu.Lock()
	f.st.Checkpoints = d.cpDone
	f.mu.Unlock()
	return nil
}

// drain empties ch without blocking.
func drain(ch <-chan store.Event) {
	for {
		select {
		case _, ok := <-ch:
			if !ok {
				return
			}
		default:
			return
		}
	}
}
