// Package termsafetest holds what tests of every output put into a record
// to play a hostile agent, and the check that none of it reaches a
// terminal.
package termsafetest

import (
	"fmt"
	"unicode/utf8"
)

// Hostile is valid UTF-8 that would drive a terminal if printed raw: OSC 52
// (sets the clipboard to "rm -rf ~\n"), OSC 0 (window title), CSI 2J
// (clears the screen), the C1 forms of CSI and OSC (U+009B, U+009D) and ST
// (U+009C), BEL, DEL, a carriage return, a right-to-left override and a
// newline. JSON outputs must give it back exactly.
const Hostile = "evil\x1b]52;c;cm0gLXJmIH4K\x07\x1b]0;pwned\x07\x1b[2J\u009b2J\u009d0;t\u009c\x7f\rx\u202eexe.txt\nend"

// Named returns Hostile marked with what it stands in, so a test can tell
// the fields apart.
func Named(what string) string { return what + ":" + Hostile }

// InvalidUTF8 is a string a record from an older version may hold.
const InvalidUTF8 = "bad\xff\xfe\xc3utf8"

// Check returns an error naming the first thing in out a terminal would
// act on or cannot read: a C0 control other than newline (and tab, when
// tabs is set), DEL, a C1 control, a bidi control, or invalid UTF-8.
func Check(out []byte, tabs bool) error {
	for i := 0; i < len(out); {
		r, n := utf8.DecodeRune(out[i:])
		switch {
		case r == utf8.RuneError && n == 1:
			return fmt.Errorf("invalid UTF-8 at byte %d: %q", i, context(out, i))
		case r == '\n', r == '\t' && tabs:
		case r < 0x20 || r == 0x7f || (r >= 0x80 && r <= 0x9f):
			return fmt.Errorf("control %U at byte %d: %q", r, i, context(out, i))
		case r == 0x061c || r == 0x200e || r == 0x200f || (r >= 0x202a && r <= 0x202e) || (r >= 0x2066 && r <= 0x2069) || r == 0x2028 || r == 0x2029:
			return fmt.Errorf("bidi or separator %U at byte %d: %q", r, i, context(out, i))
		}
		i += n
	}
	return nil
}

func context(b []byte, i int) []byte {
	return b[max(0, i-40):min(len(b), i+40)]
}
