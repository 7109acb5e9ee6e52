package main

import (
	"encoding/json"
	"io"
	"strconv"

	"github.com/mcptrail/mcptrail/internal/termsafe"
	"github.com/mcptrail/mcptrail/store"
)

// Output helpers shared by the commands.

// writeJSON prints v as indented JSON, with the characters a terminal acts
// on escaped (termsafe.JSON: lossless).
func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(termsafe.JSONWriter{W: w})
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// writeJSONLines prints each of list as one line of JSON, escaped as
// writeJSON's.
func writeJSONLines[T any](w io.Writer, list []T) error {
	enc := json.NewEncoder(termsafe.JSONWriter{W: w})
	for _, v := range list {
		if err := enc.Encode(v); err != nil {
			return err
		}
	}
	return nil
}

// writeJSONLine prints v as one line of JSON, escaped as writeJSON's.
func writeJSONLine(w io.Writer, v any) error {
	return json.NewEncoder(termsafe.JSONWriter{W: w}).Encode(v)
}

func principalLabel(p *store.Principal) string {
	if p == nil || p.Subject == "" {
		return "-"
	}
	return p.Kind + ":" + p.Subject
}

// prettyJSON indents raw JSON for a person; anything else as it is.
func prettyJSON(raw json.RawMessage) string {
	var v any
	if json.Unmarshal(raw, &v) != nil {
		return string(raw)
	}
	b, err := json.MarshalIndent(v, "  ", "  ")
	if err != nil {
		return string(raw)
	}
	return "  " + string(b)
}

func cut(s string, n int) string {
	if len([]rune(s)) <= n {
		return s
	}
	return string([]rune(s)[:n-1]) + "…"
}

// oneSeq reads the one positional argument of a command that takes a
// record's seq (rollback history SEQ, approve SEQ); seqs start at 1.
func oneSeq(pos []string) (uint64, bool) {
	if len(pos) != 1 {
		return 0, false
	}
	seq, err := strconv.ParseUint(pos[0], 10, 64)
	return seq, err == nil && seq > 0
}
