package identity

import (
	"encoding/json"

	"github.com/mcptrail/mcptrail/internal/rawjson"
	"github.com/mcptrail/mcptrail/store"
)

// Meta is the reading of a request's _meta that MetaClaims replaced: a map
// of every member, read by name. It stays here as MetaClaims' oracle
// (FuzzMetaClaims), itself held to encoding/json (FuzzParseMeta).
type Meta map[string]json.RawMessage

// ParseMeta reads a _meta object as the gateway's envelope (package
// ingest/envelope) handed it out: valid JSON, no duplicate members, no
// protocol member in another spelling. Its values are views of meta: read
// them while meta is unchanged (Meta's methods return copies). nil for
// anything but an object.
func ParseMeta(meta json.RawMessage) Meta {
	m := Meta{}
	if !rawjson.Members(meta, func(k []byte, esc bool, v []byte) bool {
		m[rawjson.Key(k, esc)] = v
		return true
	}) {
		return nil
	}
	return m
}

// String returns the string at key, or "".
func (m Meta) String(key string) string {
	raw, ok := m[key]
	if !ok {
		return ""
	}
	s, _ := rawjson.StringValue(raw)
	return s
}

// Task reads the task a request belongs to: traceparent, baggage, and
// mcptrail's own "io.mcptrail/task", which wins over baggage because it
// names the task on purpose. nil when none.
func (m Meta) Task() *store.Task {
	if m == nil {
		return nil
	}
	own, hasOwn := m[metaTask]
	return taskOf(m.String("traceparent"), m.String("baggage"), own, hasOwn)
}

// OnBehalfOf reads "io.mcptrail/on_behalf_of".
func (m Meta) OnBehalfOf() string { return m.String(metaOnBehalfOf) }
