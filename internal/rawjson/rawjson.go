// Package rawjson reads members out of JSON text without decoding it.
//
// The gateway reads a few members of every message — the envelope, a
// call's name, a result's isError, _meta — and relays the rest untouched.
// encoding/json would decode each whole message into a map or struct by
// reflection for that (about half the gateway's own CPU per call); this
// walks the top level of an object and hands out raw values, with every
// key as written (Key decodes the escaped ones).
package rawjson

import (
	"bytes"
	"encoding/json"
	"unicode/utf8"

	segjson "github.com/segmentio/encoding/json"
)

// Valid reports whether b is valid JSON, exactly as encoding/json's Valid
// does, and about twice as fast on large messages (BenchmarkValid: 610–760
// against 290–340 MB/s):
// the gateway checks every message it relays, a response of a few hundred
// kilobytes included, on the call's path. It is segmentio's validator,
// which the go-sdk builds in already, with the nesting limit encoding/json
// has and it has not; FuzzValid holds the two to the same answers.
func Valid(b []byte) bool {
	if !segjson.Valid(b) {
		return false
	}
	// Nesting deeper than maxDepth takes more brackets than a shorter
	// text holds, or than b holds at all (bytes.Count is vectorized; the
	// count includes brackets in strings, so it only errs on the safe
	// side of walking b).
	return len(b) <= 2*maxDepth || bytes.Count(b, []byte("["))+bytes.Count(b, []byte("{")) <= maxDepth || depth(b) <= maxDepth
}

// maxDepth is encoding/json's limit on nesting.
const maxDepth = 10000

// depth is the deepest nesting of arrays and objects in the valid JSON b.
func depth(b []byte) int {
	d, deepest := 0, 0
	for i := 0; i < len(b); i++ {
		switch b[i] {
		case '"':
			i = stringEnd(b, i) - 1
		case '{', '[':
			if d++; d > deepest {
				deepest = d
			}
		case '}', ']':
			d--
		}
	}
	return deepest
}

func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

// stringEnd returns the index just past the string that starts at b[i]:
// past the first quote after it that an even number of backslashes
// precedes. Quotes are found with IndexByte, which is vectorized: a string
// of a hundred kilobytes (a file a tool read) is walked by every look at
// a message, and a loop over its bytes was a quarter of a large
// response's cost to the gateway.
func stringEnd(b []byte, i int) int {
	for j := i + 1; j < len(b); {
		k := bytes.IndexByte(b[j:], '"')
		if k < 0 {
			break
		}
		q := j + k
		escaped := false
		for p := q - 1; p > i && b[p] == '\\'; p-- {
			escaped = !escaped
		}
		if !escaped {
			return q + 1
		}
		j = q + 1
	}
	return len(b)
}

// ValueEnd returns the index just past the JSON value that starts at b[i]
// (a string, an object or array without looking inside it, or a scalar).
// b must be valid JSON.
func ValueEnd(b []byte, i int) int {
	if i >= len(b) {
		return i
	}
	switch b[i] {
	case '"':
		return stringEnd(b, i)
	case '{', '[':
		depth := 0
		for ; i < len(b); i++ {
			switch b[i] {
			case '"':
				i = stringEnd(b, i) - 1
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					return i + 1
				}
			}
		}
		return len(b)
	}
	for ; i < len(b); i++ {
		switch b[i] {
		case ',', '}', ']', ' ', '\t', '\n', '\r':
			return i
		}
	}
	return i
}

// StringValue decodes a raw JSON string; ok is false for anything else.
// Strings without escapes, the common case, need no decoder (which would
// also turn invalid UTF-8 into U+FFFD).
func StringValue(raw []byte) (s string, ok bool) {
	if len(raw) < 2 || raw[0] != '"' {
		return "", false
	}
	if bytes.IndexByte(raw, '\\') < 0 && utf8.Valid(raw) {
		return string(raw[1 : len(raw)-1]), true
	}
	return s, json.Unmarshal(raw, &s) == nil
}

// Marshaled reports whether json.Marshal of the valid JSON b, as a
// json.RawMessage, gives b itself: b has no whitespace outside strings and
// nothing Marshal escapes (<, >, & and U+2028, U+2029, which can only be
// in strings). Most bodies an MCP client or server writes are so, and the
// store then keeps them as they are instead of having encoding/json's
// scanner rewrite them byte by byte.
func Marshaled(b []byte) bool {
	for _, c := range []byte("<>&") {
		if bytes.IndexByte(b, c) >= 0 {
			return false
		}
	}
	for i := 0; ; i++ {
		k := bytes.IndexByte(b[i:], 0xE2)
		if k < 0 {
			break
		}
		i += k
		if i+2 < len(b) && b[i+1] == 0x80 && b[i+2]&^1 == 0xA8 {
			return false
		}
	}
	for i := 0; i < len(b); i++ {
		switch b[i] {
		case '"':
			i = stringEnd(b, i) - 1
		case ' ', '\t', '\n', '\r':
			return false
		}
	}
	return true
}

