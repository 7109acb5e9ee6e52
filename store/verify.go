package store

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"

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

// verify checks the chain as tx sees it: the checkpoints (the file's, then
// External), then the events against them, then the head.
func verify(tx *bolt.Tx, opts VerifyOptions) (VerifyResult, error) {
	v, err := newVerifier(tx, opts)
	if err != nil {
		return VerifyResult{}, err
	}
	v.fileCheckpoints()
	v.externalCheckpoints()
	v.events()
	v.head()
	v.cutOff()
	return v.result(), nil
}

// verifier is one check's state. The checkpoints and the events are
// checked apart, each keeping its first problem; the result reports the
// lower of the two.
type verifier struct {
	tx        *bolt.Tx
	meta      *bolt.Bucket
	external  [][]byte
	verifiers note.Verifiers
	origin    string // this store's checkpoints' origin
	anchor    uint64 // retention pruned 1..anchor: its checkpoint summarizes them
	r         VerifyResult

	cks        []checkpointAt // the valid checkpoints, the file's then External
	ckBad      *finding       // the first problem with a checkpoint
	anchorHash [32]byte       // the head hash the anchor's checkpoint records
	anchored   bool           // that checkpoint is valid

	evBad     *finding // the first problem with the events or the head
	seq       uint64   // the last event found intact
	prev      [32]byte // its hash
	lastMatch uint64   // the last seq a checkpoint matched
}

func newVerifier(tx *bolt.Tx, opts VerifyOptions) (*verifier, error) {
	v := &verifier{tx: tx, meta: tx.Bucket(bMeta), external: opts.External}
	keys, pinned := opts.Keys, len(opts.Keys) > 0
	if !pinned {
		keys = recordedKeys(v.meta)
	}
	var list []note.Verifier
	for _, k := range keys {
		nv, err := note.NewVerifier(k)
		if err != nil {
			return nil, fmt.Errorf("verifier key %q: %w", k, err)
		}
		list = append(list, nv)
	}
	v.verifiers = note.VerifierList(list...)
	if v.meta != nil {
		v.origin = "mcptrail/" + string(v.meta.Get(kStoreID))
	}
	v.anchor = prunedTo(v.meta)
	v.r = VerifyResult{Pinned: pinned}
	if v.anchor > 0 {
		v.r.From = v.anchor + 1
	}
	return v, nil
}

