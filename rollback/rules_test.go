package rollback

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mcptrail/mcptrail/store"
)

// toolResult is a tools/call result as the npm servers write them.
func toolResult(text string, structured any, isError bool) json.RawMessage {
	m := map[string]any{"content": []any{map[string]any{"type": "text", "text": text}}}
	if structured != nil {
		m["structuredContent"] = structured
	}
	if isError {
		m["isError"] = true
	}
	b, _ := json.Marshal(m)
	return b
}

// shipped evaluates a shipped rule for a call: its keys, inverse calls and
// (with current reads) whether the state is as the call left it.
type shipped struct {
	t    *testing.T
	rule *ToolRule
	env  map[string]any
}

func shippedRule(t *testing.T, upstream, tool string, args any, result json.RawMessage, prestate map[string]json.RawMessage) *shipped {
	t.Helper()
	rs, err := Builtin()
	if err != nil {
		t.Fatal(err)
	}
	rule := rs.Lookup(upstream, "", tool)
	if rule == nil {
		t.Fatalf("no shipped rule for %s/%s", upstream, tool)
	}
	params, _ := json.Marshal(map[string]any{"name": tool, "arguments": args})
	req := &store.Event{Seq: 41, Kind: store.KindRequest, Tool: tool, Upstream: upstream, Params: params}
	out := &store.Event{Seq: 42, Kind: store.KindCall, Call: 41, Tool: tool, Result: result, Outcome: store.OutcomeOK}
	env, err := rule.baseEnv(req, out)
	if err != nil {
		t.Fatal(err)
	}
	pre := map[string]any{}
	for _, rc := range rule.capture {
		raw, ok := prestate[rc.name]
		if !ok {
			t.Fatalf("%s needs capture read %s", tool, rc.name)
		}
		v, err := viewOf(raw, rc.missing)
		if err != nil {
			t.Fatalf("capture %s: %v", rc.name, err)
		}
		pre[rc.name] = v
	}
	env["prestate"] = pre
	return &shipped{t: t, rule: rule, env: env}
}

func (s *shipped) inverse() string {
	s.t.Helper()
	calls, err := s.rule.render(s.env)
	if err != nil {
		s.t.Fatal(err)
	}
	var parts []string
	for _, c := range calls {
		parts = append(parts, c.Tool+" "+string(c.Args))
	}
	return strings.Join(parts, "\n")
}

func (s *shipped) keys() string {
	k, err := s.rule.keysOf(s.env)
	if err != nil {
		s.t.Fatal(err)
	}
	return strings.Join(k, " ")
}

// expect evaluates the rule's expectation with current reads.
func (s *shipped) expect(current map[string]json.RawMessage) bool {
	s.t.Helper()
	cur := map[string]any{}
	for _, rc := range s.rule.check {
		v, err := viewOf(current[rc.name], rc.missing)
		if err != nil {
			s.t.Fatalf("check %s: %v", rc.name, err)
		}
		cur[rc.name] = v
	}
	s.env["current"] = cur
	v, err := s.rule.expect.render(s.env)
	if err != nil {
		s.t.Fatal(err)
	}
	if l, ok := v.([]any); ok {
		return truthy(all(l))
	}
	return truthy(v)
}

func all(l []any) bool {
	for _, e := range l {
		if !truthy(e) {
			return false
		}
	}
	return true
}

func enoent(p string) json.RawMessage {
	return toolResult("ENOENT: no such file or directory, open '"+p+"'", nil, true)
}

func fsText(s string) json.RawMessage { return toolResult(s, map[string]any{"content": s}, false) }

