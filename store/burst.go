package store

// A burst is events one producer appends back to back and then has no more
// of for a while: the daemon's reader of a wrap's segment records what the
// wrap wrote since its last look (every 10 ms under load, a few dozen
// events). Waiting out the batch window after such a burst gathers nothing
// more, and the logger watching the queue (Store.asleep) looks at it every
// window, to find it empty four times in five: each look is a timer and a
// wake-up of an idle thread, which on a 2-core paravirtualised VM cost more
// CPU than the look itself (bench/cpu-per-call wrap-batch 1 2000: the
// daemon switched context 1.9 times per call before, 0.9 after, and its
// CPU per call fell by about a fifth). So a burst wakes the logger once,
// at its end, and the logger takes it at once and does not watch after it.

// BeginBurst says that the caller is about to append a burst: until its
// EndBurst, the first event queued does not wake the logger (a waiting
// Append, a Flush or a full batch still do). Every BeginBurst must be
// followed by an EndBurst.
func (s *Store) BeginBurst() {
	s.mu.Lock()
	s.bursts++
	s.mu.Unlock()
}

// EndBurst ends a BeginBurst: what is queued is taken at once, without
// waiting out the window, and the goroutine that takes it is woken.
func (s *Store) EndBurst() {
	s.mu.Lock()
	s.bursts--
	push := len(s.queue) > 0
	if push {
		s.pushedSeq = s.seq
	}
	s.mu.Unlock()
	if push {
		s.signal()
	}
}
