package store

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	"math"
	"runtime"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/mcptrail/mcptrail/internal/rawjson"
	"github.com/oklog/ulid/v2"
	bolt "go.etcd.io/bbolt"
)

// pending is a queued event, or a Flush marker.
type pending struct {
	ev      Event
	marker  bool     // a Flush marker, no event
	encoded bool     // prep holds ev's encoding; else the writer encodes it
	prep    prepared // prep.value is the stored value once sealed, and in batch mode, once logged, a view of the log (wal)
	hash    [32]byte // set when the writer seals the event into the chain
	at      time.Time
	done    chan error // receives the commit's result; nil when nobody waits
	// logged: the appender waits only until the event is written to the
	// write-ahead log (AppendLogged), not for the log's sync.
	logged bool
	outage *outage // this is the alert of an outage that seemed over
}

// Session ids are keys of their own (bbolt keys are at most 32 KiB); the
// gateway makes them, so a long one is a bug, not an agent's doing.
const maxSessionID = 1024

// Times the store can order (Unix nanoseconds fit in an int64).
var (
	minTime = time.Unix(0, math.MinInt64)
	maxTime = time.Unix(0, math.MaxInt64)
)

// Append records ev and returns its seq. It assigns ev's Seq, ID (when
// empty), Time (now, when zero; always UTC), PrevHash and Hash. In strict
// mode it returns once the event is on disk (synced to the write-ahead log),
// and refuses an event with a raw field that is not JSON; in batch mode it
// returns once the event is queued, and such an event is stored without its
// bodies, saying why in its detail (as with AppendNoWait). The store keeps
// its own copy: the caller may reuse ev.
func (s *Store) Append(ev *Event) (uint64, error) {
	return s.append(ev, !s.batch)
}

// AppendNoWait is Append without waiting for the commit, whatever the
// durability: for records that need not be durable before the gateway acts
// (responses, notifications). They commit within the batch window, or with
// the next durable Append, whichever comes first.
func (s *Store) AppendNoWait(ev *Event) (uint64, error) {
	return s.append(ev, false)
}

// AppendLogged is Append for a record that must outlive a crash of this
// process but not of the machine: in strict mode it returns once the event
// is written to the write-ahead log, without waiting for the log's sync,
// which the next Append's sync (or the commit) covers. The gateway records
// the outcome of an answered call so before it forwards the answer: a
// daemon killed after the client has its answer cannot leave that call
// without its outcome, and the call pays a write instead of a second
// fdatasync. In batch mode, where nothing waits for the log, it is
// AppendNoWait.
func (s *Store) AppendLogged(ev *Event) (uint64, error) {
	if s.batch {
		return s.append(ev, false)
	}
	return s.appendWait(ev, true, true)
}

// Record appends ev the way the gateway needs it, which makes a Store an
// ingest.Recorder: an event the gateway waits for before it acts (durable) is
// a request, which must be on disk before it is forwarded (Append), or the
// outcome of an answered call, which must outlive this process before the
// answer is forwarded (AppendLogged); anything else need not be waited for
// (AppendNoWait).
func (s *Store) Record(ev *Event, durable bool) (uint64, error) {
	switch {
	case !durable:
		return s.AppendNoWait(ev)
	case ev.Kind == KindCall:
		return s.AppendLogged(ev)
	}
	return s.Append(ev)
}

// append queues ev for the writer and gives it its seq. An appender that
// waits for the commit encodes its event itself, so concurrent durable
// appends marshal and compress in parallel while the previous commit syncs.
// One that does not wait (batch durability, AppendNoWait) only copies it and
// leaves the encoding to the writer — the gateway forwards a call right
// after its record has a seq, and the encoding then runs off the call's
// path — unless a backlog shows the store busy: then throughput counts,
// and appenders encode in parallel again.
func (s *Store) append(ev *Event, wait bool) (uint64, error) {
	return s.appendWait(ev, wait, false)
}

