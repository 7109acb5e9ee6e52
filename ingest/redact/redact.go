// Package redact removes secrets from MCP messages before they are stored
// or forwarded: values under secret-looking keys (Redactor.classify),
// values assigned to such names inside free text (scanAssignments), and
// known token shapes anywhere inside string values (pattern) — also where
// JSON escapes hide them, as in the excerpt of a malformed message
// (unescape), and where the excerpt cuts them short (cutToken).
//
// A record that leaks a credential turns the audit trail into an attack
// surface, so the rules err toward redacting; the replacement names the
// kind of secret so an investigator still sees that one was there.
package redact

import (
	"bytes"
	"encoding/json"
	"fmt"
	"regexp"
	"strings"
	"unicode/utf8"
	"unsafe"

	"github.com/mcptrail/mcptrail/internal/rawjson"
)

// Rules extends the built-in rules; the zero value uses the built-ins alone.
type Rules struct {
	// Keys are object keys whose values are always redacted, whatever
	// their type. Matched whole, ignoring case, "-", "_", "." and spaces.
	Keys []string `yaml:"keys"`
	// Patterns are regular expressions redacted inside any string value.
	// If a pattern has groups named "secret", only those are replaced.
	Patterns []string `yaml:"patterns"`
	Disable  bool     `yaml:"disable"`
}

// Redactor applies Rules. It is safe for concurrent use. A nil *Redactor
// applies the built-in rules: forgetting to configure one must not turn
// redaction off.
type Redactor struct {
	patterns []pattern
	keys     map[string]bool
	disabled bool
}

// Marker is the text that stands in for a redacted secret.
func Marker(kind string) string { return "[REDACTED:" + kind + "]" }

// New compiles r.
func New(r Rules) (*Redactor, error) {
	red := &Redactor{
		patterns: builtins,
		keys:     map[string]bool{},
		disabled: r.Disable,
	}
	for _, k := range r.Keys {
		n := normalize(k)
		if n == "" {
			return nil, fmt.Errorf("redact: key %q is empty after normalization", k)
		}
		red.keys[n] = true
	}
	if len(r.Patterns) > 0 {
		red.patterns = append([]pattern(nil), builtins...)
	}
	for _, p := range r.Patterns {
		if p == "" {
			return nil, fmt.Errorf("redact: pattern %q: empty pattern would match everywhere", p)
		}
		re, err := regexp.Compile(p)
		if err != nil {
			return nil, fmt.Errorf("redact: pattern %q: %v", p, err)
		}
		red.patterns = append(red.patterns, pattern{kind: "pattern", re: re})
	}
	return red, nil
}

var builtin = &Redactor{patterns: builtins}

// String redacts secret shapes inside s.
func (r *Redactor) String(s string) string {
	if r == nil {
		r = builtin
	}
	if r.disabled {
		return s
	}
	return apply(r.patterns, s)
}

// apply replaces the secrets of s and of its decodings (unescape).
func apply(ps []pattern, s string) string {
	if !mayFind(ps, s) {
		return s
	}
	l := getLevels()
	defer l.release()
	return l.found.splice(ps, l.redact(ps, s))
}

// mayFind tells whether any pattern can find something in s or in its
// decodings: most strings (and every object key is asked) fail every
// hint, and are spared the pool and the passes.
func mayFind(ps []pattern, s string) bool {
	if strings.IndexByte(s, '\\') >= 0 {
		return true // an escape can spell what a hint looks for
	}
	for i := range ps {
		if p := &ps[i]; p.hint == nil || p.hint.in(s) {
			return true
		}
	}
	return false
}

