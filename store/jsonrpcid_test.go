package store

import (
	"encoding/json"
	"testing"
)

func TestJSONRPCIDText(t *testing.T) {
	for raw, want := range map[string]string{"": "", "null": "", "7": "7", "-1.5e3": "-1.5e3", `"req-1"`: "req-1", `"a\"b"`: `a"b`, `""`: ""} {
		if got := JSONRPCIDText(json.RawMessage(raw)); got != want {
			t.Errorf("JSONRPCIDText(%s) = %q, want %q", raw, got, want)
		}
	}
}