// open checks a checkpoint note's signature and origin. size is where it
// is stored (0 for an external one: its own, if it parses).
func (v *verifier) open(msg []byte, size uint64) (*Checkpoint, *finding) {
	cp, err := ParseCheckpoint(msg, v.verifiers)
	if err == nil {
		if cp.Origin != v.origin {
			return nil, &finding{cp.Size, ProblemSignature, fmt.Sprintf("checkpoint of size %d names origin %q, not this store's %q", cp.Size, cp.Origin, v.origin)}
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

// fileCheckpoints checks the file's checkpoints in order: signature,
// origin, chain. It stops at the first bad one.
func (v *verifier) fileCheckpoints() {
	b := v.tx.Bucket(bCheckpoints)
	if b == nil {
		return
	}
	var prevNote [32]byte
	c := b.Cursor()
	for k, msg := c.First(); k != nil; k, msg = c.Next() {
		size := seqOf(k)
		if size < v.anchor {
			continue // kept from before a prune; the anchor vouches for it
		}
		cp, bad := v.open(msg, size)
		switch {
		case bad != nil:
			bad.seq = max(size, 1)
		case cp.Size != size:
			bad = &finding{min(size, cp.Size), ProblemEdited, fmt.Sprintf("checkpoint stored under size %d says size %d", size, cp.Size)}
		case size == v.anchor && len(v.cks) == 0:
			// The checkpoint at a retention cut: its predecessors are gone.
		case cp.Prev != hex.EncodeToString(prevNote[:]):
			from := uint64(1)
			if len(v.cks) > 0 {
				from = v.cks[len(v.cks)-1].size + 1
			}
			bad = &finding{from, ProblemDeleted, fmt.Sprintf("checkpoint chain broken before the checkpoint of size %d: one was removed or replaced", size)}
		}
		if bad != nil {
			v.ckBad = bad
			return
		}
		h, _ := hex.DecodeString(cp.Hash)
		v.cks = append(v.cks, checkpointAt{size: size, hash: [32]byte(h)})
		if size == v.anchor {
			v.anchorHash, v.anchored = [32]byte(h), true
		}
		prevNote = sha256.Sum256(msg)
	}
}

// externalCheckpoints checks the checkpoints kept off the box; the first
// problem among them counts if it is earlier than the file's.
func (v *verifier) externalCheckpoints() {
	for _, msg := range v.external {
		cp, bad := v.open(msg, 0)
		if bad != nil {
			bad.seq = max(bad.seq, 1)
			bad.detail = "external " + bad.detail
			if bad.earlier(v.ckBad) {
				v.ckBad = bad
			}
			continue
		}
		h, _ := hex.DecodeString(cp.Hash)
		v.cks = append(v.cks, checkpointAt{size: cp.Size, hash: [32]byte(h), ext: true})
	}
}

// events walks the events from the anchor, checking each one's seq, hash
// and prev_hash, and the checkpoints of its size against its hash.
func (v *verifier) events() {
	want := map[uint64][][32]byte{}
	for _, c := range v.cks {
		want[c.size] = append(want[c.size], c.hash)
		if c.size > v.anchor || v.anchor == 0 {
			v.r.Checkpoints++
		}
	}
	v.seq, v.lastMatch = v.anchor, v.anchor
	if v.anchor > 0 {
		if !v.anchored {
			v.evBad = &finding{1, ProblemDeleted, fmt.Sprintf("events 1-%d were pruned but no valid checkpoint of size %d summarizes them", v.anchor, v.anchor)}
			return
		}
		v.prev = v.anchorHash
	}
	events := v.tx.Bucket(bEvents)
	if events == nil {
		return
	}
	pre := startPrechecks(events)
	defer pre.stop() // ends the workers before anything else touches tx
	for k, p, ok := pre.next(); ok; k, p, ok = pre.next() {
		if v.evBad = v.event(k, p, want); v.evBad != nil {
			return
		}
	}
}

// event checks the event under key k, the one after v.seq.
func (v *verifier) event(k []byte, p *precheck, want map[uint64][][32]byte) *finding {
	next := v.seq + 1
	if len(k) != 8 {
		return &finding{next, ProblemEdited, "a key in the events bucket is not a seq"}
	}
	if got := seqOf(k); got != next {
		detail := fmt.Sprintf("seq %d is missing", next)
		if got < next {
			detail = fmt.Sprintf("seq %d is before the first event kept (%d)", got, next)
		}
		return &finding{next, ProblemDeleted, detail}
	}
	sum, problem := p.finish(next, v.prev)
	if problem != "" {
		return &finding{next, problem, problemDetail[problem]}
	}
	for _, h := range want[next] {
		if h != sum {
			return &finding{v.lastMatch + 1, ProblemEdited, fmt.Sprintf("the signed checkpoint of size %d does not match the events: events %d-%d were rewritten and rehashed", next, v.lastMatch+1, next)}
		}
	}
	if len(want[next]) > 0 {
		v.lastMatch = next
	}
	v.prev, v.seq = sum, next
	return nil
}

// head checks the head meta records against the last event.
func (v *verifier) head() {
	if v.evBad != nil || v.meta == nil {
		return
	}
	head, hash := readHead(v.meta)
	switch {
	case head > v.seq:
		v.evBad = &finding{v.seq + 1, ProblemTruncated, fmt.Sprintf("the head records %d events, %d remain", head, v.seq)}
	case head < v.seq:
		v.evBad = &finding{head + 1, ProblemEdited, fmt.Sprintf("events %d-%d were added behind the head's back", head+1, v.seq)}
	case hash != v.prev && v.seq > 0:
		v.evBad = &finding{v.seq, ProblemEdited, "the last event does not match the head"}
	}
}

// cutOff reports a checkpoint of more events than there are.
func (v *verifier) cutOff() {
	if v.evBad != nil {
		return
	}
	for _, c := range v.cks {
		if c.size > v.seq {
			what := "a signed checkpoint"
			if c.ext {
				what = "an external signed checkpoint"
			}
			v.evBad = &finding{v.seq + 1, ProblemTruncated, fmt.Sprintf("%s records %d events, %d remain: events were cut off after it", what, c.size, v.seq)}
			return
		}
	}
}

// result reports the earlier of the two problems, or OK.
func (v *verifier) result() VerifyResult {
	r := v.r
	for _, c := range v.cks {
		if c.size <= v.seq && c.size > r.Covered {
			r.Covered = c.size
		}
	}
	bad := v.evBad
	if v.ckBad.earlier(v.evBad) {
		bad = v.ckBad
	}
	if bad == nil {
		r.OK, r.Events = true, v.seq-v.anchor
		return r
	}
	r.BadSeq, r.Problem, r.Detail = bad.seq, bad.problem, bad.detail
	if bad.seq > v.anchor {
		r.Events = min(bad.seq-1, v.seq) - v.anchor
	}
	r.Covered = min(r.Covered, bad.seq-1)
	return r
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
