package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/mcptrail/mcptrail/siem"
	"github.com/mcptrail/mcptrail/store"
	"github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// fleetTopic is the topic every gateway of the fleet test produces to.
const fleetTopic = "mcptrail-fleet"

// TestFleetThroughKafka: two origin daemons (real processes: one recording
// `mcptrail wrap` sessions, one a `serve` gateway), a three-broker Kafka
// cluster in this process, and a collector (`serve --collect`). Every event
// of both origins arrives once, in order per origin; the cluster down for a
// while loses nothing; kill -9 of the collector mid-stream loses and
// duplicates nothing; records forged straight into the topic are alerts,
// not merged; `verify` passes on all three stores.
func TestFleetThroughKafka(t *testing.T) {
	t.Parallel()
	ctx := scenarioContext(t)
	cluster, err := kfake.NewCluster(kfake.NumBrokers(3), kfake.SeedTopics(3, fleetTopic))
	if err != nil {
		t.Fatal(err)
	}
	defer cluster.Close()
	var down atomic.Bool
	cluster.ControlKey(int16(kmsg.Produce), func(kmsg.Request) (kmsg.Response, error, bool) {
		cluster.KeepControl()
		if down.Load() {
			return nil, errors.New("cluster down"), true // the connection is closed
		}
		return nil, nil, false
	})
	url := "kafka://" + strings.Join(cluster.ListenAddrs(), ",") + "/" + fleetTopic
	server := binary(t, "everything-server")
	originConfig := fmt.Sprintf("sinks:\n  - %s?batch=50&timeout=2s\ncheckpoint: {every: 10, interval: 1s}\n", url)

	// Origin A: a daemon that wrap's sessions record into.
	a := newInstance(t)
	a.WriteConfig(t, originConfig)
	a.Serve(t)
	wrapCalls := func(n int) {
		transport, _ := a.Wrap(t, WrapOptions{Name: "conf", Agent: "laptop-agent"}, server)
		cs := connect(t, ctx, mcp.NewClient(&mcp.Implementation{Name: "c", Version: "1"}, nil), transport, nil)
		for range n {
			if _, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "test_simple_text"}); err != nil {
				t.Fatal(err)
			}
		}
		cs.Close()
	}
	// Origin B: a serve gateway in front of a stdio server.
	b := newInstance(t)
	b.WriteConfig(t, originConfig)
	bd := b.Serve(t, "--upstream", "conf=stdio:"+server)
	bSession := connect(t, ctx, mcp.NewClient(&mcp.Implementation{Name: "http-agent", Version: "1"}, nil),
		&mcp.StreamableClientTransport{Endpoint: bd.Endpoint("conf")}, nil)
	httpCalls := func(n int) {
		for range n {
			if _, err := bSession.CallTool(ctx, &mcp.CallToolParams{Name: "test_simple_text"}); err != nil {
				t.Fatal(err)
			}
		}
	}
	// The collector.
	c := newInstance(t)
	collectURL := url + "?group=central"
	cd := c.Serve(t, "--collect", collectURL)

	wrapCalls(5)
	httpCalls(5)
	checkFleet(t, c, a, b)

	// The cluster down for a while: the origins keep recording, their
	// sinks keep the backlog, and it all arrives once the cluster is back.
	down.Store(true)
	wrapCalls(5)
	httpCalls(5)
	waitSinkFailing(t, a)
	waitSinkFailing(t, b)
	down.Store(false)
	checkFleet(t, c, a, b)

	// kill -9 of the collector while the origins are busy.
	done := make(chan struct{})
	go func() {
		defer close(done)
		httpCalls(40)
	}()
	pollUntil(30*time.Second, func() bool { return collectorEvents(t, c) > 0 })
	cd.Cmd.Process.Signal(syscall.SIGKILL)
	<-cd.Exited()
	wrapCalls(5)
	<-done
	cd = c.Serve(t, "--collect", collectURL)
	checkFleet(t, c, a, b)
	// The origins' calls are theirs: a restarted collector does not close
	// them as calls its own crash interrupted.
	if strings.Contains(cd.Stderr.String(), "interrupted by the previous daemon's crash") {
		t.Fatalf("the collector closed the origins' calls:\n%s", cd.Stderr.String())
	}

	// Forged records straight into the topic: each an alert, none merged.
	evB := b.Export(t)
	head := evB[len(evB)-1]
	changed := evB[len(evB)-2] // an outcome: its content changed, placed next
	changed.Seq, changed.PrevHash, changed.Result = head.Seq+1, head.Hash, json.RawMessage(`{"content":[{"type":"text","text":"forged"}]}`)
	gap := evB[len(evB)-1]
	gap.Seq, gap.PrevHash = head.Seq+3, head.Hash // two events dropped before it
	replayed := evB[2]                            // an old event replayed as the next one
	replayed.Seq, replayed.PrevHash = head.Seq+1, head.Hash
	originB := originOf(t, c, evB[0].Hash)
	produceForged(t, cluster, originB, changed, gap, replayed)
	waitAlerts(t, c, map[string]int{"collector.forged": 2, "collector.gap": 1})
	// The genuine events that follow still merge, and none of the forged.
	httpCalls(3)
	checkFleet(t, c, a, b)
	for _, ev := range c.Export(t, "--origin", originB) {
		if strings.Contains(string(ev.Result), "forged") {
			t.Fatalf("forged record merged: %+v", ev)
		}
	}
	res := c.MustRun(t, "sessions", "--origin", originB)
	if !strings.Contains(res.Stdout, "ORIGIN") || !strings.Contains(res.Stdout, "http-agent") || strings.Contains(res.Stdout, "laptop-agent") {
		t.Fatalf("sessions --origin %s:\n%s", originB, res.Stdout)
	}
	bSession.Close()
}

