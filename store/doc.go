package store

// The API. Store holds the record itself: Open and Close; Append,
// AppendNoWait, AppendLogged, Record and Flush to write; Get, Query,
// Session, Sessions and Subscribe to read; Verify and VerifyWith; Stats,
// Last, ID, Path and VerifierKey; OpenCalls and RecordUnknown after a
// crash. What is kept beside the events has a handle of its own, a small
// value holding the Store, as bbolt puts a bucket's operations on Bucket
// rather than on DB:
//
//	s.Cursors()      Get, Set, All: named positions in the sequence (SIEM
//	                 forwarders); retention never prunes past one
//	s.Retention()    SetFloor, RemoveFloor, Prune: applies Options'
//	                 RetentionPolicy, which the store also does by itself
//	s.Checkpoints()  After, Last: the signed checkpoints of the chain
//	s.Origins()      Save, Load: a collector's place in each origin's chain
//	s.Rollback()     PutPrestate, Prestate, WithholdPrestate, PutPlan, Plan,
//	                 Plans, MarkReverted, Reverted, SetMarks, Marks; it
//	                 embeds the Store, so it is the one value through which
//	                 rollback's Planner and Executor read events and plans
//
// File layout (bbolt, schema version 2; migrate has the history).
// Integers are 8-byte big-endian so that byte order is numeric order.
//
//	meta               "schema"        → 2
//	                   "last_seq"      → seq of the newest committed event
//	                   "last_hash"     → its hash (32 raw bytes)
//	                   "max_time"      → newest event time seen (Unix ns)
//	                   "time_skew"     → largest amount by which an event's time was
//	                                     older than max_time when it was appended (ns)
//	                   "store_id"      → made at creation: checkpoints' origin is mcptrail/<id>
//	                   "verifier_keys" → the verifier keys the file was signed with,
//	                                     one a line (informational: verifiers pin their own)
//	                   "pruned_to"     → retention removed seq 1..n; checkpoint n summarizes them
//	events             seq → the event (encodeEvent): S2-compressed canonical JSON with
//	                   the chain hashes; params/result/error over 16 KiB apart,
//	                   zstd-compressed with the SHA-256 of the original.
//	                   Schema 1 values (the sealed JSON, starting '{') are still read.
//	index              field value NUL last-seq → the block's earlier seqs
//	                   (postings): the seqs of the events with that value,
//	                   in blocks of up to 512 bytes of uvarint differences,
//	                   newest first; an empty value is a block of one (stores
//	                   written before blocks hold one key per event, which read
//	                   so). Field one byte: s session, t tool, a agent
//	                   (AgentKey), u upstream, o outcome, c class, k kind
//	                   (method is filtered, not indexed). Values are cut to
//	                   512 bytes (bbolt keys are short). A commit rewrites the
//	                   last block of each value it touches. A query on one value
//	                   reads the blocks of its page; on several, it joins their
//	                   seqs (leapfrog) before reading events.
//	                   One bucket, not one per field: each bucket's root is
//	                   one more page to write per commit.
//	                   Also "P" NUL seq → empty for each request without an outcome
//	                   yet (OpenCalls: calls a crash interrupted).
//	sessions           session id → SessionSummary JSON, kept at append time
//	sessions_by_start  started (Unix ns, sign bit flipped, inverted) id → empty:
//	                   forward order is newest first
//	checkpoints        size → signed note (Checkpoint), chained, every N events
//	                   or T seconds, in the commit of the events they cover
//	retention_floors   name → seq: retention keeps everything after the smallest
//	cursors            name → seq (Cursors; SIEM forwarders), floors too;
//	                   "collect": the central seq the origins states are current to
//	origins            origin store id → OriginState JSON (Origins; a collector's
//	                   place in each origin's chain)
//
// The chain: hash(n) = SHA-256(hash(n-1) || canonical(n)), hash(0) = 32 zero
// bytes, canonical(n) = json.Marshal of the original event (bodies
// uncompressed, seq n) with prev_hash and hash empty (so omitted): the line
// `export --format jsonl` prints, less those two fields. Hashes are hex in
// Event. Signed checkpoints of (size, hash(size)) bound what an attacker
// without the signing key can change: an edit breaks the chain, a rehash of
// everything after it breaks the checkpoints, a cut-off tail contradicts the
// last checkpoint (and the copies forwarded off the box).
//
// A central store (collect/) also holds other stores' events: each keeps
// its origin's content and carries "origin" (store id, host, and its seq
// and hash in the origin's chain), which is part of its canonical JSON, so
// this store's chain covers it; an event without it is this store's own.
//
// There is no time index. Times are nearly, not strictly, in seq order (the
// gateway stamps a message before it takes its turn to append), so time
// ranges are found by binary search on seq widened by time_skew: every event
// after seq s is at least time(s) - time_skew, every event up to s at most
// time(s) + time_skew. That keeps answers exact whatever the times are, and
// fast while they are nearly ordered; a clock stepped back by an hour makes
// every later time-bounded query read up to an hour more events.
//
// Writes: Append queues the event with its seq. A logger goroutine chains
// what has queued (at once when a strict appender waits, else after the
// batch window), writes it to the write-ahead log, <store>-wal, syncs it
// (strict mode only: in batch mode the commit into bbolt is the sync) and
// answers the appenders, so concurrent strict appenders share one fdatasync
// and none waits for a bbolt commit; the writer commits the logged events
// into bbolt later, in large batches (wal, Store.log). A write that fails
// (disk full, I/O error) fails its appenders and every event queued behind
// it, and is cut off the log so that no later open replays it; the first
// write that succeeds after records an alert event counting what was lost
// (outage).
