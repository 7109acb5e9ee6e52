package store

// File layout (bbolt, schema version 1). Integers are 8-byte big-endian so
// that byte order is numeric order.
//
//	meta               "schema"    → 1
//	                   "last_seq"  → seq of the newest committed event
//	                   "last_hash" → its hash (32 raw bytes)
//	                   "max_time"  → newest event time seen (Unix ns)
//	                   "time_skew" → largest amount by which an event's time was
//	                                 older than max_time when it was appended (ns)
//	events             seq → event JSON, exactly as hashed plus prev_hash and hash
//	idx_session        value NUL seq → empty, one bucket per indexed field:
//	idx_tool           a query on one value reads only the keys of its page
//	idx_agent            (agent: AgentKey)
//	idx_upstream
//	idx_outcome
//	idx_class
//	idx_kind
//	idx_method
//	sessions           session id → SessionSummary JSON, kept at append time
//	sessions_by_start  started (Unix ns, sign bit flipped, inverted) id → empty:
//	                   forward order is newest first
//
// The chain: hash(n) = SHA-256(hash(n-1) || canonical(n)), hash(0) = 32 zero
// bytes, canonical(n) = json.Marshal of the event with prev_hash and hash
// empty (so omitted). The stored value is json.Marshal of the event with both
// set; hashes are written in hex.
//
// There is no time index. Times are nearly, not strictly, in seq order (the
// gateway stamps a message before it takes its turn to append), so time
// ranges are found by binary search on seq widened by time_skew: every event
// after seq s is at least time(s) - time_skew, every event up to s at most
// time(s) + time_skew. That keeps answers exact whatever the times are, and
// fast while they are nearly ordered.
