// Command upstream is the one stdio MCP server every configuration of
// bench/run talks to, directly or through a bridge. It has two tools:
//
//   - echo {text}: returns text (read-only);
//   - write {name, content}: writes content (a small payload; 256 bytes of
//     filler when content is empty) to DIR/name, overwriting it (not
//     read-only, idempotent).
//
// DIR is --dir, else $BENCH_UPSTREAM_DIR, else a directory made under the
// system's temporary directory on first use.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/modelcontextprotocol/go-sdk/mcp"
)

type echoIn struct {
	Text string `json:"text" jsonschema:"the text to return"`
}

type writeIn struct {
	Name    string `json:"name" jsonschema:"file name under the server's directory (no path separators)"`
	Content string `json:"content,omitempty" jsonschema:"what to write; 256 bytes of filler when empty"`
}

// filler is the default payload of write.
var filler = strings.Repeat("mcptrail bench payload 0123456789abcdef\n", 7)[:256]

func main() {
	dir := flag.String("dir", os.Getenv("BENCH_UPSTREAM_DIR"), "directory write writes into (default $BENCH_UPSTREAM_DIR, else a new temporary directory)")
	flag.Parse()
	log.SetFlags(0)
	log.SetPrefix("bench-upstream: ")

	var (
		once    sync.Once
		dirErr  error
		baseDir = *dir
	)
	ensureDir := func() (string, error) {
		once.Do(func() {
			if baseDir == "" {
				baseDir, dirErr = os.MkdirTemp("", "bench-upstream-")
				return
			}
			dirErr = os.MkdirAll(baseDir, 0o700)
		})
		return baseDir, dirErr
	}

	f := false
	t := true
	s := mcp.NewServer(&mcp.Implementation{Name: "bench-upstream", Version: "1"}, nil)
	mcp.AddTool(s, &mcp.Tool{
		Name:        "echo",
		Description: "Returns its text argument.",
		Annotations: &mcp.ToolAnnotations{ReadOnlyHint: true},
	}, func(_ context.Context, _ *mcp.CallToolRequest, in echoIn) (*mcp.CallToolResult, any, error) {
		return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: in.Text}}}, nil, nil
	})
	mcp.AddTool(s, &mcp.Tool{
		Name:        "write",
		Description: "Writes content (256 bytes of filler when empty) to the file name in the server's directory, overwriting it.",
		Annotations: &mcp.ToolAnnotations{ReadOnlyHint: false, DestructiveHint: &t, IdempotentHint: true, OpenWorldHint: &f},
	}, func(_ context.Context, _ *mcp.CallToolRequest, in writeIn) (*mcp.CallToolResult, any, error) {
		if in.Name == "" || in.Name != filepath.Base(in.Name) || in.Name == "." || in.Name == ".." {
			return nil, nil, errors.New("name must be a plain file name")
		}
		d, err := ensureDir()
		if err != nil {
			return nil, nil, err
		}
		content := in.Content
		if content == "" {
			content = filler
		}
		if err := os.WriteFile(filepath.Join(d, in.Name), []byte(content), 0o600); err != nil {
			return nil, nil, err
		}
		return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: fmt.Sprintf("wrote %d bytes to %s", len(content), in.Name)}}}, nil, nil
	})
	if err := s.Run(context.Background(), &mcp.StdioTransport{}); err != nil && !errors.Is(err, context.Canceled) {
		// A client hanging up ends the session; anything else is worth a line.
		if !strings.Contains(err.Error(), "EOF") && !strings.Contains(err.Error(), "closed") {
			log.Print(err)
			os.Exit(1)
		}
	}
}
