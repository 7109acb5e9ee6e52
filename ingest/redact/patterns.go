package redact

import (
	"regexp"
	"strings"
)

// pattern is one secret shape found inside string values.
type pattern struct {
	kind string
	re   *regexp.Regexp
	// hint is a cheap test that must pass before the regexp runs: most
	// strings in tool traffic hold no secret, and strings.Contains is far
	// cheaper than a regexp scan. nil means always run.
	hint *hint
	// keep rejects matches the regexp cannot rule out (prose that happens
	// to fit the shape); it sees the text that would be replaced.
	keep func(secret string) bool
	// starts, when set, are the lowercase words a match must begin with,
	// and re is anchored: the regexp runs only where a word occurs. A
	// case-insensitive regexp with no literal prefix otherwise steps its
	// NFA over every byte, which costs a second per 4 MiB message.
	starts []string
	// scan, when set, finds the secrets in place of re: for shapes a
	// regexp cannot decide, such as whether a name holds a secret.
	scan func(dst [][2]int, s string) [][2]int
}

// anchored builds a pattern whose matches begin with one of starts,
// ignoring ASCII case.
func anchored(kind string, starts []string, expr string) pattern {
	return pattern{
		kind:   kind,
		re:     regexp.MustCompile(`^(?:` + expr + `)`),
		hint:   &hint{words: starts, fold: true},
		starts: starts,
	}
}

// hint is the literal words one of which a pattern's every match contains.
type hint struct {
	words []string
	fold  bool                // the words are lowercase and match in any ASCII case
	gate  func(s string) bool // when set, the text must also pass it: a cheap test of its bytes
}

func (h *hint) in(s string) bool {
	if h.gate != nil && !h.gate(s) {
		return false
	}
	if h.fold {
		return indexAnyFold(s, h.words) >= 0
	}
	for _, w := range h.words {
		if strings.Contains(s, w) {
			return true
		}
	}
	return false
}

// containsAnyByte is strings.ContainsAny for a few ASCII bytes: IndexByte
// is vectorized, ContainsAny is not.
func containsAnyByte(s, set string) bool {
	for i := 0; i < len(set); i++ {
		if strings.IndexByte(s, set[i]) >= 0 {
			return true
		}
	}
	return false
}

