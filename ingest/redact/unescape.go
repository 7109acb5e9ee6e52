package redact

import (
	"math"
	"strings"
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

// maxUnescape bounds the levels of decoding: JSON text inside a string
// inside a malformed message is three.
const maxUnescape = 3

// unescaped is a text decoded once or more, and where each of its bytes
// came from in the original text.
type unescaped struct {
	text string
	// from[i] is the offset in the original text of the escape (or plain
	// byte) that decoded byte i came from; from[len(text)] is the
	// original's length. Bytes decoded from one escape share an offset.
	from []int32
}

// unescape decodes the JSON string escapes of u.text leniently, as free
// text: anything that is not a complete escape stays as it is. ok is false
// when there was nothing to decode.
func (u unescaped) unescape() (out unescaped, ok bool) {
	s := u.text
	i := strings.IndexByte(s, '\\')
	if i < 0 || len(s) > math.MaxInt32 { // offsets are int32; messages are far smaller
		return u, false
	}
	origin := func(j int) int32 {
		if u.from == nil {
			return int32(j)
		}
		return u.from[j]
	}
	var b strings.Builder
	b.Grow(len(s))
	from := make([]int32, 0, len(s)+1)
	last := 0
	for ; i >= 0; i = strings.IndexByte(s[last:], '\\') {
		i += last
		b.WriteString(s[last:i])
		for k := last; k < i; k++ {
			from = append(from, origin(k))
		}
		n, dec := decodeEscape(s[i:])
		if n == 0 {
			n, dec = 1, `\`
		} else {
			ok = true
		}
		b.WriteString(dec)
		for range len(dec) {
			from = append(from, origin(i))
		}
		last = i + n
	}
	if !ok {
		return u, false
	}
	b.WriteString(s[last:])
	for k := last; k <= len(s); k++ {
		from = append(from, origin(k))
	}
	return unescaped{text: b.String(), from: from}, true
}

// decodeEscape decodes the escape at the start of s (which begins with a
// backslash): n is its length in s, 0 if it is not a complete one.
func decodeEscape(s string) (n int, dec string) {
	if len(s) < 2 {
		return 0, ""
	}
	switch s[1] {
	case '"', '\\', '/':
		return 2, s[1:2]
	case 'b':
		return 2, "\b"
	case 'f':
		return 2, "\f"
	case 'n':
		return 2, "\n"
	case 'r':
		return 2, "\r"
	case 't':
		return 2, "\t"
	case 'u':
		r, ok := hex4(s[2:])
		if !ok {
			return 0, ""
		}
		if utf16.IsSurrogate(r) {
			if len(s) >= 12 && s[6] == '\\' && s[7] == 'u' {
				if r2, ok := hex4(s[8:]); ok {
					if c := utf16.DecodeRune(r, r2); c != utf8.RuneError {
						return 12, string(c)
					}
				}
			}
			return 0, "" // a lone surrogate stays as written
		}
		return 6, string(r)
	}
	return 0, ""
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

// span maps a span of u.text to the original text. A span that ends inside
// the bytes of one escape takes the whole escape.
func (u unescaped) span(start, end int) (int, int) {
	for end < len(u.text) && end > 0 && u.from[end] == u.from[end-1] {
		end++
	}
	return int(u.from[start]), int(u.from[end])
}
