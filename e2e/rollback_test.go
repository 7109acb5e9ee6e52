package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/mcptrail/mcptrail/internal/testkit"
	"github.com/mcptrail/mcptrail/rollback"
	"github.com/mcptrail/mcptrail/store"
)

// Rollback end to end: agent sessions on the real npm servers, under wrap
// and under serve, then `mcptrail rollback plan` and `apply`, checked
// against the files and the memory graph themselves.

// rbWorld is an agent's world: a directory tree the filesystem server may
// change, a quarantine directory (also allowed) where rollback moves what
// the agent created, and the memory server's graph file.
type rbWorld struct {
	root, quarantine, memory string
}

func newRBWorld(t testing.TB, in *Instance) *rbWorld {
	t.Helper()
	base := t.TempDir()
	w := &rbWorld{root: filepath.Join(base, "tree"), quarantine: filepath.Join(base, "quarantine"), memory: filepath.Join(base, "memory.jsonl")}
	for _, d := range []string{w.root, filepath.Join(w.root, "docs"), w.quarantine} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	files := map[string]string{
		"README.md":     "# project\n\nfirst version\n",
		"notes.txt":     "alpha\r\nbeta\r\ngamma\r\n", // CRLF: edit_file normalizes it; rollback must not
		"docs/guide.md": "step one\nstep two\n",
		"config.json":   `{"replicas": 3}`,
	}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(w.root, name), []byte(content), 0o640); err != nil {
			t.Fatal(err)
		}
	}
	graph := strings.Join([]string{
		`{"type":"entity","name":"Alice","entityType":"person","observations":["likes tea","lives in Lyon"]}`,
		`{"type":"entity","name":"Bob","entityType":"person","observations":["works at ACME"]}`,
		`{"type":"entity","name":"ACME","entityType":"company","observations":[]}`,
		`{"type":"relation","from":"Alice","to":"Bob","relationType":"knows"}`,
		`{"type":"relation","from":"Bob","to":"ACME","relationType":"works_at"}`,
	}, "\n")
	if err := os.WriteFile(w.memory, []byte(graph), 0o600); err != nil {
		t.Fatal(err)
	}
	// The shipped rules, with the quarantine outside the tree, so that the
	// tree itself comes back byte for byte.
	dir := filepath.Join(in.ConfigHome, "mcptrail", "rollback")
	os.MkdirAll(dir, 0o700)
	rules := fmt.Sprintf("server: filesystem\nvars:\n  quarantine: %q\n", w.quarantine)
	if err := os.WriteFile(filepath.Join(dir, "quarantine.yaml"), []byte(rules), 0o600); err != nil {
		t.Fatal(err)
	}
	return w
}

// graph is the memory server's graph as sets: entities (each with its
// observations, sorted) and relations.
func graph(t *testing.T, path string) string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var ents, rels []string
	for _, line := range strings.Split(string(data), "\n") {
		if strings.TrimSpace(line) == "" {
			continue
		}
		var item struct {
			Type, Name, EntityType, From, To, RelationType string
			Observations                                   []string
		}
		if err := json.Unmarshal([]byte(line), &item); err != nil {
			t.Fatalf("graph line %q: %v", line, err)
		}
		if item.Type == "entity" {
			obs := slices.Clone(item.Observations)
			sort.Strings(obs)
			ents = append(ents, fmt.Sprintf("%s(%s)%q", item.Name, item.EntityType, obs))
		} else {
			rels = append(rels, item.From+" -"+item.RelationType+"-> "+item.To)
		}
	}
	sort.Strings(ents)
	sort.Strings(rels)
	return strings.Join(ents, "\n") + "\n--\n" + strings.Join(rels, "\n")
}

// agentCall calls a tool and requires success.
func agentCall(t *testing.T, ctx context.Context, cs *mcp.ClientSession, tool string, args map[string]any) *mcp.CallToolResult {
	t.Helper()
	if args == nil {
		args = map[string]any{} // a nil map would go out as "arguments": null
	}
	res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: tool, Arguments: args})
	if err != nil {
		t.Fatalf("%s: %v", tool, err)
	}
	if res.IsError {
		t.Fatalf("%s: tool error %v", tool, res.Content)
	}
	return res
}

