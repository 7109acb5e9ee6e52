package siem

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mcptrail/mcptrail/store"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// kafkaCluster starts three brokers speaking Kafka's wire protocol, with
// the topic made.
func kafkaCluster(t testing.TB, opts ...kfake.Opt) *kfake.Cluster {
	t.Helper()
	c, err := kfake.NewCluster(append([]kfake.Opt{kfake.NumBrokers(3), kfake.SeedTopics(3, "mcptrail")}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

// signedStore is a store that signs a checkpoint every 7 events.
func signedStore(t testing.TB) *store.Store {
	t.Helper()
	skey, _, err := store.GenerateKey("origin-test")
	if err != nil {
		t.Fatal(err)
	}
	st, err := store.Open(filepath.Join(t.TempDir(), "origin.db"), store.Options{SigningKey: skey, CheckpointEvery: 7})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

func kafkaForwarder(t testing.TB, st *store.Store, raw string) *Forwarder {
	t.Helper()
	spec, err := ParseSinkURL(raw)
	if err != nil {
		t.Fatal(err)
	}
	f, err := NewForwarder(st, spec, ForwarderOptions{
		Encoding:   Options{Origin: st.ID(), OriginKey: st.VerifierKey(), Hostname: "laptop-7"},
		MinBackoff: time.Millisecond, MaxBackoff: 20 * time.Millisecond, Poll: 5 * time.Millisecond,
		SaveEvery: 10 * time.Millisecond, Linger: time.Millisecond, Checkpoints: StoreCheckpoints(st),
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Start(); err != nil {
		t.Fatal(err)
	}
	return f
}

// consumeAll reads the topic from the start until want returns true.
func consumeAll(t testing.TB, c *kfake.Cluster, opts []kgo.Opt, want func([]*kgo.Record) bool) []*kgo.Record {
	t.Helper()
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(c.ListenAddrs()...), kgo.ConsumeTopics("mcptrail"),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart())}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var got []*kgo.Record
	for !want(got) {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("timed out with %d records", len(got))
		}
		fs.EachRecord(func(r *kgo.Record) { got = append(got, r) })
	}
	return got
}

// events counts the records that are events, not checkpoints: a wait for
// N events must not end on N records of which some are checkpoints.
func events(rs []*kgo.Record) int {
	n := 0
	for _, r := range rs {
		if header(r, HeaderKind) != KindCheckpoint {
			n++
		}
	}
	return n
}

func header(r *kgo.Record, k string) string {
	for _, h := range r.Headers {
		if h.Key == k {
			return string(h.Value)
		}
	}
	return ""
}

// Every event and checkpoint arrives, keyed by the origin, as `export
// --format jsonl` prints it, in order, each checkpoint after its events.
func TestKafkaSinkDeliversEventsAndCheckpointsInOrder(t *testing.T) {
	c := kafkaCluster(t)
	st := signedStore(t)
	appendCalls(t, st, 20) // 40 events
	// A body with a character the terminal escapes rewrite.
	if _, err := st.Append(&store.Event{Kind: store.KindRequest, Tool: "w", Params: json.RawMessage("{\"a\":\"x\u202ey\"}")}); err != nil {
		t.Fatal(err)
	}
	f := kafkaForwarder(t, st, "kafka://"+strings.Join(c.ListenAddrs(), ",")+"/mcptrail?batch=9")
	defer f.Stop(time.Second)
	st.Flush()
	last := st.Last()
	recs := consumeAll(t, c, nil, func(rs []*kgo.Record) bool {
		n := 0
		for _, r := range rs {
			if header(r, HeaderKind) != KindCheckpoint {
				n++
			}
		}
		return uint64(n) >= last && f.Status().Checkpoints == 35 // checkpoints every 7: 7..35 delivered after their events
	})
	enc, _ := NewEncoder(FormatJSONL, Options{})
	var seq, covered uint64
	for _, r := range recs {
		if string(r.Key) != st.ID() || header(r, HeaderOrigin) != st.ID() || header(r, HeaderHost) != "laptop-7" {
			t.Fatalf("record key %q headers %v", r.Key, r.Headers)
		}
		n, _ := strconv.ParseUint(header(r, HeaderSeq), 10, 64)
		if header(r, HeaderKind) == KindCheckpoint {
			if n > seq || header(r, HeaderVerifierKey) != st.VerifierKey() {
				t.Fatalf("checkpoint %d after event %d, key %q", n, seq, header(r, HeaderVerifierKey))
			}
			if _, err := store.ParseCheckpoint([]byte(checkpointNote(t, r.Value)), nil); err != nil {
				t.Fatal(err)
			}
			covered = n
			continue
		}
		if n != seq+1 {
			t.Fatalf("event %d after %d: want each once, in order", n, seq)
		}
		seq = n
		ev, err := st.Get(n)
		if err != nil {
			t.Fatal(err)
		}
		want, _ := enc.Encode(ev)
		if string(r.Value) != string(want) {
			t.Fatalf("seq %d value\n%s\nwant export's line\n%s", n, r.Value, want)
		}
		exact := header(r, HeaderExact)
		if n == last && (exact == "" || !strings.Contains(exact, "x\u202ey")) {
			t.Fatalf("seq %d: no exact JSON beside the escaped value: %v", n, r.Headers)
		}
		if n != last && exact != "" {
			t.Fatalf("seq %d: exact JSON that equals the value", n)
		}
	}
	if seq != last || covered != 35 {
		t.Fatalf("got events to %d, checkpoints to %d", seq, covered)
	}
}

func checkpointNote(t testing.TB, value []byte) string {
	var ev store.Event
	if err := json.Unmarshal(value, &ev); err != nil {
		t.Fatal(err)
	}
	return ev.Detail
}

// While the brokers refuse every produce the backlog stays in the store
// and the status shows the lag; once they accept again, everything
// arrives, in order, nothing lost.
func TestKafkaSinkOutageKeepsTheBacklog(t *testing.T) {
	c := kafkaCluster(t)
	var down atomic.Bool
	down.Store(true)
	c.ControlKey(int16(kmsg.Produce), func(req kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		if down.Load() {
			return nil, errors.New("broker down"), true // closes the connection
		}
		return nil, nil, false
	})
	st := signedStore(t)
	f := kafkaForwarder(t, st, "kafka://"+strings.Join(c.ListenAddrs(), ",")+"/mcptrail?batch=50&timeout=1s")
	defer f.Stop(time.Second)
	appendCalls(t, st, 100)
	waitFor(t, "the sink to fail", 20*time.Second, func() bool { return f.Status().State == "failing" })
	if s := f.Status(); s.Lag != 200 || s.Cursor != 0 {
		t.Fatalf("status while down: %+v", s)
	}
	if s := f.Status(); strings.Contains(fmt.Sprint(s), "password") {
		t.Fatal(s)
	}
	appendCalls(t, st, 50) // recorded while the cluster is down
	down.Store(false)
	recs := consumeAll(t, c, nil, func(rs []*kgo.Record) bool { return f.Status().Lag == 0 && events(rs) >= 300 })
	var got []uint64
	for _, r := range recs {
		if header(r, HeaderKind) != KindCheckpoint {
			n, _ := strconv.ParseUint(header(r, HeaderSeq), 10, 64)
			got = append(got, n)
		}
	}
	checkAtLeastOnceInOrder(t, got, 300)
}

// SCRAM: the right password delivers; a wrong one is refused by the
// broker, keeps the backlog, and is never shown.
func TestKafkaSinkSCRAM(t *testing.T) {
	c := kafkaCluster(t, kfake.EnableSASL(), kfake.Superuser("SCRAM-SHA-512", "alice", "right-pw"))
	addrs := strings.Join(c.ListenAddrs(), ",")
	st := signedStore(t)
	appendCalls(t, st, 3)
	bad := kafkaForwarder(t, st, "kafka://alice:wrong-pw@"+addrs+"/mcptrail?sasl=scram-sha-512&insecure_plaintext=1&timeout=1s&name=bad")
	waitFor(t, "the wrong password to fail", 20*time.Second, func() bool { return bad.Status().Failures > 0 })
	bad.Stop(0)
	if s := bad.Status(); s.Cursor != 0 || strings.Contains(fmt.Sprint(s), "wrong-pw") {
		t.Fatalf("status: %+v", s)
	}
	good := kafkaForwarder(t, st, "kafka://alice:right-pw@"+addrs+"/mcptrail?sasl=scram-sha-512&insecure_plaintext=1&name=good")
	defer good.Stop(time.Second)
	waitFor(t, "delivery", 20*time.Second, func() bool { return good.Status().Cursor == 6 })
	if s := good.Status(); strings.Contains(s.URL, "right-pw") {
		t.Fatalf("URL shown: %s", s.URL)
	}
}
