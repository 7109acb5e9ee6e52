package store

import (
	"bytes"
	"encoding/binary"
	"math"
	"slices"

	bolt "go.etcd.io/bbolt"
)

// Index postings. The index bucket lists, for each indexed value, the seqs
// of the events that have it, in blocks: a block's key is the value's
// indexPrefix and the block's last seq (8 bytes, big-endian), its value the
// block's earlier seqs, newest first, each as the uvarint of its difference
// to the one after it. An empty value is a block of one seq, which is also
// what stores written before blocks hold (one key per event and index), so
// those read as they are. Keyed by the last seq, the block that holds the
// first seq at or after s is the first key at or after s: one seek.
//
// A commit adds each value's new seqs to the value's last block, so it
// writes one block per value it touches, not one key per event and index:
// seven puts an event were most of a commit's CPU and of its allocations
// (bbolt's cursor and node work per put), and a key and its page space
// per seq made the index about a quarter of the file.

// postingBlockBytes bounds a block's value: a commit rewrites the last
// block of each value it touches, and readers decode a whole block.
const postingBlockBytes = 512

// postingKey is prefix followed by seq.
func postingKey(prefix []byte, seq uint64) []byte {
	return binary.BigEndian.AppendUint64(prefix[:len(prefix):len(prefix)], seq)
}

// isPosting reports whether k is a block key of prefix (not one of a longer
// value that has prefix as its prefix).
func isPosting(k, prefix []byte) bool {
	return len(k) == len(prefix)+8 && bytes.HasPrefix(k, prefix)
}

// decodePostings sets seqs to the block k, v's seqs in ascending order. A
// corrupt value yields the seqs after the damage.
func decodePostings(seqs []uint64, k, v []byte) []uint64 {
	seq := seqOf(k[len(k)-8:])
	seqs = append(seqs[:0], seq)
	for len(v) > 0 {
		d, n := binary.Uvarint(v)
		if n <= 0 || d == 0 || d >= seq {
			break
		}
		seq -= d
		seqs = append(seqs, seq)
		v = v[n:]
	}
	slices.Reverse(seqs)
	return seqs
}

// encodePostings is the value of the block of seqs (ascending).
func encodePostings(seqs []uint64) []byte {
	v := []byte{}
	for i := len(seqs) - 1; i > 0; i-- {
		v = binary.AppendUvarint(v, seqs[i]-seqs[i-1])
	}
	return v
}

// postings gathers a commit's index entries: the new seqs of each value,
// in seq order. The values are pointers so that adding to a value already
// there is a lookup (which does not allocate a key), not an assignment
// (which does): an allocation per event and index, 12 % of the append
// path's (BenchmarkAppendBatch), for the few values a commit touches.
type postings map[string]*[]uint64

func (p postings) add(prefix []byte, seq uint64) {
	if seqs := p[string(prefix)]; seqs != nil {
		*seqs = append(*seqs, seq)
		return
	}
	p[string(prefix)] = &[]uint64{seq}
}

// write adds each value's new seqs to its last block while that has room,
// then to new blocks.
func (p postings) write(idx *bolt.Bucket) error {
	prefixes := make([]string, 0, len(p))
	for prefix := range p {
		prefixes = append(prefixes, prefix)
	}
	slices.Sort(prefixes) // the same file for the same commit
	c := idx.Cursor()
	var block []uint64
	for _, ps := range prefixes {
		prefix, seqs := []byte(ps), *p[ps]
		block = block[:0]
		size := 0 // the value's length: what the deltas take
		if k, v := seekLE(c, postingKey(prefix, math.MaxUint64)); k != nil && isPosting(k, prefix) && len(v) < postingBlockBytes && seqOf(k[len(prefix):]) < seqs[0] {
			block, size = decodePostings(block, k, v), len(v)
			if err := idx.Delete(bytes.Clone(k)); err != nil {
				return err
			}
		}
		for i, seq := range seqs {
			if len(block) > 0 {
				size += uvarintLen(seq - block[len(block)-1])
			}
			block = append(block, seq)
			if size >= postingBlockBytes || i == len(seqs)-1 {
				if err := idx.Put(postingKey(prefix, seq), encodePostings(block)); err != nil {
					return err
				}
				block, size = block[:0], 0
			}
		}
	}
	return nil
}

func uvarintLen(x uint64) int {
	var b [binary.MaxVarintLen64]byte
	return binary.PutUvarint(b[:], x)
}

