package store

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"runtime"
	"sync"

	bolt "go.etcd.io/bbolt"
	"golang.org/x/mod/sumdb/note"
)

// Problems Verify reports.
const (
	ProblemEdited     = "edited"            // an event's content does not match its hash, or a checkpoint's
	ProblemDeleted    = "deleted"           // a seq is missing, or a checkpoint was removed from the chain
	ProblemReordered  = "reordered"         // an event sits under another seq, or its prev_hash names another event
	ProblemTruncated  = "truncated"         // the head or a signed checkpoint records more events than there are
	ProblemSignature  = "signature_invalid" // a checkpoint's signature is wrong, or it is malformed or from another store
	ProblemUnknownKey = "unknown_key"       // a checkpoint is signed by no trusted key
)

// VerifyOptions say what to trust.
type VerifyOptions struct {
	// Keys are the verifier keys (note format, as VerifierKey returns) a
	// checkpoint must be signed by. Empty: the keys the file records, which
	// only shows that checkpoints and events agree (Pinned is false); an
	// owner of the file could have replaced both.
	Keys []string
	// External are checkpoint notes kept off the box (the SIEM's copies).
	// Each must be signed by a trusted key and match the events; one of a
	// size beyond the last event means the store was cut back, even if the
	// file's own checkpoints were cut with it.
	External [][]byte
}

// VerifyResult is the outcome of a check. Events counts the events found
// intact before the first problem (all of them when OK). From is the
// first seq the check starts at: 1, or the seq after the checkpoint that
// summarizes a prefix pruned by retention.
type VerifyResult struct {
	OK          bool   `json:"ok"`
	Events      uint64 `json:"events"`
	BadSeq      uint64 `json:"bad_seq,omitempty"`
	Problem     string `json:"problem,omitempty"`
	Detail      string `json:"detail,omitempty"`
	From        uint64 `json:"from,omitempty"`
	Checkpoints int    `json:"checkpoints"` // signed checkpoints checked (the file's and External)
	Covered     uint64 `json:"covered"`     // seq of the newest valid checkpoint: events after it are unsigned
	Pinned      bool   `json:"pinned"`      // signatures were checked against the caller's keys
}

// Verify opens the store file at path read-only and checks its chain,
// trusting the keys recorded in it.
func Verify(path string) (VerifyResult, error) {
	return VerifyFile(path, VerifyOptions{})
}

// VerifyFile opens the store file at path read-only and checks it.
func VerifyFile(path string, opts VerifyOptions) (VerifyResult, error) {
	s, err := Open(path, Options{ReadOnly: true})
	if err != nil {
		return VerifyResult{}, err
	}
	defer s.Close()
	return s.VerifyWith(opts)
}

// Verify is VerifyWith with the keys recorded in the file.
func (s *Store) Verify() (VerifyResult, error) { return s.VerifyWith(VerifyOptions{}) }

// VerifyWith checks that the events are gap-free, each hash matches its
// event's content and each prev_hash the event before, the head matches
// the last event, every checkpoint is signed by a trusted key, chained to
// the one before, and matches the event at its size. It reports the first
// problem (the lowest seq). Events cut off the end together with the
// checkpoints that covered them are caught only by External checkpoints.
// The error is for bad keys and I/O, not for tampering.
func (s *Store) VerifyWith(opts VerifyOptions) (VerifyResult, error) {
	var r VerifyResult
	err := s.view(func(tx *bolt.Tx) error {
		var err error
		r, err = verify(tx, opts)
		return err
	})
	return r, err
}

// finding is a problem at a seq.
type finding struct {
	seq     uint64
	problem string
	detail  string
}

func (f *finding) earlier(g *finding) bool { return f != nil && (g == nil || f.seq < g.seq) }

type checkpointAt struct {
	size uint64
	hash [32]byte
	ext  bool
}