// appendWait is append; with logged, a waiting appender is answered once
// its event is written to the log, before the log's sync.
func (s *Store) appendWait(ev *Event, wait, logged bool) (uint64, error) {
	if s.readOnly {
		return 0, ErrReadOnly
	}
	if len(ev.Session) > maxSessionID {
		return 0, fmt.Errorf("store: session id of %d bytes is too long", len(ev.Session))
	}
	// An appender that encodes its event compacts the raw fields into new
	// buffers; one that leaves it to the writer copies them.
	encode := wait || s.backlog.Load() >= selfEncodeBacklog
	// The store's copy is built in the pending the writer gets, not copied
	// into it: a second copy of the Event (490 bytes) was a quarter of the
	// bytes allocated per append (BenchmarkAppendBatch). Once queued, p.ev
	// is the writer's: what the caller gets back is read before.
	p := &pending{ev: ev.clone(!encode), logged: logged}
	e := &p.ev
	if e.ID == "" {
		e.ID = ulid.Make().String()
	}
	now := time.Now()
	if e.Time.IsZero() {
		e.Time = now
	}
	e.Time = e.Time.UTC()
	if e.Time.Before(minTime) || e.Time.After(maxTime) {
		return 0, fmt.Errorf("store: event time %v out of range", e.Time)
	}
	p.at = now
	var done chan error // p.done is the writer's once queued
	if wait {
		done = make(chan error, 1)
		p.done = done
	}
	switch {
	case encode && wait:
		if err := e.compactRaw(false); err != nil {
			return 0, err
		}
		prep, err := prepare(e, s.largeBody)
		if err != nil {
			return 0, fmt.Errorf("store: encode event: %w", err)
		}
		p.prep, p.encoded = prep, true
	case encode:
		p.prep, p.encoded = s.encodeQueued(e, false), true
	}
	// One left to the writer is not checked here: a scan of its bodies
	// on the caller's path (a response's, for every outcome) would cost
	// the call as much as the gateway's own parse of the message. Bodies
	// that are not JSON are dropped by the writer, the event kept with
	// the reason in its detail (encodeQueued).

	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return 0, ErrClosed
	}
	s.enqueue(p)
	seq, id, at := e.Seq, e.ID, e.Time
	// The writer sleeps out the window unless there is a reason to commit
	// now (someone waits, or the batch is full); waking it for every event
	// would cost CPU.
	// (Nor for the first event of a burst: its EndBurst wakes it once.)
	wake := wait || (len(s.queue) == 1 && s.asleep && s.bursts == 0) || s.queued >= s.maxBatch
	s.mu.Unlock()
	if wake {
		s.signal()
	}

	if wait {
		if err := <-done; err != nil {
			return 0, err
		}
		// Sealed by the writer before the commit; an event nobody waits
		// for is sealed later, and its hash is not known here.
		ev.PrevHash, ev.Hash = p.ev.PrevHash, p.ev.Hash
	}
	ev.Seq, ev.ID, ev.Time = seq, id, at
	return seq, nil
}

// enqueue gives p.ev the next seq and queues it for the writer, which
// chains it. s.mu must be held.
func (s *Store) enqueue(p *pending) {
	s.seq++
	p.ev.Seq = s.seq
	s.queue = append(s.queue, p)
	s.queued++
	s.backlog.Store(int64(s.queued))
	s.pending++
	if p.done != nil {
		s.waiters++
	}
}