// Regexps with groups named "secret" replace only those groups, so the
// surrounding context ("Bearer ", "password=") stays readable.
//
// Order matters: PEM blocks go first because their bodies may contain
// anything, and more specific key shapes go before looser ones so the
// kind names the most specific shape.
var builtins = []pattern{
	{
		kind: "private_key",
		re: regexp.MustCompile(`-----BEGIN[A-Z0-9 ]*PRIVATE KEY[A-Z ]*-----` +
			// A block cut short (a truncated message) is still a secret:
			// without an END, take what looks like PEM body text.
			`(?:(?s:.*?)-----END[A-Z0-9 ]*PRIVATE KEY[A-Z ]*-----|[A-Za-z0-9+/=\s\\:,.-]*)`),
		hint: contains("PRIVATE KEY"),
	},
	{
		kind: "bearer",
		re:   regexp.MustCompile(`\b(?:Bearer|bearer|BEARER)\s+(?P<secret>[A-Za-z0-9\-._~+/]{8,}=*|[A-Za-z0-9\-._~+/]+$)`),
		hint: contains("Bearer", "bearer", "BEARER"),
		keep: notAllLetters, // "bearer instruments" is prose
	},
	{
		kind: "jwt",
		re:   regexp.MustCompile(`eyJ[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{2,}\.[A-Za-z0-9_-]*(?:\.[A-Za-z0-9_-]+){0,2}`),
		hint: contains("eyJ"),
	},
	{
		kind: "aws_key",
		re:   regexp.MustCompile(`\b(?:AKIA|ASIA)[A-Z0-9]{16}\b`),
		hint: contains("AKIA", "ASIA"),
	},
	// A secret access key is 40 base64 characters with no prefix of its
	// own, so it is only recognisable next to its name.
	// aws configure set aws_secret_access_key X puts a blank, not "=",
	// between them.
	anchored("aws_secret", []string{"secret"},
		`(?i)secret_?access_?key(?:\\?["'])?(?:\s*[:=]\s*|[ \t]+)(?:\\?["'])?(?P<secret>[A-Za-z0-9/+=]{40})\b`),
	{
		kind: "github_token",
		re:   regexp.MustCompile(`\b(?:gh[pousr]_[A-Za-z0-9]{36,255}|github_pat_[A-Za-z0-9_]{22,255})\b`),
		hint: contains("ghp_", "gho_", "ghu_", "ghs_", "ghr_", "github_pat_"),
	},
	{
		kind: "slack_token",
		re:   regexp.MustCompile(`\b(?:xox[baprs]|xapp)-[A-Za-z0-9-]{10,}`),
		hint: contains("xox", "xapp-"),
	},
	{
		kind: "anthropic_key",
		re:   regexp.MustCompile(`\bsk-ant-[A-Za-z0-9_-]{20,}`),
		hint: contains("sk-ant-"),
	},
	{
		kind: "openai_key",
		re:   regexp.MustCompile(`\bsk-(?:proj-|svcacct-|admin-)?[A-Za-z0-9_-]{20,}`),
		hint: contains("sk-"),
		keep: hasDigit, // "sk-learn-compatible-estimators" is a word
	},
	{
		kind: "google_api_key",
		re:   regexp.MustCompile(`\bAIza[0-9A-Za-z_-]{35}`),
		hint: contains("AIza"),
	},
	// The same tokens cut short at the end of the text (cutToken).
	cutToken("aws_key", isUpperDigit, nil, "AKIA", "ASIA"),
	cutToken("github_token", isAlnum, nil, "ghp_", "gho_", "ghu_", "ghs_", "ghr_"),
	cutToken("github_token", isTokenByte, nil, "github_pat_"),
	cutToken("slack_token", isAlnumDash, nil, "xoxb-", "xoxa-", "xoxp-", "xoxr-", "xoxs-", "xapp-"),
	cutToken("anthropic_key", isTokenByte, nil, "sk-ant-"),
	cutToken("openai_key", isTokenByte, hasDigit, "sk-"),
	cutToken("google_api_key", isTokenByte, nil, "AIza"),
	// user:password@ in a URL of any scheme (postgres, mysql, redis,
	// amqp, https...); the scheme is left out of the match so that the
	// match can begin with a literal. The user may be empty
	// (redis://:pw@host), and the password runs to the last "@" before
	// the path, since people paste passwords with an unencoded "@". Text
	// that ends after "user:" (a message cut short) ends in a password,
	// unless what is there is a port or a placeholder (${PORT}).
	anchored("url_password", []string{"://"},
		`://[^:/?#\s@"\\]*:(?:(?P<secret>[^/?#\s"\\]+)@|(?P<secret>[0-9]*[^/?#\s"\\@${<0-9][^/?#\s"\\@]*)$)`),
	// The credentials of any HTTP auth scheme, as in a curl command.
	anchored("authorization", []string{"authorization"},
		`(?i)authorization(?:\\?["'])?\s*[:=]\s*(?:\\?["'])?`+
			`(?:(?:basic|bearer|digest|token|negotiate|ntlm|apikey)\s+)?(?P<secret>[^\s"'\\,;{}]+)`),
	// Passwords in command lines whose flags are too short to read
	// without the command: mysql -pX (attached; "-p db" prompts), sshpass
	// -p X, curl -u user:X.
	anchored("password_flag", []string{"mysql", "mariadb"},
		`(?i:mysql[a-z]*|mariadb[a-z-]*)\b[^\n|;&]*?\s-p(?P<secret>'[^']*(?:'|$)|"[^"]*(?:"|$)|[^\s'"]+)`),
	anchored("password_flag", []string{"sshpass"},
		`(?i:sshpass)\s+(?:-[^p\s]\S*\s+)*-p\s*(?P<secret>'[^']*(?:'|$)|"[^"]*(?:"|$)|[^\s'"]+)`),
	anchored("password_flag", []string{"curl"},
		`(?i:curl)\b[^\n|;&]*?\s(?:-u|--user)(?:\s+|=)?['"]?[^\s:'"]*:(?P<secret>[^\s'"]+)`),
	anchored("cookie", []string{"cookie"}, `(?i)cookie(?:\\?["'])?\s*:\s*(?:\\?["'])?(?P<secret>[^\r\n"'\\]+)`),
	// A value assigned to a secret name, in any notation (scanAssignments).
	{kind: "key", scan: scanAssignments, hint: assignHint},
}

func contains(words ...string) *hint { return &hint{words: words} }

// indexAnyFold finds the first of several ASCII-lowercase words in s,
// ignoring ASCII case.
func indexAnyFold(s string, words []string) int {
	first := -1
	for _, w := range words {
		if i := indexFold(s, w); i >= 0 && (first < 0 || i < first) {
			first = i
		}
	}
	return first
}

func indexFold(s, lower string) int {
	f := foldScanner{s: s, word: lower, lo: -1, up: -1}
	return f.next(0)
}