func verify(tx *bolt.Tx, opts VerifyOptions) (VerifyResult, error) {
	meta := tx.Bucket(bMeta)
	keys, pinned := opts.Keys, len(opts.Keys) > 0
	if !pinned {
		keys = recordedKeys(meta)
	}
	var list []note.Verifier
	for _, k := range keys {
		v, err := note.NewVerifier(k)
		if err != nil {
			return VerifyResult{}, fmt.Errorf("verifier key %q: %w", k, err)
		}
		list = append(list, v)
	}
	verifiers := note.VerifierList(list...)
	var origin string
	if meta != nil {
		origin = "mcptrail/" + string(meta.Get(kStoreID))
	}
	anchor := prunedTo(meta)
	r := VerifyResult{Pinned: pinned}
	if anchor > 0 {
		r.From = anchor + 1
	}

	// The checkpoints, in order: signature, origin, chain.
	var cks []checkpointAt
	var ckBad *finding
	var anchorHash [32]byte
	anchored := false
	open := func(msg []byte, size uint64) (*Checkpoint, *finding) {
		cp, err := ParseCheckpoint(msg, verifiers)
		if err == nil {
			if cp.Origin != origin {
				return nil, &finding{cp.Size, ProblemSignature, fmt.Sprintf("checkpoint of size %d names origin %q, not this store's %q", cp.Size, cp.Origin, origin)}
			}
			return cp, nil
		}
		if c, perr := ParseCheckpoint(msg, nil); perr == nil && size == 0 {
			size = c.Size
		}
		var unverified *note.UnverifiedNoteError
		if errors.As(err, &unverified) {
			return nil, &finding{size, ProblemUnknownKey, fmt.Sprintf("checkpoint of size %d is signed by no trusted key (%s)", size, sigNames(msg))}
		}
		return nil, &finding{size, ProblemSignature, fmt.Sprintf("checkpoint of size %d: %v", size, err)}
	}
	if b := tx.Bucket(bCheckpoints); b != nil {
		var prevNote [32]byte
		c := b.Cursor()
		for k, v := c.First(); k != nil; k, v = c.Next() {
			size := seqOf(k)
			if size < anchor {
				continue // kept from before a prune; the anchor vouches for it
			}
			cp, bad := open(v, size)
			switch {
			case bad != nil:
				bad.seq = max(size, 1)
			case cp.Size != size:
				bad = &finding{min(size, cp.Size), ProblemEdited, fmt.Sprintf("checkpoint stored under size %d says size %d", size, cp.Size)}
			case size == anchor && len(cks) == 0:
				// The checkpoint at a retention cut: its predecessors are gone.
			case cp.Prev != hex.EncodeToString(prevNote[:]):
				from := uint64(1)
				if len(cks) > 0 {
					from = cks[len(cks)-1].size + 1
				}
				bad = &finding{from, ProblemDeleted, fmt.Sprintf("checkpoint chain broken before the checkpoint of size %d: one was removed or replaced", size)}
			}
			if bad != nil {
				ckBad = bad
				break
			}
			h, _ := hex.DecodeString(cp.Hash)
			cks = append(cks, checkpointAt{size: size, hash: [32]byte(h)})
			if size == anchor {
				anchorHash, anchored = cks[len(cks)-1].hash, true
			}
			prevNote = sha256.Sum256(v)
		}
	}
	for _, msg := range opts.External {
		cp, bad := open(msg, 0)
		if bad != nil {
			bad.seq = max(bad.seq, 1)
			bad.detail = "external " + bad.detail
			if bad.earlier(ckBad) {
				ckBad = bad
			}
			continue
		}
		h, _ := hex.DecodeString(cp.Hash)
		cks = append(cks, checkpointAt{size: cp.Size, hash: [32]byte(h), ext: true})
	}
	want := map[uint64][][32]byte{}
	for _, c := range cks {
		want[c.size] = append(want[c.size], c.hash)
		if c.size > anchor || anchor == 0 {
			r.Checkpoints++
		}
	}

	// The events.
	var evBad *finding
	var prev [32]byte
	if anchor > 0 {
		if !anchored {
			evBad = &finding{1, ProblemDeleted, fmt.Sprintf("events 1-%d were pruned but no valid checkpoint of size %d summarizes them", anchor, anchor)}
		} else {
			prev = anchorHash
		}
	}
	seq, lastMatch := anchor, anchor
	if events := tx.Bucket(bEvents); events != nil && evBad == nil {
		next, stop := checkAll(events)
		defer stop()
		for k, pre, ok := next(); ok; k, pre, ok = next() {
			// (stop ends the reader before anything else touches tx.)
			next := seq + 1
			if len(k) != 8 {
				evBad = &finding{next, ProblemEdited, "a key in the events bucket is not a seq"}
				break
			}
			if got := seqOf(k); got != next {
				detail := fmt.Sprintf("seq %d is missing", next)
				if got < next {
					detail = fmt.Sprintf("seq %d is before the first event kept (%d)", got, next)
				}
				evBad = &finding{next, ProblemDeleted, detail}
				break
			}
			sum, problem := pre.finish(next, prev)
			if problem != "" {
				evBad = &finding{next, problem, problemDetail[problem]}
				break
			}
			for _, h := range want[next] {
				if h != sum {
					evBad = &finding{lastMatch + 1, ProblemEdited, fmt.Sprintf("the signed checkpoint of size %d does not match the events: events %d-%d were rewritten and rehashed", next, lastMatch+1, next)}
					break
				}
			}
			if evBad != nil {
				break
			}
			if len(want[next]) > 0 {
				lastMatch = next
			}
			prev, seq = sum, next
		}
		stop()
	}
	if evBad == nil && meta != nil {
		head, hash := readHead(meta)
		switch {
		case head > seq:
			evBad = &finding{seq + 1, ProblemTruncated, fmt.Sprintf("the head records %d events, %d remain", head, seq)}
		case head < seq:
			evBad = &finding{head + 1, ProblemEdited, fmt.Sprintf("events %d-%d were added behind the head's back", head+1, seq)}
		case hash != prev && seq > 0:
			evBad = &finding{seq, ProblemEdited, "the last event does not match the head"}
		}
	}
	if evBad == nil {
		for _, c := range cks {
			if c.size > seq {
				what := "a signed checkpoint"
				if c.ext {
					what = "an external signed checkpoint"
				}
				evBad = &finding{seq + 1, ProblemTruncated, fmt.Sprintf("%s records %d events, %d remain: events were cut off after it", what, c.size, seq)}
				break
			}
		}
	}
	for _, c := range cks {
		if c.size <= seq && c.size > r.Covered {
			r.Covered = c.size
		}
	}

	bad := evBad
	if ckBad.earlier(evBad) {
		bad = ckBad
	}
	if bad == nil {
		r.OK, r.Events = true, seq-anchor
		return r, nil
	}
	r.BadSeq, r.Problem, r.Detail = bad.seq, bad.problem, bad.detail
	if bad.seq > anchor {
		r.Events = min(bad.seq-1, seq) - anchor
	}
	r.Covered = min(r.Covered, bad.seq-1)
	return r, nil
}