// fsAgent writes, edits, moves and creates files under w.root.
func fsAgent(t *testing.T, ctx context.Context, cs *mcp.ClientSession, w *rbWorld) {
	t.Helper()
	p := func(rel string) string { return filepath.Join(w.root, rel) }
	agentCall(t, ctx, cs, "read_text_file", map[string]any{"path": p("README.md")})
	agentCall(t, ctx, cs, "write_file", map[string]any{"path": p("README.md"), "content": "# project\n\nrewritten by the agent\n"})
	agentCall(t, ctx, cs, "edit_file", map[string]any{"path": p("notes.txt"), "edits": []any{map[string]any{"oldText": "beta", "newText": "BETA"}}})
	agentCall(t, ctx, cs, "edit_file", map[string]any{"path": p("notes.txt"), "edits": []any{map[string]any{"oldText": "gamma", "newText": "delta"}}, "dryRun": true})
	agentCall(t, ctx, cs, "write_file", map[string]any{"path": p("new.txt"), "content": "brand new\n"})
	agentCall(t, ctx, cs, "edit_file", map[string]any{"path": p("new.txt"), "edits": []any{map[string]any{"oldText": "brand", "newText": "very"}}})
	agentCall(t, ctx, cs, "create_directory", map[string]any{"path": p("build")})
	agentCall(t, ctx, cs, "write_file", map[string]any{"path": p("build/out.txt"), "content": "artifact"})
	agentCall(t, ctx, cs, "move_file", map[string]any{"source": p("docs/guide.md"), "destination": p("guide-moved.md")})
	agentCall(t, ctx, cs, "write_file", map[string]any{"path": p("config.json"), "content": `{"replicas": 0}`})
	agentCall(t, ctx, cs, "list_directory", map[string]any{"path": w.root})
}

// memoryAgent creates and deletes entities, relations and observations.
func memoryAgent(t *testing.T, ctx context.Context, cs *mcp.ClientSession) {
	t.Helper()
	ent := func(name, typ string, obs ...string) map[string]any {
		return map[string]any{"name": name, "entityType": typ, "observations": obs}
	}
	rel := func(from, typ, to string) map[string]any {
		return map[string]any{"from": from, "to": to, "relationType": typ}
	}
	agentCall(t, ctx, cs, "read_graph", nil)
	agentCall(t, ctx, cs, "create_entities", map[string]any{"entities": []any{ent("Carol", "person", "new hire"), ent("Alice", "person", "duplicate")}})
	agentCall(t, ctx, cs, "create_relations", map[string]any{"relations": []any{rel("Carol", "reports_to", "Alice"), rel("Alice", "knows", "Bob")}})
	agentCall(t, ctx, cs, "add_observations", map[string]any{"observations": []any{map[string]any{"entityName": "Alice", "contents": []any{"plays chess", "likes tea"}}}})
	agentCall(t, ctx, cs, "delete_observations", map[string]any{"deletions": []any{map[string]any{"entityName": "Alice", "observations": []any{"lives in Lyon", "never said"}}}})
	agentCall(t, ctx, cs, "delete_relations", map[string]any{"relations": []any{rel("Alice", "knows", "Bob")}})
	agentCall(t, ctx, cs, "delete_entities", map[string]any{"entityNames": []any{"Bob"}})
}

// sessionID finds the record's session of an agent.
func sessionID(t *testing.T, in *Instance, agent string) string {
	t.Helper()
	res := in.MustRun(t, "sessions", "--json", "--agent", agent)
	var s struct{ Session string }
	line, _, _ := strings.Cut(res.Stdout, "\n")
	if err := json.Unmarshal([]byte(line), &s); err != nil || s.Session == "" {
		t.Fatalf("no session of %s: %q", agent, res.Stdout)
	}
	return s.Session
}

// rbPlan runs `rollback plan ARGS --json`.
func rbPlan(t *testing.T, in *Instance, args ...string) *rollback.Plan {
	t.Helper()
	res := in.MustRun(t, append([]string{"rollback", "plan", "--json"}, args...)...)
	var p rollback.Plan
	if err := json.Unmarshal([]byte(res.Stdout), &p); err != nil || p.ID == "" {
		t.Fatalf("rollback plan printed no plan: %v\n%s", err, res.Stdout)
	}
	// The CLI contract: plan, and steps with reverts, tool, status.
	var raw struct {
		Plan  string                       `json:"plan"`
		Steps []map[string]json.RawMessage `json:"steps"`
	}
	json.Unmarshal([]byte(res.Stdout), &raw)
	for _, s := range raw.Steps {
		for _, k := range []string{"reverts", "tool", "status"} {
			if _, ok := s[k]; !ok {
				t.Fatalf("a step of `rollback plan --json` lacks %q: %s", k, res.Stdout)
			}
		}
	}
	return &p
}