// seal encodes what the appenders left unencoded and chains the batch onto
// prev, the last event committed (or logged). Only the goroutine that takes
// the queue calls it. A large batch is encoded on every core.
func (s *Store) seal(batch []*pending, prev [32]byte) {
	var todo []*pending
	for _, p := range batch {
		if !p.marker && !p.encoded {
			todo = append(todo, p)
		}
	}
	encode := func(list []*pending) {
		for _, p := range list {
			p.prep = s.encodeQueued(&p.ev, true)
			p.encoded = true
		}
	}
	if workers := min(runtime.GOMAXPROCS(0), len(todo)/parallelEncodeMin); workers > 1 {
		var wg sync.WaitGroup
		per := (len(todo) + workers - 1) / workers
		for chunk := range slices.Chunk(todo, per) {
			wg.Go(func() { encode(chunk) })
		}
		wg.Wait()
	} else {
		encode(todo)
	}
	prevHex := "" // an event's prev_hash is its predecessor's hash: one string for both
	for _, p := range batch {
		if p.marker {
			continue
		}
		sum := p.prep.seal(p.ev.Seq, prev)
		if prevHex == "" {
			prevHex = hex.EncodeToString(prev[:])
		}
		p.ev.PrevHash, p.ev.Hash = prevHex, hex.EncodeToString(sum[:])
		p.hash, prev, prevHex = sum, sum, p.ev.Hash
	}
}

// preEncode encodes the queued events no appender encoded, and reports
// whether there were any. Only the writer calls it: once queued, a pending
// that nobody waits for is the writer's alone.
func (s *Store) preEncode() bool {
	var todo []*pending
	s.mu.Lock()
	for _, p := range s.queue {
		if !p.marker && !p.encoded {
			todo = append(todo, p)
		}
	}
	s.mu.Unlock()
	for _, p := range todo {
		p.prep = s.encodeQueued(&p.ev, true)
		p.encoded = true
	}
	return len(todo) > 0
}

// selfEncodeBacklog is the queue length from which appenders that do not
// wait encode their events themselves.
const selfEncodeBacklog = 32

// parallelEncodeMin is how many unencoded events make it worth a goroutine
// to encode them.
const parallelEncodeMin = 64

// encodeQueued encodes an event an appender did not wait for. One whose
// raw fields are not JSON is kept without them, with the reason in its
// detail: its appender has its seq already, and a hole in the sequence
// would be worse.
func (s *Store) encodeQueued(e *Event, owned bool) prepared {
	seq := e.Seq // prepare encodes the event with seq 0
	defer func() { e.Seq = seq }()
	err := e.compactRaw(owned)
	var prep prepared
	if err == nil {
		prep, err = prepare(e, s.largeBody)
	}
	if err != nil {
		slog.Error("mcptrail store: encoding an event", "seq", e.Seq, "err", err)
		e.Params, e.Result, e.Error, e.JSONRPCID = nil, nil, nil, nil
		e.Detail = strings.TrimSpace(e.Detail + " (bodies dropped: " + err.Error() + ")")
		if prep, err = prepare(e, s.largeBody); err != nil {
			panic(fmt.Sprintf("store: encoding event %d without bodies: %v", e.Seq, err))
		}
	}
	return prep
}

// Flush returns when every event appended before it is committed. It
// returns an error if a commit failed since the previous Flush: in batch
// mode that is how a caller learns that events were lost.
func (s *Store) Flush() error {
	if s.readOnly {
		return nil
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return ErrClosed
	}
	var done chan error
	if s.pending > 0 {
		done = make(chan error, 1)
		s.queue = append(s.queue, &pending{marker: true, at: time.Now(), done: done})
		s.waiters++
	}
	s.mu.Unlock()
	if done != nil {
		s.signal()
		<-done // a failure is in s.lost too
	}
	s.settle()
	s.mu.Lock()
	defer s.mu.Unlock()
	err := s.lost
	s.lost = nil
	return err
}

func (s *Store) signal() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// nap is a goroutine's sleep that a signal on wake cuts short.
type nap struct {
	wake  chan struct{}
	timer *time.Timer
}

func newNap(wake chan struct{}) *nap {
	t := time.NewTimer(time.Hour)
	t.Stop()
	return &nap{wake: wake, timer: t}
}

func (n *nap) sleep(d time.Duration) {
	n.timer.Reset(d)
	select {
	case <-n.wake:
	case <-n.timer.C:
	}
	n.timer.Stop()
}