var problemDetail = map[string]string{
	ProblemEdited:    "the event's content does not match its hash",
	ProblemReordered: "the event's seq or prev_hash does not follow the event before it",
}

// sigNames lists the key names that signed a note, for messages.
func sigNames(msg []byte) string {
	var names []string
	if i := bytes.LastIndex(msg, []byte("\n\n")); i >= 0 {
		for _, l := range bytes.Split(bytes.TrimSpace(msg[i+2:]), []byte("\n")) {
			f := bytes.Fields(bytes.TrimPrefix(l, []byte("— ")))
			if len(f) == 2 {
				names = append(names, string(f[0]))
			}
		}
	}
	if len(names) == 0 {
		return "no signatures"
	}
	return "signed by " + fmt.Sprint(names)
}

// precheck is the part of checking an event that does not depend on the
// events before it, done in parallel: decode, and the canonical JSON.
type precheck struct {
	problem string
	canon   []byte // the canonical JSON; with fast, written with seq 0
	fast    bool
	legacy  bool
	prev    []byte // stored prev hash: raw, or hex (legacy)
	hash    string // stored hash, hex
	seq     uint64 // legacy: the seq in the JSON
}

func prepareCheck(seq uint64, data []byte) precheck {
	st, err := parseStored(data)
	if err != nil {
		return precheck{problem: ProblemEdited}
	}
	if !st.legacy && len(st.bodies) == 0 {
		// The stored JSON is the canonical JSON with seq 0, as the store
		// wrote it (json.Marshal): hash it as it is, with the seq spliced
		// in. Any changed byte changes the hash; no need to decode.
		if !bytes.HasPrefix(st.json, []byte(seqZero)) {
			return precheck{problem: ProblemEdited}
		}
		return precheck{canon: st.json, fast: true, prev: st.prev, hash: hex.EncodeToString(st.hash), seq: seq}
	}
	var ev Event
	if json.Unmarshal(st.json, &ev) != nil || decodeBodies(st.bodies, &ev) != nil {
		return precheck{problem: ProblemEdited}
	}
	p := precheck{legacy: st.legacy}
	if st.legacy {
		p.prev, p.hash, p.seq = []byte(ev.PrevHash), ev.Hash, ev.Seq
	} else {
		if ev.Seq != 0 {
			return precheck{problem: ProblemEdited}
		}
		p.prev, p.hash, p.seq = st.prev, hex.EncodeToString(st.hash), seq
	}
	ev.Seq, ev.PrevHash, ev.Hash = seq, "", ""
	if p.canon, err = json.Marshal(&ev); err != nil {
		return precheck{problem: ProblemEdited}
	}
	return p
}

