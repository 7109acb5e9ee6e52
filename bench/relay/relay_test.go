package main

import (
	"context"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/mcptrail/mcptrail/internal/testkit"
	"github.com/modelcontextprotocol/go-sdk/mcp"
)

var relayBin, upstreamBin string

func TestMain(m *testing.M) {
	testkit.MainWithPrograms(m, map[string]*string{"../relay": &relayBin, "../upstream": &upstreamBin})
}

// A go-sdk client calls bench/upstream through the relay: every answer is
// its own call's, whole, including one far larger than a pipe's buffer.
func TestRelayRoundTrip(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.Command(relayBin, "--", upstreamBin, "--dir", t.TempDir())
	cs, err := mcp.NewClient(&mcp.Implementation{Name: "t", Version: "1"}, nil).Connect(ctx, &mcp.CommandTransport{Command: cmd}, nil)
	if err != nil {
		t.Fatal(err)
	}
	texts := []string{"one", "two", strings.Repeat("large ", 50_000)}
	for _, text := range texts {
		r, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "echo", Arguments: map[string]any{"text": text}})
		if err != nil {
			t.Fatal(err)
		}
		if got := r.Content[0].(*mcp.TextContent).Text; got != text {
			t.Fatalf("echo returned %d bytes %.20q, want %d bytes %.20q", len(got), got, len(text), text)
		}
	}
	r, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "write", Arguments: map[string]any{"name": "f"}})
	if err != nil || r.IsError {
		t.Fatalf("write: %v %+v", err, r)
	}
	// Closing the client's side ends the server and then the relay.
	if err := cs.Close(); err != nil {
		t.Fatal(err)
	}
	if cmd.ProcessState == nil || !cmd.ProcessState.Exited() {
		t.Fatalf("the relay did not exit after its client closed: %v", cmd.ProcessState)
	}
}

// The relay exits with its child's status.
func TestRelayExitStatus(t *testing.T) {
	err := exec.Command(relayBin, "--", "sh", "-c", "exit 7").Run()
	exit, ok := err.(*exec.ExitError)
	if !ok || exit.ExitCode() != 7 {
		t.Fatalf("relay around `exit 7` ended with %v, want status 7", err)
	}
}
