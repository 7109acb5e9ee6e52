// Command mcpgo is an MCP server built on github.com/mark3labs/mcp-go, the
// most used Go MCP library, for the end-to-end tests of the gateway's
// strict reading of messages. mcp-go decodes with encoding/json, which
// matches member names case-insensitively and keeps the last duplicate:
// the tests send it ambiguous messages through mcptrail and compare what
// the record says with what this server says it executed.
//
// It serves stdio. With -log FILE it appends one JSON line per tool call it
// is about to execute — the id it acted on and the tool it dispatched, with
// the "tag" argument the test puts in each message — so the test reads the
// server's truth, not its own expectations.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"log"
	"os"
	"sync"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"
)

// execLog appends the server's record of what it ran.
type execLog struct {
	mu sync.Mutex
	f  *os.File
}

func (l *execLog) write(v any) {
	if l == nil {
		return
	}
	b, _ := json.Marshal(v)
	l.mu.Lock()
	defer l.mu.Unlock()
	if _, err := l.f.Write(append(b, '\n')); err != nil {
		log.Fatalf("exec log: %v", err)
	}
}

func main() {
	logPath := flag.String("log", "", "append a JSON line per executed tool call to this file")
	flag.Parse()
	var el *execLog
	if *logPath != "" {
		f, err := os.OpenFile(*logPath, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
		if err != nil {
			log.Fatal(err)
		}
		el = &execLog{f: f}
	}
	hooks := &server.Hooks{}
	// The hook runs as the server dispatches the call: id and name are the
	// ones the server acts on.
	hooks.AddBeforeCallTool(func(_ context.Context, id any, req *mcp.CallToolRequest) {
		el.write(map[string]any{"id": id, "tool": req.Params.Name, "tag": req.GetString("tag", "")})
	})
	s := server.NewMCPServer("mcpgo-test", "1.0.0", server.WithToolCapabilities(false), server.WithHooks(hooks))
	for _, t := range []struct {
		name     string
		readOnly bool
	}{{"list_repos", true}, {"delete_repo", false}} {
		name := t.name
		opts := []mcp.ToolOption{mcp.WithDescription(name), mcp.WithString("tag"), mcp.WithReadOnlyHintAnnotation(t.readOnly)}
		if !t.readOnly {
			opts = append(opts, mcp.WithDestructiveHintAnnotation(true))
		}
		s.AddTool(mcp.NewTool(name, opts...), func(_ context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			el.write(map[string]any{"executed": name, "tag": req.GetString("tag", "")})
			return mcp.NewToolResultText(fmt.Sprintf("executed %s", name)), nil
		})
	}
	if err := server.ServeStdio(s); err != nil {
		log.Fatal(err)
	}
}