// prunePostings removes the seqs up to end from the blocks of each value
// (prefix) given: the blocks that end by then, and the head of the one end
// falls in.
func prunePostings(idx *bolt.Bucket, prefixes map[string]bool, end uint64) error {
	type put struct{ k, v []byte }
	var dels [][]byte
	var puts []put
	c := idx.Cursor()
	var seqs []uint64
	for ps := range prefixes {
		prefix := []byte(ps)
		for k, v := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
			if !isPosting(k, prefix) {
				continue
			}
			if seqOf(k[len(prefix):]) <= end {
				dels = append(dels, bytes.Clone(k))
				continue
			}
			if seqs = decodePostings(seqs, k, v); seqs[0] <= end {
				i, _ := slices.BinarySearch(seqs, end+1)
				puts = append(puts, put{bytes.Clone(k), encodePostings(seqs[i:])})
			}
			break
		}
	}
	// Not while the cursor walks: bbolt's cursor may skip a key after a
	// delete under it.
	for _, k := range dels {
		if err := idx.Delete(k); err != nil {
			return err
		}
	}
	for _, kv := range puts {
		if err := idx.Put(kv.k, kv.v); err != nil {
			return err
		}
	}
	return nil
}

// postingCursor walks the seqs of one value, block by block.
type postingCursor struct {
	c      *bolt.Cursor
	prefix []byte
	seqs   []uint64 // the block under c, decoded; empty when c is not on one
	i      int
}

func newPostingCursor(idx *bolt.Bucket, prefix []byte) *postingCursor {
	return &postingCursor{c: idx.Cursor(), prefix: prefix}
}

// inBlock reports whether target is within the loaded block's range.
func (p *postingCursor) inBlock(target uint64) bool {
	return len(p.seqs) > 0 && p.seqs[0] <= target && target <= p.seqs[len(p.seqs)-1]
}

// seekGE moves to the first seq at or after target; false when there is
// none.
func (p *postingCursor) seekGE(target uint64) (uint64, bool) {
	if !p.inBlock(target) {
		// The first block that ends at or after target holds the seq.
		if _, ok := p.forward(p.c.Seek(postingKey(p.prefix, target))); !ok {
			return 0, false
		}
	}
	p.i, _ = slices.BinarySearch(p.seqs, target)
	return p.seqs[p.i], true
}

// seekLE moves to the last seq at or before target; false when there is
// none.
func (p *postingCursor) seekLE(target uint64) (uint64, bool) {
	if !p.inBlock(target) {
		k, v := p.c.Seek(postingKey(p.prefix, target))
		on := k != nil && isPosting(k, p.prefix)
		if on {
			p.seqs = decodePostings(p.seqs, k, v)
		}
		if !on || p.seqs[0] > target {
			// All of the block that ends at or after target comes after
			// it: the seq is the end of the block before.
			if k == nil {
				k, v = p.c.Last()
			} else {
				k, v = p.c.Prev()
			}
			return p.backward(k, v)
		}
	}
	i, found := slices.BinarySearch(p.seqs, target)
	if !found {
		i-- // seqs[0] <= target
	}
	p.i = i
	return p.seqs[i], true
}

// next and prev step from the current seq.
func (p *postingCursor) next() (uint64, bool) {
	if p.i+1 < len(p.seqs) {
		p.i++
		return p.seqs[p.i], true
	}
	return p.forward(p.c.Next())
}

func (p *postingCursor) prev() (uint64, bool) {
	if p.i > 0 {
		p.i--
		return p.seqs[p.i], true
	}
	return p.backward(p.c.Prev())
}

// forward loads the first block of the value at or after k, and moves to
// its first seq.
func (p *postingCursor) forward(k, v []byte) (uint64, bool) {
	for ; k != nil && bytes.HasPrefix(k, p.prefix); k, v = p.c.Next() {
		if isPosting(k, p.prefix) {
			p.seqs, p.i = decodePostings(p.seqs, k, v), 0
			return p.seqs[0], true
		}
	}
	p.seqs = p.seqs[:0]
	return 0, false
}

// backward loads the last block of the value at or before k, and moves to
// its last seq.
func (p *postingCursor) backward(k, v []byte) (uint64, bool) {
	for ; k != nil && bytes.HasPrefix(k, p.prefix); k, v = p.c.Prev() {
		if isPosting(k, p.prefix) {
			p.seqs = decodePostings(p.seqs, k, v)
			p.i = len(p.seqs) - 1
			return p.seqs[p.i], true
		}
	}
	p.seqs = p.seqs[:0]
	return 0, false
}
