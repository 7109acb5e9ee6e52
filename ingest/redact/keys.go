package redact

import (
	"math/bits"
	"strings"
	"unicode/utf8"
	"unsafe"
)

// This file is the one rule for names that hold secrets. It decides both
// JSON object keys (the walker) and the names of assignments inside free
// text (PASSWORD=..., --token X, "pass\u0077ord": "..."), so a name is a
// secret or not wherever it appears. Names are compared after JSON
// unescaping (the walker decodes keys; free text is decoded by unescape)
// and after normalization: ASCII case folded, "-", "_", "." and spaces
// dropped, so "X-Api-Key", "x_api_key" and "xApiKey" are one name.

// keyClass says how a key's value is treated.
type keyClass int

const (
	plain        keyClass = iota
	secretString          // redact string values; numbers under "max_tokens" count tokens
	secretAny             // redact the value whatever its type
)

// defaultKeys match as substrings of a normalized key ("x-api-key",
// "client_secret", "GITHUB_TOKEN", "aws_secret_access_key"). An exact
// match redacts any value type. The "...key" entries are the kinds of key
// that are secrets; "key" alone is not one ("primary_key", "sort_key").
var defaultKeys = []string{
	"password", "passwd", "passphrase", "token", "secret", "apikey",
	"authorization", "cookie", "privatekey", "accesskey", "credential",
	"signingkey", "encryptionkey", "masterkey", "authkey",
}

// shortKeys are secret names too short or too common to find inside a
// longer word ("bypass", "compass", "passed"): they count only as the
// whole key or as its last word ("db_pass", "smtpPass", "MYSQL_PWD").
var shortKeys = []struct {
	word  string
	class keyClass // when the word is the whole key
}{
	{"pwd", secretAny},
	// "pass": true and "pass": 12 are test results, not passwords.
	{"pass", secretString},
}

// notSecret are keys that contain a default but hold protocol state,
// not credentials; redacting progressToken would cut progress
// notifications off from their call in the record.
var notSecret = map[string]bool{
	"progresstoken": true, "pagetoken": true, "nextpagetoken": true, "tokentype": true,
}

// notSecretSuffixes end names that contain a default but name where a
// secret is, or what kind it is, not the secret itself: PASSWORD_FILE,
// --password-stdin, token_url, token_endpoint, access_key_id (an id; the
// secret is secret_access_key). Their values are still searched for
// secret shapes like any other string.
var notSecretSuffixes = []string{"file", "path", "dir", "stdin", "url", "uri", "endpoint", "type", "keyid"}

func (r *Redactor) classify(key string) keyClass {
	// Normalized into a buffer on the stack: most keys of a message change
	// (any "_", "-", "." or capital letter), and strings.Map would
	// allocate for each of them on every call.
	var buf [64]byte
	n, ascii := 0, len(key) <= len(buf)
	for i := 0; i < len(key) && ascii; i++ {
		switch c := key[i]; {
		case c >= utf8.RuneSelf:
			ascii = false
		case c == '-' || c == '_' || c == '.' || c == ' ':
		case 'A' <= c && c <= 'Z':
			buf[n] = c + 'a' - 'A'
			n++
		default:
			buf[n] = c
			n++
		}
	}
	if !ascii {
		return r.classifyName(normalize(key), key) // as strings.Map sees runes (and invalid UTF-8)
	}
	return r.classifyName(unsafe.String(&buf[0], n), key) // only read, while buf lives
}

