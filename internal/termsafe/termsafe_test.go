package termsafe

import (
	"encoding/json"
	"strings"
	"testing"
	"unicode/utf8"
)

// hostile holds what an agent can put in a name: OSC 52 (clipboard), OSC 0
// (title), CSI, the C1 forms of CSI and OSC, BEL, DEL, a carriage return, a
// bidi override and a byte that is not UTF-8.
const hostile = "a\x1b]52;c;cm0gLXJmIH4K\x07b\x1b]0;pwned\x07c\x1b[2Jd\u009b2Je\u009d0;t\u009cf\x7fg\rh\u202ei\xffj\n\tk"

func TestLineShowsEveryControlVisibly(t *testing.T) {
	got := Line(hostile)
	want := `a\x1b]52;c;cm0gLXJmIH4K\x07b\x1b]0;pwned\x07c\x1b[2Jd\u009b2Je\u009d0;t\u009cf\x7fg\x0dh\u202ei\xffj\x0a\x09k`
	if got != want {
		t.Fatalf("Line:\n got %s\nwant %s", got, want)
	}
	if got := Text(hostile); !strings.HasSuffix(got, "j\n\tk") || strings.Contains(got, "\r") {
		t.Fatalf("Text keeps newline and tab, not CR: %q", got)
	}
	if got := Log(hostile); !strings.Contains(got, "g\rh") || !strings.Contains(got, "j\n\\x09k") {
		t.Fatalf("Log keeps newline and CR, not tab: %q", got)
	}
}

func TestPrintableIsReturnedWithoutAllocating(t *testing.T) {
	for _, s := range []string{"nightly-ops-bot", "write_file", "héllo wörld ✓ 日本"} {
		if Line(s) != s || !Safe(s) {
			t.Errorf("%q changed", s)
		}
		if n := testing.AllocsPerRun(100, func() { _ = Line(s) }); n != 0 {
			t.Errorf("Line(%q) allocates %v times", s, n)
		}
	}
}

func TestJSONIsLosslessAndInert(t *testing.T) {
	in := map[string]string{"name": hostile[:len(hostile)-6] + "\u2028\u2066x"} // valid UTF-8 only
	raw, err := json.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	out := JSON(raw)
	checkInert(t, string(out), "")
	var back map[string]string
	if err := json.Unmarshal(out, &back); err != nil {
		t.Fatal(err)
	}
	if back["name"] != in["name"] {
		t.Fatalf("not lossless:\n got %q\nwant %q", back["name"], in["name"])
	}
	if !strings.Contains(string(out), `\u009b`) || !strings.Contains(string(out), `\u007f`) {
		t.Fatalf("C1 and DEL not escaped: %s", out)
	}
	plain := []byte(`{"a":"b"}`)
	if n := testing.AllocsPerRun(100, func() { _ = JSON(plain) }); n != 0 {
		t.Errorf("JSON allocates %v times on plain text", n)
	}
}

func TestJSONMakesInvalidUTF8Valid(t *testing.T) {
	out := JSON([]byte("{\"a\":\"x\xffy\"}"))
	if !utf8.Valid(out) || string(out) != `{"a":"x\ufffdy"}` {
		t.Fatalf("got %q", out)
	}
}

// checkInert fails if s holds a control character other than those in keep,
// a C1 or bidi control, or invalid UTF-8.
func checkInert(t *testing.T, s, keep string) {
	t.Helper()
	if !utf8.ValidString(s) {
		t.Fatalf("not valid UTF-8: %q", s)
	}
	for _, r := range s {
		if (r < 0x20 && !strings.ContainsRune(keep, r)) || r == 0x7f || visible(r) {
			t.Fatalf("%U reaches the output: %q", r, s)
		}
	}
}

func FuzzEscape(f *testing.F) {
	f.Add(hostile)
	f.Add("plain")
	f.Add("\xc2")
	f.Fuzz(func(t *testing.T, s string) {
		checkInert(t, Line(s), "")
		checkInert(t, Text(s), "\n\t")
		checkInert(t, Log(s), "\n\r")
		if Safe(s) != (Line(s) == s) {
			t.Fatalf("Safe(%q) = %v but Line gives %q", s, Safe(s), Line(s))
		}
		raw, _ := json.Marshal(s)
		out := JSON(raw)
		checkInert(t, string(out), "")
		var back, orig string
		if err := json.Unmarshal(out, &back); err != nil {
			t.Fatal(err)
		}
		json.Unmarshal(raw, &orig)
		if back != orig {
			t.Fatalf("JSON not lossless: %q vs %q", back, orig)
		}
	})
}

func TestOrDash(t *testing.T) {
	for in, want := range map[string]string{"": "-", "x": "x", " ": " ", "-": "-"} {
		if got := OrDash(in); got != want {
			t.Errorf("OrDash(%q) = %q, want %q", in, got, want)
		}
	}
}
