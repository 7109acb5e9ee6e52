package rawjson

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestStringValue(t *testing.T) {
	for _, c := range []struct {
		raw, want string
		ok        bool
	}{{`"plain"`, "plain", true}, {`"a\u0062"`, "ab", true}, {"\"\xeb\"", "\ufffd", true}, {`1`, "", false}, {`null`, "", false}} {
		if got, ok := StringValue([]byte(c.raw)); got != c.want || ok != c.ok {
			t.Errorf("StringValue(%s) = %q %v, want %q %v", c.raw, got, ok, c.want, c.ok)
		}
	}
}

func FuzzValid(f *testing.F) {
	for _, s := range []string{`{"a":1}`, `[1,2,{"b":"\u00e9"}]`, `"\ud800"`, `1e5`, `-0.5E+3`, "{\"a\":\"\x01\"}", "\"\xff\"", `[`, `01`, `1.`,
		`{"a" : [true,false,null]}`, ` {} `, `"\/"`, `"\x"`, `{"a":"[[["}`, ``, ` `, `nul`, `{"a":1,}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		if got, want := Valid(b), json.Valid(b); got != want {
			t.Fatalf("Valid(%q) = %v, encoding/json says %v", b, got, want)
		}
	})
}

// Nesting around encoding/json's limit, with brackets in strings that do
// not count.
func TestValidDepth(t *testing.T) {
	for _, n := range []int{9999, 10000, 10001, 30000} {
		for _, b := range [][]byte{
			[]byte(strings.Repeat("[", n) + strings.Repeat("]", n)),
			[]byte(strings.Repeat(`{"a":`, n) + `"[[[[{{{{"` + strings.Repeat("}", n)),
			[]byte(`["` + strings.Repeat("[", 3*n) + `"]`),
		} {
			if got, want := Valid(b), json.Valid(b); got != want {
				t.Errorf("depth %d, %d bytes: Valid %v, encoding/json %v", n, len(b), got, want)
			}
		}
	}
}

// stringEnd agrees with the plain walk over the bytes it replaced.
func FuzzStringEnd(f *testing.F) {
	for _, s := range []string{`"abc"`, `"a\"b"`, `"a\\"b"`, `"\\\\\"x"`, `"unterminated`, `"\`, `""`, `"a\\\"`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		if len(b) == 0 || b[0] != '"' {
			return
		}
		want := len(b)
		for i := 1; i < len(b); i++ {
			if b[i] == '\\' {
				i++
			} else if b[i] == '"' {
				want = i + 1
				break
			}
		}
		if got := stringEnd(b, 0); got != want {
			t.Fatalf("stringEnd(%q) = %d, want %d", b, got, want)
		}
	})
}

// Valid against encoding/json's on a 115 KB message (BENCHMARKS.md).
var largeMessage = []byte(`{"jsonrpc":"2.0","id":7,"result":{"content":[{"type":"text","text":"` + strings.Repeat(`lorem ipsum dolor sit amet, \"quoted\" \u00e9 `, 2500) + `"}],"isError":false}}`)

func BenchmarkValid(b *testing.B) {
	b.SetBytes(int64(len(largeMessage)))
	for b.Loop() {
		if !Valid(largeMessage) {
			b.Fatal("invalid")
		}
	}
}

func BenchmarkValidEncodingJSON(b *testing.B) {
	b.SetBytes(int64(len(largeMessage)))
	for b.Loop() {
		if !json.Valid(largeMessage) {
			b.Fatal("invalid")
		}
	}
}

