package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/mcptrail/mcptrail/internal/testkit"
)

// `mcptrail stop` under load: when it returns, the file sink holds every
// event the store committed — none is left for a sink that no longer runs,
// and none is committed behind the sinks once they have drained.
func TestStopLeavesEveryCommittedEventInTheFileSink(t *testing.T) {
	in := newInstance(t)
	sinkFile := filepath.Join(t.TempDir(), "events.jsonl")
	d := in.Serve(t, "--upstream", "crashy=stdio:"+binary(t, "crashy"), "--sink", "file://"+sinkFile+"?format=jsonl")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	client := mcp.NewClient(&mcp.Implementation{Name: "stop-client", Version: "1.0.0"}, nil)
	var wg sync.WaitGroup
	answered := make(chan struct{}, 1000)
	for w := range 4 {
		// Two through the HTTP gateway, two through wrap, which records over
		// the daemon's socket and may still be recording while it stops.
		var transport mcp.Transport = &mcp.StreamableClientTransport{Endpoint: d.Endpoint("crashy")}
		if w%2 == 1 {
			transport, _ = in.Wrap(t, WrapOptions{Name: "crashy-wrap"}, binary(t, "crashy"))
		}
		cs := connect(t, ctx, client, transport, nil)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				if err := echoCall(ctx, cs, fmt.Sprintf("stop-%d-%d", w, i)); err != nil {
					return
				}
				select {
				case answered <- struct{}{}:
				default:
				}
			}
		}()
	}
	for range 100 {
		<-answered
	}
	in.MustRun(t, "stop") // while the clients keep calling
	data, err := os.ReadFile(sinkFile)
	if err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	select {
	case <-d.Exited():
	case <-time.After(stopTimeout):
		t.Fatal("the daemon still runs after `mcptrail stop` returned")
	}
	seen := testkit.SinkSeqs(t, data)
	events := in.Export(t)
	if len(events) < 100 {
		t.Fatalf("only %d events recorded", len(events))
	}
	for _, ev := range events {
		if !seen[ev.Seq] {
			t.Fatalf("committed event %d (%s %s) is not in the file sink, which has %d of %d", ev.Seq, ev.Kind, ev.Method, len(seen), len(events))
		}
	}
	t.Logf("%d events, all in the sink", len(events))
}
