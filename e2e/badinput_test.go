package e2e

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mcptrail/mcptrail/store"
)

// TestBadInputWrap sends `mcptrail wrap` what no SDK would: a line that is
// not JSON, JSON that is not JSON-RPC, and a line over the configured size
// limit. Each gets a JSON-RPC error where a reply is possible, never reaches
// the server, and is recorded as bad_input; the session goes on.
func TestBadInputWrap(t *testing.T) {
	t.Parallel()
	const limit = 4096
	in := newInstance(t)
	in.WriteConfig(t, fmt.Sprintf("max_message_bytes: %d\n", limit))
	cmd, _ := in.WrapCommand(t, WrapOptions{Name: "conf"}, binary(t, "everything-server"))
	r := startRaw(t, "mcptrail wrap", cmd)
	rawInitialize(t, r, "raw-client")

	// expectError reads the next message, which must be an error response
	// with the given code and an id in ids ("null" matches a missing id too).
	expectError := func(what string, code int, ids ...string) {
		t.Helper()
		m := r.Recv(t, 30*time.Second)
		id := string(m.ID)
		if id == "" {
			id = "null"
		}
		if m.Method != "" || m.Error == nil || m.Error.Code != code || !slices.Contains(ids, id) {
			t.Fatalf("%s: got %+v (error %+v), want an error response with code %d and id in %v", what, m, m.Error, code, ids)
		}
	}

	// A truncated line: a parse error, answered with id null.
	r.Send(t, `{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":`)
	expectError("malformed line", -32700, "null")

	// JSON, but not a JSON-RPC message: an invalid request.
	r.Send(t, `{"hello":"world"}`)
	expectError("not JSON-RPC", -32600, "null")

	// Over max_message_bytes: an invalid request (with its id when the
	// gateway could read it).
	pad := strings.Repeat("x", 2*limit)
	r.Send(t, fmt.Sprintf(`{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"test_simple_text","arguments":{"pad":%q}}}`, pad))
	expectError("over-size line", -32600, "3", "null")

	// A valid request still works, and it is the next thing that comes back:
	// the server never answered the bad lines (it got none of them).
	r.Send(t, `{"jsonrpc":"2.0","id":4,"method":"tools/call","params":{"name":"test_simple_text","arguments":{}}}`)
	m := r.Recv(t, 30*time.Second)
	if string(m.ID) != "4" || m.Error != nil || !strings.Contains(string(m.Result), "This is a simple text response for testing.") {
		t.Fatalf("valid request after bad input: got %+v", m)
	}
	r.Send(t, `{"jsonrpc":"2.0","id":5,"method":"ping"}`)
	if m := r.Recv(t, 30*time.Second); string(m.ID) != "5" || m.Error != nil {
		t.Fatalf("ping after bad input: got %+v, want its response and nothing before it", m)
	}

	r.CloseStdin()
	select {
	case <-r.Exited():
		if r.WaitErr() != nil {
			t.Errorf("mcptrail wrap exited with %v after stdin closed, want status 0", r.WaitErr())
		}
	case <-time.After(stopTimeout):
		t.Fatalf("mcptrail wrap still running %v after its stdin closed", stopTimeout)
	}

	badInputs := func(events []store.Event) (bad []store.Event) {
		for _, ev := range events {
			if ev.Kind == store.KindBadInput {
				bad = append(bad, ev)
			}
		}
		return bad
	}
	events := in.WaitEvents(t, func(events []store.Event) error {
		if n := len(badInputs(events)); n < 3 {
			return fmt.Errorf("%d bad_input events, want 3", n)
		}
		return allAnswered(events)
	})
	var oversize bool
	for _, ev := range badInputs(events) {
		if ev.Detail == "" || ev.Upstream != "conf" || ev.Transport != "stdio" || ev.Session == "" {
			t.Errorf("bad_input seq %d: detail %q upstream %q transport %q session %q; want a reason, conf, stdio, a session", ev.Seq, ev.Detail, ev.Upstream, ev.Transport, ev.Session)
		}
		if ev.Size > limit {
			oversize = true
		}
	}
	if !oversize {
		t.Errorf("no bad_input event has the over-size line's size (> %d)", limit)
	}
	ci := indexCalls(events)
	if reqs := ci.requests(store.FromClient, "tools/call", "test_simple_text"); len(reqs) != 1 {
		t.Errorf("%d tools/call requests recorded, want only the valid one:\n%s", len(reqs), formatEvents(derefs(reqs)))
	}
}
