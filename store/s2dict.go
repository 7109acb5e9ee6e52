// The encoder in this file is adapted from github.com/klauspost/compress/s2
// (encodeBlockDictGo in encode_all.go; emitLiteral, emitCopy and emitRepeat
// in encode_go.go), v1.20.4, under its license:
//
// Copyright (c) 2011 The Snappy-Go Authors. All rights reserved.
// Copyright (c) 2019 Klaus Post. All rights reserved.
//
// Redistribution and use in source and binary forms, with or without
// modification, are permitted provided that the following conditions are
// met:
//
//   - Redistributions of source code must retain the above copyright
//     notice, this list of conditions and the following disclaimer.
//   - Redistributions in binary form must reproduce the above copyright
//     notice, this list of conditions and the following disclaimer in the
//     documentation and/or other materials provided with the distribution.
//   - Neither the name of Google Inc. nor the names of its contributors may
//     be used to endorse or promote products derived from this software
//     without specific prior written permission.
//
// THIS SOFTWARE IS PROVIDED BY THE COPYRIGHT HOLDERS AND CONTRIBUTORS "AS
// IS" AND ANY EXPRESS OR IMPLIED WARRANTIES, INCLUDING, BUT NOT LIMITED TO,
// THE IMPLIED WARRANTIES OF MERCHANTABILITY AND FITNESS FOR A PARTICULAR
// PURPOSE ARE DISCLAIMED. IN NO EVENT SHALL THE COPYRIGHT OWNER OR
// CONTRIBUTORS BE LIABLE FOR ANY DIRECT, INDIRECT, INCIDENTAL, SPECIAL,
// EXEMPLARY, OR CONSEQUENTIAL DAMAGES (INCLUDING, BUT NOT LIMITED TO,
// PROCUREMENT OF SUBSTITUTE GOODS OR SERVICES; LOSS OF USE, DATA, OR
// PROFITS; OR BUSINESS INTERRUPTION) HOWEVER CAUSED AND ON ANY THEORY OF
// LIABILITY, WHETHER IN CONTRACT, STRICT LIABILITY, OR TORT (INCLUDING
// NEGLIGENCE OR OTHERWISE) ARISING IN ANY WAY OUT OF THE USE OF THIS
// SOFTWARE, EVEN IF ADVISED OF THE POSSIBILITY OF SUCH DAMAGE.

package store

import (
	"encoding/binary"
	"math/bits"
	"sync"
	"unsafe"

	"github.com/klauspost/compress/s2"
)

// dictEncoder writes S2 blocks with the event dictionary (tag 'r'), the
// blocks s2's Dict.Encode writes, for the inputs it is given most: events
// of 300 bytes to a few KB. The library's encoder (encodeBlockDictGo; Dict
// has no reusable state; EncodeBetter zeroes 576 KB of tables) declares a
// 16,384-entry uint32 hash table on its stack for every block, whatever the
// input's size: zeroing those 64 KB was 35 % of its time in a profile of
// the append benchmarks, and every goroutine that encodes grows its stack
// past 64 KB. This one makes the same choices with a table sized to the
// input (8 KB for 600 bytes), indexed by the top bits of the same hash, and
// reads the dictionary's table built the library's way: 0.46–0.70 µs of CPU
// for a gateway call's 500-byte event where the library takes 0.84–1.31,
// 1.45–1.78 for the generator's 1.4 KB where it takes 1.74–2.02
// (BenchmarkDictEncode), with blocks 0.02 % larger
// (TestDictEncoderOldAndNewValues). Its loads are unchecked, as the
// library's: with bounds-checked ones it was slower than the library (2.0
// µs against 1.7 on 1.4 KB). Every load is at an index the library's code
// reads at; FuzzDictEncode holds that (run it with -race too: checkptr
// then stops a load that reaches past src's or the dictionary's memory,
// as it did when one was made to).
//
// An S2 block decodes the same whatever matches its encoder chose, so s2's
// Dict.Decode (this release's reader and the previous one's) reads these
// blocks; FuzzDictEncode holds the two to each other.
type dictEncoder struct {
	dict      []byte // eventDict1
	repeat    int    // the dictionary's first repeat offset, as s2.MakeDict found it
	dictTable [1 << dictTableBits]uint16
}

const (
	dictTableBits = 14 // the library's, for the dictionary's table
	// maxDictEncode is the largest input this encoder takes; larger ones
	// go to the library's. Below it the whole input is within reach of
	// the dictionary (s2.MaxDictSrcOffset), so the library's second loop,
	// matching without the dictionary, never runs and is not ported.
	maxDictEncode  = 32 << 10
	s2InputMargin  = 8  // s2's inputMargin
	s2MinNonLitBlk = 32 // s2's minNonLiteralBlockSize
	s2TagLiteral   = 0x00
	s2TagCopy1     = 0x01
	s2TagCopy2     = 0x02
)

