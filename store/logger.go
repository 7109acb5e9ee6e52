package store

import (
	"fmt"
	"log/slog"
	"time"

	bolt "go.etcd.io/bbolt"
)

// The logger, and how the writer applies what it logged (the log itself is
// the wal type).

// log is the logger: it takes batches off the queue as run does without a
// log, writes them to the log, answers their appenders, and hands them to
// run to apply.
func (s *Store) log() {
	n := newNap(s.wake)
	var active time.Time // of the last batch
	for {
		s.mu.Lock()
		batch, wait := s.take()
		// A batch an ended burst let go (EndBurst) starts no watch: the
		// producer's next burst ends with a wake-up too.
		last := lastEvent(batch)
		pushed := last != nil && last.ev.Seq <= s.pushedSeq
		closed := s.closed
		idle := batch == nil && wait <= 0 && !closed
		watch := idle && time.Since(active) < watchQueue
		s.asleep = idle && !watch
		s.mu.Unlock()
		switch {
		case batch != nil:
			s.logBatch(batch)
			if !pushed {
				active = time.Now()
			}
		case wait > 0:
			if !s.preEncode() {
				n.sleep(wait)
			}
		case closed:
			s.mu.Lock()
			s.logDone = true
			s.mu.Unlock()
			s.applySignal()
			return
		case watch:
			n.sleep(s.window)
		default:
			<-n.wake
		}
	}
}

// watchQueue is how long after its last batch the logger looks at the
// queue every window rather than wait to be woken (Store.asleep).
const watchQueue = 100 * time.Millisecond

// logBatch writes batch to the log. While applying the log fails (the disk
// is full), it refuses new events, as a commit would fail them: strict
// appenders learn of it and the gateway fails closed.
func (s *Store) logBatch(batch []*pending) {
	s.mu.Lock()
	var err error
	switch {
	case s.applyErr != nil:
		// Perhaps the disk has room again: try now rather than refuse
		// until the retry.
		err = s.awaitApplyLocked(s.walSeq)
	case s.wal.off >= walPrealloc && s.doneSeq < s.walSeq:
		// The log starts over only once all it holds is committed
		// (replay reads it in order from the start), which under
		// steady load may never be the case by itself: ask for it.
		err = s.awaitApplyLocked(s.walSeq)
	}
	prev := s.walHash
	rewind := s.doneSeq == s.walSeq
	s.mu.Unlock()
	if err == nil {
		s.seal(batch, prev)
		// Strict appenders wait for the log's sync (AppendLogged's only
		// for the write: see needsSync). In batch mode nobody
		// does (a Flush waits for the commit into the file), so the log
		// is written each window, which a crash of the process cannot
		// undo, and not synced: what a crash of the machine can lose is
		// what is not yet committed into the file, at most applyWindow.
		// The sync per window was 12–20 µs of each call's p50 in the
		// gateway benchmark (BENCHMARKS.md).
		sync := !s.batch && needsSync(batch)
		err = s.wal.write(batch, rewind, sync, s.hookErr)
		if err == nil && sync {
			s.logSyncs.Add(1)
		}
	}
	if err != nil {
		s.lose(batch, err)
		return
	}
	var dones []chan error
	events := batch[:0:0]
	for _, p := range batch {
		if p.done != nil {
			dones = append(dones, p.done)
			p.done = nil // answered here; run must not answer again
		}
		if !p.marker {
			events = append(events, p)
		}
	}
	s.mu.Lock()
	// run sleeps out the window of the first logged event unless the
	// batch is full; waking it for every batch would cost CPU.
	wake := len(events) > 0 && (len(s.logged) == 0 || len(s.logged)+len(events) >= s.maxBatch)
	if last := lastEvent(events); last != nil {
		s.walSeq, s.walHash = last.ev.Seq, last.hash
		s.logged = append(s.logged, events...)
	}
	// The store takes events again: the outage's alert follows them.
	alert := len(events) > 0 && s.recoveredLocked()
	s.mu.Unlock()
	for _, d := range dones {
		d <- nil
	}
	if wake {
		s.applySignal()
	}
	if alert {
		s.signal()
	}
}

// needsSync reports whether a strict appender in batch waits for the log's
// sync: one of Append's, or a Flush. A batch of events that nobody waits for
// and of AppendLogged's is written, not synced; the next sync covers it.
func needsSync(batch []*pending) bool {
	for _, p := range batch {
		if p.done != nil && !p.logged {
			return true
		}
	}
	return false
}

// applyRetry is how long run waits before it tries again to apply the log
// after a failure, unless a reader or the logger asks for it sooner.
const applyRetry = 100 * time.Millisecond

// applyWindow is how long logged events wait to be committed (or the batch
// window, if longer), unless a reader wants them or maxBatch have gathered.
// The log has them safe; a commit's syncs and page writes hold up the log's
// sync of the next request, so fewer commits mean faster strict calls (with
// commits every 2 ms, the in-process strict gateway added about twice the
// latency it adds with 50 ms).
const applyWindow = 100 * time.Millisecond

