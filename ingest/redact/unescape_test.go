package redact

import (
	"encoding/json"
	"strings"
	"testing"
	"unicode/utf8"
)

// unescape decodes as encoding/json does where the text is a valid JSON
// string body, and its map of offsets always points into the original,
// in order, so a span found in the decoded text replaces whole escapes.
func FuzzUnescape(f *testing.F) {
	for _, s := range []string{``, `a`, `\`, `\u00`, `pass\u0077ord`, `\"a\"`, `\\u0077`, `\ud83d\ude00x`, `\ud83d`, `é\n\t\/`, `\x`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		u, ok := unescaped{text: s}.unescape()
		if !ok {
			return
		}
		if len(u.from) != len(u.text)+1 || int(u.from[len(u.text)]) != len(s) {
			t.Fatalf("%q: map of %d for %d bytes, last %d", s, len(u.from), len(u.text), u.from[len(u.text)])
		}
		for i := 1; i < len(u.from); i++ {
			if u.from[i] < u.from[i-1] || int(u.from[i]) > len(s) {
				t.Fatalf("%q: offsets out of order at %d: %v", s, i, u.from)
			}
		}
		for a := 0; a <= len(u.text); a++ {
			for b := a; b <= len(u.text); b++ {
				if x, y := u.span(a, b); x > y || y > len(s) {
					t.Fatalf("%q: span(%d, %d) = %d, %d", s, a, b, x, y)
				}
			}
		}
		var want string
		// (encoding/json turns invalid UTF-8 and lone surrogates into
		// U+FFFD; the redactor keeps them as written.)
		if json.Unmarshal([]byte(`"`+s+`"`), &want) == nil && !strings.ContainsRune(want, utf8.RuneError) && want != u.text {
			t.Fatalf("%q decoded to %q, encoding/json says %q", s, u.text, want)
		}
	})
}
