package redact

import (
	"math/bits"
	"slices"
	"sync"
)

// hintIndex finds in one pass over a text which of the built-in patterns'
// hints it satisfies. Asking each pattern's hint in turn read the text about
// thirty times (a scan per word and case), which cost 3 µs of a small
// tools/call's 4.5 µs of redaction and 0.9 ms per 112 KB response.
//
// Every hint word is at least two bytes long, so the index goes by a word's
// first two bytes, ASCII case folded: most positions of a text start no
// hint word, and two table lookups tell so. first[c] holds a bit for each
// prefix whose first byte c is (in either case), second[c] one for each
// whose second byte it is: a position starts a prefix where the two
// meet, and the prefixes being distinct, at most one bit survives. The
// two tables are 4 KB, where a table by the folded pair took 64 KB, whose
// cache lines a message's text touched at random: this code runs cold,
// after a wake-up, on every call (it took the scan of loadgen's write
// call from 380–580 to 150–260 ns, BenchmarkHintScan).
type hintIndex struct {
	first, second [256]uint64
	groups        [][]hintWord // by prefix: the words that start with it
	gates         []gatedHint  // patterns whose hint also has a gate
	all           uint64       // a bit for each pattern with a hint
}

type hintWord struct {
	word string
	fold bool
	bit  uint64
}

type gatedHint struct {
	gate func(string) bool
	bit  uint64
}

var builtinHints = sync.OnceValue(func() *hintIndex { return newHintIndex(builtins) })

// newHintIndex indexes the hints of ps, at most 64 patterns: bit i of scan's
// answer stands for ps[i].
func newHintIndex(ps []pattern) *hintIndex {
	if len(ps) > 64 {
		panic("redact: more than 64 built-in patterns")
	}
	x := &hintIndex{}
	var prefixes []uint16 // folded first two bytes, by group
	for i := range ps {
		h := ps[i].hint
		if h == nil {
			continue
		}
		bit := uint64(1) << i
		x.all |= bit
		if h.gate != nil {
			x.gates = append(x.gates, gatedHint{h.gate, bit})
		}
		for _, w := range h.words {
			if len(w) < 2 {
				panic("redact: hint word " + w + " is shorter than two bytes")
			}
			k := fold2(w[0], w[1])
			g := slices.Index(prefixes, k)
			if g < 0 {
				g = len(prefixes)
				if g == 64 {
					panic("redact: more than 64 hint prefixes")
				}
				prefixes = append(prefixes, k)
				x.groups = append(x.groups, nil)
				for c := range 256 {
					if foldByte(byte(c)) == foldByte(w[0]) {
						x.first[c] |= 1 << g
					}
					if foldByte(byte(c)) == foldByte(w[1]) {
						x.second[c] |= 1 << g
					}
				}
			}
			x.groups[g] = append(x.groups[g], hintWord{w, h.fold, bit})
		}
	}
	return x
}

func fold2(a, b byte) uint16 { return uint16(foldByte(a))<<8 | uint16(foldByte(b)) }

func foldByte(c byte) byte {
	if 'A' <= c && c <= 'Z' {
		return c + ('a' - 'A')
	}
	return c
}

// scan returns the set of patterns whose hint s satisfies, as hint.in
// would answer for each.
func (x *hintIndex) scan(s string) uint64 {
	var found uint64
	if len(s) < 2 {
		return 0
	}
	// prev: the prefixes s[i-1] may start, carried from one byte to the
	// next so that each byte is read once.
	prev := x.first[s[0]]
	for i := 1; i < len(s); i++ {
		c := s[i]
		m := prev & x.second[c]
		prev = x.first[c]
		if m == 0 {
			continue
		}
		at := i - 1
		for _, w := range x.groups[bits.TrailingZeros64(m)] {
			if found&w.bit != 0 || len(s)-at < len(w.word) {
				continue
			}
			if w.fold && equalFold(s[at:at+len(w.word)], w.word) || !w.fold && s[at:at+len(w.word)] == w.word {
				found |= w.bit
			}
		}
		if found == x.all {
			break
		}
	}
	for _, g := range x.gates {
		if found&g.bit != 0 && !g.gate(s) {
			found &^= g.bit
		}
	}
	return found
}
