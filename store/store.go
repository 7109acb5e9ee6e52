package store

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"github.com/mcptrail/mcptrail/internal/safefile"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	bolt "go.etcd.io/bbolt"
	"golang.org/x/mod/sumdb/note"
)

var (
	ErrLocked   = errors.New("store is locked by another process (is the mcptrail daemon running?)")
	ErrReadOnly = errors.New("store is read-only")
	ErrClosed   = errors.New("store is closed")
	ErrNotFound = errors.New("not found")
)

// Durability modes.
const (
	DurabilityStrict = "strict" // Append returns once its event is committed and synced
	DurabilityBatch  = "batch"  // Append returns once its event is queued
)

// schemaVersion is the file layout this code writes (the package
// documentation). Older files are migrated by a writable Open (migrate);
// read-only opens read them as they are.
const schemaVersion = 2

// Options configure Open. The zero value is a strict, writable store.
type Options struct {
	ReadOnly    bool          // open read-only (shared lock); for copied evidence files and offline CLI
	Durability  string        // "strict" (default, "" = strict) or "batch"
	BatchWindow time.Duration // batch mode: longest an event waits before it is written to the log (default 2ms); see Store.logBatch
	MaxBatch    int           // most events in one commit (default 1024)
	Timeout     time.Duration // how long to wait for bbolt's file lock (default 1s)

	// SigningKey is the checkpoint signing key (note's signer key string,
	// see LoadOrCreateKey). Without one the store writes no checkpoints,
	// and cutting events off the end of the chain goes undetected.
	SigningKey         string
	CheckpointEvery    int           // a checkpoint at least every this many events (default 1000)
	CheckpointInterval time.Duration // and at most this long after an uncovered event commits (default 5s)

	// LargeBody: params, result and error longer than this many bytes are
	// stored zstd-compressed (default 16 KiB; negative: never).
	LargeBody int

	// Retention prunes old events; the zero value keeps all.
	Retention RetentionPolicy
}

// Stats describe a store for status and metrics.
type Stats struct {
	Events     uint64 `json:"events"`     // committed events
	FileBytes  int64  `json:"file_bytes"` // size of the store file
	Pending    int    `json:"pending"`    // appended, not yet committed
	Durability string `json:"durability"` // strict, batch or read-only
	Commits    uint64 `json:"commits"`    // write transactions since Open
	Failed     uint64 `json:"failed"`     // events lost to failed commits since Open
	LogSyncs   uint64 `json:"log_syncs"`  // syncs of the write-ahead log since Open
}

// The buckets, as the package documentation lays them out. A writable open
// creates those up to bFloors (migrate); the others are created on first
// use, so files written before they existed open unchanged.
var (
	bMeta        = []byte("meta")
	bEvents      = []byte("events")
	bIndex       = []byte("index")
	bSessions    = []byte("sessions")
	bByStart     = []byte("sessions_by_start")
	bCheckpoints = []byte("checkpoints")
	bFloors      = []byte("retention_floors") // nothing after the smallest floor is pruned
	bCursors     = []byte("cursors")
	bOrigins     = []byte("origins")
	bPrestates   = []byte("prestates") // rollback's, from here on
	bWithheld    = []byte("prestates_withheld")
	bPlans       = []byte("rollback_plans")
	bReverted    = []byte("rollback_reverted")
	bMarks       = []byte("rollback_marks")
)

// Keys of the meta bucket.
var (
	kSchema   = []byte("schema")
	kLastSeq  = []byte("last_seq")
	kLastHash = []byte("last_hash")
	kMaxTime  = []byte("max_time")
	kSkew     = []byte("time_skew")
	kStoreID  = []byte("store_id")
	kVKeys    = []byte("verifier_keys")
	kPruned   = []byte("pruned_to")
)

