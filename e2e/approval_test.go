package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/mcptrail/mcptrail/approval"
	"github.com/mcptrail/mcptrail/internal/testkit"
	"github.com/mcptrail/mcptrail/store"
)

// Approval rules hold a call after its request is recorded and before the
// server sees it, until a person decides: @modelcontextprotocol/
// server-filesystem under `mcptrail wrap`, decided with the CLI.

const approvalRules = `approvals:
  - name: fs-writes
    tool: write_file
    require: approval
    timeout: 2m
  - name: fs-mkdir
    tool: create_directory
    require: approval
    timeout: 2s
`

// heldCalls lists what `mcptrail approvals --json` shows.
func heldCalls(t testing.TB, in *Instance) []approval.Pending {
	t.Helper()
	res := in.MustRun(t, "approvals", "--json")
	var out []approval.Pending
	for _, line := range strings.Split(strings.TrimSpace(res.Stdout), "\n") {
		if line == "" {
			continue
		}
		var p approval.Pending
		if err := json.Unmarshal([]byte(line), &p); err != nil {
			t.Fatalf("approvals --json: %v: %s", err, line)
		}
		out = append(out, p)
	}
	return out
}

// waitHeld waits until n calls are held and returns them, newest first.
func waitHeld(t testing.TB, in *Instance, n int) []approval.Pending {
	t.Helper()
	var held []approval.Pending
	if !pollUntil(20*time.Second, func() bool { held = heldCalls(t, in); return len(held) == n }) {
		t.Fatalf("want %d held calls, have %+v", n, held)
	}
	return held
}

type callResult struct {
	res *mcp.CallToolResult
	err error
}

func callAsync(ctx context.Context, cs *mcp.ClientSession, tool string, args map[string]any) <-chan callResult {
	ch := make(chan callResult, 1)
	go func() {
		res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: tool, Arguments: args})
		ch <- callResult{res, err}
	}()
	return ch
}

func fsClient(t *testing.T, ctx context.Context, in *Instance, root string) *mcp.ClientSession {
	server := nodeServer(t, "mcp-server-filesystem")
	client := mcp.NewClient(&mcp.Implementation{Name: "approval-e2e", Version: "1"}, nil)
	client.AddRoots(&mcp.Root{URI: "file://" + root, Name: "root"})
	transport, _ := in.Wrap(t, WrapOptions{Name: "filesystem", Agent: "fs-agent"}, server, root)
	return connect(t, ctx, client, transport, nil)
}

func TestApprovalWrapFilesystem(t *testing.T) {
	t.Parallel()
	ctx := scenarioContext(t)
	in := newInstance(t)
	in.WriteConfig(t, approvalRules)
	in.Serve(t)
	root := t.TempDir()
	cs := fsClient(t, ctx, in, root)
	notes := filepath.Join(root, "notes.txt")
	args := map[string]any{"path": notes, "content": "approved\n"}

	// Held: the server has not seen it.
	first := callAsync(ctx, cs, "write_file", args)
	held := waitHeld(t, in, 1)
	if _, err := os.Stat(notes); !os.IsNotExist(err) {
		t.Fatalf("the file exists while its write is held: %v", err)
	}
	// An identical call is held on its own.
	second := callAsync(ctx, cs, "write_file", args)
	both := waitHeld(t, in, 2)
	firstSeq, secondSeq := held[0].Seq, both[0].Seq
	if both[1].Seq != firstSeq || both[0].ParamsSHA256 != both[1].ParamsSHA256 {
		t.Fatalf("held calls: %+v", both)
	}

	in.MustRun(t, "approve", strconv.FormatUint(firstSeq, 10))
	r := <-first
	if r.err != nil || r.res.IsError {
		t.Fatalf("the approved call failed: %v %+v", r.err, r.res)
	}
	if data, err := os.ReadFile(notes); err != nil || string(data) != "approved\n" {
		t.Fatalf("the approved write did not happen: %q %v", data, err)
	}
	// The approval released exactly that call: not its twin, and not again.
	if left := heldCalls(t, in); len(left) != 1 || left[0].Seq != secondSeq {
		t.Fatalf("after one approval, held: %+v", left)
	}
	if res := in.Run(t, "approve", strconv.FormatUint(firstSeq, 10)); res.Code == 0 {
		t.Fatalf("a second approval of a released call was accepted: %s", res.Stdout)
	}
	if err := os.Remove(notes); err != nil {
		t.Fatal(err)
	}
	in.MustRun(t, "deny", strconv.FormatUint(secondSeq, 10), "--reason", "not on a Sunday")
	r = <-second
	if r.err == nil || !strings.Contains(r.err.Error(), "denied by user:") || !strings.Contains(r.err.Error(), "not on a Sunday") {
		t.Fatalf("the denied call's client got %v %+v, want a readable denial", r.err, r.res)
	}
	if _, err := os.Stat(notes); !os.IsNotExist(err) {
		t.Fatalf("a denied write happened: %v", err)
	}

	// Nobody decides: the call expires, denied.
	sub := filepath.Join(root, "sub")
	_, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "create_directory", Arguments: map[string]any{"path": sub}})
	if err == nil || !strings.Contains(err.Error(), "no approval within 2s") {
		t.Fatalf("an expired call's client got %v", err)
	}
	if _, err := os.Stat(sub); !os.IsNotExist(err) {
		t.Fatalf("an expired call ran: %v", err)
	}
	// Not held: calls no rule names go straight through.
	if _, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "list_directory", Arguments: map[string]any{"path": root}}); err != nil {
		t.Fatal(err)
	}

	events := in.WaitEvents(t, func(evs []store.Event) error {
		n := 0
		for _, e := range evs {
			if e.Kind == store.KindCall && e.Tool != "" && e.Method == "tools/call" {
				n++
			}
		}
		if n < 4 {
			return fmt.Errorf("%d tools/call outcomes", n)
		}
		return nil
	})
	checkApprovalTrail(t, events, firstSeq, store.KindApproved, store.OutcomeOK)
	checkApprovalTrail(t, events, secondSeq, store.KindDenied, store.OutcomeDenied)
	if res := in.Run(t, "verify"); res.Code != 0 {
		t.Fatalf("verify: exit %d\n%s%s", res.Code, res.Stdout, res.Stderr)
	}
}