// Members calls fn with each top-level member of the valid JSON object obj,
// in order: the key as written (without quotes; escaped reports whether it
// holds an escape, which Key decodes) and the raw value. Unlike EachMember
// it takes every key, escaped or not, so that a caller can judge a message
// by all the names it holds. fn returns false to stop the walk. Members
// reports false when obj is not an object. obj must be valid JSON (check
// it with Valid first): the walk trusts its structure.
func Members(obj []byte, fn func(key []byte, escaped bool, val []byte) bool) bool {
	i := skipSpace(obj, 0)
	if i >= len(obj) || obj[i] != '{' {
		return false
	}
	i = skipSpace(obj, i+1)
	for i < len(obj) && obj[i] == '"' {
		ke := stringEnd(obj, i)
		key := obj[i+1 : ke-1]
		i = skipSpace(obj, ke)
		i = skipSpace(obj, i+1) // past ':'
		ve := ValueEnd(obj, i)
		if !fn(key, bytes.IndexByte(key, '\\') >= 0, obj[i:ve]) {
			return true
		}
		i = skipSpace(obj, ve)
		if i < len(obj) && obj[i] == ',' {
			i = skipSpace(obj, i+1)
		}
	}
	return true
}

// Elements calls fn with each element of the valid JSON array arr, raw, in
// order; false when arr is not an array.
func Elements(arr []byte, fn func(val []byte)) bool {
	i := skipSpace(arr, 0)
	if i >= len(arr) || arr[i] != '[' {
		return false
	}
	i = skipSpace(arr, i+1)
	for i < len(arr) && arr[i] != ']' {
		ve := ValueEnd(arr, i)
		fn(arr[i:ve])
		i = skipSpace(arr, ve)
		if i < len(arr) && arr[i] == ',' {
			i = skipSpace(arr, i+1)
		}
	}
	return true
}

// KeyVisitor receives the member names of every object in a JSON text.
type KeyVisitor interface {
	Open()                             // an object starts
	Key(key []byte, escaped bool) bool // a member name of the innermost open object; false stops the walk
	Close()                            // the innermost open object ends
}

// WalkKeys walks the valid JSON b once, in order, telling v where each
// object opens and closes and each member name between. It is linear in
// len(b) however deep b nests (strings are skipped as stringEnd skips
// them), so a check over every object of a message costs one pass. It
// returns false when v stopped it.
func WalkKeys(b []byte, v KeyVisitor) bool {
	for i := 0; i < len(b); i++ {
		switch b[i] {
		case '"':
			e := stringEnd(b, i)
			if j := skipSpace(b, e); j < len(b) && b[j] == ':' {
				k := b[i+1 : e-1]
				if !v.Key(k, bytes.IndexByte(k, '\\') >= 0) {
					return false
				}
			}
			i = e - 1
		case '{':
			v.Open()
		case '}':
			v.Close()
		}
	}
	return true
}

// Key decodes a key as Members hands it out (the text between the quotes).
func Key(key []byte, escaped bool) string {
	if !escaped {
		return string(key)
	}
	var s string
	quoted := make([]byte, 0, len(key)+2)
	quoted = append(append(append(quoted, '"'), key...), '"')
	_ = json.Unmarshal(quoted, &s)
	return s
}

// Deeper reports whether the valid JSON b nests arrays and objects deeper
// than limit. A text with too few brackets for that (counted with the
// vectorized bytes.Count, brackets in strings included, which only errs
// towards walking) is not walked at all.
func Deeper(b []byte, limit int) bool {
	if len(b) <= 2*limit || bytes.Count(b, []byte("["))+bytes.Count(b, []byte("{")) <= limit {
		return false
	}
	return depth(b) > limit
}

// LoneSurrogate reports whether the valid JSON b holds a \u escape of a
// UTF-16 surrogate that is not half of a pair: decoders turn it into
// U+FFFD, or keep it as a broken string (JavaScript), so two readers of
// the same text no longer agree on it.
func LoneSurrogate(b []byte) bool {
	for i := 0; i < len(b); {
		k := bytes.IndexByte(b[i:], '\\')
		if k < 0 {
			return false
		}
		i += k
		// Outside strings valid JSON has no backslash, and inside them
		// every backslash starts an escape: walking from escape to
		// escape keeps the pairs of "\\" apart.
		if i+1 >= len(b) || b[i+1] != 'u' {
			i += 2
			continue
		}
		r := hex4(b, i+2)
		switch {
		case r >= 0xD800 && r < 0xDC00:
			if i+7 < len(b) && b[i+6] == '\\' && b[i+7] == 'u' {
				if lo := hex4(b, i+8); lo >= 0xDC00 && lo < 0xE000 {
					i += 12
					continue
				}
			}
			return true
		case r >= 0xDC00 && r < 0xE000:
			return true
		}
		i += 6
	}
	return false
}

func hex4(b []byte, i int) rune {
	if i+4 > len(b) {
		return -1
	}
	var r rune
	for _, c := range b[i : i+4] {
		switch {
		case c >= '0' && c <= '9':
			c -= '0'
		case c >= 'a' && c <= 'f':
			c -= 'a' - 10
		case c >= 'A' && c <= 'F':
			c -= 'A' - 10
		default:
			return -1
		}
		r = r<<4 | rune(c)
	}
	return r
}
