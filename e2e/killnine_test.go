package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/mcptrail/mcptrail/store"
)

// kill -9 of the daemon while a call is in flight: the request was recorded
// before it was forwarded, so it survives; the restarted daemon gives it the
// outcome unknown, continues the sequence, and verify finds the record intact
// and signed.
func TestKillNineDaemon(t *testing.T) {
	t.Parallel()
	in := newInstance(t)
	pidFile := filepath.Join(in.Home, "hang.pid")
	// An upstream that never answers (its pid noted, to end it ourselves:
	// it outlives the killed daemon in its own process group).
	d := in.Serve(t, "--upstream", `hang=stdio:sh -c "echo $$ > `+pidFile+`; exec sleep 120"`)
	t.Cleanup(func() {
		if data, err := os.ReadFile(pidFile); err == nil {
			if pid, err := strconv.Atoi(strings.TrimSpace(string(data))); err == nil && pid > 0 {
				syscall.Kill(pid, syscall.SIGKILL)
			}
		}
	})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	go func() {
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, d.Endpoint("hang"), strings.NewReader(
			`{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"kill-client","version":"1.0"}}}`))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Accept", "application/json, text/event-stream")
		if resp, err := http.DefaultClient.Do(req); err == nil {
			resp.Body.Close()
		}
	}()
	var req store.Event
	in.WaitEvents(t, func(events []store.Event) error {
		for _, e := range events {
			if e.Kind == store.KindRequest && e.Method == "initialize" {
				req = e
				return nil
			}
		}
		return errors.New("no initialize request recorded yet")
	})

	d.Cmd.Process.Signal(syscall.SIGKILL)
	select {
	case <-d.Exited():
	case <-time.After(stopTimeout):
		t.Fatal("the daemon survived SIGKILL")
	}

	in.Serve(t)
	if res := in.Run(t, "verify"); res.Code != 0 || !strings.Contains(res.Stdout, "ok:") {
		t.Fatalf("verify after kill -9: exit %d\n%s%s", res.Code, res.Stdout, res.Stderr)
	}
	events := in.Export(t)
	var out *store.Event
	for i, e := range events {
		if e.Kind == store.KindCall && e.Call == req.Seq {
			out = &events[i]
		}
	}
	if out == nil || out.Outcome != store.OutcomeUnknown || out.Session != req.Session || out.Method != "initialize" {
		t.Fatalf("outcome of the call in flight at the kill: %+v\nevents:\n%s", out, formatEvents(events))
	}
	last := events[len(events)-1].Seq
	for i, e := range events {
		if e.Seq != uint64(i+1) {
			t.Fatalf("seq %d at position %d: the sequence has a gap\n%s", e.Seq, i, formatEvents(events))
		}
	}
	in.StopDaemon(t)
	res := in.Run(t, "verify", "--db", filepath.Join(in.Home, "mcptrail.db"), "--key", strings.TrimSpace(in.MustRun(t, "verify", "--print-key").Stdout))
	if res.Code != 0 || !strings.Contains(res.Stdout, fmt.Sprintf("ok: %d events", last)) {
		t.Fatalf("offline verify with the pinned key: exit %d\n%s%s", res.Code, res.Stdout, res.Stderr)
	}
}

// kill -9 of the daemon under load, in strict durability: every call
// whose answer reached its client has its request and an outcome that is
// not "unknown" (the outcome of an answered call is committed before the
// answer is forwarded), and the restarted daemon's record is intact. Calls
// go through the HTTP gateway and through wrap.
func TestKillNineUnderLoadStrictKeepsAnsweredOutcomes(t *testing.T) {
	in := newInstance(t)
	d := in.Serve(t, "--durability", "strict", "--upstream", "crashy=stdio:"+binary(t, "crashy"))
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	client := mcp.NewClient(&mcp.Implementation{Name: "load-client", Version: "1.0.0"}, nil)

	const workers = 8
	var mu sync.Mutex
	var answered []string
	enough := make(chan struct{})
	var once sync.Once
	var wg sync.WaitGroup
	for w := range workers {
		// Most through the HTTP gateway, two through wrap (which records
		// over the daemon's socket).
		var transport mcp.Transport = &mcp.StreamableClientTransport{Endpoint: d.Endpoint("crashy")}
		if w < 2 {
			transport, _ = in.Wrap(t, WrapOptions{Name: "crashy-wrap"}, binary(t, "crashy"))
		}
		cs := connect(t, ctx, client, transport, nil)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				text := fmt.Sprintf("load-%d-%d", w, i)
				if err := echoCall(ctx, cs, text); err != nil {
					return // the daemon is gone
				}
				mu.Lock()
				answered = append(answered, text)
				if len(answered) >= 300 {
					once.Do(func() { close(enough) })
				}
				mu.Unlock()
			}
		}()
	}
	select {
	case <-enough:
	case <-ctx.Done():
		t.Fatal("the load did not reach 300 answered calls")
	}
	d.Cmd.Process.Signal(syscall.SIGKILL)
	select {
	case <-d.Exited():
	case <-time.After(stopTimeout):
		t.Fatal("the daemon survived SIGKILL")
	}
	wg.Wait()

	in.Serve(t)
	if res := in.Run(t, "verify"); res.Code != 0 || !strings.Contains(res.Stdout, "ok:") {
		t.Fatalf("verify after kill -9: exit %d\n%s%s", res.Code, res.Stdout, res.Stderr)
	}
	events := in.Export(t)
	ci := indexCalls(events)
	byText := map[string]*store.Event{}
	for _, req := range ci.requests(store.FromClient, "tools/call", "echo") {
		var p struct {
			Arguments struct {
				Text string `json:"text"`
			} `json:"arguments"`
		}
		if err := json.Unmarshal(req.Params, &p); err == nil {
			byText[p.Arguments.Text] = req
		}
	}
	mu.Lock()
	defer mu.Unlock()
	unknown := 0
	for _, text := range answered {
		req, ok := byText[text]
		if !ok {
			t.Errorf("answered call %s has no request event", text)
			continue
		}
		out := ci.outcome[req.Seq]
		switch {
		case out == nil:
			t.Errorf("answered call %s (seq %d) has no outcome", text, req.Seq)
		case out.Outcome == store.OutcomeUnknown:
			unknown++
			t.Errorf("answered call %s (seq %d) is recorded %q: %s", text, req.Seq, out.Outcome, out.Detail)
		}
	}
	t.Logf("%d answered calls, %d requests recorded, %d answered ones unknown", len(answered), len(byText), unknown)
}