// redact finds the secrets of s and of its decodings, the most decoded
// level first: there a secret is whole, and its span in s takes every
// escape it was written with, so no part of it is left for a shallower
// level to miss. At each level every pattern runs on the same text and
// their spans are replaced in one pass; the shallower levels are decoded
// again only when something was replaced, so the cost is a few passes over
// s per level, whatever the agent wrote. It returns s with the deeper
// levels' secrets replaced, and leaves those of the text itself in l.found
// for the caller to splice where it writes the result.
func (l *levels) redact(ps []pattern, s string) string {
	if strings.IndexByte(s, '\\') >= 0 {
		l.decode(s, maxUnescape)
		for d := len(l.texts) - 1; d > 0; d-- {
			if d >= len(l.texts) {
				continue // a replacement took the escapes that made this level
			}
			l.found.gather(ps, l.texts[d])
			if len(l.found.spans) == 0 {
				continue
			}
			for k := d; k > 0; k-- {
				l.found.mapDown(l.texts[k-1])
			}
			s = l.found.splice(ps, s)
			l.decode(s, d-1) // the deeper ones are done
		}
	}
	l.found.gather(ps, s)
	return s
}

// activePatterns drops the patterns whose hint fails on the whole text,
// which then fails on every string inside it too, so most messages skip
// most patterns and need no string decoding at all. Only \uXXXX and \/
// escapes can spell a hint that the raw text does not show.
func (r *Redactor) activePatterns(raw []byte) []pattern {
	if len(raw) == 0 {
		return r.patterns
	}
	// A view, not a copy (a message may be megabytes).
	text := view(raw)
	if spellsHidden(text) {
		return r.patterns
	}
	found := builtinHints().scan(text)
	// The built-ins come first; other patterns have no hint.
	var active []pattern
	for i, p := range r.patterns {
		if p.hint == nil || found&(1<<i) != 0 {
			active = append(active, p)
		}
	}
	if len(active) == len(r.patterns) {
		return r.patterns
	}
	return active
}

// JSON redacts a JSON text. When nothing matched it returns raw itself, so
// the common case costs no copy and the stored bytes are exactly the ones
// that crossed the wire. When something matched, only the redacted values
// (and object keys) are rewritten; everything else, including key order and
// whitespace, is copied through.
//
// Invalid JSON (a truncated or malformed message) is redacted as text by
// the value patterns alone; the caller records it as bad input.
func (r *Redactor) JSON(raw json.RawMessage) (out json.RawMessage, changed bool) {
	if r == nil {
		r = builtin
	}
	if r.disabled {
		return raw, false
	}
	if !rawjson.Valid(raw) {
		// A view, not a copy: the text is only read, during this call.
		s := view(raw)
		red := r.String(s)
		if red == s {
			return raw, false
		}
		// red is a string of its own, just built and held by nothing
		// else: the caller may have its bytes rather than a copy.
		return unsafe.Slice(unsafe.StringData(red), len(red)), true
	}
	w := walker{r: r, src: raw, patterns: r.activePatterns(raw)}
	w.value(0, plain)
	if w.out == nil {
		return raw, false
	}
	return append(w.out, raw[w.last:]...), true
}

// isMarker reports whether s is already a redaction marker, so a second
// pass over redacted output changes nothing.
func isMarker(s string) bool {
	kind, ok := strings.CutPrefix(s, "[REDACTED:")
	if !ok {
		return false
	}
	kind, ok = strings.CutSuffix(kind, "]")
	if !ok || kind == "" {
		return false
	}
	for i := 0; i < len(kind); i++ {
		c := kind[i]
		if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '_') {
			return false
		}
	}
	return true
}

// walker rewrites valid JSON in one pass. Edits arrive in source order, so
// out is the source copied up to last plus the replacements so far; it
// stays nil until the first edit.
type walker struct {
	r        *Redactor
	patterns []pattern
	src      []byte
	out      []byte
	last     int
}

// edit replaces src[start:end] with s as a JSON string.
func (w *walker) edit(start, end int, s string) {
	w.spliceQuoted(start, end, s, nil, nil)
}