// checkFleet waits until the collector holds every event of each origin,
// then checks that it holds each once, in order, as the origin recorded it
// (seq and hash), and that `verify` passes on all three stores.
func checkFleet(t *testing.T, c *Instance, origins ...*Instance) {
	t.Helper()
	for _, o := range origins {
		want := o.Export(t)
		var got []store.Event
		ok := pollUntil(60*time.Second, func() bool {
			id, found := originIDOf(t, c, want[0].Hash)
			if !found {
				return false
			}
			got = nil
			for _, ev := range c.Export(t, "--origin", id) {
				if ev.Kind != store.KindCheckpoint {
					got = append(got, ev)
				}
			}
			return len(got) >= len(want)
		})
		if !ok {
			t.Fatalf("collector has %d of an origin's %d events; status: %v", len(got), len(want), c.Status(t)["collector"])
		}
		if len(got) != len(want) {
			t.Fatalf("collector has %d events of an origin that recorded %d: duplicates", len(got), len(want))
		}
		for i, ev := range got {
			if ev.Origin.Seq != want[i].Seq || ev.Origin.Hash != want[i].Hash || ev.Kind != want[i].Kind {
				t.Fatalf("collected event %d is origin seq %d (%s), want seq %d (%s)", i, ev.Origin.Seq, ev.Kind, want[i].Seq, want[i].Kind)
			}
		}
	}
	for _, in := range append([]*Instance{c}, origins...) {
		if res := in.Run(t, "verify"); res.Code != 0 || !strings.Contains(res.Stdout, "ok:") {
			t.Fatalf("verify: exit %d\n%s%s", res.Code, res.Stdout, res.Stderr)
		}
	}
	if res := c.MustRun(t, "verify"); strings.Count(res.Stdout, "origin ") < len(origins) {
		t.Fatalf("verify on the collector checked no origins:\n%s", res.Stdout)
	}
}

// originIDOf finds the store id of the origin whose first event has hash
// h, from the collector's record.
func originIDOf(t *testing.T, c *Instance, h string) (string, bool) {
	t.Helper()
	for _, ev := range c.Export(t) {
		if ev.Origin != nil && ev.Origin.Seq == 1 && ev.Origin.Hash == h && ev.Kind != store.KindCheckpoint {
			return ev.Origin.Store, true
		}
	}
	return "", false
}

func originOf(t *testing.T, c *Instance, h string) string {
	t.Helper()
	id, ok := originIDOf(t, c, h)
	if !ok {
		t.Fatal("origin not collected")
	}
	return id
}

func collectorEvents(t *testing.T, c *Instance) float64 {
	st := c.Status(t)
	col, _ := st["collector"].(map[string]any)
	stats, _ := col["stats"].(map[string]any)
	n, _ := stats["events"].(float64)
	return n
}

func waitSinkFailing(t *testing.T, in *Instance) {
	t.Helper()
	ok := pollUntil(60*time.Second, func() bool {
		_, sinks := sinkStatus(t, in)
		return len(sinks) == 1 && sinks[0]["state"] == "failing"
	})
	if !ok {
		_, sinks := sinkStatus(t, in)
		t.Fatalf("sink not failing while the cluster is down: %v", sinks)
	}
}

func produceForged(t *testing.T, c *kfake.Cluster, origin string, events ...store.Event) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...), kgo.DefaultProduceTopic(fleetTopic))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	for _, ev := range events {
		v, err := siem.MarshalExact(&ev)
		if err != nil {
			t.Fatal(err)
		}
		rec := &kgo.Record{Key: []byte(origin), Value: v, Headers: []kgo.RecordHeader{
			{Key: siem.HeaderOrigin, Value: []byte(origin)}, {Key: siem.HeaderSeq, Value: []byte(strconv.FormatUint(ev.Seq, 10))},
			{Key: siem.HeaderKind, Value: []byte(ev.Kind)}, {Key: siem.HeaderFormat, Value: []byte("jsonl")}}}
		if err := cl.ProduceSync(context.Background(), rec).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
}

func waitAlerts(t *testing.T, c *Instance, want map[string]int) {
	t.Helper()
	got := map[string]int{}
	ok := pollUntil(60*time.Second, func() bool {
		clear(got)
		for _, ev := range c.Export(t) {
			if ev.Kind != store.KindAlert {
				continue
			}
			var p struct {
				Rule struct{ ID string } `json:"rule"`
			}
			json.Unmarshal(ev.Params, &p)
			got[p.Rule.ID]++
		}
		for k, n := range want {
			if got[k] != n {
				return false
			}
		}
		return true
	})
	if !ok {
		t.Fatalf("alerts %v, want %v", got, want)
	}
}
