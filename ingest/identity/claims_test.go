package identity

import (
	"encoding/json"
	"testing"
)

// MetaClaims reads what the map of every member it replaced (Meta, through
// Task and OnBehalfOf) reads, for any JSON.
func FuzzMetaClaims(f *testing.F) {
	for _, s := range []string{
		`{"traceparent":"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01","io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientInfo":{"name":"c","version":"1"}}`,
		`{"baggage":"task.id=t1,task.name=fix%20bug,workflow=w","io.mcptrail/on_behalf_of":"alice@example.com"}`,
		`{"io.mcptrail/task":"t-9","baggage":"task=b"}`, `{"io.mcptrail/task":{"id":"a","name":"n","workflow":"w"}}`,
		`{"io.mcptrail/task":7}`, `{"traceparent":1}`, `{"\u0074raceparent":"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"}`,
		`{"io.mcptrail/on_behalf_of":"a","io.mcptrail/on_behalf_of":"b"}`, `{"baggage":"task.id=x","baggage":"task.id=y"}`,
		`[]`, `null`, `"x"`, `{}`, `{"progressToken":3}`,
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, meta string) {
		if !json.Valid([]byte(meta)) {
			return
		}
		m := ParseMeta(json.RawMessage(meta))
		wantTask, wantOBO := m.Task(), m.OnBehalfOf()
		task, obo := MetaClaims(json.RawMessage(meta))
		if obo != wantOBO {
			t.Fatalf("%s: on behalf of %q, ParseMeta says %q", meta, obo, wantOBO)
		}
		if (task == nil) != (wantTask == nil) || task != nil && *task != *wantTask {
			t.Fatalf("%s: task %+v, ParseMeta says %+v", meta, task, wantTask)
		}
	})
}
