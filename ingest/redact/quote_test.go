package redact

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
)

// appendQuote writes what encoding/json writes with HTML escaping off, and
// decodeString reads what encoding/json reads wherever it does not decline.
func FuzzQuote(f *testing.F) {
	for _, s := range []string{"", "a", `"\`, "\x00\x1f\x7f\b\f\n\r\t", "<&>", "é\u2028\u2029", "\xff\xfe", "\U0001F600", `\ud83d`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		var b bytes.Buffer
		enc := json.NewEncoder(&b)
		enc.SetEscapeHTML(false)
		if err := enc.Encode(s); err != nil {
			t.Fatal(err)
		}
		want := strings.TrimSuffix(b.String(), "\n")
		if got := string(appendQuote(nil, s)); got != want {
			t.Fatalf("appendQuote(%q) = %s, encoding/json says %s", s, got, want)
		}
		// s as a string body, whether or not it is valid JSON.
		var dec string
		if json.Unmarshal([]byte(`"`+s+`"`), &dec) == nil {
			if got, ok := decodeString(s); ok && got != dec {
				t.Fatalf("decodeString(%q) = %q, encoding/json says %q", s, got, dec)
			}
		}
		var back string
		if err := json.Unmarshal([]byte(want), &back); err != nil {
			t.Fatal(err)
		}
		if got, ok := decodeString(want[1 : len(want)-1]); !ok || got != back {
			t.Fatalf("decodeString(%s) = %q, %v, want %q", want, got, ok, back)
		}
	})
}