// classifyName decides a name from its normalized form k and its
// spelling, which tells the words of a compound name apart.
func (r *Redactor) classifyName(k, key string) keyClass {
	if len(r.keys) > 0 && r.keys[k] {
		return secretAny
	}
	digitless := k
	for len(digitless) > 0 && '0' <= digitless[len(digitless)-1] && digitless[len(digitless)-1] <= '9' {
		digitless = digitless[:len(digitless)-1]
	}
	for _, s := range shortKeys {
		w := s.word
		if k == w {
			return s.class
		}
		// The last word of a compound name ends its normalized form; only
		// then is it worth finding.
		if len(digitless) > len(w) && strings.HasSuffix(digitless, w) {
			if last := lastWord(key); len(last) == len(w) && equalFold(last, w) {
				return secretString
			}
		}
	}
	if len(k) < minDefaultKey {
		return plain // most keys: "n", "text", "path", "name"
	}
	found := defaultKeysIn(k)
	if found == 0 {
		return plain // "arguments", "content"
	}
	// The first of defaultKeys that k holds decides, as when each was
	// looked for in turn.
	d := defaultKeys[bits.TrailingZeros32(found)]
	if k == d {
		if notSecret[k] {
			return plain
		}
		return secretAny
	}
	if notSecret[k] || hasNotSecretSuffix(k) {
		return plain
	}
	return secretString
}

// defaultKeysIn returns the set of defaultKeys that the normalized name k
// holds, bit i for defaultKeys[i], in one pass over k: a position can
// start only the words whose first two bytes are there (keyFirst,
// keySecond), and most positions of most names start none. Looking for
// each of the fifteen words in turn cost a tools/call's names ("arguments",
// "content") before it is forwarded: eight typical names took 540–1020
// ns that way, 330–480 ns this way (BenchmarkClassify).
func defaultKeysIn(k string) uint32 {
	var found uint32
	for i := 0; i+1 < len(k); i++ {
		for m := keyFirst[k[i]] & keySecond[k[i+1]] &^ found; m != 0; m &= m - 1 {
			j := bits.TrailingZeros32(m)
			if strings.HasPrefix(k[i:], defaultKeys[j]) {
				found |= 1 << j
			}
		}
	}
	return found
}

// keyFirst[c] and keySecond[c] have bit i set when c is the first
// (second) byte of defaultKeys[i].
var keyFirst, keySecond = func() (first, second [256]uint32) {
	if len(defaultKeys) > 32 {
		panic("redact: more than 32 default keys")
	}
	for i, d := range defaultKeys {
		first[d[0]] |= 1 << i
		second[d[1]] |= 1 << i
	}
	return first, second
}()

func hasNotSecretSuffix(k string) bool {
	last := k[len(k)-1]
	for _, s := range notSecretSuffixes {
		if s[len(s)-1] == last && strings.HasSuffix(k, s) {
			return true
		}
	}
	return false
}

// minDefaultKey is the length of the shortest of defaultKeys.
var minDefaultKey = func() int {
	n := len(defaultKeys[0])
	for _, d := range defaultKeys {
		n = min(n, len(d))
	}
	return n
}()

// lastWord is the last word of a key as people write compound names:
// after the last "-", "_", "." or space, or the last lower-to-upper case
// change ("dbPass" -> "Pass", "DB_PASS" -> "PASS", "bypass" -> "bypass").
// Trailing digits are dropped ("db_pass2" -> "pass").
func lastWord(key string) string {
	end := len(key)
	for end > 0 && '0' <= key[end-1] && key[end-1] <= '9' {
		end--
	}
	i := end
	for i > 0 {
		c := key[i-1]
		if c == '-' || c == '_' || c == '.' || c == ' ' {
			break
		}
		if 'A' <= c && c <= 'Z' && i >= 2 && 'a' <= key[i-2] && key[i-2] <= 'z' {
			i--
			break
		}
		i--
	}
	return key[i:end]
}

// normalize folds the spellings of one key name together: "X-Api-Key",
// "x_api_key" and "xApiKey" all become "xapikey".
func normalize(k string) string {
	return strings.Map(func(c rune) rune {
		switch {
		case c == '-' || c == '_' || c == '.' || c == ' ':
			return -1
		case 'A' <= c && c <= 'Z':
			return c + 'a' - 'A'
		}
		return c
	}, k)
}
