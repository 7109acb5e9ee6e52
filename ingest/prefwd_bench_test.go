package ingest

import (
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mcptrail/mcptrail/store"
)

// encodeRecorder does what wrap's recorder does with an event on the
// call's path before it is forwarded (daemon.Client.Record through its
// segment): check the raw fields (ValidRaw) and encode the event
// (store.AppendJSON) into a buffer it reuses, as the segment's mapping is.
type encodeRecorder struct {
	n   uint64
	buf []byte
}

func (r *encodeRecorder) Record(ev *store.Event, _ bool) (uint64, error) {
	if err := ev.ValidRaw(); err != nil {
		return 0, err
	}
	var err error
	if r.buf, err = store.AppendJSON(r.buf[:0], ev); err != nil {
		return 0, err
	}
	r.n++
	return r.n, nil
}

// The whole of what a client's tools/call costs wrap before it is
// forwarded: the strict read, the request event, redaction of the params
// and the event's encoding. The call is then taken off the pending map as
// if answered (its answer's cost is BenchmarkSessionRoundTrip's other half).
func BenchmarkSessionRequestEncoded(b *testing.B) {
	for _, c := range []struct {
		name string
		req  []byte
	}{
		// As bench/loadgen's go-sdk client writes its calls: echo, and write
		// with a 256-byte payload.
		{"echo", []byte(`{"jsonrpc":"2.0","id":9,"method":"tools/call","params":{"name":"echo","arguments":{"text":"session 0 call 17"}}}`)},
		{"write", []byte(`{"jsonrpc":"2.0","id":9,"method":"tools/call","params":{"name":"write","arguments":{"content":"` + strings.Repeat("0123456789abcdef", 16) + `","name":"s0-3"}}}`)},
		// With the _meta of a 2026-07-28 client (BenchmarkSessionRoundTrip's).
		{"meta", []byte(`{"jsonrpc":"2.0","id":9,"method":"tools/call","params":{"_meta":{"traceparent":"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01","io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientInfo":{"name":"c","version":"1"}},"name":"echo","arguments":{"text":"benchmark payload of a typical small size"}}}`)},
	} {
		b.Run(c.name, func(b *testing.B) {
			s := NewSession(SessionInfo{ID: "wrap-1f3a", Upstream: "echo", Transport: "stdio"}, &encodeRecorder{}, defaultHooks(), Limits{}, nil)
			// The client has introduced itself, as every session's has by
			// its first call: its clientInfo is on each event.
			s.FromClient([]byte(`{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"loadgen","version":"1"}}}`), nil)
			s.FromServer([]byte(`{"jsonrpc":"2.0","id":0,"result":{"protocolVersion":"2025-11-25","capabilities":{"tools":{}},"serverInfo":{"name":"upstream","version":"1"}}}`))
			k := key(store.FromClient, []byte("9"))
			b.ReportAllocs()
			cpu := processCPU()
			for b.Loop() {
				if fwd, _ := s.FromClient(c.req, nil); fwd == nil {
					b.Fatal("not forwarded")
				}
				s.take(k)
			}
			// The process's CPU, the collector's included: on a shared
			// machine the wall-clock ns/op also counts time spent waiting
			// for a core.
			b.ReportMetric(float64(processCPU()-cpu)/float64(b.N), "cpu-ns/op")
		})
	}
}

// processCPU is the CPU time the process has used, user and system.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		panic(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