func TestShippedFilesystemRules(t *testing.T) {
	// write_file over an existing file: write the old text back.
	s := shippedRule(t, "filesystem", "write_file", map[string]any{"path": "/r/a.txt", "content": "new\n"}, fsText("Successfully wrote to /r/a.txt"),
		map[string]json.RawMessage{"file": fsText("old\r\n")})
	if got := s.inverse(); got != `write_file {"content":"old\r\n","path":"/r/a.txt"}` {
		t.Errorf("write_file existing: %s", got)
	}
	if s.keys() != "file:/r/a.txt" || !s.expect(map[string]json.RawMessage{"file": fsText("new\n")}) || s.expect(map[string]json.RawMessage{"file": fsText("edited\n")}) {
		t.Error("write_file keys or expect")
	}
	// write_file of a new file: quarantine it.
	s = shippedRule(t, "mcp-server-filesystem", "write_file", map[string]any{"path": "/r/sub/new.txt", "content": "x"}, fsText("ok"),
		map[string]json.RawMessage{"file": enoent("/r/sub/new.txt")})
	want := `create_directory {"path":"/r/sub/.mcptrail-quarantine"}` + "\n" +
		`move_file {"destination":"/r/sub/.mcptrail-quarantine/41-new.txt","source":"/r/sub/new.txt"}`
	if got := s.inverse(); got != want {
		t.Errorf("write_file new:\n%s\nwant\n%s", got, want)
	}
	if s.expect(map[string]json.RawMessage{"file": enoent("/r/sub/new.txt")}) {
		t.Error("a file gone since is not as the call left it")
	}
	// edit_file: the state after is the text before with the reported diff applied.
	diff := "```diff\nIndex: /r/a.txt\n===================================================================\n--- /r/a.txt\toriginal\n+++ /r/a.txt\tmodified\n@@ -1,2 +1,2 @@\n a\n-b\n+c\n```\n\n"
	s = shippedRule(t, "filesystem", "edit_file", map[string]any{"path": "/r/a.txt", "edits": []any{map[string]any{"oldText": "b", "newText": "c"}}}, fsText(diff),
		map[string]json.RawMessage{"file": fsText("a\r\nb\r\n")})
	if got := s.inverse(); got != `write_file {"content":"a\r\nb\r\n","path":"/r/a.txt"}` {
		t.Errorf("edit_file: %s", got)
	}
	if !s.expect(map[string]json.RawMessage{"file": fsText("a\nc\n")}) || s.expect(map[string]json.RawMessage{"file": fsText("a\nc\nmore\n")}) {
		t.Error("edit_file expect")
	}
	// create_directory that existed: nothing to undo.
	s = shippedRule(t, "filesystem", "create_directory", map[string]any{"path": "/r/d"}, fsText("ok"), map[string]json.RawMessage{"dir": fsText("isDirectory: true")})
	if got := s.inverse(); got != "" {
		t.Errorf("create_directory existing: %s", got)
	}
	// move_file: move it back.
	s = shippedRule(t, "filesystem", "move_file", map[string]any{"source": "/r/a", "destination": "/r/b/"}, fsText("ok"), nil)
	if got := s.inverse(); got != `move_file {"destination":"/r/a","source":"/r/b/"}` || s.keys() != "file:/r/a file:/r/b" {
		t.Errorf("move_file: %s / %s", got, s.keys())
	}
}

