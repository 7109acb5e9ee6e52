package collect

import (
	"encoding/hex"
	"strings"

	"github.com/mcptrail/mcptrail/store"
)

// recentHashes is how many of an origin's latest hashes a collector keeps
// to tell a redelivery (the same hash) from a fork (another one), and to
// check a checkpoint against the event it covers.
const recentHashes = 8192

// origin is the collector's view of one origin's chain.
type origin struct {
	store.OriginState          // its Hash is stale: state() gives it from head
	head              [32]byte // hash of event Seq in its chain
	recent            []seen   // its latest events, seq s at s % recentHashes (a ring: no map upkeep per event)
	dirty             bool     // changed since the states were saved
	// prestates are the references merged outcomes hold, by the origin
	// seq of their call, until the pre-state record arrives.
	prestates map[uint64]string
}

// seen is one of an origin's events merged here.
type seen struct {
	seq  uint64   // 0: the slot is empty
	hash [32]byte // in its chain
	at   uint64   // its seq in the central store; 0 when not known
}

func newOrigin(st store.OriginState) *origin {
	o := &origin{OriginState: st, recent: make([]seen, recentHashes), prestates: map[uint64]string{}}
	if h, err := hash32(st.Hash); err == nil {
		o.head = h
		o.remember(st.Seq, h, 0)
	}
	return o
}

// remember keeps event seq's hash and central seq, in place of the one
// recentHashes before it.
func (o *origin) remember(seq uint64, h [32]byte, at uint64) {
	o.recent[seq%recentHashes] = seen{seq: seq, hash: h, at: at}
}

// known is what the collector keeps of event seq, if it still does.
func (o *origin) known(seq uint64) (seen, bool) {
	e := o.recent[seq%recentHashes]
	return e, seq != 0 && e.seq == seq
}

// advance records that event seq with hash h is merged, at central seq at.
func (o *origin) advance(seq uint64, h [32]byte, at uint64) {
	if o.First == 0 {
		o.First = seq
	}
	o.Seq, o.head = seq, h
	o.remember(seq, h, at)
	o.dirty = true
}

// state is the origin's state to save or show. Its Hash (hex) is written
// from head here, not at each event: only the latest one is ever read.
func (o *origin) state() store.OriginState {
	st := o.OriginState
	if o.head != ([32]byte{}) { // zero: no valid hash yet, the saved one stands
		st.Hash = hex.EncodeToString(o.head[:])
	}
	return st
}

// hashAt is the hash (hex) of the origin's event seq when the collector
// knows it.
func (o *origin) hashAt(seq uint64) (string, bool) {
	e, ok := o.known(seq)
	if !ok {
		return "", false
	}
	return hex.EncodeToString(e.hash[:]), true
}

// checkpointed records that its checkpoint of size with note hash
// noteHash is merged (at central seq at, the fallback when the event at
// size is not known here).
func (o *origin) checkpointed(size uint64, noteHash string, at uint64) {
	if e, ok := o.known(size); ok && e.at != 0 {
		at = e.at // replay from the event it signs: later ones follow it
	}
	o.Checkpoint, o.NoteHash, o.CheckpointAt, o.dirty = size, noteHash, at, true
}

// expectPrestate notes that a merged outcome names the pre-state ref for
// its call. Calls that fell out of the recent window are forgotten: their
// central seq is no longer known, so their pre-states could not be stored.
func (o *origin) expectPrestate(ev *store.Event) {
	if ev.Call == 0 || !strings.HasPrefix(ev.Prestate, "sha256:") {
		return
	}
	if len(o.prestates) >= recentHashes {
		for call := range o.prestates {
			if _, ok := o.known(call); !ok {
				delete(o.prestates, call)
			}
		}
		if len(o.prestates) >= recentHashes {
			return
		}
	}
	o.prestates[ev.Call] = ev.Prestate
}
