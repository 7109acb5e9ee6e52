package redact

import "strings"

// A malformed message is recorded with only its first 512 bytes, which may
// end inside a token. The token patterns need a whole token (a GitHub
// token is 36 characters after ghp_) and would leave the piece that is
// there. cutToken finds a token's prefix in the run of token characters
// that ends the text, and takes the run from there: six characters past
// the prefix are worth redacting, fewer are not worth the false matches.
// It reads only the end of the text, so it costs nothing on the rest.

const cutMin = 6

// cutToken makes the pattern for the tokens of one kind: they begin with
// one of prefixes and go on with bytes body accepts; keep, when set,
// rejects what is not one (as the whole-token pattern's keep does).
func cutToken(kind string, body func(c byte) bool, keep func(string) bool, prefixes ...string) pattern {
	return pattern{
		kind: kind,
		hint: contains(prefixes...),
		keep: keep,
		scan: func(dst [][2]int, s string) [][2]int {
			// The run of body bytes that ends the text; a prefix may
			// reach into it ("sk-" is made of body bytes too).
			start := len(s)
			for start > 0 && body(s[start-1]) {
				start--
			}
			from := max(0, start-maxLen(prefixes))
			for _, p := range prefixes {
				for i := from; i < len(s); {
					k := strings.Index(s[i:], p)
					if k < 0 {
						break
					}
					at := i + k
					i = at + 1
					if at+len(p) < start {
						continue // a body byte is missing after it
					}
					if len(s)-at-len(p) < cutMin {
						break // later ones are shorter still
					}
					tok := s[at:]
					if (at == 0 || !isAlnum(s[at-1])) && !isMarker(tok) && (keep == nil || keep(tok)) {
						return append(dst, [2]int{at, len(s)})
					}
				}
			}
			return dst
		},
	}
}

func maxLen(words []string) int {
	n := 0
	for _, w := range words {
		n = max(n, len(w))
	}
	return n
}

func isTokenByte(c byte) bool { return isAlnum(c) || c == '_' || c == '-' }

func isUpperDigit(c byte) bool { return 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' }

func isAlnumDash(c byte) bool { return isAlnum(c) || c == '-' }

func isAlnum(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9'
}
