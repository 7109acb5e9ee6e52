package ui

import (
	"encoding/json"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/mcptrail/mcptrail/approval"
	"github.com/mcptrail/mcptrail/store"
)

// heldDesk is a real desk over the fixture's store, holding one call whose
// arguments try to drive the terminal.
func heldDesk(t *testing.T, f *fixture) (*approval.Desk, func() (*store.Authorization, error)) {
	t.Helper()
	var cfgs []approval.RuleConfig
	if err := yaml.Unmarshal([]byte("- name: writes\n  tool: write_file\n  require: approval\n"), &cfgs); err != nil {
		t.Fatal(err)
	}
	p, err := approval.Compile(cfgs)
	if err != nil {
		t.Fatal(err)
	}
	desk := &approval.Desk{Record: func(ev *store.Event) (uint64, error) { return f.st.Record(ev, true) }}
	desk.SetPolicy(p)
	params := json.RawMessage(`{"name":"write_file","arguments":{"path":"/etc/motd","content":"pwned\u001b]0;title\u0007"}}`)
	req := base("01JOPS", "night-bot", "T-9")
	req.Kind, req.From, req.Method, req.Tool, req.Class, req.Params = store.KindRequest, store.FromClient, "tools/call", "write_file", "write", params
	if _, err := f.st.Record(&req, true); err != nil {
		t.Fatal(err)
	}
	h := desk.Approve(&req, params, "")
	if h == nil {
		t.Fatal("not held")
	}
	return desk, h.Wait
}

func TestDeskScreen(t *testing.T) {
	f := newFixture(t)
	demoRecord(f)
	f.flush()
	desk, wait := heldDesk(t, f)

	opts := testOptions(f.st, RoleViewer)
	opts.Approvals = desk
	v := start(t, opts)
	v.waitFor("1 held (P)")
	if n := strings.Count(v.clip.String(), "\a"); n != 1 {
		t.Errorf("the console rang %d times for one held call", n)
	}
	v.keys("P")
	v.waitFor("night-bot")
	v.waitFor(`"path": "/etc/motd"`)
	if strings.Contains(string(v.seen), "\x1b]0;title") {
		t.Fatal("the arguments reached the terminal raw")
	}
	v.keys("a")
	v.waitFor("only operators decide held calls")
	if p := desk.Pending(); len(p) != 1 || len(p[0].Approvers) != 0 {
		t.Fatalf("a viewer's key press changed the desk: %+v", p)
	}

	opts.Identity.Role = RoleOperator
	o := start(t, opts)
	o.waitFor("1 held (P)")
	o.keys("P")
	o.waitFor("night-bot")
	o.keys("a")
	o.waitFor("released")
	auth, err := wait()
	if err != nil || auth.Approver != "SHA256:testkeyfingerprint" {
		t.Fatalf("released with %+v, %v", auth, err)
	}
	if len(desk.Pending()) != 0 {
		t.Errorf("still held after its approval")
	}
}
