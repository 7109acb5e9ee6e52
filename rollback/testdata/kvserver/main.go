// Command kvserver is a small stdio MCP server for rollback's tests: a
// key-value store kept in the JSON file $KV_FILE, so that a second process
// started with the same environment sees the same state.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"log"
	"os"
	"sort"
	"strings"
	"sync"

	"github.com/modelcontextprotocol/go-sdk/mcp"
)

var mu sync.Mutex

func load() map[string]string {
	m := map[string]string{}
	data, err := os.ReadFile(os.Getenv("KV_FILE"))
	if err == nil {
		json.Unmarshal(data, &m)
	}
	return m
}

func save(m map[string]string) error {
	data, _ := json.Marshal(m)
	return os.WriteFile(os.Getenv("KV_FILE"), data, 0o600)
}

// locked reports whether writes to key fail: the keys listed one a line
// in $KV_FILE.lock do, as a full or read-only disk would make them (tests
// of a failed inverse call; the tests may run as root, whom file modes do
// not stop).
func locked(key string) bool {
	data, err := os.ReadFile(os.Getenv("KV_FILE") + ".lock")
	if err != nil {
		return false
	}
	for _, l := range strings.Split(string(data), "\n") {
		if l == key {
			return true
		}
	}
	return false
}

type kv struct {
	Key   string `json:"key"`
	Value string `json:"value,omitempty"`
}

func text(s string) *mcp.CallToolResult {
	return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: s}}}
}

func fail(s string) *mcp.CallToolResult {
	return &mcp.CallToolResult{IsError: true, Content: []mcp.Content{&mcp.TextContent{Text: s}}}
}

// write changes the store under its lock, unless key is locked: change
// says what it did, or why it refused.
func write(key string, change func(m map[string]string) (string, error)) *mcp.CallToolResult {
	mu.Lock()
	defer mu.Unlock()
	if locked(key) {
		return fail(key + " is locked")
	}
	m := load()
	done, err := change(m)
	if err == nil {
		err = save(m)
	}
	if err != nil {
		return fail(err.Error())
	}
	return text(done)
}

func main() {
	if os.Getenv("KV_FILE") == "" {
		log.Fatal(errors.New("KV_FILE is not set"))
	}
	srv := mcp.NewServer(&mcp.Implementation{Name: "kv-server", Version: "1.0.0"}, nil)
	t, f := true, false
	mcp.AddTool(srv, &mcp.Tool{Name: "get", Annotations: &mcp.ToolAnnotations{ReadOnlyHint: true}},
		func(_ context.Context, _ *mcp.CallToolRequest, in kv) (*mcp.CallToolResult, any, error) {
			mu.Lock()
			defer mu.Unlock()
			v, ok := load()[in.Key]
			if !ok {
				return fail("no such key: " + in.Key), nil, nil
			}
			return text(v), nil, nil
		})
	mcp.AddTool(srv, &mcp.Tool{Name: "list", Annotations: &mcp.ToolAnnotations{ReadOnlyHint: true}},
		func(_ context.Context, _ *mcp.CallToolRequest, _ struct{}) (*mcp.CallToolResult, any, error) {
			mu.Lock()
			defer mu.Unlock()
			m := load()
			var keys []string
			for k := range m {
				keys = append(keys, k+"="+m[k])
			}
			sort.Strings(keys)
			return text(strings.Join(keys, "\n")), nil, nil
		})
	mcp.AddTool(srv, &mcp.Tool{Name: "put", Annotations: &mcp.ToolAnnotations{ReadOnlyHint: f, DestructiveHint: &t}},
		func(_ context.Context, _ *mcp.CallToolRequest, in kv) (*mcp.CallToolResult, any, error) {
			return write(in.Key, func(m map[string]string) (string, error) {
				m[in.Key] = in.Value
				return "stored " + in.Key, nil
			}), nil, nil
		})
	mcp.AddTool(srv, &mcp.Tool{Name: "del", Annotations: &mcp.ToolAnnotations{DestructiveHint: &t}},
		func(_ context.Context, _ *mcp.CallToolRequest, in kv) (*mcp.CallToolResult, any, error) {
			return write(in.Key, func(m map[string]string) (string, error) {
				if _, ok := m[in.Key]; !ok {
					return "", errors.New("no such key: " + in.Key)
				}
				delete(m, in.Key)
				return "deleted " + in.Key, nil
			}), nil, nil
		})
	// mystery changes things nobody has a rule for.
	mcp.AddTool(srv, &mcp.Tool{Name: "mystery"},
		func(_ context.Context, _ *mcp.CallToolRequest, _ struct{}) (*mcp.CallToolResult, any, error) {
			return text("did something"), nil, nil
		})
	if err := srv.Run(context.Background(), &mcp.StdioTransport{}); err != nil {
		log.Print(err)
	}
}