// Marshaled says yes only when json.Marshal would give the same bytes, and
// for valid JSON it says yes whenever Marshal does.
func FuzzMarshaled(f *testing.F) {
	for _, s := range []string{`{"a":1}`, `{"a": 1}`, ` 1`, `1 `, `"a b"`, `"<"`, `"&amp;"`, "\"\u2028\"", "\"\u2029\"", "\"\u2027\"",
		"\"\xe2\x80\"", `[1,"x y",{"b":"\"q\" "}]`, `"\\"`, "{\"a\":\"\xff\"}", "{\n}", `{"text":"benchmark payload of a typical small size"}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		if !json.Valid(b) {
			return
		}
		m, err := json.Marshal(json.RawMessage(b))
		if err != nil {
			t.Fatal(err)
		}
		if got, want := Marshaled(b), bytes.Equal(m, b); got != want {
			t.Fatalf("Marshaled(%q) = %v; json.Marshal gives %q", b, got, m)
		}
	})
}

// Members sees every member of a valid object, escaped keys decoded, in
// order: the last of each name is what encoding/json keeps.
func FuzzMembers(f *testing.F) {
	for _, s := range []string{`{"a":1,"b":"}\"{","c":{"d":[1]}}`, ` { "a" : true } `, `{}`, `{"a":1,"a":2}`, `{"\u0061":1,"a":2}`, `[1]`, `"x"`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		if !Valid(data) {
			return
		}
		got := map[string]string{}
		ok := Members(data, func(k []byte, esc bool, v []byte) bool {
			got[Key(k, esc)] = string(v)
			return true
		})
		var want map[string]json.RawMessage
		if err := json.Unmarshal(data, &want); err != nil || want == nil {
			if ok && bytes.TrimSpace(data)[0] == '{' && err != nil {
				t.Fatalf("Members read %s, which encoding/json refuses: %v", data, err)
			}
			return
		}
		if !ok || len(got) != len(want) {
			t.Fatalf("members %v, encoding/json %v", got, want)
		}
		for k, v := range want {
			if got[k] != string(v) {
				t.Fatalf("member %q = %s, encoding/json %s", k, got[k], v)
			}
		}
	})
}

func TestLoneSurrogate(t *testing.T) {
	for s, want := range map[string]bool{`"\ud800"`: true, `"\udc00"`: true, `"\ud83d\ude00"`: false, `"\\ud800"`: false, `"\\\ud800"`: true,
		`"\ud800\\udc00"`: true, `"a\u00e9"`: false, `["\ud83d","\ude00"]`: true, `"\uD83D\uDE00"`: false} {
		if got := LoneSurrogate([]byte(s)); got != want {
			t.Errorf("LoneSurrogate(%s) = %v, want %v", s, got, want)
		}
	}
}

func TestDeeper(t *testing.T) {
	for _, n := range []int{1, 5, 127, 128, 129, 1001} {
		b := []byte(strings.Repeat("[", n) + strings.Repeat("]", n))
		for _, limit := range []int{5, 128, 1000} {
			if got := Deeper(b, limit); got != (n > limit) {
				t.Errorf("Deeper(%d deep, %d) = %v", n, limit, got)
			}
		}
	}
}

// keyLog records a WalkKeys walk as text: { and } for objects, each name
// decoded.
type keyLog struct{ b strings.Builder }

func (l *keyLog) Open()  { l.b.WriteString("{") }
func (l *keyLog) Close() { l.b.WriteString("}") }
func (l *keyLog) Key(k []byte, esc bool) bool {
	fmt.Fprintf(&l.b, "%q", Key(k, esc))
	return true
}

// tokenLog is the same record made with encoding/json's tokenizer.
func tokenLog(b []byte) (string, bool) {
	dec := json.NewDecoder(bytes.NewReader(b))
	var out strings.Builder
	var inObject []bool // per open container: an object, and whether a name comes next
	var nameNext []bool
	for {
		tok, err := dec.Token()
		if err != nil {
			return out.String(), err == io.EOF
		}
		isName := len(inObject) > 0 && inObject[len(inObject)-1] && nameNext[len(nameNext)-1]
		if len(inObject) > 0 && inObject[len(inObject)-1] {
			if d, ok := tok.(json.Delim); !ok || (d != '}' && d != ']') {
				nameNext[len(nameNext)-1] = !nameNext[len(nameNext)-1]
			}
		}
		switch t := tok.(type) {
		case json.Delim:
			switch t {
			case '{':
				out.WriteString("{")
				inObject, nameNext = append(inObject, true), append(nameNext, true)
			case '[':
				inObject, nameNext = append(inObject, false), append(nameNext, false)
			case '}':
				out.WriteString("}")
				inObject, nameNext = inObject[:len(inObject)-1], nameNext[:len(nameNext)-1]
			case ']':
				inObject, nameNext = inObject[:len(inObject)-1], nameNext[:len(nameNext)-1]
			}
		case string:
			if isName {
				fmt.Fprintf(&out, "%q", t)
			}
		}
	}
}

// WalkKeys sees the objects and member names encoding/json's tokenizer
// sees, in the same order, for any valid JSON.
func FuzzWalkKeys(f *testing.F) {
	for _, s := range []string{`{"a":1,"b":{"c":[{"d":"}"},"e"]},"f\u0067":"x:y"}`, `[{"a":"\"{"},{}]`, `"a"`, `{"a" : {"b" :1}}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		if !json.Valid(b) || !utf8.Valid(b) { // the gateway refuses invalid UTF-8 first
			return
		}
		want, ok := tokenLog(b)
		if !ok {
			return
		}
		var got keyLog
		WalkKeys(b, &got)
		if got.b.String() != want {
			t.Fatalf("WalkKeys saw %s, encoding/json %s", got.b.String(), want)
		}
	})
}
