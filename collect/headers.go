package collect

import (
	"github.com/mcptrail/mcptrail/siem"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Headers a collector reads, as indexes into headers.v.
const (
	hOrigin = iota
	hHost
	hSeq
	hKind
	hFormat
	hVerifierKey
	hSHA256
	hSize
	hExact
	nHeaders
)

var headerNames = [nHeaders]string{
	hOrigin: siem.HeaderOrigin, hHost: siem.HeaderHost, hSeq: siem.HeaderSeq, hKind: siem.HeaderKind,
	hFormat: siem.HeaderFormat, hVerifierKey: siem.HeaderVerifierKey, hSHA256: siem.HeaderSHA256,
	hSize: siem.HeaderSize, hExact: siem.HeaderExact,
}

// headers are the Kafka record headers a collector reads, the first of a
// repeated one counting. An array, not a map: the collector reads them for
// every record of the fleet (a map cost it about 1 µs a record).
type headers struct {
	v    [nHeaders][]byte
	seen uint16 // bit i: v[i] was set (an exact header, even empty, replaces the value)
}

// set records header key's value unless the record had it already.
func (h *headers) set(key string, v []byte) {
	for i, name := range headerNames {
		if key == name {
			if h.seen&(1<<i) == 0 {
				h.seen |= 1 << i
				h.v[i] = v
			}
			return
		}
	}
}

// has reports whether header i was set.
func (h *headers) has(i int) bool { return h.seen&(1<<i) != 0 }

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