// Store is an open store file. Its methods are safe for concurrent use.
type Store struct {
	db       *bolt.DB
	path     string
	readOnly bool
	batch    bool
	window   time.Duration
	// applyAfter is applyWindow; tests lengthen it to find events in the
	// log only.
	applyAfter time.Duration
	maxBatch   int

	mu       sync.Mutex
	closed   bool
	seq      uint64 // last assigned
	doneSeq  uint64 // last committed
	doneHash [32]byte
	queue    []*pending
	queued   int          // events in queue (it also holds Flush markers)
	backlog  atomic.Int64 // queued, for appenders deciding before they lock
	logSyncs atomic.Uint64
	waiters  int // queue items someone waits on: commit them without delay
	pending  int // events appended and neither committed nor failed
	commits  uint64
	failed   uint64
	lost     error // a commit that failed since the last Flush
	closeErr error // a commit that failed while Close drained the queue

	wake chan struct{} // for the goroutine that takes the queue: log, or run
	// asleep: that goroutine waits for wake with an empty queue, so the
	// first event queued must wake it. The logger instead looks at the
	// queue every window for a while after its last batch: under load no
	// appender pays for a wake-up (a futex call, a third of a batch
	// append's cost).
	asleep bool
	// bursts counts producers appending a burst (BeginBurst); pushedSeq
	// is the last event of an ended one: see burst.go.
	bursts    int
	pushedSeq uint64
	runWake   chan struct{} // for run (with a log; else it is wake)
	stopped   chan struct{} // closed when the writer has drained and exited

	// The write-ahead log (wal, Store.log); nil when it could not be
	// made. Guarded by mu, except that only the logger uses the wal itself.
	wal           *wal
	logged        []*pending // logged and answered, not yet committed (events only)
	walSeq        uint64     // last logged (doneSeq once the log is applied)
	walHash       [32]byte
	applyErr      error // the last commit of logged events failed
	retryAt       time.Time
	attempts      uint64     // commits of logged events begun
	failedAttempt uint64     // the last of them that failed
	wantApply     int        // goroutines waiting for the log to be applied
	applied       *sync.Cond // on mu: a commit of logged events was tried
	logDone       bool       // the logger has drained the queue at Close
	runDone       bool       // run has exited

	subMu sync.Mutex
	subs  map[*subscriber]struct{} // nil once closed

	failHook atomic.Pointer[func() error] // tests: fail commits on demand

	id        string        // store id: checkpoints' origin is mcptrail/<id>
	vkey      string        // verifier key of the signing key; "" without one
	largeBody int           // compress bodies longer than this (0: never)
	ckpt      *checkpointer // nil: no signing key; else owned by the writer
	outage    *outage       // commits failing since; guarded by mu

	retention RetentionPolicy
	pruneMu   sync.Mutex    // one Prune at a time
	stopPrune chan struct{} // closed by Close
	pruneDone chan struct{}
}

// Open opens the store at path, creating it (mode 0600, parent directories
// 0700) unless opts.ReadOnly. A writable store has one writer goroutine until
// Close.
func Open(path string, opts Options) (*Store, error) {
	s := &Store{
		path:       path,
		readOnly:   opts.ReadOnly,
		window:     opts.BatchWindow,
		applyAfter: applyWindow,
		maxBatch:   opts.MaxBatch,
		wake:       make(chan struct{}, 1),
		asleep:     true,
		stopped:    make(chan struct{}),
		subs:       map[*subscriber]struct{}{},
	}
	s.applied = sync.NewCond(&s.mu)
	s.runWake = s.wake
	switch opts.Durability {
	case "", DurabilityStrict:
	case DurabilityBatch:
		s.batch = true
	default:
		return nil, fmt.Errorf("store: unknown durability %q (want strict or batch)", opts.Durability)
	}
	if s.window <= 0 {
		s.window = 2 * time.Millisecond
	}
	if s.maxBatch <= 0 {
		s.maxBatch = 1024
	}
	switch {
	case opts.LargeBody == 0:
		s.largeBody = DefaultLargeBody
	case opts.LargeBody > 0:
		s.largeBody = opts.LargeBody
	}
	var vkey string
	if opts.SigningKey != "" && !opts.ReadOnly {
		sg, err := note.NewSigner(opts.SigningKey)
		if err != nil {
			return nil, fmt.Errorf("open store: signing key: %w", err)
		}
		if vkey, err = VerifierKey(opts.SigningKey); err != nil {
			return nil, fmt.Errorf("open store: %w", err)
		}
		s.vkey = vkey
		s.ckpt = &checkpointer{signer: sg, every: uint64(opts.CheckpointEvery), interval: opts.CheckpointInterval}
		if s.ckpt.every <= 0 {
			s.ckpt.every = DefaultCheckpointEvery
		}
		if s.ckpt.interval <= 0 {
			s.ckpt.interval = DefaultCheckpointInterval
		}
	}
	if err := opts.Retention.check(); err != nil {
		return nil, fmt.Errorf("open store: %w", err)
	}
	s.retention = opts.Retention
	timeout := opts.Timeout
	if timeout <= 0 {
		timeout = time.Second
	}

	if opts.ReadOnly {
		// bbolt would report a missing file as a bare ENOENT from open(2).
		if _, err := os.Stat(path); err != nil {
			return nil, fmt.Errorf("open store: %w", err)
		}
	} else if err := safefile.MkdirAll(filepath.Dir(path)); err != nil {
		return nil, fmt.Errorf("open store: %w", err)
	}
	// A writable store is opened through safefile: never through a planted
	// link, and only a file the daemon's user (or root) owns. A read-only
	// open (an evidence copy named on the command line) follows links.
	bopts := &bolt.Options{Timeout: timeout, ReadOnly: opts.ReadOnly}
	if !opts.ReadOnly {
		bopts.OpenFile = safefile.BoltOpenFile
	}
	db, err := bolt.Open(path, 0o600, bopts)
	if errors.Is(err, bolt.ErrTimeout) {
		return nil, fmt.Errorf("open store %s: %w", path, ErrLocked)
	}
	if err != nil {
		return nil, fmt.Errorf("open store %s: %w", path, err)
	}
	s.db = db
	if !opts.ReadOnly {
		// The record holds tool arguments and results: never readable by
		// others, whatever the umask was or whoever created the file.
		err = os.Chmod(path, 0o600)
	}
	if err == nil {
		err = s.load(vkey)
	}
	if err == nil && !opts.ReadOnly {
		err = s.replayWAL()
	}
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("open store %s: %w", path, err)
	}
	if opts.ReadOnly {
		close(s.stopped)
		s.warnUnapplied()
		return s, nil
	}
	// Batch mode logs too: a synced log write per window instead of a
	// bbolt commit halves the store's CPU per call (BENCHMARKS.md).
	if w, err := openWAL(path, s.batch); errors.As(err, new(*safefile.Error)) {
		// A link planted at the log's path, or a log another user owns, is
		// an attack on the record, not a full disk: refuse to run.
		s.db.Close()
		return nil, fmt.Errorf("open store: %w", err)
	} else if err != nil {
		slog.Warn("mcptrail store: no write-ahead log; events are committed one batch at a time", "err", err)
	} else {
		s.wal, s.runWake = w, make(chan struct{}, 1)
		s.walSeq, s.walHash = s.doneSeq, s.doneHash
		go s.log()
	}
	go s.run()
	s.startRetention()
	return s, nil
}