func stepStatuses(p *rollback.Plan) string {
	var s []string
	for _, st := range p.Steps {
		s = append(s, st.Tool+":"+st.Status)
	}
	return strings.Join(s, " ")
}

func requireAllReady(t *testing.T, p *rollback.Plan) {
	t.Helper()
	for _, st := range p.Steps {
		if st.Status != rollback.StatusReady && st.Status != rollback.StatusSkip {
			t.Fatalf("step %d (%s, call %d) is %s: %s\nplan: %s", st.N, st.Tool, st.Reverts, st.Status, st.Reason, stepStatuses(p))
		}
	}
	if !p.Checked {
		t.Fatalf("the plan did not re-read the current state: %s", p.Note)
	}
}

// checkAudited checks the record of an applied plan: one approval (at
// least) by the OS user, and a rollback_step for each inverse call, naming
// the call it reverts, the plan and the approver, each answered ok.
func checkAudited(t *testing.T, in *Instance, p *rollback.Plan) {
	t.Helper()
	events := in.Export(t)
	steps := map[uint64]bool{}
	approvals := 0
	for _, st := range p.Steps {
		if st.Status == rollback.StatusReady {
			steps[st.Reverts] = true
		}
	}
	outcomes := map[uint64]*store.Event{}
	for i, ev := range events {
		if ev.Kind == store.KindCall && ev.Call != 0 {
			outcomes[ev.Call] = &events[i]
		}
	}
	seen := map[uint64]int{}
	for _, ev := range events {
		switch {
		case ev.Kind == store.KindApproval && ev.Task != nil && ev.Task.ID == p.ID:
			approvals++
			if ev.Authorization == nil || ev.Authorization.Approver == "" || !ev.Authorization.Reviewed {
				t.Errorf("approval without an approver: %+v", ev)
			}
		case ev.Kind == store.KindRollbackStep && ev.Task != nil && ev.Task.ID == p.ID:
			if !steps[ev.Reverts] {
				t.Errorf("rollback_step %d reverts call %d, which the plan has no ready step for", ev.Seq, ev.Reverts)
			}
			if ev.Authorization == nil || ev.Authorization.Approver == "" {
				t.Errorf("rollback_step %d names no approver", ev.Seq)
			}
			if out := outcomes[ev.Seq]; out == nil || out.Outcome != store.OutcomeOK || out.Reverts != ev.Reverts {
				t.Errorf("rollback_step %d: outcome %+v", ev.Seq, out)
			}
			seen[ev.Reverts]++
		}
	}
	if approvals == 0 {
		t.Error("no approval event")
	}
	for _, st := range p.Steps {
		if st.Status == rollback.StatusReady && seen[st.Reverts] != len(st.Calls) {
			t.Errorf("call %d (%s): %d rollback_step events, want %d", st.Reverts, st.Tool, seen[st.Reverts], len(st.Calls))
		}
	}
}

func requireVerify(t *testing.T, in *Instance) {
	t.Helper()
	if res := in.Run(t, "verify"); res.Code != 0 {
		t.Fatalf("verify after the rollback: exit %d\n%s%s", res.Code, res.Stdout, res.Stderr)
	}
}

func wrapClient(t *testing.T, ctx context.Context, in *Instance, opts WrapOptions, env []string, server ...string) *mcp.ClientSession {
	t.Helper()
	cmd, _ := in.WrapCommand(t, opts, server...)
	cmd.Env = append(cmd.Env, env...)
	client := mcp.NewClient(&mcp.Implementation{Name: "rollback-e2e-agent", Version: "1.0"}, nil)
	return connect(t, ctx, client, &mcp.CommandTransport{Command: cmd}, nil)
}

