package config

import (
	"strings"
	"testing"
	"time"

	"github.com/mcptrail/mcptrail/approval"
	"github.com/mcptrail/mcptrail/store"
)

// TestApprovalRules: `approvals:` compiles into the policy the gateway
// holds calls with, and each mistake is refused with its line.
func TestApprovalRules(t *testing.T) {
	c, err := parse("c.yaml", []byte(`approvals:
  - name: fs-writes
    upstream: filesystem
    tool: [write_file, "edit_*"]
    class: write
    when: "startswith(args.path, '/etc/')"
    require: approval
    approved_by: [operator, "SHA256:2Ct4hnMCbnYF1GmKdcR+Io5UmZ2Vb5b5ajVl0bZ1vhs"]
    approvers: 2
    timeout: 90s
    on_timeout: deny
`))
	if err != nil {
		t.Fatal(err)
	}
	p, err := approval.Compile(c.Approvals)
	if err != nil || p == nil || len(p.Rules) != 1 {
		t.Fatalf("policy %+v, %v", p, err)
	}
	r := p.Rules[0]
	if r.Required() != 2 || r.Timeout() != 90*time.Second {
		t.Errorf("rule %+v", r)
	}
	req := func(tool, path string) *store.Event {
		return &store.Event{Kind: store.KindRequest, Upstream: "filesystem", Tool: tool, Class: "write",
			Params: []byte(`{"name":"` + tool + `","arguments":{"path":"` + path + `"}}`)}
	}
	for _, tc := range []struct {
		ev   *store.Event
		held bool
	}{
		{req("write_file", "/etc/passwd"), true},
		{req("edit_file", "/etc/hosts"), true},
		{req("write_file", "/tmp/x"), false},
		{req("read_file", "/etc/passwd"), false},
	} {
		if got := p.Match(tc.ev, time.Now()) != nil; got != tc.held {
			t.Errorf("%s %s: held %v, want %v", tc.ev.Tool, tc.ev.Params, got, tc.held)
		}
	}
	if p, _ := approval.Compile(nil); p != nil {
		t.Error("no rules compiled into a policy")
	}

	for _, tc := range []struct{ body, want string }{
		{"approvals:\n  - tool: x\n", `c.yaml:2: approvals[0]: require "": want require: approval`},
		{"approvals:\n  - require: approval\n    class: destroy\n", `c.yaml:3: approvals[0]: class "destroy"`},
		{"approvals:\n  - require: approval\n    when: \"args.path ==\"\n", `c.yaml:3: approvals[0]: when:`},
		{"approvals:\n  - require: approval\n    on_timeout: allow\n", `c.yaml:3: approvals[0]: on_timeout "allow": the only choice is deny`},
		{"approvals:\n  - require: approval\n    timeout: 48h\n", `c.yaml:3: approvals[0]: timeout 48h0m0s: want 1s to 24h0m0s`},
		{"approvals:\n  - require: approval\n    hours: 9-17\n", `c.yaml:3: approvals[0]: hours "9-17"`},
		{"approvals:\n  - require: approval\n    approved_by: [alice]\n", `c.yaml:3: approvals[0]: approved_by "alice"`},
		{"approvals:\n  - require: approval\n    approvers: 0\n  - require: approval\n    approvers: 99\n", `c.yaml:5: approvals[1]: approvers 99`},
		{"approvals:\n  - require: approval\n    tool: \"[\"\n", `c.yaml:3: approvals[0]: tool: "[" is not a name or pattern`},
		{"approvals:\n  - require: approval\n    colour: red\n", `c.yaml:3: unknown key "colour" in approvals[0]`},
	} {
		_, err := parse("c.yaml", []byte(tc.body))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: %v, want %q", tc.body, err, tc.want)
		}
	}
}
