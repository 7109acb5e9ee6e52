package approval

import (
	"bytes"
	"encoding/json"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/mcptrail/mcptrail/store"
)

// FuzzRules: any `approvals:` list either compiles or is refused with an
// error, and a compiled policy matches any request without panicking.
func FuzzRules(f *testing.F) {
	f.Add([]byte("- tool: write_file\n  require: approval\n"), []byte(`{"arguments":{"path":"/etc/x"}}`))
	f.Add([]byte("- require: approval\n  hours: 23:30-00:10\n  when: \"len(args.path) > 3 and startswith(args.path, '/')\"\n  class: [write, delete]\n"), []byte(`{"arguments":[1]}`))
	f.Add([]byte("- require: approval\n  when: \"parse(args.x).y\"\n  approvers: 16\n  timeout: 24h\n"), []byte(`{"arguments":{"x":"{\"y\":true}"}}`))
	f.Fuzz(func(t *testing.T, rules, params []byte) {
		var cfgs []RuleConfig
		if yaml.Unmarshal(rules, &cfgs) != nil {
			return
		}
		p, err := Compile(cfgs)
		if err != nil {
			return
		}
		ev := &store.Event{Kind: store.KindRequest, Tool: "write_file", Upstream: "fs", Class: "write", Params: params}
		for _, h := range []int{0, 12, 23} {
			p.Match(ev, time.Date(2026, 1, 1, h, 59, 0, 0, time.UTC))
		}
	})
}

// FuzzParamsSHA256: the hash of valid JSON does not depend on its layout.
func FuzzParamsSHA256(f *testing.F) {
	f.Add([]byte(`{"name":"w","arguments":{"b":1.50,"a":"<x>"}}`))
	f.Add([]byte(`[1, "\u2028", {"z": null, "a": [true, false]}]`))
	f.Fuzz(func(t *testing.T, raw []byte) {
		if !json.Valid(raw) {
			ParamsSHA256(raw) // must not panic
			return
		}
		var out bytes.Buffer
		if json.Indent(&out, raw, " ", "\t") != nil {
			return
		}
		if ParamsSHA256(raw) != ParamsSHA256(out.Bytes()) {
			t.Fatalf("%q and its indented form hash differently", raw)
		}
	})
}