// TestRollbackWrap: agent sessions under `mcptrail wrap`, whose processes
// are gone by the time of the rollback: apply starts the recorded commands.
// TestRollbackWrap runs under both durabilities: under batch, wrap forwards
// a request before the daemon has given it its seq, and pre-state capture
// asks for that seq (the pre-state names its call).
func TestRollbackWrap(t *testing.T) {
	t.Parallel()
	for _, durability := range []string{"strict", "batch"} {
		t.Run(durability, func(t *testing.T) {
			t.Parallel()
			rollbackWrap(t, durability)
		})
	}
}

func rollbackWrap(t *testing.T, durability string) {
	fsServer, memServer := nodeServer(t, "mcp-server-filesystem"), nodeServer(t, "mcp-server-memory")
	ctx := scenarioContext(t)
	in := newInstance(t)
	w := newRBWorld(t, in)
	if durability != "strict" {
		in.Serve(t, "--durability", durability)
	}
	treeBefore, graphBefore := testkit.Tree(t, w.root), graph(t, w.memory)

	cs := wrapClient(t, ctx, in, WrapOptions{Name: "filesystem", Agent: "fs-agent"}, nil, fsServer, w.root, w.quarantine)
	fsAgent(t, ctx, cs, w)
	cs.Close()
	ms := wrapClient(t, ctx, in, WrapOptions{Name: "memory", Agent: "mem-agent"}, []string{"MEMORY_FILE_PATH=" + w.memory}, memServer)
	memoryAgent(t, ctx, ms)
	ms.Close()
	if testkit.DiffTrees(treeBefore, testkit.Tree(t, w.root)) == "" || graph(t, w.memory) == graphBefore {
		t.Fatal("the agents changed nothing")
	}
	in.WaitEvents(t, allAnswered)

	var applied []string
	for _, agent := range []string{"fs-agent", "mem-agent"} {
		sid := sessionID(t, in, agent)
		plan := rbPlan(t, in, "--session", sid)
		requireAllReady(t, plan)
		if agent == "fs-agent" {
			if got := stepStatuses(plan); got != "write_file:ready move_file:ready write_file:ready create_directory:ready edit_file:ready write_file:ready edit_file:skip edit_file:ready write_file:ready" {
				t.Errorf("filesystem plan: %s", got)
			}
			// The review shows what each step restores.
			human := in.MustRun(t, "rollback", "show", plan.ID)
			for _, want := range []string{"-rewritten by the agent", "+first version", `{"replicas": 0}`} {
				if !strings.Contains(human.Stdout, want) {
					t.Errorf("rollback show lacks %q:\n%s", want, human.Stdout)
				}
			}
		}
		res := in.Run(t, "rollback", "apply", plan.ID, "--yes")
		if res.Code != 0 {
			t.Fatalf("rollback apply %s: exit %d\n%s%s", agent, res.Code, res.Stdout, res.Stderr)
		}
		done := rbShow(t, in, plan.ID)
		if done.State != rollback.PlanApplied {
			t.Fatalf("plan state %s: %s", done.State, done.Error)
		}
		checkAudited(t, in, done)
		applied = append(applied, plan.ID)
	}
	if d := testkit.DiffTrees(treeBefore, testkit.Tree(t, w.root)); d != "" {
		t.Fatalf("the tree is not restored:\n%s", d)
	}
	if got := graph(t, w.memory); got != graphBefore {
		t.Fatalf("the memory graph is not restored:\n%s\nwant\n%s", got, graphBefore)
	}
	// What the agent created is in the quarantine, not lost.
	if q := testkit.Tree(t, w.quarantine); len(q) < 3 {
		t.Errorf("quarantine: %v", q)
	}

	// A second apply of the same plans changes nothing and records nothing.
	before := len(in.Export(t))
	for _, id := range applied {
		if res := in.Run(t, "rollback", "apply", id, "--yes"); res.Code != 0 {
			t.Fatalf("second apply of %s: exit %d %s", id, res.Code, res.Stderr)
		}
	}
	if after := len(in.Export(t)); after != before {
		t.Errorf("a second apply recorded %d events", after-before)
	}
	if d := testkit.DiffTrees(treeBefore, testkit.Tree(t, w.root)); d != "" {
		t.Fatalf("the second apply changed the tree:\n%s", d)
	}
	if got := graph(t, w.memory); got != graphBefore {
		t.Fatalf("the second apply changed the graph:\n%s", got)
	}
	// A new plan of the same session knows its calls were reverted: never twice.
	plan := rbPlan(t, in, "--session", sessionID(t, in, "fs-agent"))
	for _, st := range plan.Steps {
		if st.Status != rollback.StatusReverted && st.Status != rollback.StatusSkip {
			t.Errorf("re-planned after the rollback: step %d %s %s", st.N, st.Tool, st.Status)
		}
	}
	requireVerify(t, in)
}

