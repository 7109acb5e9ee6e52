package redact

import "strings"

// Free text assigns secrets to names in many notations: DB_PASSWORD=x in
// an env file, password: x in YAML, "password": "x" in JSON carried as
// text, --password X and --token=X on a command line, ?access_token=x in a
// URL, Password=x; in a connection string, 'secret' => 'x' in Ruby or PHP,
// aws configure set aws_secret_access_key X. scanAssignments finds them
// all as one shape: a name the key rule (Redactor.classify) calls a secret, a
// separator, and a value. The name decides, not a list of spellings.

// assignWords are words one of which every secret name the key rule
// knows contains, as people write it ("signing_key", "x-api-key",
// "DB_PASSWORD"); a name is looked at only where one occurs. Escaped
// spellings ("pass\u0077ord") are decoded before the scanner sees them.
// Few and short, since every string of every message is searched for them.
var assignWords = []string{"pass", "pwd", "secret", "token", "credential", "cookie", "key"}

var assignHint = &hint{words: assignWords, fold: true, gate: mayAssign}

// mayAssign tells text that may hold an assignment: a name and its value
// are apart by "=" or ":", or by a blank after a flag (-) or a compound
// name (_). Most object keys (max_tokens) and most lines of code have
// neither, and are spared the scan.
func mayAssign(s string) bool {
	if len(s) > 32 {
		return containsAnyByte(s, "=:") || containsAnyByte(s, " \t") && containsAnyByte(s, "-_")
	}
	// Object keys are short: one loop costs less than six IndexByte calls.
	blank, joined := false, false
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '=', ':':
			return true
		case ' ', '\t':
			blank = true
		case '-', '_':
			joined = true
		}
	}
	return blank && joined
}

// builtinRule classifies names by the built-in key rule alone: the keys a
// config adds name JSON members (see Rules.Keys).
var builtinRule Redactor

func isNameByte(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '_' || c == '-' || c == '.'
}

// scanAssignments appends to dst the spans of the values assigned to
// secret names in s.
func scanAssignments(dst [][2]int, s string) [][2]int {
	var scanners [16]foldScanner
	sc := scanners[:len(assignWords)]
	for k, w := range assignWords {
		sc[k] = foldScanner{s: s, word: w, lo: -1, up: -1}
	}
	first := len(dst)
	out := dst
	// Names are looked for inside values found, too: a quote left open
	// (random text, a cut message) makes a value swallow the assignments
	// after it, and the secret of the last one may lie past its end.
	// Spans that overlap are merged.
	done := 0 // the start of the last value found: names start after it
	for from := 0; from < len(s); {
		i := firstOf(sc, from)
		if i < 0 {
			break
		}
		ns, ne := i, i
		for ns > done && isNameByte(s[ns-1]) {
			ns--
		}
		for ne < len(s) && isNameByte(s[ne]) {
			ne++
		}
		from = ne
		if v, ok := assignedValue(s, ns, ne); ok {
			if n := len(out); n > first && v[0] < out[n-1][1] {
				out[n-1][1] = max(out[n-1][1], v[1])
			} else {
				out = appendSpan(out, v)
			}
			from, done = v[0], v[0]
		}
	}
	return out
}

// firstOf returns the first occurrence at or after from of any of the
// scanners' words, or -1.
func firstOf(sc []foldScanner, from int) int {
	i := -1
	for k := range sc {
		if j := sc[k].next(from); j >= 0 && (i < 0 || j < i) {
			i = j
		}
	}
	return i
}