// foldScanner finds successive occurrences of an ASCII-lowercase word in
// s, ignoring ASCII case and allocating no lowered copy. It jumps between
// occurrences of the word's first byte in either case at IndexByte speed,
// and remembers them: asked with non-decreasing from, it reads s once in
// all, however often it is asked.
type foldScanner struct {
	s, word string
	lo, up  int // next index of word[0] in lower and upper case; len(s) if none
}

func (f *foldScanner) next(from int) int {
	for {
		if f.lo < from {
			f.lo = indexByteFrom(f.s, f.word[0], from)
		}
		if f.up < from {
			f.up = indexByteFrom(f.s, upper(f.word[0]), from)
		}
		i := min(f.lo, f.up)
		if i+len(f.word) > len(f.s) {
			return -1
		}
		if equalFold(f.s[i:i+len(f.word)], f.word) {
			return i
		}
		from = i + 1
	}
}

func indexByteFrom(s string, c byte, from int) int {
	if k := strings.IndexByte(s[from:], c); k >= 0 {
		return from + k
	}
	return len(s)
}

func upper(c byte) byte {
	if 'a' <= c && c <= 'z' {
		return c - ('a' - 'A')
	}
	return c
}

func equalFold(s, lower string) bool {
	for j := 0; j < len(lower); j++ {
		if c := s[j]; c != lower[j] && upper(lower[j]) != c {
			return false
		}
	}
	return true
}

// secretWords begin the names the "key" pattern knows.
var secretWords = []string{"password", "passwd", "passphrase", "secret", "token", "api", "access", "private", "credential"}

func hasDigit(s string) bool { return strings.ContainsAny(s, "0123456789") }

// notCount tells a secret from the numbers and literals that follow
// names like max_tokens or has_token.
func notCount(s string) bool {
	switch s {
	case "true", "false", "null":
		return false
	}
	return strings.Trim(s, "0123456789") != ""
}

func notAllLetters(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i] | 0x20
		if c < 'a' || c > 'z' {
			return true
		}
	}
	return false
}

// find returns the submatch indexes of p's matches in s.
func (p *pattern) find(s string) [][]int {
	if p.starts == nil {
		return p.re.FindAllStringSubmatchIndex(s, -1)
	}
	scanners := make([]foldScanner, len(p.starts))
	for k, w := range p.starts {
		scanners[k] = foldScanner{s: s, word: w, lo: -1, up: -1}
	}
	var locs [][]int
	for from := 0; from < len(s); {
		i := firstOf(scanners, from)
		if i < 0 {
			break
		}
		loc := p.re.FindStringSubmatchIndex(s[i:])
		if loc == nil {
			from = i + 1
			continue
		}
		for j := range loc {
			if loc[j] >= 0 {
				loc[j] += i
			}
		}
		locs = append(locs, loc)
		from = max(loc[1], i+1)
	}
	return locs
}

// appendSpans appends to dst where p's secrets are in s, in order: the
// "secret" group of each match, or the whole match.
func (p *pattern) appendSpans(dst [][2]int, s string) [][2]int {
	if p.hint != nil && !p.hint.in(s) {
		return dst
	}
	if p.scan != nil {
		return p.scan(dst, s)
	}
	locs := p.find(s)
	if locs == nil {
		return dst
	}
	names := p.re.SubexpNames()
	for _, loc := range locs {
		start, end := loc[0], loc[1]
		for g := 1; g < len(names); g++ {
			if names[g] == "secret" && loc[2*g] >= 0 {
				start, end = loc[2*g], loc[2*g+1]
				break
			}
		}
		// An earlier pattern's marker is not a secret; replacing it would
		// only lose the more specific kind. Nor is its tail: a marker has
		// a colon that a URL pattern may read as user:password.
		start = pastMarker(s, start)
		if start >= end || isMarker(s[start:end]) || p.keep != nil && !p.keep(s[start:end]) {
			continue
		}
		dst = appendSpan(dst, [2]int{start, end})
	}
	return dst
}

// pastMarker returns i, or the end of the marker i falls inside. It looks
// back no further than a marker is long, so it costs little per match.
func pastMarker(s string, i int) int {
	const open, longest = "[REDACTED:", 48
	from := max(0, i-longest)
	k := strings.LastIndex(s[from:i], open)
	if k < 0 {
		return i
	}
	k += from
	e := strings.IndexByte(s[k:min(len(s), k+longest)], ']')
	if e < 0 || k+e < i || !isMarker(s[k:k+e+1]) {
		return i
	}
	return k + e + 1
}
