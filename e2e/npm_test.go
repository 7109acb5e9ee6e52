package e2e

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mcptrail/mcptrail/internal/testkit"
	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// MCP servers from npm (pinned in node/package.json) under `mcptrail wrap`,
// each compared with a direct connection in the same test.

// nodeServer returns the bin script of an npm-installed server (see
// testkit.NodeServer).
func nodeServer(t testing.TB, name string) string {
	t.Helper()
	return testkit.NodeServer(t, repoRoot, name)
}

// npmStep calls a tool and adds the result to the transcript.
func npmStep(t testing.TB, ctx context.Context, cs *mcp.ClientSession, tr *transcript, tool string, args map[string]any) {
	t.Helper()
	if args == nil {
		args = map[string]any{} // a nil map would go out as "arguments": null
	}
	res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: tool, Arguments: args})
	tr.add(t, "tools/call "+tool, res, err)
}

func requireTools(t testing.TB, tools *mcp.ListToolsResult, names ...string) {
	t.Helper()
	var have []string
	for _, tool := range tools.Tools {
		have = append(have, tool.Name)
	}
	for _, n := range names {
		if !slices.Contains(have, n) {
			t.Fatalf("the server has no tool %q (it has %v): update the test for the pinned version", n, have)
		}
	}
}

// TestNPMFilesystemWrap: @modelcontextprotocol/server-filesystem on a temp dir.
func TestNPMFilesystemWrap(t *testing.T) {
	t.Parallel()
	server := nodeServer(t, "mcp-server-filesystem")
	ctx := scenarioContext(t)
	// One root for both runs, emptied in between, so paths in results agree
	// without normalising them.
	root := t.TempDir()
	reset := func() {
		entries, _ := os.ReadDir(root)
		for _, e := range entries {
			os.RemoveAll(filepath.Join(root, e.Name()))
		}
	}
	const clientName, clientVersion = "mcptrail-e2e-fs", "0.4.2"
	run := func(transport mcp.Transport) (*transcript, int) {
		client := mcp.NewClient(&mcp.Implementation{Name: clientName, Version: clientVersion}, nil)
		// The server asks for the client's roots and serves those.
		client.AddRoots(&mcp.Root{URI: "file://" + root, Name: "root"})
		cs := connect(t, ctx, client, transport, nil)
		tr := &transcript{}
		tr.add(t, "initialize", cs.InitializeResult(), nil)
		tools, err := cs.ListTools(ctx, nil)
		if err != nil {
			t.Fatalf("tools/list: %v", err)
		}
		tr.add(t, "tools/list", tools, nil)
		requireTools(t, tools, "write_file", "read_text_file", "list_directory", "create_directory", "move_file", "search_files")
		notes := filepath.Join(root, "notes.txt")
		npmStep(t, ctx, cs, tr, "write_file", map[string]any{"path": notes, "content": "first line\nsecond line\n"})
		npmStep(t, ctx, cs, tr, "read_text_file", map[string]any{"path": notes})
		npmStep(t, ctx, cs, tr, "create_directory", map[string]any{"path": filepath.Join(root, "sub")})
		npmStep(t, ctx, cs, tr, "move_file", map[string]any{"source": notes, "destination": filepath.Join(root, "sub", "moved.txt")})
		npmStep(t, ctx, cs, tr, "list_directory", map[string]any{"path": root})
		npmStep(t, ctx, cs, tr, "search_files", map[string]any{"path": root, "pattern": "**/*.txt"})
		// Outside the allowed directory: the server refuses (a tool error).
		npmStep(t, ctx, cs, tr, "read_text_file", map[string]any{"path": "/etc/hostname"})
		return tr, commandExitCode(cs.Close())
	}

	direct, directExit := run(&mcp.CommandTransport{Command: exec.Command(server, root)})
	checkSteps(t, direct, map[string][]string{
		"tools/call write_file":     {"Successfully wrote"},
		"tools/call read_text_file": {`first line\nsecond line`},
		"tools/call list_directory": {"[DIR] sub"},
		"tools/call search_files":   {"moved.txt"},
	})
	if _, err := os.Stat(filepath.Join(root, "sub", "moved.txt")); err != nil {
		t.Fatalf("the direct run left no moved file: %v", err)
	}
	reset()

	in := newInstance(t)
	transport, _ := in.Wrap(t, WrapOptions{Name: "filesystem", Agent: "fs-agent"}, server, root)
	viaGateway, wrapExit := run(transport)
	compareTranscripts(t, direct, viaGateway)
	if wrapExit != directExit {
		t.Errorf("mcptrail wrap exited with status %d; the server alone exits with %d", wrapExit, directExit)
	}
	if data, err := os.ReadFile(filepath.Join(root, "sub", "moved.txt")); err != nil || string(data) != "first line\nsecond line\n" {
		t.Errorf("through the gateway the file was not written and moved: %q, %v", data, err)
	}

	ci := indexCalls(in.WaitEvents(t, allAnswered))
	checkToolCallsRecorded(t, ci, viaGateway, recordExpect{upstream: "filesystem", transport: "stdio", agent: "fs-agent", clientName: clientName, clientVersion: clientVersion})
	// The server asked the client for its roots through the gateway.
	if reqs := ci.requests("server", "roots/list", ""); len(reqs) == 0 {
		t.Errorf("no roots/list request from the server in the record")
	}
}