func TestShippedMemoryRules(t *testing.T) {
	ent := func(name string, obs ...string) map[string]any {
		o := []any{}
		for _, x := range obs {
			o = append(o, x)
		}
		return map[string]any{"name": name, "entityType": "person", "observations": o}
	}
	rel := func(from, typ, to string) map[string]any {
		return map[string]any{"from": from, "relationType": typ, "to": to}
	}
	mem := func(v map[string]any) json.RawMessage {
		b, _ := json.Marshal(v)
		return toolResult(string(b), v, false)
	}
	// create_entities: delete only what the result says was new.
	s := shippedRule(t, "memory", "create_entities", map[string]any{"entities": []any{ent("A"), ent("B")}},
		mem(map[string]any{"entities": []any{ent("B")}}), nil)
	if got := s.inverse(); got != `delete_entities {"entityNames":["B"]}` || s.keys() != "entity:B" {
		t.Errorf("create_entities: %s / %s", got, s.keys())
	}
	// add_observations: delete what was added.
	s = shippedRule(t, "memory", "add_observations", map[string]any{"observations": []any{map[string]any{"entityName": "A", "contents": []any{"x", "y"}}}},
		mem(map[string]any{"results": []any{map[string]any{"entityName": "A", "addedObservations": []any{"y"}}}}), nil)
	if got := s.inverse(); got != `delete_observations {"deletions":[{"entityName":"A","observations":["y"]}]}` {
		t.Errorf("add_observations: %s", got)
	}
	if s.keys() != "entity:A/observation/y" {
		t.Errorf("keys: %s", s.keys())
	}
	if !s.expect(map[string]json.RawMessage{"nodes": mem(map[string]any{"entities": []any{ent("A", "x", "y")}, "relations": []any{}})}) {
		t.Error("add_observations expect")
	}
	// delete_entities: recreate the entities and every relation they had.
	pre := mem(map[string]any{"entities": []any{ent("A", "o1")}, "relations": []any{rel("A", "knows", "B"), rel("C", "likes", "A")}})
	s = shippedRule(t, "memory", "delete_entities", map[string]any{"entityNames": []any{"A", "Ghost"}}, mem(map[string]any{"success": true}), map[string]json.RawMessage{"nodes": pre})
	want := `create_entities {"entities":[{"entityType":"person","name":"A","observations":["o1"]}]}` + "\n" +
		`create_relations {"relations":[{"from":"A","relationType":"knows","to":"B"},{"from":"C","relationType":"likes","to":"A"}]}`
	if got := s.inverse(); got != want {
		t.Errorf("delete_entities:\n%s\nwant\n%s", got, want)
	}
	// delete_observations: add back only those that were there.
	s = shippedRule(t, "memory", "delete_observations", map[string]any{"deletions": []any{
		map[string]any{"entityName": "A", "observations": []any{"o1", "never"}},
		map[string]any{"entityName": "Ghost", "observations": []any{"z"}},
	}}, mem(map[string]any{"success": true}), map[string]json.RawMessage{"nodes": pre})
	if got := s.inverse(); got != `add_observations {"observations":[{"contents":["o1"],"entityName":"A"}]}` {
		t.Errorf("delete_observations: %s", got)
	}
	// delete_relations: recreate only those that existed.
	s = shippedRule(t, "memory", "delete_relations", map[string]any{"relations": []any{rel("A", "knows", "B"), rel("A", "hates", "B")}},
		mem(map[string]any{"success": true}), map[string]json.RawMessage{"nodes": pre})
	if got := s.inverse(); got != `create_relations {"relations":[{"from":"A","relationType":"knows","to":"B"}]}` {
		t.Errorf("delete_relations: %s", got)
	}
	if !strings.Contains(s.keys(), "entity:A/relation/knows/B") || !strings.Contains(s.keys(), "entity:B/relation/knows/A") {
		t.Errorf("relation keys: %s", s.keys())
	}
}

func TestRulesLoadAndOverride(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "fs.yaml"), []byte(`
server: filesystem
match: [my-files]
vars:
  quarantine: /q
on_capture_failure: block
tools:
  secret_tool:
    class: write
    irreversible: it sends email
`), 0o600)
	rs, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	r := rs.Lookup("my-files", "", "write_file")
	if r == nil || r.Policy() != PolicyBlock {
		t.Fatalf("override: %+v", r)
	}
	s := &shipped{t: t, rule: r}
	params, _ := json.Marshal(map[string]any{"name": "write_file", "arguments": map[string]any{"path": "/r/n", "content": "x"}})
	s.env, _ = r.baseEnv(&store.Event{Seq: 5, Params: params}, &store.Event{Result: fsText("ok")})
	s.env["prestate"] = map[string]any{"file": map[string]any{"exists": false}}
	if got := s.inverse(); !strings.Contains(got, `"destination":"/q/5-n"`) {
		t.Fatalf("vars override: %s", got)
	}
	if rs.Lookup("filesystem", "", "secret_tool").Irreversible == "" {
		t.Fatal("an added tool")
	}
	if rs.Classify("filesystem", "", "read_text_file", nil) != "read" || rs.Classify("nosuch", "", "x", nil) != "" || rs.Classify("fs", "secure-filesystem-server", "read_text_file", nil) != "read" {
		t.Fatal("Classify")
	}
	if got := rs.ServerFor("", "memory-server"); got == nil || got.Server != "memory" {
		t.Fatal("match by server name")
	}
	if env := rs.EnvNames(); len(env) != 1 || env[0] != "MEMORY_FILE_PATH" {
		t.Fatalf("EnvNames: %v", env)
	}
	for _, bad := range []string{
		"tools: {}",
		"server: x\ntools: {w: {class: write}}",
		"server: x\ntools: {w: {class: nope, irreversible: y}}",
		"server: x\nbogus: 1",
		"server: x\ntools: {w: {class: write, irreversible: y, check: [{name: a, tool: t}]}}",
		"server: x\ntools: {w: {class: write, inverse: [{tool: t, args: {a: '{{ nope( }}'}}]}}",
	} {
		if _, err := Parse("bad.yaml", []byte(bad)); err == nil {
			t.Errorf("accepted: %s", bad)
		}
	}
}