// assignedValue reads the value assigned to the name s[ns:ne], if the name
// holds a secret and a value follows it.
func assignedValue(s string, ns, ne int) (span [2]int, ok bool) {
	name := s[ns:ne]
	core := strings.TrimLeft(name, "-")
	flag := core != name // --password X, -password X
	core = strings.TrimRight(core, ".-")
	if core == "" {
		return span, false
	}
	class := builtinRule.classify(core)
	if class == plain {
		return span, false
	}
	norm := normalize(core)
	j := ne
	quoted := ns > 0 && (s[ns-1] == '"' || s[ns-1] == '\'') && j < len(s) && s[j] == s[ns-1]
	if quoted {
		j++ // the name's closing quote: "password": "x"
	}
	k := skipBlanks(s, j)
	spaced := false // the value follows the name after blanks alone
	switch {
	case k < len(s) && s[k] == '=':
		switch {
		case k+1 < len(s) && s[k+1] == '=':
			return span, false // password == other compares
		case k+1 < len(s) && s[k+1] == '>':
			k += 2 // 'password' => 'x'
		default:
			k++
		}
	case k < len(s) && s[k] == ':':
		if strings.HasPrefix(s[k:], "::") || strings.HasPrefix(s[k:], "://") {
			return span, false // Token::new, token://host
		}
		if strings.HasSuffix(norm, "cookie") {
			return span, false // a header: the cookie pattern reads it
		}
		k++
		if k < len(s) && s[k] == '=' {
			k++ // :=
		}
	case k > j && (flag || strings.Contains(core, "_") && !quoted):
		// --password X, aws_secret_access_key X. A plain word followed by
		// a word is prose ("the password is wrong").
		spaced = true
	default:
		return span, false
	}
	if strings.HasSuffix(norm, "authorization") {
		return span, false // its own pattern knows the auth schemes
	}
	k = skipBlanks(s, k)
	if k >= len(s) {
		return span, false
	}
	var vs, ve int // the value is s[vs:ve]
	switch c := s[k]; {
	case c == '"' || c == '\'':
		vs = k + 1
		ve = vs
		for ve < len(s) && s[ve] != c {
			if s[ve] == '\\' {
				ve++
			}
			ve++
		}
		// A value cut short (a truncated message) runs to the end.
		ve = min(ve, len(s))
	case c == '{' || c == '[' && !strings.HasPrefix(s[k:], "[REDACTED:"):
		return span, false // structure: its own names decide its values
	case spaced && c == '-':
		return span, false // --no-password -h host: the next flag
	default:
		vs = k
		ve = unquotedEnd(s, k)
	}
	v := s[vs:ve]
	// A value that runs to the end of the text may have been cut short
	// (a malformed message's excerpt): what is left of it is redacted
	// even when too little is left to look like a credential, unless it
	// is a lower-case word ("... the api_key field").
	cut := ve == len(s) && !lowerWord(v)
	if v == "" || isMarker(v) || !maySecret(v, class) || spaced && !flag && !cut && !credentialLike(v) {
		return span, false
	}
	return [2]int{vs, ve}, true
}

func skipBlanks(s string, i int) int {
	for i < len(s) && (s[i] == ' ' || s[i] == '\t') {
		i++
	}
	return i
}

// unquotedEnd finds the end of a value written without quotes: at a
// blank, a quote, or a delimiter of query strings, lists, connection
// strings and markup. An escaped quote or line break ends it too (the text
// may be JSON text not yet decoded); other backslashes are part of it.
func unquotedEnd(s string, i int) int {
	for ; i < len(s); i++ {
		switch s[i] {
		case ' ', '\t', '\n', '\r', '\f', '\v', '"', '\'', '&', ';', ',', '<', '>':
			return i
		case '\\':
			if i+1 < len(s) && strings.IndexByte(`"'nrt`, s[i+1]) >= 0 {
				return i
			}
		}
	}
	return i
}

// maySecret rejects values that cannot be secrets: literals, and the
// numbers under names that only contain a secret word (max_tokens=4096
// counts tokens; token=12345 is a token).
func maySecret(v string, class keyClass) bool {
	for _, lit := range []string{"true", "false", "null", "none", "nil"} {
		if len(v) == len(lit) && equalFold(v, lit) {
			return false
		}
	}
	return class == secretAny || strings.Trim(v, "0123456789") != ""
}

func lowerWord(v string) bool {
	v = strings.TrimRight(v, ".,;:!?)")
	for i := 0; i < len(v); i++ {
		if v[i] < 'a' || v[i] > 'z' {
			return false
		}
	}
	return true
}

// credentialLike tells a credential from a word, for values that follow
// their name after a blank alone ("aws_secret_access_key wJalr...", but not
// "the api_key field"): eight characters or more, of at least two of
// lower case, upper case, digits and symbols.
func credentialLike(v string) bool {
	v = strings.TrimRight(v, ".,;:!?)")
	if len(v) < 8 {
		return false
	}
	var lower, upper, digit, other int
	for i := 0; i < len(v); i++ {
		switch c := v[i]; {
		case 'a' <= c && c <= 'z':
			lower = 1
		case 'A' <= c && c <= 'Z':
			upper = 1
		case '0' <= c && c <= '9':
			digit = 1
		default:
			other = 1
		}
	}
	return lower+upper+digit+other >= 2
}
