package redact

import (
	"encoding/json"
	"strings"
	"testing"
	"unicode/utf8"
)

// origins is the plain statement of where each byte of s decoded came
// from: from[i] is the offset in s of the escape (or plain byte) that
// decoded byte i came from, and from[len] is len(s). offsetMapper must
// answer as this table does, without building it.
func origins(s string) []int {
	var from []int
	for i := 0; i < len(s); {
		n, size := 1, 1
		if s[i] == '\\' {
			if k, r := decodeEscape(s[i:]); k > 0 {
				n, size = k, utf8.RuneLen(r)
			}
		}
		for range size {
			from = append(from, i)
		}
		i += n
	}
	return append(from, len(s))
}

// spanByTable maps a span of the decoding through a table of origins: a
// span that ends inside the bytes of one escape takes the whole escape.
func spanByTable(from []int, start, end int) (int, int) {
	for end < len(from)-1 && end > 0 && from[end] == from[end-1] {
		end++
	}
	return from[start], from[end]
}

// unescape decodes as encoding/json does where the text is a valid JSON
// string body, and a span found one or two decodings deep maps back to
// the text as the table of each byte's origin says, so it replaces whole
// escapes.
func FuzzUnescape(f *testing.F) {
	for _, s := range []string{``, `a`, `\`, `\u00`, `pass\u0077ord`, `\"a\"`, `\\u0077`, `\ud83d\ude00x`, `\ud83d`, `é\n\t\/`, `\x`,
		`\\\"pass\\u0077ord\\\"`, `\\\\\\\\`, `\\u00e9\u00e9`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if len(s) > 200 {
			return // every pair of offsets is tried
		}
		b, ok := unescape(nil, s)
		if !ok {
			return
		}
		d1 := string(b)
		from := origins(s)
		if len(from) != len(d1)+1 {
			t.Fatalf("%q: decoded to %d bytes, table says %d", s, len(d1), len(from)-1)
		}
		var want string
		// (encoding/json turns invalid UTF-8 and lone surrogates into
		// U+FFFD; the redactor keeps them as written.)
		if json.Unmarshal([]byte(`"`+s+`"`), &want) == nil && !strings.ContainsRune(want, utf8.RuneError) && want != d1 {
			t.Fatalf("%q decoded to %q, encoding/json says %q", s, d1, want)
		}
		// Two levels: the table composed through both.
		texts, tables := []string{s, d1}, [][]int{from}
		if b2, ok := unescape(nil, d1); ok {
			from2 := origins(d1)
			for i := range from2 {
				from2[i] = from[from2[i]]
			}
			texts, tables = append(texts, string(b2)), append(tables, from2)
		}
		for d := 1; d < len(texts); d++ {
			for a := 0; a <= len(texts[d]); a++ {
				for e := a; e <= len(texts[d]); e++ {
					f := spanSet{spans: [][2]int{{a, e}}, kinds: []int32{0}}
					for k := d; k > 0; k-- {
						f.mapDown(texts[k-1])
					}
					x, y := spanByTable(tables[d-1], a, e)
					if got := f.spans[0]; got != [2]int{x, y} {
						t.Fatalf("%q level %d: span (%d, %d) maps to %v, table says (%d, %d)", s, d, a, e, got, x, y)
					}
				}
			}
		}
	})
}
