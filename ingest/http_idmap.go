package ingest

import (
	"encoding/json"
	"errors"

	"github.com/mcptrail/mcptrail/internal/rawjson"
)

// The gateway relays messages byte for byte, with one exception: requests
// from stateless (2026-07-28) clients share one child process per stdio
// upstream, and two clients may well both send id 1. The gateway gives each
// such request an id of its own on the way to the child and puts the
// client's id back on the response, rewriting only the "id" member (and the
// requestId of notifications/cancelled): replaceMember walks the top level of
// the object and splices the new value in, so every other byte — member
// order, spacing, unknown fields, number formats — is the sender's.

var errNotObject = errors.New("not a JSON object")

// replaceMember returns obj with the value of each top-level member called
// name replaced by val, and the old value (of the last such member). found
// is false when obj has no such member; obj is then returned unchanged.
// obj is a view of a message the envelope accepted, or a member of one.
func replaceMember(obj []byte, name string, val []byte) (out []byte, old json.RawMessage, found bool, err error) {
	type span struct{ start, end int }
	var spans []span
	if !rawjson.Valid(obj) || !rawjson.Members(obj, func(k []byte, esc bool, v []byte) bool {
		if rawjson.Key(k, esc) == name {
			// v is a view of obj: its offset is where their capacities differ.
			start := cap(obj) - cap(v)
			spans = append(spans, span{start, start + len(v)})
			old = v
		}
		return true
	}) {
		return obj, nil, false, errNotObject
	}
	if len(spans) == 0 {
		return obj, nil, false, nil
	}
	out = make([]byte, 0, len(obj)+len(val))
	prev := 0
	for _, s := range spans {
		out = append(out, obj[prev:s.start]...)
		out = append(out, val...)
		prev = s.end
	}
	out = append(out, obj[prev:]...)
	return out, old, true, nil
}

// member returns the raw value of the top-level member name of obj, if any.
func member(obj []byte, name string) json.RawMessage {
	var val json.RawMessage
	rawjson.Members(obj, func(k []byte, esc bool, v []byte) bool {
		if rawjson.Key(k, esc) == name {
			val = v
		}
		return true
	})
	return val
}

// idKey is a JSON-RPC id (or progress token) as a map key. Ids come from
// the envelope in their canonical form (envelope.CanonicalID), so the same
// id written two ways ("a" and "\u0061") is already one.
func idKey(raw json.RawMessage) string { return string(raw) }
