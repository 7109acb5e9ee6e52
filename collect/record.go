package collect

import (
	"fmt"
	"strconv"

	"github.com/mcptrail/mcptrail/siem"
	"github.com/mcptrail/mcptrail/store"
	segjson "github.com/segmentio/encoding/json"
)

// Limits on what a record may carry: anyone who can produce into the topic
// can send anything.
const (
	maxOriginID = 128      // a store id is a ULID (26 characters)
	maxHost     = 255      // a DNS name
	maxKey      = 1024     // a note verifier key is about 80 bytes
	maxRecord   = 64 << 20 // bytes of one record's value (or exact header)
)

// Record is one Kafka record decoded: whose it is and what it says. An
// event's Event is as the origin recorded it, with its origin seq and
// hashes; a checkpoint's is a synthetic event of kind checkpoint with the
// note in Detail.
type Record struct {
	Origin string // the origin store's id
	Host   string
	Seq    uint64
	Kind   string
	Key    string // on a checkpoint: the verifier key the origin says it signs with
	Event  store.Event
	prev   [32]byte // Event.PrevHash, decoded (events only)
	hash   [32]byte // Event.Hash, decoded
}

// DecodeRecord reads a record the Kafka sink produced: key, headers and
// value. It checks that the parts agree and are well-formed; whether the
// record belongs in its origin's chain is the collector's question. The
// error says what is wrong, for the alert.
func DecodeRecord(key, value []byte, headers map[string][]byte) (*Record, error) {
	r, h := new(Record), headersOfMap(headers)
	if err := r.decode(key, value, &h); err != nil {
		return nil, err
	}
	return r, nil
}

// decode is DecodeRecord into r, which it overwrites whole: the merger
// decodes every record of the fleet into the one Record it keeps (a
// Record is about 600 bytes, and the store keeps its own copy of what is
// merged).
func (r *Record) decode(key, value []byte, h *headers) error {
	*r = Record{Origin: string(h.v[hOrigin]), Host: string(h.v[hHost]), Kind: string(h.v[hKind]), Key: string(h.v[hVerifierKey])}
	switch {
	case r.Origin == "" || len(r.Origin) > maxOriginID:
		return fmt.Errorf("origin header of %d bytes: want 1 to %d", len(r.Origin), maxOriginID)
	case string(key) != r.Origin:
		return fmt.Errorf("record key %.64q is not its origin header %q", key, r.Origin)
	case len(r.Host) > maxHost:
		return fmt.Errorf("host header of %d bytes", len(r.Host))
	case len(r.Key) > maxKey:
		return fmt.Errorf("verifier key header of %d bytes", len(r.Key))
	}
	if f := string(h.v[hFormat]); f != "" && f != string(siem.FormatJSONL) {
		return fmt.Errorf("format %.16q: a collector reads jsonl records", f)
	}
	seq, err := strconv.ParseUint(string(h.v[hSeq]), 10, 64)
	if err != nil || seq == 0 {
		return fmt.Errorf("seq header %.24q: want a positive integer", h.v[hSeq])
	}
	r.Seq = seq
	body := value
	if h.has(hExact) {
		body = h.v[hExact]
	}
	if len(body) > maxRecord {
		return fmt.Errorf("record of %d bytes", len(body))
	}
	// segmentio's decoder: what encoding/json decodes, at a fraction of the
	// cost (the collector decodes every event of the fleet). Any difference
	// would show as a hash that does not match, never as a silent change.
	if err := segjson.Unmarshal(body, &r.Event); err != nil {
		return fmt.Errorf("value is not an event: %v", err)
	}
	ev := &r.Event
	switch {
	case ev.Seq != seq:
		return fmt.Errorf("value's seq %d is not its header's %d", ev.Seq, seq)
	case ev.Kind != r.Kind:
		return fmt.Errorf("value's kind %.32q is not its header's %.32q", ev.Kind, r.Kind)
	case ev.Origin != nil:
		return fmt.Errorf("value already names an origin (a collected event forwarded again)")
	}
	if r.hash, err = hash32(ev.Hash); err != nil {
		return fmt.Errorf("hash: %v", err)
	}
	if r.Kind == store.KindCheckpoint {
		if ev.Detail == "" {
			return fmt.Errorf("checkpoint without its note")
		}
		return nil
	}
	if r.prev, err = hash32(ev.PrevHash); err != nil {
		return fmt.Errorf("prev_hash: %v", err)
	}
	return nil
}

func hash32(s string) ([32]byte, error) {
	var h [32]byte
	if len(s) != 2*len(h) {
		return h, fmt.Errorf("%.70q is not 64 hex digits", s)
	}
	for i := range h { // hex.DecodeString would allocate, for each hash of every event
		hi, ok1 := unhex(s[2*i])
		lo, ok2 := unhex(s[2*i+1])
		if !ok1 || !ok2 {
			return h, fmt.Errorf("%.70q is not 64 hex digits", s)
		}
		h[i] = hi<<4 | lo
	}
	return h, nil
}

func unhex(c byte) (byte, bool) {
	switch {
	case '0' <= c && c <= '9':
		return c - '0', true
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10, true
	case 'A' <= c && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}