// checkApprovalTrail: request → approval_requested → decision → outcome,
// in that order, the decision naming its approver and the outcome its
// approval.
func checkApprovalTrail(t *testing.T, events []store.Event, seq uint64, decision, outcome string) {
	t.Helper()
	var kinds []string
	var decided, out *store.Event
	for i := range events {
		e := &events[i]
		switch {
		case e.Seq == seq:
			kinds = append(kinds, e.Kind)
		case e.Call == seq && e.Kind != store.KindNotification && e.Kind != store.KindAlert:
			kinds = append(kinds, e.Kind)
			if e.Kind == decision {
				decided = e
			}
			if e.Kind == store.KindCall {
				out = e
			}
		}
	}
	want := []string{store.KindRequest, store.KindApprovalRequested, decision, store.KindCall}
	if strings.Join(kinds, ",") != strings.Join(want, ",") {
		t.Fatalf("call %d: record %v, want %v", seq, kinds, want)
	}
	if decided.Authorization == nil || !strings.HasPrefix(decided.Authorization.Approver, "user:") || decided.Approval == nil || len(decided.Approval.ParamsSHA256) != 64 {
		t.Errorf("call %d: %s event without its approver or params hash: %+v", seq, decision, decided)
	}
	if out.Outcome != outcome {
		t.Errorf("call %d: outcome %s, want %s", seq, out.Outcome, outcome)
	}
	if decision == store.KindApproved && (out.Authorization == nil || out.Authorization.Approval != decided.Seq) {
		t.Errorf("call %d: the outcome does not name its approval %d: %+v", seq, decided.Seq, out.Authorization)
	}
}

// A daemon killed while a call is held: wrap refuses the call (it never
// reaches the server), and the next daemon ends the hold as expired.
func TestApprovalDaemonKilledWhileHeld(t *testing.T) {
	t.Parallel()
	ctx := scenarioContext(t)
	in := newInstance(t)
	in.WriteConfig(t, approvalRules)
	d := in.Serve(t)
	root := t.TempDir()
	cs := fsClient(t, ctx, in, root)
	notes := filepath.Join(root, "notes.txt")
	call := callAsync(ctx, cs, "write_file", map[string]any{"path": notes, "content": "never\n"})
	held := waitHeld(t, in, 1)

	d.Cmd.Process.Signal(syscall.SIGKILL)
	select {
	case <-d.Exited():
	case <-time.After(stopTimeout):
		t.Fatal("the daemon survived SIGKILL")
	}
	r := <-call
	if r.err == nil || !strings.Contains(r.err.Error(), "denied") {
		t.Fatalf("the held call's client got %v %+v after the daemon died", r.err, r.res)
	}
	if _, err := os.Stat(notes); !os.IsNotExist(err) {
		t.Fatalf("a call held when the daemon died ran: %v", err)
	}
	in.Serve(t)
	events := in.Export(t)
	var expired bool
	for _, e := range events {
		if e.Kind == store.KindExpired && e.Call == held[0].Seq {
			expired = true
		}
		if e.Kind == store.KindApproved && e.Call == held[0].Seq {
			t.Errorf("the held call was approved: %+v", e)
		}
	}
	if !expired {
		t.Fatalf("the restarted daemon did not end the hold of call %d:\n%s", held[0].Seq, formatEvents(events))
	}
	if _, err := os.Stat(notes); !os.IsNotExist(err) {
		t.Fatalf("the held call ran after the restart: %v", err)
	}
	if res := in.Run(t, "verify"); res.Code != 0 {
		t.Fatalf("verify: exit %d\n%s%s", res.Code, res.Stdout, res.Stderr)
	}
}

