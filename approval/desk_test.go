package approval

import (
	"encoding/json"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/mcptrail/mcptrail/store"
)

// A desk over a real store file, with one rule for write_file.
type deskFixture struct {
	t    *testing.T
	st   *store.Store
	desk *Desk
}

func newDesk(t *testing.T, rules string) *deskFixture {
	t.Helper()
	st, err := store.Open(filepath.Join(t.TempDir(), "a.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	f := &deskFixture{t: t, st: st}
	f.desk = &Desk{Record: func(ev *store.Event) (uint64, error) { return st.Record(ev, true) }}
	f.desk.SetPolicy(compileYAML(t, rules))
	return f
}

const oneWriteRule = `
- name: writes
  tool: write_file
  require: approval
  approvers: 1
  timeout: 1m
`

// request records a write_file request and asks the desk about it.
func (f *deskFixture) request(path string) (*store.Event, json.RawMessage, *ticket) {
	f.t.Helper()
	params := json.RawMessage(`{"name":"write_file","arguments":{"path":"` + path + `","content":"x"}}`)
	ev := &store.Event{Kind: store.KindRequest, Session: "s1", Upstream: "fs", Method: "tools/call", Tool: "write_file", Class: "write", Params: params}
	if _, err := f.st.Record(ev, true); err != nil {
		f.t.Fatal(err)
	}
	h := f.desk.Approve(ev, params, "")
	if h == nil {
		return ev, params, nil
	}
	return ev, params, h.(*ticket)
}

var (
	alice  = Approver{ID: "SHA256:alice", Role: RoleOperator, Via: "ssh"}
	bob    = Approver{ID: "SHA256:bob", Role: RoleOperator, Via: "ssh"}
	viewer = Approver{ID: "SHA256:viewer", Role: "viewer", Via: "ssh"}
)

func (f *deskFixture) kinds(call uint64) []string {
	f.t.Helper()
	if err := f.st.Flush(); err != nil {
		f.t.Fatal(err)
	}
	page, err := f.st.Query(store.Query{Limit: 1000})
	if err != nil {
		f.t.Fatal(err)
	}
	var out []string
	for _, e := range page.Events {
		if e.Seq == call || e.Call == call {
			out = append(out, e.Kind)
		}
	}
	return out
}

func TestDeskApproveReleasesExactlyThatCall(t *testing.T) {
	f := newDesk(t, oneWriteRule)
	if _, _, h := f.request("/tmp/other"); h == nil {
		t.Fatal("write_file not held")
	}
	req, params, h := f.request("/tmp/x")
	twin, _, h2 := f.request("/tmp/x")
	if got := f.desk.Pending(); len(got) != 3 || got[0].Seq != twin.Seq || got[1].Seq != req.Seq {
		t.Fatalf("pending, newest first: %+v", got)
	}
	if _, err := f.desk.Decide(req.Seq, strings.Repeat("0", 64), alice, true, ""); !errors.Is(err, ErrMismatch) {
		t.Fatalf("an approval of other params: %v", err)
	}
	if _, err := f.desk.Decide(req.Seq, ParamsSHA256(params), viewer, true, ""); !errors.Is(err, ErrNotAllowed) {
		t.Fatalf("a viewer's approval: %v", err)
	}
	if _, err := f.desk.Decide(req.Seq, ParamsSHA256(params), alice, true, ""); err != nil {
		t.Fatal(err)
	}
	auth, err := h.Wait()
	if err != nil || auth == nil || auth.Approver != alice.ID || auth.Approval == 0 {
		t.Fatalf("released with %+v, %v", auth, err)
	}
	// Not again, and not its twin.
	if _, err := f.desk.Decide(req.Seq, ParamsSHA256(params), alice, true, ""); !errors.Is(err, ErrNotHeld) {
		t.Fatalf("a replayed approval: %v", err)
	}
	select {
	case <-h2.done:
		t.Fatal("the approval released the identical twin")
	default:
	}
	if k := f.kinds(req.Seq); strings.Join(k, ",") != "request,approval_requested,approved" {
		t.Errorf("record %v", k)
	}
	approved, err := f.st.Get(auth.Approval)
	if err != nil || approved.Kind != store.KindApproved || approved.Authorization.Approver != alice.ID || approved.Approval.ParamsSHA256 != ParamsSHA256(params) {
		t.Errorf("the authorization names %+v, %v", approved, err)
	}
}

func TestDeskTwoApproversNeedTwoKeys(t *testing.T) {
	f := newDesk(t, `
- tool: write_file
  require: approval
  approvers: 2
`)
	req, _, h := f.request("/tmp/x")
	if _, err := f.desk.Decide(req.Seq, "", alice, true, ""); err != nil {
		t.Fatal(err)
	}
	if _, err := f.desk.Decide(req.Seq, "", alice, true, ""); err == nil || !strings.Contains(err.Error(), "already approved by SHA256:alice") {
		t.Fatalf("the same key twice: %v", err)
	}
	select {
	case <-h.done:
		t.Fatal("released after one approver")
	default:
	}
	p, err := f.desk.Decide(req.Seq, "", bob, true, "")
	if err != nil || len(p.Approvers) != 2 {
		t.Fatal(p, err)
	}
	if auth, err := h.Wait(); err != nil || auth.Approver != "SHA256:alice,SHA256:bob" {
		t.Fatalf("%+v %v", auth, err)
	}
	if k := f.kinds(req.Seq); strings.Join(k, ",") != "request,approval_requested,approved,approved" {
		t.Errorf("record %v", k)
	}
}

func TestDeskDenyNamedKeysAndPolicy(t *testing.T) {
	f := newDesk(t, `
- tool: write_file
  require: approval
  approved_by: ["SHA256:bob"]
`)
	req, _, h := f.request("/tmp/x")
	if _, err := f.desk.Decide(req.Seq, "", alice, false, "no"); !errors.Is(err, ErrNotAllowed) {
		t.Fatalf("an operator the rule does not name: %v", err)
	}
	// The rules change while the call is held: it can no longer be
	// approved, only denied.
	f.desk.SetPolicy(compileYAML(t, `
- tool: write_file
  require: approval
  approved_by: ["SHA256:bob"]
  timeout: 2m
`))
	if _, err := f.desk.Decide(req.Seq, "", bob, true, ""); err == nil || !strings.Contains(err.Error(), "rules changed") {
		t.Fatalf("an approval under another policy: %v", err)
	}
	if _, err := f.desk.Decide(req.Seq, "", bob, false, "  not today "); err != nil {
		t.Fatal(err)
	}
	_, err := h.Wait()
	if err == nil || !strings.HasPrefix(err.Error(), "denied by SHA256:bob at ") || !strings.HasSuffix(err.Error(), ": not today") {
		t.Fatalf("the client reads %v", err)
	}
	if k := f.kinds(req.Seq); strings.Join(k, ",") != "request,approval_requested,denied" {
		t.Errorf("record %v", k)
	}
}

func TestDeskTimeoutCancelAndRecover(t *testing.T) {
	f := newDesk(t, `
- tool: write_file
  require: approval
  timeout: 1s
`)
	req, _, h := f.request("/tmp/x")
	select {
	case <-h.done:
	case <-time.After(30 * time.Second):
		t.Fatal("a call held with a 1s timeout still waits after 30s")
	}
	if _, err := h.Wait(); err == nil || !strings.Contains(err.Error(), "no approval within 1s") {
		t.Fatalf("timed out with %v", err)
	}
	if k := f.kinds(req.Seq); strings.Join(k, ",") != "request,approval_requested,expired" {
		t.Errorf("record %v", k)
	}
	req2, _, h2 := f.request("/tmp/y")
	h2.Cancel("the session ended")
	if _, err := h2.Wait(); err == nil || !strings.Contains(err.Error(), "the session ended") {
		t.Fatalf("cancelled with %v", err)
	}
	if _, err := f.desk.Decide(req2.Seq, "", alice, true, ""); !errors.Is(err, ErrNotHeld) {
		t.Fatalf("approving a cancelled call: %v", err)
	}

	// A hold the daemon never ended (it crashed): a new desk ends it.
	req3, _, _ := f.request("/tmp/z")
	next := &Desk{Record: func(ev *store.Event) (uint64, error) { return f.st.Record(ev, true) }}
	if err := f.st.Flush(); err != nil {
		t.Fatal(err)
	}
	n, err := next.Recover(f.st)
	if err != nil || n != 1 {
		t.Fatalf("recovered %d, %v", n, err)
	}
	if k := f.kinds(req3.Seq); strings.Join(k, ",") != "request,approval_requested,expired" {
		t.Errorf("record %v", k)
	}
	if n, _ := next.Recover(f.st); n != 0 {
		t.Errorf("a second recovery ended %d again", n)
	}
}

func TestParamsSHA256Canonical(t *testing.T) {
	a := ParamsSHA256(json.RawMessage(`{"name":"w","arguments":{"b":1.50,"a":"<x>"}}`))
	b := ParamsSHA256(json.RawMessage(` { "arguments" : { "a" : "\u003cx>", "b" : 1.50 }, "name" : "w" } `))
	if a != b {
		t.Errorf("the same params in another layout hash differently")
	}
	if a == ParamsSHA256(json.RawMessage(`{"name":"w","arguments":{"b":1.5,"a":"<x>"}}`)) {
		t.Errorf("1.50 and 1.5 hash alike: numbers must be kept as written")
	}
}

func compileYAML(t testing.TB, src string) *Policy {
	t.Helper()
	var cfgs []RuleConfig
	if err := yaml.Unmarshal([]byte(src), &cfgs); err != nil {
		t.Fatal(err)
	}
	p, err := Compile(cfgs)
	if err != nil {
		t.Fatal(err)
	}
	return p
}
