package daemon

import (
	"encoding/binary"
	"testing"
)

// segNext walks whatever a hostile wrap puts in its segment without
// reading past end or the mapping, and each record it returns lies wholly
// inside [off, end) with its length in front of it.
func FuzzSegNext(f *testing.F) {
	rec := func(b []byte) []byte { return binary.LittleEndian.AppendUint32(nil, uint32(len(b))) }
	f.Add(append(rec([]byte("abc")), "abc"...), uint64(7))
	f.Add(append(append(rec([]byte("a")), 'a'), append(rec([]byte("bc")), "bc"...)...), uint64(11))
	f.Add([]byte{0xff, 0xff, 0xff, 0x7f, 1, 2}, uint64(6))
	f.Add([]byte{0, 0, 0, 0}, uint64(4))
	f.Add([]byte{1, 0}, uint64(2))
	f.Add([]byte{1, 0, 0, 0, 9}, uint64(1<<40))
	f.Fuzz(func(t *testing.T, mem []byte, end uint64) {
		off := uint64(0)
		var buf []byte // reused, as the tail does
		for i := 0; off < end && i < len(mem)+1; i++ {
			got, next, err := segNext(buf, mem, off, end)
			if err != nil {
				if next != off {
					t.Fatalf("an error moved the offset from %d to %d", off, next)
				}
				return
			}
			size := uint64(binary.LittleEndian.Uint32(mem[off:]))
			if next > end || next > uint64(len(mem)) || next != off+4+size || uint64(len(got)) != size || size == 0 {
				t.Fatalf("record at %d: %d bytes, next %d, end %d, mapping %d", off, len(got), next, end, len(mem))
			}
			if string(got) != string(mem[off+4:next]) {
				t.Fatalf("record at %d is not the mapping's bytes", off)
			}
			if &got[0] == &mem[off+4] {
				t.Fatalf("record at %d is the mapping's memory, not a copy", off)
			}
			buf, off = got, next
		}
	})
}
