package ingest

import (
	"bytes"
	"encoding/json"
	"errors"
	"strconv"
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
func replaceMember(obj []byte, name string, val []byte) (out []byte, old json.RawMessage, found bool, err error) {
	type span struct{ start, end int }
	var spans []span
	dec := json.NewDecoder(bytes.NewReader(obj))
	dec.UseNumber()
	tok, err := dec.Token()
	if err != nil {
		return obj, nil, false, err
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return obj, nil, false, errNotObject
	}
	for dec.More() {
		kt, err := dec.Token()
		if err != nil {
			return obj, nil, false, err
		}
		k, _ := kt.(string)
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return obj, nil, false, err
		}
		if k != name {
			continue
		}
		end := int(dec.InputOffset())
		start := end - len(raw)
		if start < 0 || !bytes.Equal(obj[start:end], raw) {
			return obj, nil, false, errors.New("cannot locate member value")
		}
		spans = append(spans, span{start, end})
		old = raw
	}
	if _, err := dec.Token(); err != nil { // the closing brace
		return obj, nil, false, err
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
	var m map[string]json.RawMessage
	if json.Unmarshal(obj, &m) != nil {
		return nil
	}
	return m[name]
}

// idKey is a JSON-RPC id (or progress token) as a map key: the same id
// written two ways (1 and 1.0, "a" and "\u0061") gives the same key.
func idKey(raw json.RawMessage) string {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 {
		return ""
	}
	if raw[0] == '"' {
		var s string
		if json.Unmarshal(raw, &s) == nil {
			return "s" + s
		}
		return "r" + string(raw)
	}
	if f, err := strconv.ParseFloat(string(raw), 64); err == nil {
		return "n" + strconv.FormatFloat(f, 'g', -1, 64)
	}
	return "r" + string(raw)
}