func rbShow(t *testing.T, in *Instance, id string) *rollback.Plan {
	t.Helper()
	res := in.MustRun(t, "rollback", "show", id, "--json")
	var p rollback.Plan
	if err := json.Unmarshal([]byte(res.Stdout), &p); err != nil {
		t.Fatal(err)
	}
	return &p
}

// TestRollbackServe: the same agents through `mcptrail serve` (stdio
// upstreams, Streamable HTTP to the client): capture runs on the HTTP
// session's child, and apply through the daemon's configured upstreams.
func TestRollbackServe(t *testing.T) {
	t.Parallel()
	fsServer, memServer := nodeServer(t, "mcp-server-filesystem"), nodeServer(t, "mcp-server-memory")
	ctx := scenarioContext(t)
	in := newInstance(t)
	w := newRBWorld(t, in)
	in.WriteConfig(t, fmt.Sprintf(`upstreams:
  filesystem:
    command: [%q, %q, %q]
  memory:
    command: [%q]
    env: {MEMORY_FILE_PATH: %q}
`, fsServer, w.root, w.quarantine, memServer, w.memory))
	d := in.Serve(t)
	treeBefore, graphBefore := testkit.Tree(t, w.root), graph(t, w.memory)

	httpClient := func(upstream, agent string) *mcp.ClientSession {
		client := mcp.NewClient(&mcp.Implementation{Name: agent, Version: "1.0"}, nil)
		return connect(t, ctx, client, &mcp.StreamableClientTransport{Endpoint: d.Endpoint(upstream)}, nil)
	}
	cs := httpClient("filesystem", "fs-http-agent")
	fsAgent(t, ctx, cs, w)
	cs.Close()
	ms := httpClient("memory", "mem-http-agent")
	memoryAgent(t, ctx, ms)
	ms.Close()
	in.WaitEvents(t, allAnswered)

	for _, agent := range []string{"fs-http-agent", "mem-http-agent"} {
		plan := rbPlan(t, in, "--session", sessionID(t, in, agent))
		requireAllReady(t, plan)
		if res := in.Run(t, "rollback", "apply", plan.ID, "--yes"); res.Code != 0 {
			t.Fatalf("rollback apply: exit %d\n%s%s", res.Code, res.Stdout, res.Stderr)
		}
		checkAudited(t, in, rbShow(t, in, plan.ID))
	}
	if diff := testkit.DiffTrees(treeBefore, testkit.Tree(t, w.root)); diff != "" {
		t.Fatalf("the tree is not restored:\n%s", diff)
	}
	if got := graph(t, w.memory); got != graphBefore {
		t.Fatalf("the memory graph is not restored:\n%s\nwant\n%s", got, graphBefore)
	}
	requireVerify(t, in)
}