var eventDictEncoder = sync.OnceValue(func() *dictEncoder {
	d := eventDict()
	// Bytes is uvarint(repeat) then the dictionary: the one exported way
	// to the repeat offset the decoder starts with.
	b := d.Bytes()
	r, n := binary.Uvarint(b)
	e := &dictEncoder{dict: b[n:], repeat: int(r)}
	// The library's initFast, so dictionary matches are found as it finds them.
	for i := 0; i < len(e.dict)-8-2; i += 3 {
		x0 := s2load64(e.dict, i)
		e.dictTable[s2hash6(x0, dictTableBits)] = uint16(i)
		e.dictTable[s2hash6(x0>>8, dictTableBits)] = uint16(i + 1)
		e.dictTable[s2hash6(x0>>16, dictTableBits)] = uint16(i + 2)
	}
	return e
})

// srcTables are the per-block hash tables, reused: only the part a block
// uses is cleared.
var srcTables = sync.Pool{New: func() any { return new([1 << dictTableBits]uint16) }}

// s2load32 and s2load64 are s2's loads, unchecked (see dictEncoder).
func s2load32(b []byte, i int) uint32 {
	return *(*uint32)(unsafe.Add(unsafe.Pointer(unsafe.SliceData(b)), i))
}
func s2load64(b []byte, i int) uint64 {
	return *(*uint64)(unsafe.Add(unsafe.Pointer(unsafe.SliceData(b)), i))
}

// s2hash6 is s2's hash6. hash6(u, b) is hash6(u, 14) >> (14-b): the
// dictionary's table and the block's share one hash.
func s2hash6(u uint64, h uint8) uint32 {
	const prime6bytes = 227718039650203
	return uint32(((u << (64 - 48)) * prime6bytes) >> ((64 - h) & 63))
}

// appendEncode appends the S2 block of src to dst.
func (e *dictEncoder) appendEncode(dst, src []byte) []byte {
	if len(src) > maxDictEncode {
		return append(dst, eventDict().Encode(nil, src)...) // rare: the allocation does not count
	}
	start := len(dst)
	dst = binary.AppendUvarint(dst, uint64(len(src)))
	hdr := len(dst) - start
	dst = growLen(dst, s2.MaxEncodedLen(len(src))-hdr)
	out := dst[len(dst)-(s2.MaxEncodedLen(len(src))-hdr):]
	var n int
	if len(src) >= s2MinNonLitBlk {
		n = e.encodeBlock(out, src)
	}
	if n == 0 { // too short, or not compressible
		n = s2EmitLiteral(out, src)
	}
	return dst[:len(dst)-len(out)+n]
}

// growLen extends b by n bytes, whose contents are undefined.
func growLen(b []byte, n int) []byte {
	if cap(b)-len(b) < n {
		nb := make([]byte, len(b), len(b)+n)
		copy(nb, b)
		b = nb
	}
	return b[:len(b)+n]
}

