package ui

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/mcptrail/mcptrail/approval"
	"github.com/mcptrail/mcptrail/store"
)

// heldDesk is a real desk over the fixture's store, holding one call whose
// arguments try to drive the terminal.
func heldDesk(t *testing.T, f *fixture, edit func(*approval.Desk)) (*approval.Desk, func() (*store.Authorization, error)) {
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
	if edit != nil {
		edit(desk)
	}
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
	desk, wait := heldDesk(t, f, nil)

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

// TestDeskScreenShowsState: the desk shows what the held call's resource
// holds now (the daemon's Desk.State, redacted there): read from the
// server when the call was held, or as the newest recorded change left
// it, labelled so; and escapes it like the arguments.
func TestDeskScreenShowsState(t *testing.T) {
	at := time.Date(2026, 12, 7, 1, 2, 3, 0, time.UTC)
	for _, tc := range []struct {
		name  string
		state approval.State
		label string
	}{
		{"read", approval.State{Read: true, Tool: "write_file", Time: at}, "now (read from the server at 01:02:03, when the call was held):"},
		{"recorded", approval.State{Call: 41, Tool: "write_file", Time: at}, "now, as call 41 (write_file) left it at 2026-12-07 01:02:03:"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			demoRecord(f)
			f.flush()
			asked := make(chan uint64, 1)
			desk, _ := heldDesk(t, f, func(d *approval.Desk) {
				d.Resources = func(req *store.Event, _ string) []string { return []string{"file:/etc/motd"} }
				d.State = func(seq uint64) (*approval.State, error) {
					asked <- seq
					st := tc.state
					st.Key, st.Text = "file:/etc/motd", "welcome\npassword=[REDACTED:password]\n\u001b]0;evil\u0007bye\n"
					return &st, nil
				}
			})
			held := desk.Pending()
			if len(held) != 1 || <-asked != held[0].Seq {
				t.Fatalf("the desk did not ask for the held call's state: %+v", held)
			}
			opts := testOptions(f.st, RoleViewer)
			opts.Approvals = desk
			v := start(t, opts)
			v.waitFor("1 held (P)")
			v.keys("P")
			v.waitFor("would change: file:/etc/motd")
			v.waitFor(tc.label)
			v.waitFor("password=[REDACTED:password]")
			v.waitFor("bye")
			if strings.Contains(string(v.seen), "\x1b]0;evil") {
				t.Fatal("the state reached the terminal raw")
			}
		})
	}
}