// finish checks a prechecked event under seq against the hash of the
// event before it, and returns its own hash.
func (p *precheck) finish(seq uint64, prev [32]byte) ([32]byte, string) {
	if p.problem != "" {
		return prev, p.problem
	}
	if p.legacy && (p.seq != seq || string(p.prev) != hex.EncodeToString(prev[:])) ||
		!p.legacy && !bytes.Equal(p.prev, prev[:]) {
		return prev, ProblemReordered
	}
	var sum [32]byte
	if p.fast {
		sum = canonicalHash(prev, seq, p.canon)
	} else {
		sum = chainHash(prev, p.canon)
	}
	if hex.EncodeToString(sum[:]) != p.hash {
		return prev, ProblemEdited
	}
	return sum, ""
}

// check verifies the stored event data under seq, chained to prev, and
// returns its hash.
func check(seq uint64, data []byte, prev [32]byte) ([32]byte, string) {
	p := prepareCheck(seq, data)
	return p.finish(seq, prev)
}

// checkAll prechecks the events in key order on every CPU and returns them
// in order; stop ends the workers early. The values stay valid while the
// read transaction is open, which outlives the iteration.
func checkAll(events *bolt.Bucket) (next func() ([]byte, *precheck, bool), stop func()) {
	const batch = 256
	type job struct {
		keys, vals [][]byte
		out        []precheck
		done       chan struct{}
	}
	jobs, ordered, quit := make(chan *job), make(chan *job, 2*runtime.GOMAXPROCS(0)), make(chan struct{})
	var wg sync.WaitGroup
	for range runtime.GOMAXPROCS(0) {
		wg.Go(func() {
			for j := range jobs {
				for i, v := range j.vals {
					if len(j.keys[i]) == 8 {
						j.out[i] = prepareCheck(seqOf(j.keys[i]), v)
					}
				}
				close(j.done)
			}
		})
	}
	go func() {
		defer close(ordered)
		defer close(jobs)
		c := events.Cursor()
		k, v := c.First()
		for k != nil {
			j := &job{done: make(chan struct{})}
			for ; k != nil && len(j.keys) < batch; k, v = c.Next() {
				j.keys, j.vals = append(j.keys, k), append(j.vals, v)
			}
			j.out = make([]precheck, len(j.keys))
			select {
			case ordered <- j:
			case <-quit:
				return
			}
			select {
			case jobs <- j:
			case <-quit:
				return
			}
		}
	}()
	var cur *job
	i := 0
	next = func() ([]byte, *precheck, bool) {
		if cur == nil || i == len(cur.keys) {
			var ok bool
			if cur, ok = <-ordered; !ok {
				return nil, nil, false
			}
			<-cur.done
			i = 0
		}
		i++
		return cur.keys[i-1], &cur.out[i-1], true
	}
	halt := func() {
		close(quit)
		for range ordered { // let the feeder finish and the workers drain
		}
		wg.Wait()
	}
	var once sync.Once
	stop = func() { once.Do(halt) }
	return next, stop
}
