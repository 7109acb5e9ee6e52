package store_test

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mcptrail/mcptrail/ingest"
	"github.com/mcptrail/mcptrail/store"
)

// recorder is the daemon's Recorder, minus the daemon.
type recorder struct{ s *store.Store }

func (r recorder) Record(ev *store.Event, durable bool) (uint64, error) {
	if durable {
		return r.s.Append(ev)
	}
	return r.s.AppendNoWait(ev)
}

// The gateway fails closed: while the store cannot write, a tool call is
// refused with a JSON-RPC error and not forwarded; once it can, calls go
// through again and the record holds an alert about the outage.
func TestGatewayFailsClosedWhenTheStoreCannotWrite(t *testing.T) {
	st, err := store.Open(filepath.Join(t.TempDir(), "mcptrail.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	sess := ingest.NewSession(ingest.SessionInfo{ID: "s1", Upstream: "fs", Transport: "stdio"}, recorder{st}, ingest.Hooks{}, ingest.Limits{}, nil)
	if err := sess.Start(); err != nil {
		t.Fatal(err)
	}
	call := func(id string) (fwd, reply []byte) {
		return sess.FromClient([]byte(`{"jsonrpc":"2.0","id":`+id+`,"method":"tools/call","params":{"name":"write_file","arguments":{}}}`), nil)
	}
	if fwd, reply := call("1"); fwd == nil || reply != nil {
		t.Fatalf("healthy store: forward %q reply %q", fwd, reply)
	}

	store.FailCommits(st, errors.New("no space left on device"))
	fwd, reply := call("2")
	if fwd != nil {
		t.Fatalf("a call was forwarded although it could not be recorded: %s", fwd)
	}
	if !strings.Contains(string(reply), `"id":2`) || !strings.Contains(string(reply), "audit record could not be written") || !strings.Contains(string(reply), "no space left") {
		t.Fatalf("refusal: %s", reply)
	}

	store.FailCommits(st, nil)
	if fwd, reply := call("3"); fwd == nil || reply != nil {
		t.Fatalf("recovered store: forward %q reply %q", fwd, reply)
	}
	st.Flush()
	page, err := st.Query(store.Query{Kind: store.KindAlert})
	if err != nil || len(page.Events) != 1 || !strings.Contains(page.Events[0].Detail, "events not recorded: 1,") {
		t.Fatalf("outage alert: %+v, %v", page.Events, err)
	}
	if r, err := st.Verify(); err != nil || !r.OK {
		t.Fatalf("Verify: %+v %v", r, err)
	}
}
