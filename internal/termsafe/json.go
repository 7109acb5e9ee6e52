package termsafe

import (
	"io"
	"unicode/utf8"
)

// JSON returns JSON text b with every character a terminal could act on
// written as a JSON \u escape: DEL, C1 controls (which JSON allows raw, and
// encoding/json writes raw), bidi controls and U+2028/U+2029, and any C0
// control other than the whitespace JSON allows between tokens. Such
// characters can only stand inside strings, so the result decodes to
// exactly the same values: it is lossless. A byte that is not valid UTF-8
// (which no JSON decoder can hand back) becomes \ufffd, so the output is
// always valid UTF-8. When b needs no change it is returned as it is.
func JSON(b []byte) []byte {
	i := jsonClean(b)
	if i == len(b) {
		return b
	}
	out := make([]byte, 0, len(b)+16)
	out = append(out, b[:i]...)
	for i < len(b) {
		c := b[i]
		if c < 0x80 {
			if (c >= 0x20 && c != 0x7f) || c == '\n' || c == '\t' || c == '\r' {
				out = append(out, c)
			} else {
				out = appendU(out, rune(c))
			}
			i++
			continue
		}
		r, n := utf8.DecodeRune(b[i:])
		switch {
		case r == utf8.RuneError && n == 1:
			out = appendU(out, utf8.RuneError)
		case visible(r):
			out = appendU(out, r)
		default:
			out = append(out, b[i:i+n]...)
		}
		i += n
	}
	return out
}

// jsonClean returns the length of the prefix of b that JSON leaves alone.
func jsonClean(b []byte) int {
	for i := 0; i < len(b); {
		c := b[i]
		if c < 0x80 {
			if (c < 0x20 && c != '\n' && c != '\t' && c != '\r') || c == 0x7f {
				return i
			}
			i++
			continue
		}
		r, n := utf8.DecodeRune(b[i:])
		if (r == utf8.RuneError && n == 1) || visible(r) {
			return i
		}
		i += n
	}
	return len(b)
}

// JSONWriter passes JSON text through JSON on its way to w. Each Write must
// hold whole characters, as a json.Encoder's writes (one value each) do.
type JSONWriter struct{ W io.Writer }

func (j JSONWriter) Write(p []byte) (int, error) {
	if _, err := j.W.Write(JSON(p)); err != nil {
		return 0, err
	}
	return len(p), nil
}