// run is the writer: the only goroutine that writes events to the file, so
// they commit in seq order, as many per transaction as have queued up (with
// a write-ahead log: as have been logged). It also writes the checkpoints:
// with the events when a commit makes one due, else when the interval runs
// out, and a final one at Close.
func (s *Store) run() {
	defer func() {
		s.mu.Lock()
		s.runDone = true
		s.applied.Broadcast()
		s.mu.Unlock()
		close(s.stopped)
	}()
	n := newNap(s.runWake)
	final := false
	for {
		s.mu.Lock()
		var batch []*pending
		var wait time.Duration
		if s.wal != nil {
			batch, wait = s.takeLogged()
		} else {
			batch, wait = s.take()
		}
		closed := s.closed && (s.wal == nil || s.logDone)
		done := s.doneSeq
		s.mu.Unlock()
		switch {
		case batch != nil:
			s.commit(batch)
		case wait > 0:
			// The window is the writer's idle time: encode what waits in
			// it, so the commit that follows has only the chain to do.
			// (With a log, the logger does that.)
			if s.wal != nil || !s.preEncode() {
				n.sleep(wait)
			}
		case closed && !final:
			// The final checkpoint; it may queue an outage alert, so
			// look at the queue once more before leaving.
			final = true
			s.checkpointNow()
		case closed:
			return
		default:
			if due, in := s.ckpt.due(done, time.Now()); due {
				s.checkpointNow()
			} else if in > 0 {
				n.sleep(in)
			} else {
				<-n.wake
			}
		}
	}
}

// take removes the next batch from the queue, or says how long to wait for
// one. s.mu must be held.
func (s *Store) take() ([]*pending, time.Duration) {
	if len(s.queue) == 0 {
		return nil, 0
	}
	// Nobody waits for these events: let them gather for the window. In
	// strict mode too — a durable Append (or Flush) that arrives meanwhile
	// takes them along in its own commit, so a call's outcome never costs
	// the next request a second sync. Not those of a burst that has ended
	// either (EndBurst): its producer has queued all it had.
	if !s.closed && s.waiters == 0 && s.queued < s.maxBatch && s.queue[0].ev.Seq > s.pushedSeq {
		if wait := time.Until(s.queue[0].at.Add(s.window)); wait > 0 {
			return nil, wait
		}
	}
	n, events := 0, 0
	for ; n < len(s.queue); n++ {
		p := s.queue[n]
		if !p.marker {
			if events == s.maxBatch {
				break
			}
			events++
		}
		if p.done != nil {
			s.waiters--
		}
	}
	batch := s.queue[:n:n]
	s.queue = s.queue[n:]
	if len(s.queue) == 0 {
		s.queue = nil
	}
	s.queued -= events
	s.backlog.Store(int64(s.queued))
	return batch, 0
}

// update runs fn in a write transaction (through the tests' failure hook).
func (s *Store) update(fn func(*bolt.Tx) error) error {
	return s.db.Update(func(tx *bolt.Tx) error {
		if err := s.hookErr(); err != nil {
			return err
		}
		return fn(tx)
	})
}

// hookErr is the tests' failure hook: the error every write returns, or nil.
func (s *Store) hookErr() error {
	if hook := s.failHook.Load(); hook != nil {
		return (*hook)()
	}
	return nil
}

