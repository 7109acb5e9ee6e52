package e2e

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

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
