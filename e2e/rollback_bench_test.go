package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// BenchmarkRollbackCapture measures what pre-state capture adds to a
// write as users run it: write_file through `mcptrail wrap` to the real
// @modelcontextprotocol/server-filesystem, a strict daemon, with the
// shipped rules (capture: one read_text_file on the same connection, then
// the pre-state stored through the daemon's socket) and with a rules file
// that drops the capture; and the server alone, for scale.
//
//	go test ./e2e -run '^$' -bench RollbackCapture -benchtime 1000x
func BenchmarkRollbackCapture(b *testing.B) {
	server := nodeServer(b, "mcp-server-filesystem")
	for _, mode := range []string{"direct", "wrap-no-capture", "wrap-capture"} {
		b.Run(mode, func(b *testing.B) {
			in := newInstance(b)
			w := newRBWorld(b, in)
			var tr mcp.Transport
			switch mode {
			case "direct":
				tr = &mcp.CommandTransport{Command: exec.Command(server, w.root, w.quarantine)}
			default:
				if mode == "wrap-no-capture" {
					rules := "server: filesystem\ntools:\n  write_file: {class: write, irreversible: \"benchmark without capture\"}\n"
					os.WriteFile(filepath.Join(in.ConfigHome, "mcptrail", "rollback", "nocapture.yaml"), []byte(rules), 0o600)
				}
				in.Serve(b)
				tr, _ = in.Wrap(b, WrapOptions{Name: "filesystem", Agent: "bench"}, server, w.root, w.quarantine)
			}
			cs := benchConnect(b, tr)
			ctx := context.Background()
			write := func(i int) {
				res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "write_file", Arguments: map[string]any{
					"path": filepath.Join(w.root, fmt.Sprintf("f%d.txt", i%20)), "content": fmt.Sprintf("version %d\n", i)}})
				if err != nil || res.IsError {
					b.Fatalf("write_file: %v %v", err, res)
				}
			}
			for i := range 40 {
				write(i)
			}
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				write(i)
			}
		})
	}
}