// commit writes batch in one transaction, with a checkpoint when one is
// due. Without a log, it seals the batch first and answers its appenders
// after; a logged batch was sealed and answered by the logger, and a failed
// commit of it is tried again (its events are safe in the log).
func (s *Store) commit(batch []*pending) {
	n := countEvents(batch)
	var err error
	var ckpt *checkpointer
	if n > 0 {
		if s.wal == nil {
			s.mu.Lock()
			prev := s.doneHash
			s.mu.Unlock()
			s.seal(batch, prev)
		}
		err = s.update(func(tx *bolt.Tx) error {
			if err := write(tx, batch); err != nil {
				return err
			}
			var err error
			ckpt, err = s.ckpt.writeDue(tx, batch, time.Now())
			return err
		})
	}
	switch {
	case err != nil && s.wal != nil:
		s.retry(batch, err)
		return
	case err != nil:
		s.lose(batch, err)
		return
	}

	s.mu.Lock()
	alert := false
	if n > 0 {
		last := lastEvent(batch)
		s.doneSeq, s.doneHash = last.ev.Seq, last.hash
		s.pending -= n
		s.commits++
		// With a log, the logger says when the store takes events again:
		// a commit of logged events may have begun before the outage.
		alert = s.wal == nil && s.recoveredLocked()
	}
	if s.wal != nil {
		s.applyErr = nil
		s.applied.Broadcast()
	}
	s.mu.Unlock()
	if ckpt != nil {
		*s.ckpt = *ckpt
	}
	if alert {
		s.signal() // the outage alert is queued for the logger (or for run)
	}
	if n > 0 {
		s.publish(batch)
	}
	for _, p := range batch {
		if p.done != nil {
			p.done <- nil
		}
	}
}

// lose fails batch, which could not be stored, and the events queued
// behind it: they were chained onto events that will never exist. The
// sequence and the chain restart after the last event stored (committed,
// or logged).
func (s *Store) lose(batch []*pending, err error) {
	s.mu.Lock()
	head := s.doneSeq
	if s.wal != nil {
		head = s.walSeq
	}
	lost := s.queue
	m := countEvents(batch) + countEvents(lost)
	s.queue, s.queued, s.waiters = nil, 0, 0
	s.backlog.Store(0)
	s.seq = head
	s.pushedSeq = min(s.pushedSeq, head) // the seqs after head are new events
	s.pending -= m
	err = fmt.Errorf("store: commit of seq %d-%d failed: %w", head+1, head+uint64(m), err)
	s.lost = err
	if s.closed {
		s.closeErr = err
	}
	// An outage alert lost with them means the outage goes on: it is
	// counted on, and one alert tells all of it when it ends.
	for _, list := range [][]*pending{batch, lost} {
		for _, p := range list {
			if o := p.outage; o != nil {
				m--
				if s.outage != nil {
					o.events += s.outage.events
					o.commits += s.outage.commits
				}
				s.outage = o
			}
		}
	}
	s.failed += uint64(m)
	s.failedLocked(m, err)
	s.mu.Unlock()
	slog.Error("mcptrail store: events lost", "err", err)
	for _, list := range [][]*pending{batch, lost} {
		for _, p := range list {
			if p.done != nil {
				p.done <- err
			}
		}
	}
}

// write stores a batch: events, index entries, session summaries, head.
func write(tx *bolt.Tx, batch []*pending) error {
	events := tx.Bucket(bEvents)
	events.FillPercent = 1 // keys only ever grow: pack the pages
	meta := tx.Bucket(bMeta)
	idx := tx.Bucket(bIndex)
	// Within each value's range index keys only grow too (seq order), so
	// a split leaves the left page full; the default 0.5 would leave it
	// half empty for good.
	idx.FillPercent = 0.95
	latest, skew := readClock(meta)
	sessions := map[string]*SessionSummary{}
	post := postings{}
	var prefix []byte // reused: postings copies what it keeps

	for _, p := range batch {
		if p.marker {
			continue
		}
		e := &p.ev
		if err := events.Put(u64(e.Seq), p.prep.value); err != nil {
			return err
		}
		fields := e.fields()
		for i, v := range fields[:numIndex] {
			if v != "" {
				prefix = appendIndexPrefix(prefix[:0], indexFields[i], v)
				post.add(prefix, e.Seq)
			}
		}
		if err := trackOpenCall(idx, e); err != nil {
			return err
		}
		if e.Session != "" {
			sum, err := loadSession(tx, sessions, e)
			if err != nil {
				return err
			}
			sum.add(e)
		}
		if e.Time.After(latest) {
			latest = e.Time
		} else if d := latest.Sub(e.Time); d > skew {
			skew = d
		}
	}

	if err := post.write(idx); err != nil {
		return err
	}
	b := tx.Bucket(bSessions)
	for id, sum := range sessions {
		v, err := json.Marshal(sum)
		if err != nil {
			return err
		}
		if err := b.Put([]byte(id), v); err != nil {
			return err
		}
	}
	last := lastEvent(batch)
	for _, kv := range [][2][]byte{
		{kLastSeq, u64(last.ev.Seq)},
		{kLastHash, last.hash[:]},
		{kMaxTime, u64(uint64(latest.UnixNano()))},
		{kSkew, u64(uint64(skew))},
	} {
		if err := meta.Put(kv[0], kv[1]); err != nil {
			return err
		}
	}
	return nil
}

