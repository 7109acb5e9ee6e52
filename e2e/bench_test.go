package e2e

import (
	"context"
	"os/exec"
	"testing"

	"github.com/mcptrail/mcptrail/internal/callbench"
	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// The whole stdio path as users run it: the go-sdk client starts
// `mcptrail wrap -- everything-server`, and wrap records through the
// daemon's socket. Compared with the same server started directly, in the
// same run.

var simpleText = &mcp.CallToolParams{Name: "test_simple_text"}

func BenchmarkWrapDirect(b *testing.B) {
	cs := benchConnect(b, &mcp.CommandTransport{Command: exec.Command(binary(b, "everything-server"))})
	callbench.Run(b, []*mcp.ClientSession{cs}, simpleText)
}

func BenchmarkWrapStrict(b *testing.B) { benchWrap(b, "strict") }
func BenchmarkWrapBatch(b *testing.B)  { benchWrap(b, "batch") }

func benchWrap(b *testing.B, durability string) {
	in := newInstance(b)
	in.Serve(b, "--durability", durability)
	tr, _ := in.Wrap(b, WrapOptions{Name: "bench", Agent: "bench"}, binary(b, "everything-server"))
	cs := benchConnect(b, tr)
	callbench.Run(b, []*mcp.ClientSession{cs}, simpleText)
}

func benchConnect(b *testing.B, tr mcp.Transport) *mcp.ClientSession {
	c := mcp.NewClient(&mcp.Implementation{Name: "bench", Version: "1"}, nil)
	cs, err := c.Connect(context.Background(), tr, &mcp.ClientSessionOptions{ProtocolVersion: "2025-11-25"})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { cs.Close() })
	return cs
}