// encodeBlock is encodeBlockDictGo's dictionary loop for a src of
// s2MinNonLitBlk to maxDictEncode bytes, with a table of tableBits(src).
// It returns 0 when src does not compress.
func (e *dictEncoder) encodeBlock(dst, src []byte) (d int) {
	const maxAhead = 8 // maximum bytes ahead without checking sLimit
	// About two entries per input byte, at least 256: 600 bytes get 2 KB.
	tbits := uint8(min(max(bits.Len(uint(len(src)))+2, 8), dictTableBits))
	shift := dictTableBits - tbits
	tp := srcTables.Get().(*[1 << dictTableBits]uint16)
	defer srcTables.Put(tp)
	table := tp[:1<<tbits]
	clear(table)
	dict, dictTable := e.dict, &e.dictTable

	sLimit := min(len(src)-s2InputMargin, s2.MaxDictSrcOffset-maxAhead)
	dstLimit := len(src) - len(src)>>5 - 5
	nextEmit := 0
	s := 0
	repeat := len(dict) - e.repeat
	cv := s2load64(src, 0)

searchDict:
	for {
		nextS := s + (s-nextEmit)>>6 + 4
		hash0 := s2hash6(cv, dictTableBits)
		hash1 := s2hash6(cv>>8, dictTableBits)
		if nextS > sLimit {
			break searchDict
		}
		candidateDict := int(dictTable[hash0])
		candidateDict2 := int(dictTable[hash1])
		candidate2 := int(table[hash1>>shift])
		candidate := int(table[hash0>>shift])
		table[hash0>>shift] = uint16(s)
		table[hash1>>shift] = uint16(s + 1)
		hash2 := s2hash6(cv>>16, dictTableBits)

		const checkRep = 1
		if repeat > s {
			candidate := len(dict) - repeat + s
			if repeat-s >= 4 && uint32(cv) == s2load32(dict, candidate) {
				base := s
				for i := candidate; base > nextEmit && i > 0 && dict[i-1] == src[base-1]; {
					i--
					base--
				}
				if d+(base-nextEmit) > dstLimit {
					return 0
				}
				d += s2EmitLiteral(dst[d:], src[nextEmit:base])
				s += 4
				candidate += 4
				for candidate < len(dict)-8 && s <= len(src)-8 {
					if diff := s2load64(src, s) ^ s2load64(dict, candidate); diff != 0 {
						s += bits.TrailingZeros64(diff) >> 3
						break
					}
					s += 8
					candidate += 8
				}
				d += s2EmitRepeat(dst[d:], repeat, s-base)
				nextEmit = s
				if s >= sLimit {
					break searchDict
				}
				cv = s2load64(src, s)
				continue
			}
		} else if repeat > 0 && uint32(cv>>(checkRep*8)) == s2load32(src, s-repeat+checkRep) {
			base := s + checkRep
			for i := base - repeat; base > nextEmit && i > 0 && src[i-1] == src[base-1]; {
				i--
				base--
			}
			d += s2EmitLiteral(dst[d:], src[nextEmit:base])
			candidate := s - repeat + 4 + checkRep
			s += 4 + checkRep
			for s <= sLimit {
				if diff := s2load64(src, s) ^ s2load64(src, candidate); diff != 0 {
					s += bits.TrailingZeros64(diff) >> 3
					break
				}
				s += 8
				candidate += 8
			}
			if nextEmit > 0 {
				d += s2EmitRepeat(dst[d:], repeat, s-base)
			} else {
				d += s2EmitCopy(dst[d:], repeat, s-base) // the first match cannot be a repeat
			}
			nextEmit = s
			if s >= sLimit {
				break searchDict
			}
			cv = s2load64(src, s)
			continue searchDict
		}
		if s == 0 {
			cv = s2load64(src, nextS)
			s = nextS
			continue searchDict
		}
		// The block's own matches first: they are closer.
		if uint32(cv) == s2load32(src, candidate) {
			goto emitMatch
		}
		candidate = int(table[hash2>>shift])
		if uint32(cv>>8) == s2load32(src, candidate2) {
			table[hash2>>shift] = uint16(s + 2)
			candidate = candidate2
			s++
			goto emitMatch
		}
		// The dictionary's offsets are longer: want longer matches.
		if cv == s2load64(dict, candidateDict) {
			table[hash2>>shift] = uint16(s + 2)
			goto emitDict
		}
		candidateDict = int(dictTable[hash2])
		if candidateDict2 >= 1 {
			if cv^s2load64(dict, candidateDict2-1) < (1 << 8) {
				table[hash2>>shift] = uint16(s + 2)
				candidateDict = candidateDict2
				s++
				goto emitDict
			}
		}
		table[hash2>>shift] = uint16(s + 2)
		if uint32(cv>>16) == s2load32(src, candidate) {
			s += 2
			goto emitMatch
		}
		if candidateDict >= 2 {
			if cv^s2load64(dict, candidateDict-2) < (1 << 16) {
				s += 2
				goto emitDict
			}
		}
		cv = s2load64(src, nextS)
		s = nextS
		continue searchDict

	emitDict:
		{
			for candidateDict > 0 && s > nextEmit && dict[candidateDict-1] == src[s-1] {
				candidateDict--
				s--
			}
			if d+(s-nextEmit) > dstLimit {
				return 0
			}
			d += s2EmitLiteral(dst[d:], src[nextEmit:s])
			base := s
			repeat = s + len(dict) - candidateDict
			s += 4
			candidateDict += 4
			for s <= len(src)-8 && len(dict)-candidateDict >= 8 {
				if diff := s2load64(src, s) ^ s2load64(dict, candidateDict); diff != 0 {
					s += bits.TrailingZeros64(diff) >> 3
					break
				}
				s += 8
				candidateDict += 8
			}
			if s <= sLimit || s-base < 8 {
				d += s2EmitCopy(dst[d:], repeat, s-base)
			} else {
				// Split so no copy starts within the next block.
				d += s2EmitCopy(dst[d:], repeat, 4)
				d += s2EmitRepeat(dst[d:], repeat, s-base-4)
			}
			nextEmit = s
			if s >= sLimit {
				break searchDict
			}
			if d > dstLimit {
				return 0
			}
			x := s2load64(src, s-2)
			table[s2hash6(x, tbits)] = uint16(s - 2)
			table[s2hash6(x>>8, tbits)] = uint16(s - 1)
			cv = s2load64(src, s)
			continue
		}
	emitMatch:
		for candidate > 0 && s > nextEmit && src[candidate-1] == src[s-1] {
			candidate--
			s--
		}
		if d+(s-nextEmit) > dstLimit {
			return 0
		}
		d += s2EmitLiteral(dst[d:], src[nextEmit:s])
		for {
			base := s
			repeat = base - candidate
			s += 4
			candidate += 4
			for s <= len(src)-8 {
				if diff := s2load64(src, s) ^ s2load64(src, candidate); diff != 0 {
					s += bits.TrailingZeros64(diff) >> 3
					break
				}
				s += 8
				candidate += 8
			}
			d += s2EmitCopy(dst[d:], repeat, s-base)
			nextEmit = s
			if s >= sLimit {
				break searchDict
			}
			if d > dstLimit {
				return 0
			}
			// An immediate match, or search on from s+1.
			x := s2load64(src, s-2)
			m2Hash := s2hash6(x, tbits)
			currHash := s2hash6(x>>16, tbits)
			candidate = int(table[currHash])
			table[m2Hash] = uint16(s - 2)
			table[currHash] = uint16(s)
			if uint32(x>>16) != s2load32(src, candidate) {
				cv = s2load64(src, s+1)
				s++
				break
			}
		}
	}
	// src is within the dictionary's reach (maxDictEncode): what is left
	// after the loop is literal (the library's second loop would find
	// nextS past sLimit at once).
	if nextEmit < len(src) {
		if d+len(src)-nextEmit > dstLimit {
			return 0
		}
		d += s2EmitLiteral(dst[d:], src[nextEmit:])
	}
	return d
}

