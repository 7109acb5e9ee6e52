package rawjson

import (
	"encoding/json"
	"testing"
)

// On valid JSON objects with plain keys, EachMember sees exactly the members
// encoding/json does (the last of duplicates wins there); on anything else
// it must not panic.
func FuzzEachMember(f *testing.F) {
	for _, s := range []string{
		`{"a":1,"b":"}\"{","c":{"d":[1,{"e":"]"}]},"f":null}`, ` { "a" : true } `, `{}`, `{"a":1,"a":2}`,
		`{"\u0061":1}`, `[1]`, `"x"`, `{"a"`, `{"a":`, `{"a":1`, `{"`, `{`, `{"a":"\`, `{"a" 1}`, `{1:2}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		got := map[string]string{}
		ok := EachMember(data, func(k, v []byte) { got[string(k)] = string(v) })
		if !ok || !json.Valid(data) {
			return
		}
		var want map[string]json.RawMessage
		if err := json.Unmarshal(data, &want); err != nil {
			t.Fatalf("EachMember read %s, which encoding/json refuses: %v", data, err)
		}
		if len(got) != len(want) {
			t.Fatalf("members %v, encoding/json %v", got, want)
		}
		for k, v := range want {
			if got[k] != string(v) {
				t.Fatalf("member %q = %s, encoding/json %s", k, got[k], v)
			}
		}
	})
}

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