// load creates the buckets of a new file, migrates an older one, and
// resumes the sequence, the chain and the checkpoints. vkey is the
// verifier key of the signing key, recorded in the file (informational:
// a verifier pins its own copy).
func (s *Store) load(vkey string) error {
	fn := func(tx *bolt.Tx) error {
		meta := tx.Bucket(bMeta)
		if !s.readOnly {
			if err := migrate(tx); err != nil {
				return err
			}
			meta = tx.Bucket(bMeta)
			if err := ensureIdentity(meta, vkey); err != nil {
				return err
			}
		}
		if meta == nil {
			return nil // an empty file opened read-only
		}
		if v := meta.Get(kSchema); v != nil && (len(v) != 8 || binary.BigEndian.Uint64(v) > schemaVersion) {
			return fmt.Errorf("store schema %x was written by a newer mcptrail (this one reads up to %d)", v, schemaVersion)
		}
		s.id = string(meta.Get(kStoreID))
		s.doneSeq, s.doneHash = readHead(meta)
		s.seq = s.doneSeq
		// Resuming from a head that is not the last event would fork the chain.
		var last uint64
		if k, _ := lastOf(tx.Bucket(bEvents)); k != nil {
			last = seqOf(k)
		}
		if last != s.seq && !s.readOnly && !(last == 0 && s.seq == prunedTo(meta)) {
			return fmt.Errorf("store head says seq %d but the last event is %d (run mcptrail verify)", s.seq, last)
		}
		if s.ckpt != nil {
			s.ckpt.origin = "mcptrail/" + s.id
			return s.ckpt.load(tx)
		}
		return nil
	}
	if s.readOnly {
		return s.db.View(fn)
	}
	return s.db.Update(fn)
}

// Close commits everything queued, closes subscriptions and the file.
func (s *Store) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return ErrClosed
	}
	s.closed = true
	s.mu.Unlock()
	s.stopRetention()
	s.signal()
	s.applySignal()
	<-s.stopped

	s.subMu.Lock()
	for sub := range s.subs {
		close(sub.ch)
	}
	s.subs = nil
	s.subMu.Unlock()

	err := errors.Join(s.closeErr, s.db.Close())
	if s.wal != nil {
		err = errors.Join(err, s.wal.close())
	}
	return err
}

// Path is the store file's path.
func (s *Store) Path() string { return s.path }

// ID is the store's id, made when the file was created (or migrated): the
// checkpoints' origin is "mcptrail/" + ID.
func (s *Store) ID() string { return s.id }

// Batch reports whether the store records under batch durability.
func (s *Store) Batch() bool { return s.batch }

// VerifierKey is the verifier key of the key this store signs its
// checkpoints with; "" when it signs none. The Kafka sink publishes it
// beside each checkpoint so that a collector can pin it on first sight.
func (s *Store) VerifierKey() string { return s.vkey }

// Last is the last assigned seq, 0 when the store is empty.
func (s *Store) Last() uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.seq
}

