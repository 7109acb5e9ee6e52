package daemon

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/mcptrail/mcptrail/approval"
	"github.com/mcptrail/mcptrail/config"
	"github.com/mcptrail/mcptrail/store"
)

type bearer struct{ token string }

func (b bearer) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("Authorization", "Bearer "+b.token)
	return http.DefaultTransport.RoundTrip(r)
}

func connectAs(ctx context.Context, t *testing.T, d *Daemon, token string) (*mcp.ClientSession, error) {
	t.Helper()
	client := mcp.NewClient(&mcp.Implementation{Name: "reload-test", Version: "1"}, nil)
	return client.Connect(ctx, &mcp.StreamableClientTransport{
		Endpoint:   "http://" + d.listen + "/mcp/echo",
		HTTPClient: &http.Client{Transport: bearer{token}},
	}, nil)
}

// SIGHUP swaps a token and a sink while a session keeps calling: no call
// fails, the new token works at once, the old sink stops and the new one
// takes over from its own cursor.
func TestSIGHUPReloadSwapsTokenAndSinkWithoutDroppingCalls(t *testing.T) {
	t.Setenv("MCPTRAIL_RELOAD_A", "token-a")
	t.Setenv("MCPTRAIL_RELOAD_B", "token-b")
	dir := t.TempDir()
	sink1, sink2 := filepath.Join(dir, "one.jsonl"), filepath.Join(dir, "two.jsonl")
	base := func() *config.Config {
		c := config.Default()
		c.Listen, c.SSH = "127.0.0.1:0", "127.0.0.1:0"
		c.Upstreams = map[string]config.Upstream{"echo": {Command: []string{echoServer(t)}}}
		return c
	}
	cfg1 := base()
	cfg1.Tokens = []config.Token{{TokenEnv: "MCPTRAIL_RELOAD_A", Agent: "agent-a"}}
	cfg1.Sinks = []string{"file://" + sink1 + "?format=jsonl&name=one"}
	cfg2 := base()
	cfg2.Tokens = []config.Token{{TokenEnv: "MCPTRAIL_RELOAD_A", Agent: "agent-a"}, {TokenEnv: "MCPTRAIL_RELOAD_B", Agent: "agent-b"}}
	cfg2.Sinks = []string{"file://" + sink2 + "?format=jsonl&name=two"}
	cfg2.Listen = "127.0.0.1:1" // a restart-only change: logged, not applied

	var next atomic.Pointer[config.Config]
	next.Store(cfg2)
	logs, mu := &bytes.Buffer{}, &sync.Mutex{}
	d, err := start(Options{Config: cfg1, Home: t.TempDir(), Version: "test",
		Logger: slog.New(slog.NewTextHandler(lockedBuf{logs, mu}, nil)),
		Reload: func() (*config.Config, error) { return next.Load(), nil }})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.close() })
	logText := func() string { mu.Lock(); defer mu.Unlock(); return logs.String() }

	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	if _, err := connectAs(ctx, t, d, "token-b"); err == nil {
		t.Fatal("token-b accepted before the reload")
	}
	a, err := connectAs(ctx, t, d, "token-a")
	if err != nil {
		t.Fatalf("token-a: %v; log:\n%s", err, logText())
	}
	defer a.Close()

	// Agent A calls without pause through the reload.
	var ok, failed atomic.Int64
	var firstErr atomic.Value
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			res, err := a.CallTool(ctx, &mcp.CallToolParams{Name: "echo", Arguments: map[string]any{"text": fmt.Sprint(i)}})
			if err != nil || res.IsError {
				failed.Add(1)
				firstErr.CompareAndSwap(nil, fmt.Sprint(err, res))
				continue
			}
			ok.Add(1)
		}
	}()
	waitFor := func(what string, cond func() bool) {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for !cond() {
			if time.Now().After(deadline) {
				t.Fatalf("timed out waiting for %s; log:\n%s", what, logText())
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	waitFor("calls before the reload", func() bool { return ok.Load() >= 20 })
	waitFor("sink one to deliver", func() bool { fi, err := os.Stat(sink1); return err == nil && fi.Size() > 0 })

	if err := syscall.Kill(os.Getpid(), syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	waitFor("the reload", func() bool { return strings.Contains(logText(), "configuration reloaded") })
	before := ok.Load()
	waitFor("calls after the reload", func() bool { return ok.Load() >= before+20 })

	// Token B works now, for a new session, while A's session goes on.
	b, err := connectAs(ctx, t, d, "token-b")
	if err != nil {
		t.Fatalf("token-b after the reload: %v", err)
	}
	if _, err := b.CallTool(ctx, &mcp.CallToolParams{Name: "echo", Arguments: map[string]any{"text": "b"}}); err != nil {
		t.Fatal(err)
	}
	b.Close()
	if _, err := connectAs(ctx, t, d, "token-c"); err == nil {
		t.Error("an unknown token accepted")
	}
	close(stop)
	<-done
	if n := failed.Load(); n != 0 {
		t.Fatalf("%d of %d calls failed across the reload; first: %v", n, n+ok.Load(), firstErr.Load())
	}

	// Sink two catches up with everything (its own cursor starts at the
	// beginning); sink one stopped at the reload.
	d.store.Flush()
	last := d.store.Last()
	one, _ := os.ReadFile(sink1)
	waitFor("sink two to catch up", func() bool {
		data, _ := os.ReadFile(sink2)
		return bytes.Contains(data, []byte(fmt.Sprintf(`"seq":%d,`, last)))
	})
	if again, _ := os.ReadFile(sink1); len(again) != len(one) || bytes.Contains(one, []byte(fmt.Sprintf(`"seq":%d,`, last))) {
		t.Errorf("sink one kept receiving after the reload")
	}
	st := d.Status()
	if len(st.Sinks) != 1 || st.Sinks[0]["name"] != "two" {
		t.Errorf("status sinks after the reload: %v", st.Sinks)
	}
	// B's call is recorded as agent-b's.
	page, err := d.store.Query(store.Query{Agent: "agent-b", Limit: 100})
	if err != nil || len(page.Events) == 0 {
		t.Errorf("no events recorded for agent-b (%v)", err)
	}
	if !strings.Contains(logText(), "settings=[listen]") {
		t.Errorf("the restart-only change was not reported; log:\n%s", logText())
	}
	if d.listen == "127.0.0.1:1" {
		t.Error("listen changed on reload")
	}
}

// A reload that fails (a bad sink URL) changes nothing: the old tokens and
// sinks stay.
func TestReloadIsAllOrNothing(t *testing.T) {
	t.Setenv("MCPTRAIL_RELOAD_A", "token-a")
	cfg := config.Default()
	cfg.Tokens = []config.Token{{TokenEnv: "MCPTRAIL_RELOAD_A", Agent: "agent-a"}}
	sink := filepath.Join(t.TempDir(), "one.jsonl")
	cfg.Sinks = []string{"file://" + sink + "?format=jsonl&name=one"}
	d, _ := startOpsDaemon(t, cfg)

	bad := config.Default()
	bad.Listen, bad.SSH = cfg.Listen, cfg.SSH
	bad.Tokens = []config.Token{{Token: "token-new", Agent: "agent-new"}}
	bad.Sinks = []string{"bogus://siem.example.com"}
	if err := d.Reload(bad); err == nil {
		t.Fatal("reload with a bad sink URL succeeded")
	}
	if _, ok := d.rl.auth.creds.Load().cfg.ResolveToken("token-a"); !ok {
		t.Error("the old token is gone after a failed reload")
	}
	if _, ok := d.rl.auth.creds.Load().cfg.ResolveToken("token-new"); ok {
		t.Error("the new token is in after a failed reload")
	}
	if st := d.Status(); len(st.Sinks) != 1 || st.Sinks[0]["name"] != "one" {
		t.Errorf("sinks after a failed reload: %v", st.Sinks)
	}
}

// TestReloadApprovals: a reload puts approval rules in force for the next
// call; a call held under the old rules can then only be denied.
func TestReloadApprovals(t *testing.T) {
	cfg := config.Default()
	d, _ := startOpsDaemon(t, cfg)
	req := &store.Event{Kind: store.KindRequest, Session: "s", Upstream: "fs", Method: "tools/call", Tool: "write_file", Params: []byte(`{"name":"write_file"}`)}
	if _, err := d.Record(req, true); err != nil {
		t.Fatal(err)
	}
	if d.hooks.Approve(req, req.Params, "") != nil {
		t.Fatal("held without rules")
	}
	next := config.Default()
	next.Listen, next.SSH = cfg.Listen, cfg.SSH
	next.Approvals = []approval.RuleConfig{{Tool: approval.Patterns{"write_file"}, Require: "approval"}}
	if err := d.Reload(next); err != nil {
		t.Fatal(err)
	}
	h := d.hooks.Approve(req, req.Params, "")
	if h == nil {
		t.Fatal("not held after the reload added a rule")
	}
	next2 := config.Default()
	next2.Listen, next2.SSH = cfg.Listen, cfg.SSH
	next2.Approvals = []approval.RuleConfig{{Tool: approval.Patterns{"write_file"}, Require: "approval", Approvers: 1}}
	next2.Approvals[0].Name = "renamed"
	if err := d.Reload(next2); err != nil {
		t.Fatal(err)
	}
	op := approval.Approver{ID: "SHA256:x", Role: approval.RoleOperator, Via: "test"}
	if _, err := d.desk.Decide(req.Seq, "", op, true, ""); err == nil || !strings.Contains(err.Error(), "rules changed") {
		t.Fatalf("approved under other rules: %v", err)
	}
	if _, err := d.desk.Decide(req.Seq, "", op, false, "stale"); err != nil {
		t.Fatal(err)
	}
	if _, err := h.Wait(); err == nil {
		t.Fatal("a denied call was released")
	}
}
