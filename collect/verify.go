package collect

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"sort"

	"github.com/mcptrail/mcptrail/store"
	"golang.org/x/mod/sumdb/note"
)

// OriginResult is the outcome of checking one origin's events in a
// central store.
type OriginResult struct {
	Origin      string `json:"origin"`
	Host        string `json:"host,omitempty"`
	OK          bool   `json:"ok"`
	From        uint64 `json:"from"`        // its first seq collected here
	Events      uint64 `json:"events"`      // its events checked
	Checkpoints int    `json:"checkpoints"` // its signed checkpoints checked
	Covered     uint64 `json:"covered"`     // the seq its newest valid checkpoint covers
	Pinned      bool   `json:"pinned"`      // its key came from the caller (the config), not the file
	BadSeq      uint64 `json:"bad_seq,omitempty"`
	Problem     string `json:"problem,omitempty"` // as store.VerifyResult's
	Detail      string `json:"detail,omitempty"`
}

// verifyWindow is how many of an origin's latest hashes the check keeps to
// match checkpoints against (they follow their events closely).
const verifyWindow = 1 << 16

type originCheck struct {
	res    OriginResult
	seq    uint64
	head   [32]byte
	hashes map[uint64][32]byte
	note   string // hash of the last checkpoint note
	v      note.Verifiers
}

func (c *originCheck) fail(seq uint64, problem, detail string) {
	if c.res.Problem == "" {
		c.res.OK, c.res.BadSeq, c.res.Problem, c.res.Detail = false, seq, problem, detail
	}
}

// VerifyOrigins checks, for every origin whose events a central store
// holds, that they are its chain as it recorded it: contiguous from the
// first collected, each hash recomputed from its content and the one
// before, and each of its checkpoints signed by its key and matching the
// events. keys pins origins' verifier keys (the config's); an origin
// without one is checked with the key the collector pinned on first sight,
// which only shows that the file agrees with itself (Pinned false). The
// central store's own chain, which covers these events too, is
// store.Verify's.
func VerifyOrigins(st *store.Store, keys map[string]string) ([]OriginResult, error) {
	states, _, err := st.Origins().Load()
	if err != nil {
		return nil, err
	}
	checks := map[string]*originCheck{}
	get := func(og *store.Origin) *originCheck {
		c := checks[og.Store]
		if c != nil {
			return c
		}
		c = &originCheck{res: OriginResult{Origin: og.Store, Host: og.Host, OK: true}, hashes: map[uint64][32]byte{}}
		key := keys[og.Store]
		c.res.Pinned = key != ""
		if key == "" {
			key = states[og.Store].Key
		}
		if v, err := note.NewVerifier(key); err == nil {
			c.v = note.VerifierList(v)
		}
		checks[og.Store] = c
		return c
	}
	for cur := uint64(1); cur != 0; {
		page, err := st.Query(store.Query{Cursor: cur, Limit: 2000})
		if err != nil {
			return nil, err
		}
		for i := range page.Events {
			ev := &page.Events[i]
			if ev.Origin == nil {
				continue
			}
			c := get(ev.Origin)
			if c.res.Problem != "" {
				continue
			}
			if ev.Kind == store.KindCheckpoint {
				c.checkpoint(ev)
				continue
			}
			c.event(ev)
		}
		cur = page.Next
	}
	out := make([]OriginResult, 0, len(checks))
	for _, c := range checks {
		out = append(out, c.res)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Origin < out[j].Origin })
	return out, nil
}

func (c *originCheck) event(ev *store.Event) {
	og := ev.Origin
	h, err := hash32(og.Hash)
	if err != nil {
		c.fail(og.Seq, store.ProblemEdited, fmt.Sprintf("event %d: origin hash is not a hash", og.Seq))
		return
	}
	prev := c.head
	switch {
	case c.seq == 0:
		// The first collected: its prev hash is its own claim.
		c.res.From = og.Seq
	case og.Seq != c.seq+1:
		problem := store.ProblemDeleted
		if og.Seq <= c.seq {
			problem = store.ProblemReordered
		}
		c.fail(og.Seq, problem, fmt.Sprintf("origin seq %d follows %d", og.Seq, c.seq))
		return
	}
	orig := ev.OriginEvent()
	if c.seq == 0 && og.Seq > 1 {
		// Collected from the middle of its chain: the hash cannot be
		// recomputed without the previous one, which is not here.
		c.seq, c.head = og.Seq, h
		c.keep(og.Seq, h)
		c.res.Events++
		return
	}
	sum, err := store.ChainHash(prev, &orig)
	if err != nil || sum != h {
		c.fail(og.Seq, store.ProblemEdited, fmt.Sprintf("origin event %d: content does not match its hash", og.Seq))
		return
	}
	c.seq, c.head = og.Seq, h
	c.keep(og.Seq, h)
	c.res.Events++
}

func (c *originCheck) keep(seq uint64, h [32]byte) {
	c.hashes[seq] = h
	if seq > verifyWindow {
		delete(c.hashes, seq-verifyWindow)
	}
}

func (c *originCheck) checkpoint(ev *store.Event) {
	og := ev.Origin
	if c.v == nil {
		c.fail(og.Seq, store.ProblemUnknownKey, fmt.Sprintf("checkpoint %d: no verifier key for origin %s", og.Seq, og.Store))
		return
	}
	cp, err := store.ParseCheckpoint([]byte(ev.Detail), c.v)
	if err != nil {
		c.fail(og.Seq, store.ProblemSignature, fmt.Sprintf("checkpoint %d: %v", og.Seq, oneLine(err)))
		return
	}
	sum := sha256.Sum256([]byte(ev.Detail))
	switch h, ok := c.hashes[cp.Size]; {
	case cp.Origin != "mcptrail/"+og.Store || cp.Size != og.Seq || cp.Hash != og.Hash:
		c.fail(og.Seq, store.ProblemEdited, fmt.Sprintf("checkpoint %d does not match its record", og.Seq))
	case c.note != "" && cp.Prev != c.note:
		c.fail(og.Seq, store.ProblemDeleted, fmt.Sprintf("checkpoint %d does not follow the one before", og.Seq))
	case ok && hex.EncodeToString(h[:]) != cp.Hash:
		c.fail(og.Seq, store.ProblemEdited, fmt.Sprintf("checkpoint %d signs another hash than its event's", og.Seq))
	case !ok && cp.Size >= c.res.From:
		c.fail(og.Seq, store.ProblemTruncated, fmt.Sprintf("checkpoint %d covers events not here", og.Seq))
	default:
		c.note = hex.EncodeToString(sum[:])
		c.res.Checkpoints++
		c.res.Covered = cp.Size
	}
}