// Stats reports counters and the file size.
func (s *Store) Stats() Stats {
	s.mu.Lock()
	st := Stats{Events: s.doneSeq, Pending: s.pending, Commits: s.commits, Failed: s.failed, LogSyncs: s.logSyncs.Load()}
	s.mu.Unlock()
	switch {
	case s.readOnly:
		st.Durability = "read-only"
	case s.batch:
		st.Durability = DurabilityBatch
	default:
		st.Durability = DurabilityStrict
	}
	if fi, err := os.Stat(s.path); err == nil {
		st.FileBytes = fi.Size()
	}
	return st
}

type subscriber struct{ ch chan Event }

// Subscribe returns a channel of events as they are committed, in seq order,
// and a function that ends the subscription. A subscriber that falls more
// than buffer events behind (default 256) has its channel closed instead of
// slowing the writer; it can catch up with Query and subscribe again.
func (s *Store) Subscribe(buffer int) (<-chan Event, func()) {
	if buffer <= 0 {
		buffer = 256
	}
	sub := &subscriber{ch: make(chan Event, buffer)}
	s.subMu.Lock()
	defer s.subMu.Unlock()
	if s.subs == nil {
		close(sub.ch)
		return sub.ch, func() {}
	}
	s.subs[sub] = struct{}{}
	return sub.ch, func() {
		s.subMu.Lock()
		defer s.subMu.Unlock()
		if _, ok := s.subs[sub]; ok {
			delete(s.subs, sub)
			close(sub.ch)
		}
	}
}

func (s *Store) publish(batch []*pending) {
	s.subMu.Lock()
	defer s.subMu.Unlock()
	for sub := range s.subs {
		for _, p := range batch {
			if p.marker {
				continue
			}
			select {
			case sub.ch <- p.ev:
				continue
			default:
			}
			delete(s.subs, sub)
			close(sub.ch)
			break
		}
	}
}

// view runs fn in a read transaction, reporting a closed store as ErrClosed.
// It sees every event an Append has acknowledged.
func (s *Store) view(fn func(*bolt.Tx) error) error {
	s.settle()
	return closedErr(s.db.View(fn))
}

// closedErr reports bbolt's "database not open" as ErrClosed.
func closedErr(err error) error {
	if errors.Is(err, bolt.ErrDatabaseNotOpen) {
		return ErrClosed
	}
	return err
}

func readHead(meta *bolt.Bucket) (seq uint64, hash [32]byte) {
	if v := meta.Get(kLastSeq); len(v) == 8 {
		seq = binary.BigEndian.Uint64(v)
	}
	copy(hash[:], meta.Get(kLastHash))
	return seq, hash
}

// readClock returns the newest event time and the largest time skew seen.
func readClock(meta *bolt.Bucket) (max time.Time, skew time.Duration) {
	if meta == nil {
		return max, 0
	}
	if v := meta.Get(kMaxTime); len(v) == 8 {
		max = time.Unix(0, int64(binary.BigEndian.Uint64(v))).UTC()
	}
	if v := meta.Get(kSkew); len(v) == 8 {
		skew = time.Duration(binary.BigEndian.Uint64(v))
	}
	return max, skew
}

func u64(n uint64) []byte { return binary.BigEndian.AppendUint64(nil, n) }

func seqOf(k []byte) uint64 { return binary.BigEndian.Uint64(k) }

// lastOf returns the last key and value of b; nil when b is nil or empty.
func lastOf(b *bolt.Bucket) (k, v []byte) {
	if b == nil {
		return nil, nil
	}
	return b.Cursor().Last()
}

// maxIndexValue bounds index keys well under bbolt's 32 KiB key limit: a
// longer value (an agent can name a tool anything) is indexed by its
// prefix, which is still exact because queries check every event they read.
const maxIndexValue = 512

// indexPrefix is field value NUL; a key is the prefix and the last seq of a
// block of postings (postingKey). A value containing NUL cannot be
// mistaken for another: readers require a key to be exactly len(prefix)+8
// bytes.
func indexPrefix(field byte, value string) []byte {
	return appendIndexPrefix(make([]byte, 0, min(len(value), maxIndexValue)+10), field, value)
}

// appendIndexPrefix appends indexPrefix(field, value) to dst.
func appendIndexPrefix(dst []byte, field byte, value string) []byte {
	value = value[:min(len(value), maxIndexValue)]
	return append(append(append(dst, field), value...), 0)
}

// seekLE positions c on the last key <= key.
func seekLE(c *bolt.Cursor, key []byte) ([]byte, []byte) {
	k, v := c.Seek(key)
	if k == nil {
		return c.Last()
	}
	if !bytes.Equal(k, key) {
		return c.Prev()
	}
	return k, v
}
