package ingest

import (
	"fmt"
	"testing"

	"github.com/mcptrail/mcptrail/store"
)

// Every event names the agent as the session, the message and the
// client's latest clientInfo have it, while the session's agent is
// built once and shared between events: a client that renames itself
// mid-session, a message with its own agent, a notification, an outcome.
func TestEventAgents(t *testing.T) {
	rec := &memRecorder{}
	s := NewSession(SessionInfo{ID: "s", Agent: store.Agent{ID: "agent-7"}}, rec, Hooks{}, Limits{}, nil)
	s.FromClient([]byte(`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"t"}}`), nil)
	s.FromServer([]byte(`{"jsonrpc":"2.0","id":1,"result":{}}`))
	s.FromClient([]byte(`{"jsonrpc":"2.0","id":2,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"one","version":"1"}}}`), nil)
	s.FromServer([]byte(`{"jsonrpc":"2.0","id":2,"result":{"protocolVersion":"2025-11-25","capabilities":{},"serverInfo":{"name":"srv","version":"1"}}}`))
	s.FromClient([]byte(`{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"t"}}`), nil)
	s.FromClient([]byte(`{"jsonrpc":"2.0","method":"notifications/progress","params":{"progressToken":1,"progress":1}}`), nil)
	// Renamed in its own _meta, as a 2026-07-28 client may.
	s.FromClient([]byte(`{"jsonrpc":"2.0","id":4,"method":"tools/call","params":{"name":"t","_meta":{"io.modelcontextprotocol/clientInfo":{"name":"two","version":"2"}}}}`), nil)
	s.FromClient([]byte(`{"jsonrpc":"2.0","id":5,"method":"tools/call","params":{"name":"t"}}`), nil)
	s.FromClient([]byte(`{"jsonrpc":"2.0","id":6,"method":"tools/call","params":{"name":"t"}}`), &Overrides{Agent: &store.Agent{ID: "per-message", Name: "named"}})
	s.FromServer([]byte(`{"jsonrpc":"2.0","id":3,"result":{}}`))
	s.FromServer([]byte(`{"jsonrpc":"2.0","id":6,"result":{}}`))

	var got []string
	for _, ev := range rec.evs {
		a := "none"
		if ev.Agent != nil {
			a = fmt.Sprintf("%s/%s/%s/%s", ev.Agent.ID, ev.Agent.Name, ev.Agent.ClientName, ev.Agent.ClientVersion)
		}
		got = append(got, fmt.Sprintf("%s %s %s", ev.Kind, ev.JSONRPCID, a))
	}
	want := []string{
		"request 1 agent-7///",
		"call 1 agent-7///",
		"request 2 agent-7/one/one/1", // initialize's own clientInfo is on it
		"call 2 agent-7/one/one/1",
		"request 3 agent-7/one/one/1",
		"notification  agent-7/one/one/1",
		"request 4 agent-7/one/two/2", // its name was taken from clientInfo before the rename
		"request 5 agent-7/two/two/2",
		"request 6 per-message/named/two/2",
		"call 3 agent-7/one/one/1", // as its request had it
		"call 6 per-message/named/two/2",
	}
	if len(got) != len(want) {
		t.Fatalf("events:\n%q\nwant\n%q", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("event %d: %s, want %s", i, got[i], want[i])
		}
	}
}
