package identity

import (
	"encoding/json"
	"net/url"
	"strings"

	"github.com/mcptrail/mcptrail/internal/rawjson"
	"github.com/mcptrail/mcptrail/store"
)

// _meta keys.
const (
	metaTask       = "io.mcptrail/task"
	metaOnBehalfOf = "io.mcptrail/on_behalf_of"
	metaClientInfo = "io.modelcontextprotocol/clientInfo"
)

// TraceParent parses a W3C traceparent of version 00.
func TraceParent(s string) (traceID, spanID string, ok bool) {
	s = strings.TrimSpace(s)
	// 00-<32 hex>-<16 hex>-<2 hex>
	if len(s) != 55 || s[2] != '-' || s[35] != '-' || s[52] != '-' || s[:2] != "00" {
		return "", "", false
	}
	traceID, spanID = s[3:35], s[36:52]
	if !lowerHex(traceID) || !lowerHex(spanID) || !lowerHex(s[53:]) ||
		allZero(traceID) || allZero(spanID) {
		return "", "", false
	}
	return traceID, spanID, true
}

// lowerHex: the spec allows only lowercase, and accepting other forms
// would make one trace look like two in the record.
func lowerHex(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}

func allZero(s string) bool { return strings.Trim(s, "0") == "" }

// maxBaggageMembers is the W3C limit; past it a header is abuse, not data.
const maxBaggageMembers = 180

// Baggage parses a W3C baggage header. Members that do not parse are
// skipped, as the spec asks, rather than failing the whole header.
func Baggage(s string) map[string]string {
	var out map[string]string
	for n, member := range strings.Split(s, ",") {
		if n == maxBaggageMembers {
			break
		}
		member, _, _ = strings.Cut(member, ";") // properties
		k, v, ok := strings.Cut(member, "=")
		k = strings.TrimSpace(k)
		if !ok || !isToken(k) {
			continue
		}
		v, err := url.PathUnescape(strings.TrimSpace(v))
		if err != nil {
			continue
		}
		if out == nil {
			out = map[string]string{}
		}
		out[k] = v
	}
	return out
}

// isToken reports whether k is an RFC 7230 token, the grammar of a
// baggage key.
func isToken(k string) bool {
	for i := 0; i < len(k); i++ {
		c := k[i]
		if c <= ' ' || c >= 0x7f || strings.IndexByte(`"(),/:;<=>?@[\]{}`, c) >= 0 {
			return false
		}
	}
	return k != ""
}

// Meta is a request's params._meta, read once for every claim in it.
type Meta map[string]json.RawMessage

// ParseMeta returns params._meta, or nil. It decodes only _meta, not the
// rest of the params (a call's arguments may be large). Its values may be
// views of params: read them while params is unchanged (Meta's methods
// return copies).
func ParseMeta(params json.RawMessage) Meta {
	if len(params) == 0 {
		return nil
	}
	var raw json.RawMessage
	if !rawjson.EachMember(params, func(k, v []byte) {
		if string(k) == "_meta" {
			raw = v
		}
	}) {
		// Exactly "_meta", as the walker matches it (a struct tag would
		// take "_META" too).
		var top map[string]json.RawMessage
		if json.Unmarshal(params, &top) != nil {
			return nil
		}
		raw = top["_meta"]
	}
	if len(raw) == 0 {
		return nil
	}
	// Read with the walker when it can (valid JSON, plain keys): an
	// Unmarshal into the map was a fifth of the gateway's own work on a
	// request that carries _meta. encoding/json decodes the rest, with the
	// same result (the last of duplicate keys wins in both).
	m := Meta{}
	if rawjson.Valid(raw) && rawjson.EachMember(raw, func(k, v []byte) { m[string(k)] = v }) {
		return m
	}
	m = nil
	if json.Unmarshal(raw, &m) != nil {
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
	var t store.Task
	t.TraceID, t.SpanID, _ = TraceParent(m.String("traceparent"))

	if b := Baggage(m.String("baggage")); b != nil {
		t.ID = first(b["mcptrail.task.id"], b["task.id"], b["task"])
		t.Name = b["task.name"]
		t.Workflow = first(b["task.workflow"], b["workflow"])
	}

	if raw, ok := m[metaTask]; ok {
		var own struct{ ID, Name, Workflow string }
		var id string
		if json.Unmarshal(raw, &id) == nil {
			own.ID = id
		} else {
			_ = json.Unmarshal(raw, &own) // a malformed claim is no claim
		}
		t = *MergeTask(&t, &store.Task{ID: own.ID, Name: own.Name, Workflow: own.Workflow})
	}

	if t == (store.Task{}) {
		return nil
	}
	return &t
}

// TaskFromMeta is ParseMeta(params).Task().
func TaskFromMeta(params json.RawMessage) *store.Task { return ParseMeta(params).Task() }

func first(s ...string) string {
	for _, v := range s {
		if v != "" {
			return v
		}
	}
	return ""
}

// OnBehalfOf reads "io.mcptrail/on_behalf_of".
func (m Meta) OnBehalfOf() string { return m.String(metaOnBehalfOf) }

// OnBehalfOfFromMeta is ParseMeta(params).OnBehalfOf().
func OnBehalfOfFromMeta(params json.RawMessage) string { return ParseMeta(params).OnBehalfOf() }

// ClientInfo reads the 2026-07-28 clientInfo that replaces the initialize
// handshake's: every request carries it.
func (m Meta) ClientInfo() (name, version string) {
	raw, ok := m[metaClientInfo]
	if !ok {
		return "", ""
	}
	var ci struct {
		Name    string `json:"name"`
		Version string `json:"version"`
	}
	// The walker takes the common case; encoding/json the rest, and keys
	// in another case ("Name"), which its struct tags match too.
	folded := false
	if rawjson.Valid(raw) && rawjson.EachMember(raw, func(k, v []byte) {
		switch key := string(k); {
		case key == "name":
			setString(&ci.Name, v)
		case key == "version":
			setString(&ci.Version, v)
		case strings.EqualFold(key, "name") || strings.EqualFold(key, "version"):
			folded = true
		}
	}) && !folded {
		return ci.Name, ci.Version
	}
	ci.Name, ci.Version = "", ""
	_ = json.Unmarshal(raw, &ci)
	return ci.Name, ci.Version
}

// setString sets *dst to the JSON string v, and leaves it for anything
// else, as encoding/json does with a string field (null, or a value of
// another type: an error it goes past).
func setString(dst *string, v []byte) {
	if s, ok := rawjson.StringValue(v); ok {
		*dst = s
	}
}

// ClientInfoFromMeta is ParseMeta(params).ClientInfo().
func ClientInfoFromMeta(params json.RawMessage) (name, version string) {
	return ParseMeta(params).ClientInfo()
}

// MergeTask layers over on base: each non-empty field of over wins. It
// returns a new Task, or nil when both are nil.
func MergeTask(base, over *store.Task) *store.Task {
	if base == nil && over == nil {
		return nil
	}
	var t store.Task
	if base != nil {
		t = *base
	}
	if over != nil {
		for _, f := range []struct {
			dst *string
			src string
		}{
			{&t.ID, over.ID}, {&t.Name, over.Name}, {&t.Workflow, over.Workflow},
			{&t.TraceID, over.TraceID}, {&t.SpanID, over.SpanID},
		} {
			if f.src != "" {
				*f.dst = f.src
			}
		}
	}
	return &t
}
