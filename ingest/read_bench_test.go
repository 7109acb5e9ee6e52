package ingest

import (
	"strings"
	"testing"

	"github.com/mcptrail/mcptrail/ingest/envelope"
)

// The reading work per tools/call on serve's path (a stdio upstream in a
// session): inspectPost reads the POST once for routing and the Session,
// the child's answer is read once for the Session and the delivery, and
// the stream knows it holds a response. Before, the same call cost five
// strict readings (the POST twice, the answer three times).
func BenchmarkServeReadsPerCall(b *testing.B) {
	s := NewSession(SessionInfo{ID: "s"}, &nopRecorder{}, defaultHooks(), Limits{}, nil)
	req := []byte(`{"jsonrpc":"2.0","id":9,"method":"tools/call","params":{"_meta":{"progressToken":9},"name":"echo","arguments":{"text":"benchmark payload of a typical small size"}}}`)
	resp := []byte(`{"jsonrpc":"2.0","id":9,"result":{"content":[{"type":"text","text":"benchmark payload of a typical small size"}]}}`)
	b.ReportAllocs()
	for b.Loop() {
		info := inspectPost(req, s.limits)
		info.fromClient(s, req, nil)
		r := s.ReadMessage(resp)
		fwd, _ := s.FromServerRead(&r)
		readOf(fwd, &r, s).Elements()
	}
}

// The strict readings alone of one tools/call and its answer on serve's
// path, without the Session's recording and redaction: as the gateway made
// them before (the POST read by inspectPost and again by the Session, the
// answer read by the Session, by the delivery and by the stream's JSON
// check), and as it makes them now (each once); with a small answer and a
// large one (a 112 KB file a tool read).
func BenchmarkServeReadings(b *testing.B) {
	req := []byte(`{"jsonrpc":"2.0","id":9,"method":"tools/call","params":{"_meta":{"progressToken":9},"name":"echo","arguments":{"text":"benchmark payload of a typical small size"}}}`)
	small := []byte(`{"jsonrpc":"2.0","id":9,"result":{"content":[{"type":"text","text":"benchmark payload of a typical small size"}]}}`)
	large := []byte(`{"jsonrpc":"2.0","id":9,"result":{"content":[{"type":"text","text":"` + strings.Repeat(`lorem ipsum dolor sit amet, consectetur adipiscing elit `, 2000) + `"}]}}`)
	for _, resp := range []struct {
		name string
		msg  []byte
	}{{"small", small}, {"112KB", large}} {
		b.Run(resp.name+"/before-five", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				for range 2 { // inspectPost, then Session.handle
					envelope.Check(req, 0)
					envelope.Parse(req)
				}
				envelope.Check(resp.msg, 0) // Session.handle
				envelope.Parse(resp.msg)
				envelope.Parse(resp.msg) // deliverLocked
				envelope.Parse(resp.msg) // allResponses
			}
		})
		b.Run(resp.name+"/now-two", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				r := envelope.ReadMessage(req, 0, DefaultMaxMessageBytes)
				r.Elements()
				r = envelope.ReadMessage(resp.msg, 0, DefaultMaxMessageBytes)
				r.Elements()
			}
		})
	}
}
