// Package termsafe makes text that came from an agent or a server safe to
// show to a person or to write to a log someone will read in a terminal.
//
// An agent chooses its client name, its tool names, its arguments; a server
// chooses its results and errors. A terminal obeys control characters in
// whatever it prints: ESC ] 52 sets the clipboard, ESC ] 0 the window title,
// ESC [ 2J clears the screen, and in many terminals the one-character C1
// forms (U+009B for ESC [, U+009D for ESC ]) do the same. Bidirectional
// overrides make text read differently from what it is ("Trojan Source").
// So every such string is shown with those characters made visible, never
// emitted.
//
// The visible forms, used everywhere:
//
//   - a C0 control byte (U+0000–U+001F) or DEL: \xHH, e.g. \x1b, \x07, \x7f
//     (\n and \t too, except where the caller keeps them as line breaks
//     or tabs)
//   - a byte that is not part of valid UTF-8: \xHH, e.g. \xff
//   - a C1 control (U+0080–U+009F), a bidi control (U+061C, U+200E,
//     U+200F, U+202A–U+202E, U+2066–U+2069) or a line or paragraph
//     separator (U+2028, U+2029): \uHHHH, e.g. \u009b, \u202e
//
// so a C1 character written as UTF-8 (\u009b) and a lone byte 0x9b (\x9b)
// stay told apart. A backslash is left as it is: the visible form is for
// reading, and the record's own JSON (lossless) is the evidence.
//
// JSON output is handled by JSON, which escapes the same characters as
// JSON \u escapes, so decoding gives back exactly the original strings.
package termsafe

import (
	"unicode/utf8"
)

const hexDigits = "0123456789abcdef"

// Line returns s for a single-line place (a table cell, a header, a status
// line): every control character, including newline and tab, is made
// visible. All-printable ASCII is returned as it is, without allocating.
func Line(s string) string { return escape(s, 0) }

// Text returns s for a multi-line view (a record, a diff): newlines and
// tabs are kept, every other control character is made visible (a carriage
// return too: it would overwrite the line it ends).
func Text(s string) string { return escape(s, keepNL|keepTab) }

// Log returns s for a log format that writes line breaks in its own way
// (CEF writes \n and \r as escapes): newlines and carriage returns are kept
// for the caller to escape, every other control character is made visible.
func Log(s string) string { return escape(s, keepNL|keepCR) }

// Safe reports whether s can be shown as it is by Line: printable ASCII and
// printable, non-bidi UTF-8.
func Safe(s string) bool { return clean(s, 0) == len(s) }

const (
	keepNL = 1 << iota
	keepTab
	keepCR
)

// kept reports whether the ASCII control byte c is kept under flags.
func kept(c byte, flags int) bool {
	switch c {
	case '\n':
		return flags&keepNL != 0
	case '\t':
		return flags&keepTab != 0
	case '\r':
		return flags&keepCR != 0
	}
	return false
}

// clean returns the length of the longest prefix of s that needs no escape.
func clean(s string, flags int) int {
	for i := 0; i < len(s); {
		c := s[i]
		if c >= 0x20 && c < 0x7f {
			i++
			continue
		}
		if c < 0x80 {
			if !kept(c, flags) {
				return i
			}
			i++
			continue
		}
		r, n := utf8.DecodeRuneInString(s[i:])
		if (r == utf8.RuneError && n == 1) || visible(r) {
			return i
		}
		i += n
	}
	return len(s)
}

// visible reports whether the non-ASCII rune r is shown as \uHHHH.
func visible(r rune) bool {
	switch {
	case r >= 0x80 && r <= 0x9f: // C1, U+009B is CSI
		return true
	case r == 0x061c, r == 0x200e, r == 0x200f: // bidi marks
		return true
	case r >= 0x202a && r <= 0x202e: // bidi embeddings and overrides
		return true
	case r >= 0x2066 && r <= 0x2069: // bidi isolates
		return true
	case r == 0x2028, r == 0x2029: // line and paragraph separators
		return true
	}
	return false
}

func escape(s string, flags int) string {
	i := clean(s, flags)
	if i == len(s) {
		return s
	}
	b := make([]byte, 0, len(s)+16)
	b = append(b, s[:i]...)
	return string(appendEscaped(b, s[i:], flags))
}

// AppendLine appends Line(s) to dst.
func AppendLine(dst []byte, s string) []byte { return appendEscaped(dst, s, 0) }

func appendEscaped(b []byte, s string, flags int) []byte {
	for i := 0; i < len(s); {
		c := s[i]
		if c < 0x80 {
			if (c >= 0x20 && c < 0x7f) || kept(c, flags) {
				b = append(b, c)
			} else {
				b = append(b, '\\', 'x', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			continue
		}
		r, n := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && n == 1:
			b = append(b, '\\', 'x', hexDigits[c>>4], hexDigits[c&0xf])
		case visible(r):
			b = appendU(b, r)
		default:
			b = append(b, s[i:i+n]...)
		}
		i += n
	}
	return b
}

func appendU(b []byte, r rune) []byte {
	return append(b, '\\', 'u', hexDigits[r>>12&0xf], hexDigits[r>>8&0xf], hexDigits[r>>4&0xf], hexDigits[r&0xf])
}

// OrDash is s, or "-" when s is empty: how a table or a field shows a value
// that is not there, so a blank never shifts the columns a reader counts.
func OrDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