func countEvents(list []*pending) int {
	n := 0
	for _, p := range list {
		if !p.marker {
			n++
		}
	}
	return n
}

func lastEvent(batch []*pending) *pending {
	for i := len(batch) - 1; i >= 0; i-- {
		if !batch[i].marker {
			return batch[i]
		}
	}
	return nil
}

// Clone returns a copy of e that shares no memory with it, for a caller
// that keeps an event its producer may reuse.
func (e *Event) Clone() Event { return e.clone(true) }

// clone returns a copy of e sharing no memory with it (the raw fields only
// with copyRaw: compactRaw copies them too), so that a caller editing its
// event (or reusing the buffers its raw fields point into) after Append
// cannot change what is stored or race with the writer.
func (e *Event) clone(copyRaw bool) Event {
	c := *e
	c.Agent = clone(e.Agent)
	c.Principal = clone(e.Principal)
	c.Task = clone(e.Task)
	c.Authorization = clone(e.Authorization)
	c.Origin = clone(e.Origin)
	if a := clone(e.Annotations); a != nil {
		a.ReadOnly, a.Destructive = clone(a.ReadOnly), clone(a.Destructive)
		a.Idempotent, a.OpenWorld = clone(a.Idempotent), clone(a.OpenWorld)
		c.Annotations = a
	}
	if copyRaw {
		for _, f := range c.rawFields() {
			*f.raw = bytes.Clone(*f.raw)
		}
	}
	return c
}

type rawField struct {
	name string
	raw  *json.RawMessage
}

func (e *Event) rawFields() [4]rawField {
	return [...]rawField{{"jsonrpc_id", &e.JSONRPCID}, {"params", &e.Params}, {"result", &e.Result}, {"error", &e.Error}}
}

// ValidRaw reports a raw field (params, result, error, jsonrpc_id) that is
// not JSON: an event that cannot be encoded. (rawjson.Valid gives
// encoding/json's answers about twice as fast: a large response is checked
// on wrap's call path.)
func (e *Event) ValidRaw() error {
	for _, f := range e.rawFields() {
		if len(bytes.TrimSpace(*f.raw)) > 0 && !rawjson.Valid(*f.raw) {
			return fmt.Errorf("store: event %s is not valid JSON", f.name)
		}
	}
	return nil
}

// compactRaw rewrites the raw fields as json.Marshal writes them, so that
// the event equals what a reader decodes from the file (subscribers get it
// as it is). Unless owned (the raw fields are the store's copies already),
// it leaves none pointing into the caller's buffers.
func (e *Event) compactRaw(owned bool) error {
	for _, f := range e.rawFields() {
		if len(bytes.TrimSpace(*f.raw)) == 0 {
			*f.raw = nil
			continue
		}
		// Most bodies are in Marshal's form already; Marshal would check
		// and rewrite them byte by byte through encoding/json's scanner
		// (3.5 µs of the writer's CPU per gateway call).
		if rawjson.Valid(*f.raw) && rawjson.Marshaled(*f.raw) {
			if !owned {
				*f.raw = bytes.Clone(*f.raw)
			}
			continue
		}
		m, err := json.Marshal(*f.raw)
		if err != nil {
			return fmt.Errorf("store: event %s is not valid JSON: %w", f.name, err)
		}
		*f.raw = m
	}
	return nil
}

func clone[T any](p *T) *T {
	if p == nil {
		return nil
	}
	c := *p
	return &c
}
