package ingest

import "testing"

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