// TestRollbackConflict: a file edited outside the agent after its call is
// a conflict; apply reverts what is newer and stops before it, leaving the
// outside edit alone.
func TestRollbackConflict(t *testing.T) {
	t.Parallel()
	fsServer := nodeServer(t, "mcp-server-filesystem")
	ctx := scenarioContext(t)
	in := newInstance(t)
	w := newRBWorld(t, in)
	readme, config := filepath.Join(w.root, "README.md"), filepath.Join(w.root, "config.json")
	origConfig, _ := os.ReadFile(config)

	cs := wrapClient(t, ctx, in, WrapOptions{Name: "filesystem", Agent: "conflict-agent"}, nil, fsServer, w.root, w.quarantine)
	agentCall(t, ctx, cs, "write_file", map[string]any{"path": readme, "content": "by the agent\n"})
	agentCall(t, ctx, cs, "write_file", map[string]any{"path": config, "content": `{"replicas": 0}`})
	cs.Close()
	in.WaitEvents(t, allAnswered)
	// Someone fixes the README by hand afterwards.
	if err := os.WriteFile(readme, []byte("fixed by a human\n"), 0o640); err != nil {
		t.Fatal(err)
	}

	plan := rbPlan(t, in, "--session", sessionID(t, in, "conflict-agent"))
	// The README's history: the agent's write, from the original text.
	var hist struct {
		Key      string
		Versions []struct {
			Call          uint64
			Before, After string
		}
	}
	res := in.MustRun(t, "rollback", "history", fmt.Sprint(plan.Steps[1].Reverts), "--json")
	if err := json.Unmarshal([]byte(res.Stdout), &hist); err != nil || len(hist.Versions) != 1 ||
		hist.Versions[0].Before != "# project\n\nfirst version\n" || hist.Versions[0].After != "by the agent\n" {
		t.Errorf("history of README.md: %v %s", err, res.Stdout)
	}
	if got := stepStatuses(plan); got != "write_file:ready write_file:conflict" {
		t.Fatalf("statuses: %s", got)
	}
	if !strings.Contains(plan.Steps[1].Reason, "changed after the call") {
		t.Errorf("conflict reason: %s", plan.Steps[1].Reason)
	}
	res = in.Run(t, "rollback", "apply", plan.ID, "--yes")
	if res.Code != 1 {
		t.Fatalf("apply of a plan with a conflict: exit %d, want 1\n%s%s", res.Code, res.Stdout, res.Stderr)
	}
	if data, _ := os.ReadFile(readme); string(data) != "fixed by a human\n" {
		t.Fatalf("the conflicting file was overwritten: %q", data)
	}
	if data, _ := os.ReadFile(config); string(data) != string(origConfig) {
		t.Fatalf("the newer step was not applied: %q", data)
	}
	requireVerify(t, in)
}

// TestRollbackInterruptedApply: the daemon dies in the middle of an apply;
// the next apply resumes, sending no inverse call twice.
func TestRollbackInterruptedApply(t *testing.T) {
	t.Parallel()
	fsServer := nodeServer(t, "mcp-server-filesystem")
	ctx := scenarioContext(t)
	in := newInstance(t)
	w := newRBWorld(t, in)
	before := testkit.Tree(t, w.root)

	// A daemon that crashes after the second inverse call.
	cmd := exec.Command(binary(t, "mcptrail"), "serve", "--listen", "127.0.0.1:0")
	cmd.Env = append(in.Env(), "MCPTRAIL_TEST_ROLLBACK_CRASH_AFTER=2")
	crashy := startProc(t, "mcptrail serve (crashes)", cmd)
	testkit.WaitListening(t, crashy, startTimeout)
	cs := wrapClient(t, ctx, in, WrapOptions{Name: "filesystem", Agent: "resume-agent"}, nil, fsServer, w.root, w.quarantine)
	for i, name := range []string{"README.md", "notes.txt", "config.json", "docs/guide.md"} {
		agentCall(t, ctx, cs, "write_file", map[string]any{"path": filepath.Join(w.root, name), "content": fmt.Sprintf("overwritten %d\n", i)})
	}
	cs.Close()
	in.WaitEvents(t, allAnswered)
	plan := rbPlan(t, in, "--session", sessionID(t, in, "resume-agent"))
	requireAllReady(t, plan)

	res := in.Run(t, "rollback", "apply", plan.ID, "--yes")
	if res.Code == 0 {
		t.Fatalf("the apply should have been cut off by the crash:\n%s", res.Stdout)
	}
	select {
	case <-crashy.Exited():
	case <-time.After(stopTimeout):
		t.Fatal("the crashing daemon did not exit")
	}
	if !regexp.MustCompile(`crashing in the middle of a rollback apply`).MatchString(crashy.Stderr.String()) {
		t.Fatalf("the daemon did not crash where it should:\n%s", crashy.Stderr.String())
	}
	mid := testkit.Tree(t, w.root)
	if d := testkit.DiffTrees(before, mid); d == "" {
		t.Fatal("nothing was reverted before the crash")
	}

	// A daemon again (started by the CLI), and the same apply resumes.
	res = in.Run(t, "rollback", "apply", plan.ID, "--yes")
	if res.Code != 0 {
		t.Fatalf("resumed apply: exit %d\n%s%s", res.Code, res.Stdout, res.Stderr)
	}
	if d := testkit.DiffTrees(before, testkit.Tree(t, w.root)); d != "" {
		t.Fatalf("after the resumed apply the tree is not restored:\n%s", d)
	}
	checkAudited(t, in, rbShow(t, in, plan.ID))
	requireVerify(t, in)
}
