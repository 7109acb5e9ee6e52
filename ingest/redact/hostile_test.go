package redact

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
)

// hostileInputs are texts an agent can send to make redaction slow or
// memory-hungry: each repeats a piece that makes the redactor work until
// the text is size bytes long. Each is sent both as the raw message (not
// JSON: redacted as text) and as one JSON string inside a valid message.
func hostileInputs(size int) []struct{ name, text string } {
	fill := func(piece string) string {
		return strings.Repeat(piece, size/len(piece)+1)[:size]
	}
	// JSON text three levels deep: each level a JSON string of the next.
	nested := `password=x `
	for range 3 {
		b, _ := json.Marshal(`{"a":"` + nested + `"}`)
		nested = string(b)
	}
	return []struct{ name, text string }{
		{"EscapedNames", fill(`"pass\u0077ord":"x",`)},
		{"Assignments", fill(`password=x `)},
		{"Nested3", fill(nested)},
		{"Backslashes", fill(`\`)},
		{"OpenQuotes", fill(`password="`)},
		{"EscapedQuotes", fill(`\\\\\\\"password\\\\\\\":\\\\\\\"`)},
	}
}

// asJSONString wraps text as the one string of a valid message.
func asJSONString(text string) json.RawMessage {
	b, _ := json.Marshal(map[string]string{"text": text})
	return b
}

func BenchmarkHostile(b *testing.B) {
	red := mustNew(b, Rules{})
	for _, size := range []int{1 << 20, 4 << 20} {
		for k, form := range []string{"Text", "String"} {
			for i, in := range hostileInputs(size) {
				b.Run(fmt.Sprintf("%s/%s/%dMiB", in.name, form, size>>20), func(b *testing.B) {
					raw := json.RawMessage(hostileInputs(size)[i].text)
					if k == 1 {
						raw = asJSONString(string(raw))
					}
					b.SetBytes(int64(len(raw)))
					b.ReportAllocs()
					for b.Loop() {
						red.JSON(raw)
					}
				})
			}
		}
	}
}
