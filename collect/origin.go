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
	head   [32]byte          // hash of event Seq in its chain
	recent map[uint64]string // seq → hash of its latest events
	dirty  bool              // changed since the states were saved
}

func newOrigin(st store.OriginState) *origin {
	o := &origin{OriginState: st, recent: map[uint64]string{}}
	if h, err := hash32(st.Hash); err == nil {
		o.head = h
		o.recent[st.Seq] = st.Hash
	}
	return o
}

// advance records that event seq with hash h is merged.
func (o *origin) advance(seq uint64, h [32]byte) {
	if o.First == 0 {
		o.First = seq
	}
	o.Seq, o.head = seq, h
	o.Hash = hex.EncodeToString(h[:])
	o.recent[seq] = o.Hash
	if seq > recentHashes {
		delete(o.recent, seq-recentHashes)
	}
	o.dirty = true
}

// hashAt is the hash of the origin's event seq when the collector knows it.
func (o *origin) hashAt(seq uint64) (string, bool) {
	h, ok := o.recent[seq]
	return h, ok
}
