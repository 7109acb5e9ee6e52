package main

import (
	"context"
	"fmt"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mcptrail/mcptrail/internal/testkit"
	"github.com/modelcontextprotocol/go-sdk/mcp"
)

var upstreamBin string

func TestMain(m *testing.M) {
	testkit.MainWithPrograms(m, map[string]*string{"../upstream": &upstreamBin})
}

// Go-sdk clients call bench/upstream through the bridge, several sessions
// at once: each answer is its own call's, each session has its own child,
// and closing a session ends its child.
func TestBridgeRoundTrip(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	b := newBridge([]string{upstreamBin, "--dir", t.TempDir()})
	srv := httptest.NewServer(b)
	defer srv.Close()
	defer b.closeAll()

	client := mcp.NewClient(&mcp.Implementation{Name: "t", Version: "1"}, nil)
	const n = 3
	sessions := make([]*mcp.ClientSession, n)
	for i := range sessions {
		cs, err := client.Connect(ctx, &mcp.StreamableClientTransport{Endpoint: srv.URL}, nil)
		if err != nil {
			t.Fatal(err)
		}
		sessions[i] = cs
	}
	b.mu.Lock()
	pids := map[int]bool{}
	for _, s := range b.sessions {
		pids[s.cmd.Process.Pid] = true
	}
	b.mu.Unlock()
	if len(pids) != n {
		t.Fatalf("%d sessions have %d children, want one each", n, len(pids))
	}

	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i, cs := range sessions {
		wg.Go(func() {
			for j := range 20 {
				text := fmt.Sprintf("session %d call %d", i, j)
				if j == 7 {
					text = strings.Repeat("large ", 50_000)
				}
				r, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "echo", Arguments: map[string]any{"text": text}})
				if err != nil {
					errs <- err
					return
				}
				if got := r.Content[0].(*mcp.TextContent).Text; got != text {
					errs <- fmt.Errorf("echo returned %.30q, want %.30q", got, text)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}

	first := sessions[0]
	var child *session
	b.mu.Lock()
	child = b.sessions[first.ID()]
	b.mu.Unlock()
	if child == nil {
		t.Fatalf("no session %q in the bridge", first.ID())
	}
	if err := first.Close(); err != nil {
		t.Fatal(err)
	}
	if child.cmd.ProcessState == nil {
		t.Fatal("closing the session did not end its child")
	}
	if b.get(first.ID()) != nil {
		t.Fatal("the closed session is still served")
	}
	if _, err := sessions[1].CallTool(ctx, &mcp.CallToolParams{Name: "echo", Arguments: map[string]any{"text": "still here"}}); err != nil {
		t.Fatalf("another session after one closed: %v", err)
	}
}
