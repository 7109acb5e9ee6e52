package collect

import (
	"encoding/hex"

	"github.com/mcptrail/mcptrail/store"
)

// recentHashes is how many of an origin's latest hashes a collector keeps
// to tell a redelivery (the same hash) from a fork (another one), and to
// check a checkpoint against the event it covers.
const recentHashes = 8192

// origin is the collector's view of one origin's chain.
type origin struct {
	store.OriginState
	head   [32]byte        // hash of event Seq in its chain
	recent map[uint64]seen // seq → its latest events
	dirty  bool            // changed since the states were saved
}

// seen is one of an origin's events merged here.
type seen struct {
	hash string // in its chain
	at   uint64 // its seq in the central store; 0 when not known
}

func newOrigin(st store.OriginState) *origin {
	o := &origin{OriginState: st, recent: map[uint64]seen{}}
	if h, err := hash32(st.Hash); err == nil {
		o.head = h
		o.recent[st.Seq] = seen{hash: st.Hash}
	}
	return o
}

// advance records that event seq with hash h is merged, at central seq at.
func (o *origin) advance(seq uint64, h [32]byte, at uint64) {
	if o.First == 0 {
		o.First = seq
	}
	o.Seq, o.head = seq, h
	o.Hash = hex.EncodeToString(h[:])
	o.recent[seq] = seen{hash: o.Hash, at: at}
	if seq > recentHashes {
		delete(o.recent, seq-recentHashes)
	}
	o.dirty = true
}

// hashAt is the hash of the origin's event seq when the collector knows it.
func (o *origin) hashAt(seq uint64) (string, bool) {
	e, ok := o.recent[seq]
	return e.hash, ok
}

// checkpointed records that its checkpoint of size with note hash
// noteHash is merged (at central seq at, the fallback when the event at
// size is not known here).
func (o *origin) checkpointed(size uint64, noteHash string, at uint64) {
	if e := o.recent[size]; e.at != 0 {
		at = e.at // replay from the event it signs: later ones follow it
	}
	o.Checkpoint, o.NoteHash, o.CheckpointAt, o.dirty = size, noteHash, at, true
}
