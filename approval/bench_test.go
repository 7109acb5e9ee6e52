package approval_test

import (
	"fmt"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/mcptrail/mcptrail/approval"
	"github.com/mcptrail/mcptrail/ingest"
	"github.com/mcptrail/mcptrail/store"
)

// What approval rules cost a call they do not hold: the Session's own work
// for a tools/call and its response (as ingest's BenchmarkSessionRoundTrip),
// without rules, and with ten rules that match other tools, one of them
// with an argument condition that is evaluated for every call of its tool.

type nopRecorder struct{ n uint64 }

func (r *nopRecorder) Record(*store.Event, bool) (uint64, error) { r.n++; return r.n, nil }

var (
	benchReq  = []byte(`{"jsonrpc":"2.0","id":9,"method":"tools/call","params":{"name":"echo","arguments":{"path":"/srv/notes.txt","text":"benchmark payload of a typical small size"}}}`)
	benchResp = []byte(`{"jsonrpc":"2.0","id":9,"result":{"content":[{"type":"text","text":"benchmark payload of a typical small size"}]}}`)
)

func benchRoundTrip(b *testing.B, hooks ingest.Hooks) {
	s := ingest.NewSession(ingest.SessionInfo{ID: "s", Upstream: "fs"}, &nopRecorder{}, hooks, ingest.Limits{}, nil)
	b.ReportAllocs()
	for b.Loop() {
		s.FromClient(benchReq, nil)
		s.FromServer(benchResp)
	}
}

func BenchmarkRoundTripNoRules(b *testing.B) { benchRoundTrip(b, ingest.Hooks{}) }

// Ten rules for other tools: matched by name only.
func BenchmarkRoundTripTenRulesOtherTools(b *testing.B) {
	var src strings.Builder
	for i := range 10 {
		fmt.Fprintf(&src, "- tool: [write_file_%d, \"delete_*\"]\n  upstream: fs\n  require: approval\n", i)
	}
	benchRoundTrip(b, ingest.Hooks{Approve: benchDesk(b, src.String()).Approve})
}

// A rule for the call's own tool whose argument condition is false: the
// arguments are decoded and the condition evaluated for every such call.
func BenchmarkRoundTripConditionFalse(b *testing.B) {
	benchRoundTrip(b, ingest.Hooks{Approve: benchDesk(b, "- tool: echo\n  when: \"startswith(args.path, '/etc/')\"\n  require: approval\n").Approve})
}

func benchDesk(b *testing.B, rules string) *approval.Desk {
	var cfgs []approval.RuleConfig
	if err := yaml.Unmarshal([]byte(rules), &cfgs); err != nil {
		b.Fatal(err)
	}
	p, err := approval.Compile(cfgs)
	if err != nil {
		b.Fatal(err)
	}
	desk := &approval.Desk{Record: func(*store.Event) (uint64, error) { b.Fatal("a call was held"); return 0, nil }}
	desk.SetPolicy(p)
	return desk
}

// The hook alone, for a call no rule holds: what the gateway adds per call.
func BenchmarkApproveHookOtherTools(b *testing.B) {
	var src strings.Builder
	for i := range 10 {
		fmt.Fprintf(&src, "- tool: [write_file_%d, \"delete_*\"]\n  upstream: fs\n  require: approval\n", i)
	}
	benchHook(b, benchDesk(b, src.String()))
}

func BenchmarkApproveHookConditionFalse(b *testing.B) {
	benchHook(b, benchDesk(b, "- tool: echo\n  when: \"startswith(args.path, '/etc/')\"\n  require: approval\n"))
}

func benchHook(b *testing.B, desk *approval.Desk) {
	params := benchReq[len(`{"jsonrpc":"2.0","id":9,"method":"tools/call","params":`) : len(benchReq)-1]
	ev := &store.Event{Seq: 1, Kind: store.KindRequest, Upstream: "fs", Method: "tools/call", Tool: "echo", Class: "write", Params: params}
	b.ReportAllocs()
	for b.Loop() {
		if desk.Approve(ev, params, "") != nil {
			b.Fatal("held")
		}
	}
}
