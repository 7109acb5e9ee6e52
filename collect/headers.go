package collect

import (
	"github.com/mcptrail/mcptrail/siem"
	"github.com/twmb/franz-go/pkg/kgo"
)

// headers are the Kafka record headers a collector reads, the first of a
// repeated one counting. A struct, not a map: the collector reads them for
// every record of the fleet (a map cost it about 1 µs a record).
type headers struct {
	origin, host, seq, kind, format, verifierKey, sha256, size, exact []byte
	seen                                                              uint16 // which were set (an exact header, even empty, replaces the value)
}

// Bits of headers.seen: which headers were set.
const (
	hOrigin = 1 << iota
	hHost
	hSeq
	hKind
	hFormat
	hVerifierKey
	hSHA256
	hSize
	hExact
)

// set records header key's value unless the record had it already.
func (h *headers) set(key string, v []byte) {
	var bit uint16
	var dst *[]byte
	switch key {
	case siem.HeaderOrigin:
		bit, dst = hOrigin, &h.origin
	case siem.HeaderHost:
		bit, dst = hHost, &h.host
	case siem.HeaderSeq:
		bit, dst = hSeq, &h.seq
	case siem.HeaderKind:
		bit, dst = hKind, &h.kind
	case siem.HeaderFormat:
		bit, dst = hFormat, &h.format
	case siem.HeaderVerifierKey:
		bit, dst = hVerifierKey, &h.verifierKey
	case siem.HeaderSHA256:
		bit, dst = hSHA256, &h.sha256
	case siem.HeaderSize:
		bit, dst = hSize, &h.size
	case siem.HeaderExact:
		bit, dst = hExact, &h.exact
	default:
		return
	}
	if h.seen&bit != 0 {
		return
	}
	h.seen |= bit
	*dst = v
}

// recordHeaders reads a Kafka record's headers.
func recordHeaders(rh []kgo.RecordHeader) headers {
	var h headers
	for _, kv := range rh {
		h.set(kv.Key, kv.Value)
	}
	return h
}

// headersOfMap reads a map of headers (Merge's callers: tests, the fuzzer).
func headersOfMap(m map[string][]byte) headers {
	var h headers
	for k, v := range m {
		h.set(k, v)
	}
	return h
}
