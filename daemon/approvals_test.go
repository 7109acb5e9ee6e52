package daemon

import (
	"strings"
	"testing"
	"time"

	"github.com/mcptrail/mcptrail/approval"
	"github.com/mcptrail/mcptrail/config"
	"github.com/mcptrail/mcptrail/internal/testkit"
	"github.com/mcptrail/mcptrail/store"
)

// TestApprovalsOverTheSocket: a wrap's held call (ApprovalWait) is listed
// and decided over the socket, as `mcptrail approvals|approve` and
// `mcptrail ui` do; a cancel refuses it; the metrics count both.
func TestApprovalsOverTheSocket(t *testing.T) {
	cfg := config.Default()
	cfg.Metrics.Listen = "127.0.0.1:0"
	cfg.Approvals = []approval.RuleConfig{{Name: "writes", Tool: approval.Patterns{"write_file"}, Require: "approval"}}
	d, _ := startOpsDaemon(t, cfg)
	c, err := Dial(d.paths.Home)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	request := func() (uint64, string) {
		params := []byte(`{"name":"write_file","arguments":{"path":"/tmp/x"}}`)
		req := &store.Event{Kind: store.KindRequest, Session: "s", Upstream: "fs", Method: "tools/call", Tool: "write_file", Params: params}
		seq, err := d.Record(req, true)
		if err != nil {
			t.Fatal(err)
		}
		return seq, approval.ParamsSHA256(params)
	}
	type result struct {
		auth *store.Authorization
		held bool
		err  error
	}
	wait := func(seq uint64, hash string) chan result {
		ch := make(chan result, 1)
		go func() {
			a, held, err := c.ApprovalWait(seq, hash, "")
			ch <- result{a, held, err}
		}()
		if !testkit.PollUntil(10*time.Second, 10*time.Millisecond, func() bool { l, _ := c.Approvals(); return len(l) == 1 }) {
			t.Fatal("the call was not held")
		}
		return ch
	}

	seq, hash := request()
	if _, _, err := c.ApprovalWait(seq, "", ""); err == nil || !strings.Contains(err.Error(), "not a hex SHA-256") {
		t.Fatalf("a hold without a params hash: %v", err)
	}
	ch := wait(seq, hash)
	if _, err := (ClientDesk{c}).Decide(seq, strings.Repeat("0", 64), approval.Approver{}, true, ""); err == nil || !strings.Contains(err.Error(), "params hash") {
		t.Fatalf("approved other params: %v", err)
	}
	p, err := ClientDesk{c}.Decide(seq, hash, approval.Approver{}, true, "")
	if err != nil || len(p.Approvers) != 1 || !strings.HasPrefix(p.Approvers[0], "user:") {
		t.Fatalf("decided %+v, %v", p, err)
	}
	r := <-ch
	if r.err != nil || !r.held || r.auth == nil || r.auth.Approval == 0 {
		t.Fatalf("the wrap got %+v", r)
	}

	seq, hash = request()
	ch = wait(seq, hash)
	if err := c.ApprovalCancel(seq, "the session ended"); err != nil {
		t.Fatal(err)
	}
	if r := <-ch; r.err == nil || !strings.Contains(r.err.Error(), "refused: the session ended") {
		t.Fatalf("a cancelled hold answered %+v", r)
	}

	families, err := d.ops.metrics.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	counts := map[string]float64{}
	for _, f := range families {
		if f.GetName() != "mcptrail_approvals_total" {
			continue
		}
		for _, m := range f.GetMetric() {
			counts[m.GetLabel()[0].GetValue()] = m.GetCounter().GetValue()
		}
	}
	if counts["approval_requested"] != 2 || counts["approved"] != 1 || counts["denied"] != 1 {
		t.Errorf("mcptrail_approvals_total %v", counts)
	}
}
