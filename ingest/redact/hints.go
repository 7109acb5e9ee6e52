package redact

import "sync"

// hintIndex finds in one pass over a text which of the built-in patterns'
// hints it satisfies. Asking each pattern's hint in turn read the text about
// thirty times (a scan per word and case), which cost 3 µs of a small
// tools/call's 4.5 µs of redaction and 0.9 ms per 112 KB response.
//
// Every hint word is at least two bytes long, so the index goes by a word's
// first two bytes in lower case: most positions of a text start no hint
// word, and a table lookup tells so. An Aho-Corasick automaton would do the
// same in one pass too; for some thirty short words a table of two-byte
// prefixes is smaller code than adding a module for it.
type hintIndex struct {
	// groups[table[k]-1] are the words whose first two bytes fold to k.
	table  [1 << 16]uint8
	groups [][]hintWord
	gates  []gatedHint // patterns whose hint also has a gate
	all    uint64      // a bit for each pattern with a hint
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
			if x.table[k] == 0 {
				x.groups = append(x.groups, nil)
				if len(x.groups) > 255 {
					panic("redact: too many hint prefixes")
				}
				x.table[k] = uint8(len(x.groups))
			}
			g := &x.groups[x.table[k]-1]
			*g = append(*g, hintWord{w, h.fold, bit})
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
	for i := 0; i+1 < len(s) && found != x.all; i++ {
		g := x.table[fold2(s[i], s[i+1])]
		if g == 0 {
			continue
		}
		for _, w := range x.groups[g-1] {
			if found&w.bit != 0 || len(s)-i < len(w.word) {
				continue
			}
			if w.fold && equalFold(s[i:i+len(w.word)], w.word) || !w.fold && s[i:i+len(w.word)] == w.word {
				found |= w.bit
			}
		}
	}
	for _, g := range x.gates {
		if found&g.bit != 0 && !g.gate(s) {
			found &^= g.bit
		}
	}
	return found
}