// redact replaces the string src[start:end], whose text is s, with s
// redacted, if that changes it. The result is written straight into the
// output, not built as a string first.
func (w *walker) redact(start, end int, s string) {
	if !mayFind(w.patterns, s) {
		return
	}
	l := getLevels()
	defer l.release()
	red := l.redact(w.patterns, s)
	if len(l.found.spans) == 0 && red == s {
		return
	}
	w.spliceQuoted(start, end, red, w.patterns, &l.found)
}

// spliceQuoted replaces src[start:end] with s, with found's spans
// replaced by markers when found is not nil, as a JSON string.
func (w *walker) spliceQuoted(start, end int, s string, ps []pattern, found *spanSet) {
	// The rest of the source is copied through after this: room for it
	// all, not a doubling series, for a message of megabytes.
	size := quotedLen(s)
	if found != nil {
		size += found.growth(ps)
	}
	if need := len(w.out) + start - w.last + size + len(w.src) - end; need > cap(w.out) {
		w.out = append(make([]byte, 0, need), w.out...)
	}
	w.out = append(w.out, w.src[w.last:start]...)
	w.out = append(w.out, '"')
	last := 0
	if found != nil {
		for i, sp := range found.spans {
			w.out = appendQuoteBody(w.out, s[last:sp[0]])
			w.out = append(w.out, "[REDACTED:"...)
			w.out = appendQuoteBody(w.out, ps[found.kinds[i]].kind)
			w.out = append(w.out, ']')
			last = sp[1]
		}
	}
	w.out = appendQuoteBody(w.out, s[last:])
	w.out = append(w.out, '"')
	w.last = end
}

func (w *walker) ws(i int) int {
	for i < len(w.src) {
		switch w.src[i] {
		case ' ', '\t', '\n', '\r':
			i++
		default:
			return i
		}
	}
	return i
}

// value walks the value at i and returns the index just past it.
func (w *walker) value(i int, under keyClass) int {
	i = w.ws(i)
	start := i
	switch c := w.src[i]; {
	case under == secretAny:
		end := rawjson.ValueEnd(w.src, i)
		if c == 'n' || c == '"' && (end-start == 2 || isMarker(w.text(start, end))) {
			return end // null and "" reveal nothing; an empty password is worth seeing
		}
		w.edit(start, end, Marker("key"))
		return end
	case c == '{':
		i = w.ws(i + 1)
		if w.src[i] == '}' {
			return i + 1
		}
		for {
			ks := i
			i = rawjson.ValueEnd(w.src, i)
			key := w.text(ks, i)
			w.redact(ks, i, key)
			i = w.ws(i) + 1 // ':'
			i = w.ws(w.value(i, w.r.classify(key)))
			if w.src[i] == '}' {
				return i + 1
			}
			i = w.ws(i + 1) // ','
		}
	case c == '[':
		elem := plain
		if under == secretString {
			elem = secretString // "api_keys": ["...", "..."]
		}
		i = w.ws(i + 1)
		if w.src[i] == ']' {
			return i + 1
		}
		for {
			i = w.ws(w.value(i, elem))
			if w.src[i] == ']' {
				return i + 1
			}
			i++ // ','
		}
	case c == '"':
		end := rawjson.ValueEnd(w.src, i)
		if under == plain && !w.mayMatch(start, end) {
			return end
		}
		s := w.text(start, end)
		if under == secretString {
			if s != "" && !isMarker(s) {
				w.edit(start, end, Marker("key"))
			}
			return end
		}
		w.redact(start, end, s)
		return end
	default:
		return rawjson.ValueEnd(w.src, i)
	}
}

// mayMatch tells from the raw string whether a pattern might match once
// it is decoded, sparing the decoding of most strings.
func (w *walker) mayMatch(start, end int) bool {
	raw := view(w.src[start+1 : end-1])
	if spellsHidden(raw) {
		return true
	}
	// Few patterns are active on most messages, and gated hints fail at
	// once on most strings: cheaper than a pass of the hint index.
	for i := range w.patterns {
		if p := &w.patterns[i]; p.hint == nil || p.hint.in(raw) {
			return true
		}
	}
	return false
}

