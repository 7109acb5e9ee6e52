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
	if s == "" {
		return nil // most requests have none: no split to allocate
	}
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

// MetaClaims reads what a request's _meta claims about it: the task it
// belongs to (traceparent, baggage, and mcptrail's own "io.mcptrail/task",
// which wins over baggage because it names the task on purpose; nil when
// none) and on whose behalf it is made ("io.mcptrail/on_behalf_of"). meta
// is as the gateway's envelope (package ingest/envelope) hands it out:
// valid JSON, no duplicate members, no protocol member in another
// spelling. It reads the members it needs as it walks them, without a map
// of every member: it runs on every request with a _meta, which
// 2026-07-28 clients send with each (their protocol version and
// clientInfo, which are not claims), and that map and its keys were five
// of a tools/call's allocations.
func MetaClaims(meta json.RawMessage) (task *store.Task, onBehalfOf string) {
	var traceparent, baggage, own, obo json.RawMessage
	hasOwn := false
	ok := rawjson.Members(meta, func(k []byte, esc bool, v []byte) bool {
		name := k
		if esc {
			name = []byte(rawjson.Key(k, true))
		}
		// The last of duplicates, as a map would keep it.
		switch string(name) {
		case "traceparent":
			traceparent = v
		case "baggage":
			baggage = v
		case metaTask:
			own, hasOwn = v, true
		case metaOnBehalfOf:
			obo = v
		}
		return true
	})
	if !ok {
		return nil, ""
	}
	tp, _ := rawjson.StringValue(traceparent)
	bg, _ := rawjson.StringValue(baggage)
	onBehalfOf, _ = rawjson.StringValue(obo)
	return taskOf(tp, bg, own, hasOwn), onBehalfOf
}

// taskOf is the task named by a traceparent, a baggage header and
// mcptrail's own claim (own, when hasOwn).
func taskOf(traceparent, baggage string, own json.RawMessage, hasOwn bool) *store.Task {
	var t store.Task
	t.TraceID, t.SpanID, _ = TraceParent(traceparent)

	if b := Baggage(baggage); b != nil {
		t.ID = first(b["mcptrail.task.id"], b["task.id"], b["task"])
		t.Name = b["task.name"]
		t.Workflow = first(b["task.workflow"], b["workflow"])
	}

	if hasOwn {
		var claim struct{ ID, Name, Workflow string }
		var id string
		if json.Unmarshal(own, &id) == nil {
			claim.ID = id
		} else {
			_ = json.Unmarshal(own, &claim) // a malformed claim is no claim
		}
		t = *MergeTask(&t, &store.Task{ID: claim.ID, Name: claim.Name, Workflow: claim.Workflow})
	}

	if t == (store.Task{}) {
		return nil
	}
	return &t
}

func first(s ...string) string {
	for _, v := range s {
		if v != "" {
			return v
		}
	}
	return ""
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
