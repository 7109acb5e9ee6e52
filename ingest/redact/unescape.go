package redact

import (
	"math"
	"strings"
	"sync"
	"unicode/utf16"
	"unicode/utf8"
)

// Text can hold JSON that was never decoded: the excerpt of a malformed
// message recorded as bad input, or JSON carried as text inside a string
// (a tool argument holding a config file, an error quoting a request).
// Its escapes can spell a secret's name or shape that the text does not
// show: "pass\u0077ord", "API_TOKEN\u003dabc", \"password\":\"x\". So
// patterns also run on the text decoded as a JSON string body would be, and
// what they find there is replaced in the text itself, escapes and all.
//
// The agent writes this text and may fill a whole message with escapes, so
// the cost must stay linear in its size: each level is decoded into a
// buffer reused across calls, and a span found in a decoded level is
// mapped back by decoding again alongside it (offsetMapper) rather than
// through a table of every byte's origin, which cost four bytes per byte
// per level.

// maxUnescape bounds the levels of decoding: JSON text inside a string
// inside a malformed message is three.
const maxUnescape = 3

// levels is a text and its decodings, and the buffers that hold them and
// the spans found in them, kept in a pool between calls.
type levels struct {
	// texts[0] is the text; texts[k] is texts[k-1] decoded, a view of
	// bufs[k-1].
	texts []string
	bufs  [maxUnescape][]byte
	found spanSet
}

var levelPool = sync.Pool{New: func() any { return new(levels) }}

// maxPooled keeps a message far above the default size limit from
// pinning its buffers in the pool.
const maxPooled = 16 << 20

func getLevels() *levels { return levelPool.Get().(*levels) }

func (l *levels) release() {
	for k := range l.bufs {
		if cap(l.bufs[k]) > maxPooled {
			l.bufs[k] = nil
		}
	}
	if cap(l.found.spans) > maxPooled/16 {
		l.found = spanSet{}
	}
	clear(l.texts) // the pool must not keep the caller's message alive
	l.texts = l.texts[:0]
	levelPool.Put(l)
}

// decode sets l.texts to s and up to n decodings of it, while there is
// anything to decode.
func (l *levels) decode(s string, n int) {
	l.texts = append(l.texts[:0], s)
	for k := 0; k < n; k++ {
		b, ok := unescape(l.bufs[k][:0], l.texts[k])
		l.bufs[k] = b[:0]
		if !ok {
			break
		}
		l.texts = append(l.texts, view(b))
	}
}

// unescape appends to dst the JSON string escapes of s decoded leniently,
// as free text: anything that is not a complete escape stays as it is. ok
// is false when there was nothing to decode. A decoding is never longer
// than its text.
func unescape(dst []byte, s string) (out []byte, ok bool) {
	i := strings.IndexByte(s, '\\')
	if i < 0 || len(s) > math.MaxInt32 {
		return dst, false
	}
	if cap(dst)-len(dst) < len(s) {
		dst = append(make([]byte, 0, len(dst)+len(s)), dst...)
	}
	last := 0
	for ; i >= 0; i = strings.IndexByte(s[last:], '\\') {
		i += last
		dst = append(dst, s[last:i]...)
		n, r := decodeEscape(s[i:])
		if n == 0 {
			n, r = 1, '\\'
		} else {
			ok = true
		}
		dst = utf8.AppendRune(dst, r)
		last = i + n
	}
	return append(dst, s[last:]...), ok
}

// offsetMapper maps offsets in the decoding of src to offsets in src, for
// offsets asked in non-decreasing order: it walks src once in all. A unit
// of src is a plain byte or an escape; a start offset maps to the start of
// the unit it falls in, an end offset inside a unit's decoded bytes to the
// end of the unit, so a span of the decoding takes whole escapes.
type offsetMapper struct {
	src  string
	i, o int // the unit at src[i] decodes to offset o
	next int // the first backslash at or after i, or len(src)
}

func newOffsetMapper(src string) offsetMapper {
	return offsetMapper{src: src, next: -1}
}

func (m *offsetMapper) at(x int, end bool) int {
	for m.i < len(m.src) {
		if m.next < m.i {
			m.next = indexByteFrom(m.src, '\\', m.i)
		}
		if run := m.next - m.i; run > 0 { // plain bytes: one each
			if x < m.o+run {
				return m.i + x - m.o
			}
			m.i, m.o = m.next, m.o+run
			continue
		}
		if x == m.o {
			return m.i
		}
		n, r := decodeEscape(m.src[m.i:])
		size := 1
		if n == 0 {
			n = 1 // a backslash that escapes nothing is itself
		} else {
			size = utf8.RuneLen(r)
		}
		if x < m.o+size {
			if end {
				return m.i + n
			}
			return m.i
		}
		m.i, m.o = m.i+n, m.o+size
	}
	return len(m.src)
}

// decodeEscape decodes the escape at the start of s (which begins with a
// backslash) to r: n is its length in s, 0 if it is not a complete one.
func decodeEscape(s string) (n int, r rune) {
	if len(s) < 2 {
		return 0, 0
	}
	switch s[1] {
	case '"', '\\', '/':
		return 2, rune(s[1])
	case 'b':
		return 2, '\b'
	case 'f':
		return 2, '\f'
	case 'n':
		return 2, '\n'
	case 'r':
		return 2, '\r'
	case 't':
		return 2, '\t'
	case 'u':
		r, ok := hex4(s[2:])
		if !ok {
			return 0, 0
		}
		if utf16.IsSurrogate(r) {
			if len(s) >= 12 && s[6] == '\\' && s[7] == 'u' {
				if r2, ok := hex4(s[8:]); ok {
					if c := utf16.DecodeRune(r, r2); c != utf8.RuneError {
						return 12, c
					}
				}
			}
			return 0, 0 // a lone surrogate stays as written
		}
		return 6, r
	}
	return 0, 0
}

func hex4(s string) (rune, bool) {
	if len(s) < 4 {
		return 0, false
	}
	var r rune
	for i := 0; i < 4; i++ {
		c := s[i]
		switch {
		case '0' <= c && c <= '9':
			c -= '0'
		case 'a' <= c && c <= 'f':
			c -= 'a' - 10
		case 'A' <= c && c <= 'F':
			c -= 'A' - 10
		default:
			return 0, false
		}
		r = r<<4 | rune(c)
	}
	return r, true
}