// The HTTP gateway holds a call in the POST that carries it: a 2025-era
// client (go-sdk, with a session) whose call is approved, and a
// 2026-07-28 client (no session) whose call is denied.
func TestApprovalServeFilesystem(t *testing.T) {
	t.Parallel()
	ctx := scenarioContext(t)
	server := nodeServer(t, "mcp-server-filesystem")
	root := t.TempDir()
	in := newInstance(t)
	in.WriteConfig(t, approvalRules)
	d := in.Serve(t, "--upstream", "filesystem=stdio:"+server+" "+root)

	client := mcp.NewClient(&mcp.Implementation{Name: "approval-http", Version: "1"}, nil)
	cs := connect(t, ctx, client, &mcp.StreamableClientTransport{Endpoint: d.Endpoint("filesystem")}, nil)
	notes := filepath.Join(root, "notes.txt")
	call := callAsync(ctx, cs, "write_file", map[string]any{"path": notes, "content": "over http\n"})
	held := waitHeld(t, in, 1)
	if _, err := os.Stat(notes); !os.IsNotExist(err) {
		t.Fatalf("the file exists while its write is held: %v", err)
	}
	in.MustRun(t, "approve", strconv.FormatUint(held[0].Seq, 10))
	if r := <-call; r.err != nil || r.res.IsError {
		t.Fatalf("the approved call: %v %+v", r.err, r.res)
	}
	if data, err := os.ReadFile(notes); err != nil || string(data) != "over http\n" {
		t.Fatalf("the approved write: %q %v", data, err)
	}

	// The next write of the file is held, and the desk shows what the
	// file holds now, read from the server when the write was held.
	call = callAsync(ctx, cs, "write_file", map[string]any{"path": notes, "content": "again\n"})
	var state *approval.State
	if !pollUntil(20*time.Second, func() bool {
		h := heldCalls(t, in)
		if len(h) == 1 && h[0].State != nil {
			state, held = h[0].State, h
		}
		return state != nil
	}) {
		t.Fatalf("the held write's desk entry shows no current state: %+v", heldCalls(t, in))
	}
	if !state.Read || state.Text != "over http\n" || state.Time.IsZero() {
		t.Fatalf("the held write's current state: %+v, want the file as the approved write left it, read at hold time", state)
	}
	in.MustRun(t, "deny", strconv.FormatUint(held[0].Seq, 10), "--reason", "once is enough")
	if r := <-call; r.err == nil {
		t.Fatalf("the denied write: %+v", r.res)
	}

	// 2026-07-28: one POST, no session; the answer to it is the denial.
	modern := newRawHTTP(d.Endpoint("filesystem"))
	other := filepath.Join(root, "other.txt")
	body := fmt.Sprintf(`{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"write_file","arguments":{"path":%q,"content":"no"},"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientInfo":{"name":"modern-client","version":"1.0"}}}}`, other)
	answer := make(chan []RawMessage, 1)
	go func() {
		req := modern.request(ctx, "POST", body, "application/json, text/event-stream")
		req.Header.Set("Mcp-Protocol-Version", "2026-07-28")
		resp, err := modern.client.Do(req)
		if err != nil {
			answer <- nil
			return
		}
		answer <- readAllMessages(t, resp)
	}()
	held = waitHeld(t, in, 1)
	in.MustRun(t, "deny", strconv.FormatUint(held[0].Seq, 10), "--reason", "modern clients may not write")
	msgs := <-answer
	if len(msgs) != 1 || msgs[0].Error == nil || !strings.Contains(msgs[0].Error.Message, "modern clients may not write") {
		t.Fatalf("the 2026-07-28 client's answer: %+v", msgs)
	}
	if _, err := os.Stat(other); !os.IsNotExist(err) {
		t.Fatalf("a denied write happened: %v", err)
	}
	if res := in.Run(t, "verify"); res.Code != 0 {
		t.Fatalf("verify: exit %d\n%s%s", res.Code, res.Stdout, res.Stderr)
	}
}