// TestNPMEverythingWrap: @modelcontextprotocol/server-everything.
func TestNPMEverythingWrap(t *testing.T) {
	t.Parallel()
	server := nodeServer(t, "mcp-server-everything")
	ctx := scenarioContext(t)
	run := func(cmd *exec.Cmd) *transcript {
		l := newClientLog()
		// It does not exit when its stdin closes; a second is enough before
		// SIGTERM (a timeout for a stuck process, not a synchronization).
		cs := connect(t, ctx, newConformanceClient(l), &mcp.CommandTransport{Command: cmd, TerminateDuration: time.Second}, nil)
		tr := &transcript{}
		tr.add(t, "initialize", cs.InitializeResult(), nil)
		tools, err := cs.ListTools(ctx, nil)
		if err != nil {
			t.Fatalf("tools/list: %v", err)
		}
		tr.add(t, "tools/list", tools, nil)
		requireTools(t, tools, "echo", "get-sum", "get-tiny-image", "get-annotated-message", "get-resource-reference",
			"get-roots-list", "trigger-sampling-request", "trigger-elicitation-request", "trigger-long-running-operation")
		npmStep(t, ctx, cs, tr, "echo", map[string]any{"message": "hello through mcptrail"})
		npmStep(t, ctx, cs, tr, "get-sum", map[string]any{"a": 2, "b": 3})
		npmStep(t, ctx, cs, tr, "get-tiny-image", nil)
		npmStep(t, ctx, cs, tr, "get-annotated-message", map[string]any{"messageType": "success", "includeImage": true})
		npmStep(t, ctx, cs, tr, "get-resource-reference", map[string]any{"resourceType": "Text", "resourceId": 1})
		npmStep(t, ctx, cs, tr, "get-roots-list", nil)
		npmStep(t, ctx, cs, tr, "trigger-sampling-request", map[string]any{"prompt": "Say hi", "maxTokens": 20})
		npmStep(t, ctx, cs, tr, "trigger-elicitation-request", nil)

		params := &mcp.CallToolParams{Name: "trigger-long-running-operation", Arguments: map[string]any{"duration": 1, "steps": 2}}
		params.SetProgressToken("npm-progress")
		res, err := cs.CallTool(ctx, params)
		tr.add(t, "tools/call trigger-long-running-operation", res, err)
		l.waitFor(t, "2 progress notifications", func() bool { return len(l.progress) >= 2 })
		l.mu.Lock()
		tr.add(t, "notifications/progress", l.progress, nil)
		tr.add(t, "sampling/createMessage requests", l.sampling, nil)
		tr.add(t, "elicitation/create requests", l.elicitations, nil)
		l.mu.Unlock()
		return tr
	}

	direct := run(exec.Command(server))
	checkSteps(t, direct, map[string][]string{
		"tools/call echo":                        {"hello through mcptrail"},
		"tools/call get-sum":                     {"5"},
		"tools/call get-tiny-image":              {`"type":"image"`},
		"tools/call get-roots-list":              {rootURI},
		"tools/call trigger-sampling-request":    {samplingModel, "Say hi"},
		"tools/call trigger-elicitation-request": {"accept"},
	})

	in := newInstance(t)
	cmd, _ := in.WrapCommand(t, WrapOptions{Name: "everything", Agent: "npm-agent"}, server)
	viaGateway := run(cmd)
	// The only normalisation: the server writes the wall-clock time into the
	// resources it makes ("created at 3:32:24 AM"), which differs between runs.
	clock := regexp.MustCompile(`\b\d{1,2}:\d{2}:\d{2}\s?[AP]M\b`)
	normalize := func(s string) string { return clock.ReplaceAllString(s, "<time>") }
	compareTranscripts(t, direct.normalized(normalize), viaGateway.normalized(normalize))

	ci := indexCalls(in.WaitEvents(t, allAnswered))
	checkToolCallsRecorded(t, ci, viaGateway, recordExpect{upstream: "everything", transport: "stdio", agent: "npm-agent", clientName: conformanceClientName, clientVersion: conformanceClientVersion})
	for _, m := range []string{"sampling/createMessage", "elicitation/create", "roots/list"} {
		if reqs := ci.requests("server", m, ""); len(reqs) == 0 {
			t.Errorf("no %s request from the server in the record", m)
		}
	}
}

// checkSteps requires each named step to contain the given substrings.
func checkSteps(t testing.TB, tr *transcript, want map[string][]string) {
	t.Helper()
	for name, subs := range want {
		got, ok := tr.find(name)
		if !ok {
			t.Errorf("transcript has no step %q", name)
			continue
		}
		for _, s := range subs {
			if !strings.Contains(got, s) {
				t.Errorf("%s: want %q in %s", name, s, got)
			}
		}
	}
}