// s2EmitLiteral is s2's emitLiteral.
func s2EmitLiteral(dst, lit []byte) int {
	if len(lit) == 0 {
		return 0
	}
	i, n := 0, uint(len(lit)-1)
	switch {
	case n < 60:
		dst[0] = uint8(n)<<2 | s2TagLiteral
		i = 1
	case n < 1<<8:
		dst[1] = uint8(n)
		dst[0] = 60<<2 | s2TagLiteral
		i = 2
	default: // n < 1<<16: src is at most maxDictEncode
		dst[2] = uint8(n >> 8)
		dst[1] = uint8(n)
		dst[0] = 61<<2 | s2TagLiteral
		i = 3
	}
	return i + copy(dst[i:], lit)
}

// s2EmitRepeat is s2's emitRepeat for lengths below 1<<16 + 1<<8 (src is
// at most maxDictEncode).
func s2EmitRepeat(dst []byte, offset, length int) int {
	length -= 4
	if length <= 4 {
		dst[0] = uint8(length)<<2 | s2TagCopy1
		dst[1] = 0
		return 2
	}
	if length < 8 && offset < 2048 {
		dst[1] = uint8(offset)
		dst[0] = uint8(offset>>8)<<5 | uint8(length)<<2 | s2TagCopy1
		return 2
	}
	if length < (1<<8)+4 {
		length -= 4
		dst[2] = uint8(length)
		dst[1] = 0
		dst[0] = 5<<2 | s2TagCopy1
		return 3
	}
	length -= 1 << 8
	dst[3] = uint8(length >> 8)
	dst[2] = uint8(length >> 0)
	dst[1] = 0
	dst[0] = 6<<2 | s2TagCopy1
	return 4
}

// s2EmitCopy is s2's emitCopy for offsets below 65536 (the dictionary and
// the block together are shorter).
func s2EmitCopy(dst []byte, offset, length int) int {
	if length > 64 {
		off := 3
		if offset < 2048 {
			// 8 bytes as tagCopy1, the rest as repeats.
			dst[1] = uint8(offset)
			dst[0] = uint8(offset>>8)<<5 | uint8(8-4)<<2 | s2TagCopy1
			length -= 8
			off = 2
		} else {
			// 60 bytes as 3, the rest (at least 4) as repeats.
			dst[2] = uint8(offset >> 8)
			dst[1] = uint8(offset)
			dst[0] = 59<<2 | s2TagCopy2
			length -= 60
		}
		return off + s2EmitRepeat(dst[off:], offset, length)
	}
	if length >= 12 || offset >= 2048 {
		dst[2] = uint8(offset >> 8)
		dst[1] = uint8(offset)
		dst[0] = uint8(length-1)<<2 | s2TagCopy2
		return 3
	}
	dst[1] = uint8(offset)
	dst[0] = uint8(offset>>8)<<5 | uint8(length-4)<<2 | s2TagCopy1
	return 2
}