// Decided in the console over OpenSSH: a viewer cannot approve, two
// approvals need two operator keys, a denial carries the key and reason;
// every console rings and counts the held call.
func TestApprovalOverSSH(t *testing.T) {
	requireTool(t, "ssh", "openssh-client")
	t.Parallel()
	ctx := scenarioContext(t)
	in := newInstance(t)
	keys := t.TempDir()
	op1, op2, viewer := testkit.NewSSHKey(t, keys, "op1"), testkit.NewSSHKey(t, keys, "op2"), testkit.NewSSHKey(t, keys, "viewer")
	authorized := "environment=\"MCPTRAIL_ROLE=operator\" " + op1.Authorized + " alice\n" +
		"environment=\"MCPTRAIL_ROLE=operator\" " + op2.Authorized + " bob\n" + viewer.Authorized + " carol\n"
	if err := os.WriteFile(filepath.Join(in.Home, "authorized_keys"), []byte(authorized), 0o600); err != nil {
		t.Fatal(err)
	}
	in.WriteConfig(t, `approvals:
  - name: two-person-writes
    tool: write_file
    require: approval
    approvers: 2
    timeout: 2m
`)
	port := freePort(t)
	in.Serve(t, "--ssh", "127.0.0.1:"+port)
	root := t.TempDir()
	cs := fsClient(t, ctx, in, root)
	notes := filepath.Join(root, "notes.txt")

	v := openSSH(t, port, viewer)
	v.waitFor("viewer · " + viewer.Fingerprint)
	call := callAsync(ctx, cs, "write_file", map[string]any{"path": notes, "content": "two keys\n"})
	held := waitHeld(t, in, 1)
	v.waitFor("1 held")
	if !strings.Contains(v.raw(), "\a") {
		t.Errorf("the viewer's console did not ring for the held call")
	}
	v.send("P")
	v.waitFor("two-person-writes")
	v.send("a")
	v.waitFor("only operators decide held calls")

	a := openSSH(t, port, op1)
	a.waitFor("1 held")
	a.send("P")
	a.waitFor(`"content": "two keys\n"`)
	a.send("a")
	a.waitFor("1 of 2 approvals, still held")
	a.send("a")
	a.waitFor("already approved by")
	if _, err := os.Stat(notes); !os.IsNotExist(err) {
		t.Fatalf("released after one key: %v", err)
	}
	b := openSSH(t, port, op2)
	b.waitFor("1 held")
	b.send("P")
	b.waitFor("two-person-writes")
	b.send("a")
	b.waitFor("released")
	if r := <-call; r.err != nil || r.res.IsError {
		t.Fatalf("the approved call: %v %+v", r.err, r.res)
	}
	if data, err := os.ReadFile(notes); err != nil || string(data) != "two keys\n" {
		t.Fatalf("the approved write: %q %v", data, err)
	}

	// A denial from the console: the agent reads who and why.
	other := filepath.Join(root, "other.txt")
	call = callAsync(ctx, cs, "write_file", map[string]any{"path": other, "content": "no"})
	second := waitHeld(t, in, 1)
	a.waitFor("write_file 0/2") // the desk lists it
	a.send("x")
	a.send("not this one", "\r")
	a.waitFor("denied call")
	r := <-call
	if r.err == nil || !strings.Contains(r.err.Error(), "denied by "+op1.Fingerprint) || !strings.Contains(r.err.Error(), "not this one") {
		t.Fatalf("the denied call's client got %v", r.err)
	}
	if _, err := os.Stat(other); !os.IsNotExist(err) {
		t.Fatalf("a denied write happened: %v", err)
	}

	var approvers []string
	for _, e := range in.Export(t) {
		if e.Call == held[0].Seq && e.Kind == store.KindApproved {
			approvers = append(approvers, e.Authorization.Approver)
		}
		if e.Call == second[0].Seq && e.Kind == store.KindDenied && e.Authorization.Approver != op1.Fingerprint {
			t.Errorf("the denial names %q", e.Authorization.Approver)
		}
	}
	if strings.Join(approvers, ",") != op1.Fingerprint+","+op2.Fingerprint {
		t.Errorf("approvals recorded by %v, want %s then %s", approvers, op1.Fingerprint, op2.Fingerprint)
	}
	if res := in.Run(t, "verify"); res.Code != 0 {
		t.Fatalf("verify: exit %d\n%s%s", res.Code, res.Stdout, res.Stderr)
	}
}
