package e2e

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/mcptrail/mcptrail/store"
	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// Under batch durability a wrap forwards each call without waiting for the
// daemon; what it recorded must survive its death all the same. The client
// has every answer, so every request and every outcome was recorded before
// it: killed with SIGKILL right after, the wrap gets no chance to send
// anything, and the daemon must still have all of them, each outcome
// linked to its request.
func TestKillNineWrapBatchKeepsItsRecords(t *testing.T) { killNineWrapKeepsItsRecords(t, "batch") }

// Under strict durability a wrap records through its segment too, and
// waits for each request and answered call's outcome to be committed:
// nothing it recorded may be missing either.
func TestKillNineWrapStrictKeepsItsRecords(t *testing.T) { killNineWrapKeepsItsRecords(t, "strict") }

func killNineWrapKeepsItsRecords(t *testing.T, durability string) {
	in := newInstance(t)
	in.Serve(t, "--durability", durability)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	// Several wraps, each killed the moment its client has the last answer:
	// a wrap that held records back for a moment would lose some.
	const wraps, calls = 4, 40
	for w := range wraps {
		cmd, _ := in.WrapCommand(t, WrapOptions{Name: "killed-wrap"}, binary(t, "crashy"))
		cs, err := mcp.NewClient(&mcp.Implementation{Name: "kill-client", Version: "1.0.0"}, nil).Connect(ctx, &mcp.CommandTransport{Command: cmd}, nil)
		if err != nil {
			t.Fatal(err)
		}
		for i := range calls {
			if err := echoCall(ctx, cs, fmt.Sprintf("wrap-%d-call-%d", w, i)); err != nil {
				t.Fatal(err)
			}
		}
		if err := cmd.Process.Kill(); err != nil {
			t.Fatal(err)
		}
		cs.Close()
	}

	in.WaitEvents(t, func(events []store.Event) error {
		requests := map[uint64]bool{}
		for _, ev := range events {
			if ev.Kind == store.KindRequest && ev.Method == "tools/call" {
				requests[ev.Seq] = true
			}
		}
		outcomes := 0
		for _, ev := range events {
			if ev.Kind == store.KindCall && ev.Method == "tools/call" {
				if !requests[ev.Call] || ev.Outcome != store.OutcomeOK {
					return fmt.Errorf("outcome %d (%s) refers to %d, not a recorded request", ev.Seq, ev.Outcome, ev.Call)
				}
				outcomes++
			}
		}
		if len(requests) != wraps*calls || outcomes != wraps*calls {
			return fmt.Errorf("%d requests and %d outcomes of %d answered calls in the store", len(requests), outcomes, wraps*calls)
		}
		return nil
	}, "--tool", "echo")
}