// takeLogged is take for a store with a log: the logged events, once
// applyWindow has passed, or at once when a reader waits for them. s.mu
// must be held.
func (s *Store) takeLogged() ([]*pending, time.Duration) {
	if len(s.logged) == 0 {
		return nil, 0
	}
	if !(s.closed && s.logDone) && s.wantApply == 0 {
		at := s.logged[0].at.Add(max(s.applyAfter, s.window))
		if s.applyErr != nil {
			at = s.retryAt
		}
		if wait := time.Until(at); wait > 0 && (s.applyErr != nil || len(s.logged) < s.maxBatch) {
			return nil, wait
		}
	}
	n := min(len(s.logged), s.maxBatch)
	batch := s.logged[:n:n]
	s.logged = s.logged[n:]
	if len(s.logged) == 0 {
		s.logged = nil
	}
	s.attempts++
	return batch, 0
}

// awaitApplyLocked asks run to apply the log up to seq now and waits for
// it, or for an attempt to fail (returning its error). s.mu must be held;
// Wait releases it meanwhile.
func (s *Store) awaitApplyLocked(seq uint64) error {
	if s.doneSeq >= seq || s.runDone {
		return s.applyErr
	}
	s.wantApply++
	s.applySignal()
	// An attempt already under way may have begun before the disk had
	// room again: only the failure of one that begins now counts.
	start := s.attempts
	for s.doneSeq < seq && !s.runDone && !(s.applyErr != nil && s.failedAttempt > start) {
		s.applied.Wait()
	}
	s.wantApply--
	if s.doneSeq >= seq {
		return nil
	}
	return s.applyErr
}

// settle returns once every event the log holds is in the file, so that
// readers see each event an Append acknowledged (or once applying it has
// failed: then they see what the file has).
func (s *Store) settle() {
	if s.wal == nil {
		return
	}
	s.mu.Lock()
	s.awaitApplyLocked(s.walSeq)
	s.mu.Unlock()
}

func (s *Store) applySignal() {
	select {
	case s.runWake <- struct{}{}:
	default:
	}
}

// retry puts back a logged batch whose commit failed, for run to try again
// after applyRetry (sooner if asked). At Close it gives up: the events stay
// in the log, and the next Open applies them.
func (s *Store) retry(batch []*pending, err error) {
	s.mu.Lock()
	first := s.applyErr == nil
	s.logged = append(batch[:len(batch):len(batch)], s.logged...)
	s.applyErr = err
	s.failedAttempt = s.attempts
	s.retryAt = time.Now().Add(applyRetry)
	s.failedLocked(0, err)
	if s.closed && s.logDone {
		s.closeErr = fmt.Errorf("store: %d events are only in the write-ahead log; the next open applies them: %w", len(s.logged), err)
		s.logged = nil
	}
	s.applied.Broadcast()
	s.mu.Unlock()
	if first {
		slog.Error("mcptrail store: applying the write-ahead log failed; trying again until it succeeds", "err", err)
	}
}

// warnUnapplied says when a read-only open does not see events that the
// write-ahead log holds (after a crash, until a writable open applies them).
func (s *Store) warnUnapplied() {
	log, err := readWAL(s.path)
	if err != nil {
		slog.Warn("mcptrail store: cannot read the write-ahead log", "err", err)
		return
	}
	n := 0
	walRecords(log, s.doneSeq, s.doneHash, func(uint64, []byte) error { n++; return nil })
	if n > 0 {
		slog.Warn("mcptrail store: the write-ahead log holds events the file does not have yet; the daemon applies them when it starts",
			"events", n, "file_last_seq", s.doneSeq)
	}
}

// replayWAL commits the events a crash left in the write-ahead log (those
// that continue the file's chain) before anything else is written.
func (s *Store) replayWAL() error {
	log, err := readWAL(s.path)
	if err != nil {
		return fmt.Errorf("write-ahead log: %w", err)
	}
	var batch []*pending
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		if err := s.update(func(tx *bolt.Tx) error { return write(tx, batch) }); err != nil {
			return fmt.Errorf("applying the write-ahead log: %w", err)
		}
		last := batch[len(batch)-1]
		s.doneSeq, s.doneHash, s.seq = last.ev.Seq, last.hash, last.ev.Seq
		batch = batch[:0]
		return nil
	}
	n := 0
	err = walRecords(log, s.doneSeq, s.doneHash, func(seq uint64, value []byte) error {
		p := &pending{encoded: true, hash: [32]byte(value[33:65])}
		if err := decodeEvent(seq, value, &p.ev); err != nil {
			return fmt.Errorf("write-ahead log: event %d: %w", seq, err)
		}
		p.prep.value = value
		batch = append(batch, p)
		n++
		if len(batch) < s.maxBatch {
			return nil
		}
		return flush()
	})
	if err == nil {
		err = flush()
	}
	if n > 0 {
		slog.Info("mcptrail store: applied events from the write-ahead log", "events", n, "last_seq", s.doneSeq)
	}
	return err
}