// spellsHidden reports whether JSON text holds a \uXXXX or \/ escape, the
// escapes that can spell a hint the raw text does not show. Most texts
// have no backslash at all, which one vectorized IndexByte tells, where
// looking for each escape took two passes over every text and string.
func spellsHidden(s string) bool {
	return strings.IndexByte(s, '\\') >= 0 && (strings.Contains(s, `\u`) || strings.Contains(s, `\/`))
}

// text decodes the JSON string src[start:end]. Without escapes it is a
// view of src, not a copy: the walker only compares and matches it.
func (w *walker) text(start, end int) string {
	body := w.src[start+1 : end-1]
	if bytes.IndexByte(body, '\\') < 0 {
		return view(body)
	}
	if s, ok := decodeString(view(body)); ok {
		return s
	}
	var s string
	if err := json.Unmarshal(w.src[start:end], &s); err != nil {
		return string(body) // unreachable: the input was validated
	}
	return s
}

// decodeString decodes the body of a valid JSON string in one copy, where
// encoding/json makes two. It declines (ok false) what encoding/json
// turns into U+FFFD: invalid UTF-8 and lone surrogates.
func decodeString(body string) (s string, ok bool) {
	if !utf8.ValidString(body) {
		return "", false
	}
	b := make([]byte, 0, len(body))
	last := 0
	for i := strings.IndexByte(body, '\\'); i >= 0; i = strings.IndexByte(body[last:], '\\') {
		i += last
		b = append(b, body[last:i]...)
		n, r := decodeEscape(body[i:])
		if n == 0 {
			return "", false
		}
		b = utf8.AppendRune(b, r)
		last = i + n
	}
	b = append(b, body[last:]...)
	return unsafe.String(unsafe.SliceData(b), len(b)), true // b is not written again
}

// quotedLen is the length of appendQuote(nil, s), to within the few bytes
// of a line separator's escape.
func quotedLen(s string) int {
	n := len(s) + 2
	for i := 0; i < len(s); i++ {
		if c := s[i]; c == '"' || c == '\\' {
			n++
		} else if c < 0x20 {
			n += 5
		} else if c >= utf8.RuneSelf {
			n += 3 // at most: an invalid byte written as \ufffd
		}
	}
	return n
}

// appendQuote appends s as a JSON string, as encoding/json writes it with
// HTML escaping off (keeping "<" and "&" readable in the record), straight
// into the output instead of through an encoder's buffer and a copy.
func appendQuote(dst []byte, s string) []byte {
	dst = append(dst, '"')
	dst = appendQuoteBody(dst, s)
	return append(dst, '"')
}

// appendQuoteBody is appendQuote without the quotes. Quoting the pieces of
// a string one by one writes what quoting it whole does, as long as they
// are cut between characters.
func appendQuoteBody(dst []byte, s string) []byte {
	const hex = "0123456789abcdef"
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c >= 0x20 && c != '"' && c != '\\' && c < utf8.RuneSelf {
			i++
			continue
		}
		if c < utf8.RuneSelf {
			dst = append(dst, s[start:i]...)
			switch c {
			case '\\', '"':
				dst = append(dst, '\\', c)
			case '\b':
				dst = append(dst, '\\', 'b')
			case '\f':
				dst = append(dst, '\\', 'f')
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xF])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
		case r == '\u2028' || r == '\u2029':
			// Valid JSON, but not JavaScript: encoding/json escapes them.
			dst = append(dst, s[start:i]...)
			dst = append(dst, '\\', 'u', '2', '0', '2', hex[r&0xF])
		default:
			i += size
			continue
		}
		i += size
		start = i
	}
	return append(dst, s[start:]...)
}

// view is b as a string without copying it, for strings the redactor only
// reads while b is unchanged (the caller's message, during one call).
func view(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	return unsafe.String(&b[0], len(b))
}
