package collect

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mcptrail/mcptrail/siem"
	"github.com/mcptrail/mcptrail/store"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
)

// benchOrigin makes one origin's genuine chain, as its Kafka sink would
// produce it, event by event.
type benchOrigin struct {
	id   string
	seq  uint64
	head [32]byte
}

func (o *benchOrigin) next(b testing.TB, at time.Time) *kgo.Record {
	o.seq++
	kind := store.KindRequest
	ev := store.Event{Seq: o.seq, ID: fmt.Sprintf("%s-%d", o.id, o.seq), Time: at.UTC(), Session: "s-" + o.id, Upstream: "fs",
		Transport: "stdio", From: store.FromClient, Method: "tools/call", Tool: "write_file", Class: "write",
		Agent:  &store.Agent{ID: "agent-" + o.id},
		Params: json.RawMessage(`{"name":"write_file","arguments":{"path":"/srv/app/config.yaml","content":"retries: 3\ntimeout: 30s\n"}}`)}
	if o.seq%2 == 0 {
		kind = store.KindCall
		ev.Kind, ev.Call, ev.Outcome, ev.Params, ev.Result = kind, o.seq-1, store.OutcomeOK, nil, json.RawMessage(`{"content":[{"type":"text","text":"ok"}]}`)
	} else {
		ev.Kind = kind
	}
	sum, err := store.ChainHash(o.head, &ev)
	if err != nil {
		b.Fatal(err)
	}
	ev.PrevHash, ev.Hash = hex.EncodeToString(o.head[:]), hex.EncodeToString(sum[:])
	o.head = sum
	v, err := siem.MarshalExact(&ev)
	if err != nil {
		b.Fatal(err)
	}
	return &kgo.Record{Key: []byte(o.id), Value: v, Headers: []kgo.RecordHeader{
		{Key: siem.HeaderOrigin, Value: []byte(o.id)}, {Key: siem.HeaderHost, Value: []byte("host-" + o.id)},
		{Key: siem.HeaderSeq, Value: []byte(strconv.FormatUint(o.seq, 10))}, {Key: siem.HeaderKind, Value: []byte(ev.Kind)},
		{Key: siem.HeaderFormat, Value: []byte("jsonl")}}}
}

func benchCluster(b *testing.B) (*kfake.Cluster, *kgo.Client, string) {
	c, err := kfake.NewCluster(kfake.NumBrokers(3), kfake.SeedTopics(10, topic))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(c.Close)
	p, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...), kgo.DefaultProduceTopic(topic), kgo.ProducerLinger(0))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(p.Close)
	return c, p, "kafka://" + strings.Join(c.ListenAddrs(), ",") + "/" + topic
}

func origins(n int) []*benchOrigin {
	out := make([]*benchOrigin, n)
	for i := range out {
		out[i] = &benchOrigin{id: fmt.Sprintf("01BENCHORIGIN%02d", i)}
	}
	return out
}

// BenchmarkCollectorThroughput: ten origins' streams, already in the topic,
// into one collector and its (strict) central store: events merged per
// second, every chain checked.
//
//	go test ./collect -run XXX -bench CollectorThroughput -benchtime 200000x
func BenchmarkCollectorThroughput(b *testing.B) {
	_, p, url := benchCluster(b)
	os := origins(10)
	now := time.Now()
	batch := make([]*kgo.Record, 0, 1000)
	for i := range b.N {
		batch = append(batch, os[i%len(os)].next(b, now))
		if len(batch) == cap(batch) || i == b.N-1 {
			if err := p.ProduceSync(context.Background(), batch...).FirstErr(); err != nil {
				b.Fatal(err)
			}
			batch = batch[:0]
		}
	}
	central := centralStore(b, filepath.Join(b.TempDir(), "central.db"))
	defer central.Close()
	spec, _ := ParseURL(url)
	b.ResetTimer()
	start, cpu0 := time.Now(), cpuTime()
	c, err := Start(central, spec, Options{})
	if err != nil {
		b.Fatal(err)
	}
	for c.Status().Stats.Events < uint64(b.N) {
		time.Sleep(time.Millisecond)
	}
	central.Flush()
	elapsed, cpu := time.Since(start), cpuTime()-cpu0
	b.StopTimer()
	c.Stop()
	if s := c.Status().Stats; s.Alerts != 0 || s.Events != uint64(b.N) {
		b.Fatalf("stats %+v", s)
	}
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "events/s")
	// CPU of the whole test process (collector, store, and the brokers
	// serving its fetches) per event: on a shared machine, what the
	// wall-clock rate would be with both cores free.
	b.ReportMetric(float64(cpu.Microseconds())/float64(b.N), "cpu-µs/event")
}

// cpuTime is the process's user and system CPU time so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkCollectorLag: ten origins producing 5,000 events a second in
// all; the lag from an event's time at its origin to its commit in the
// central store, p50 and p99.
//
//	go test ./collect -run XXX -bench CollectorLag -benchtime 50000x
func BenchmarkCollectorLag(b *testing.B) {
	_, p, url := benchCluster(b)
	central := centralStore(b, filepath.Join(b.TempDir(), "central.db"))
	defer central.Close()
	spec, _ := ParseURL(url)
	c, err := Start(central, spec, Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer c.Stop()
	events, unsub := central.Subscribe(1 << 16)
	defer unsub()
	lags := make([]time.Duration, 0, b.N)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for ev := range events {
			if ev.Origin != nil {
				lags = append(lags, time.Since(ev.Time))
				if len(lags) == b.N {
					return
				}
			}
		}
	}()
	os := origins(10)
	const rate = 5000 // events a second, all origins together
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	b.ResetTimer()
	for sent := 0; sent < b.N; {
		<-tick.C
		for range rate / 100 {
			if sent == b.N {
				break
			}
			p.Produce(context.Background(), os[sent%len(os)].next(b, time.Now()), nil)
			sent++
		}
	}
	<-done
	b.StopTimer()
	slices.Sort(lags)
	b.ReportMetric(float64(lags[len(lags)/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(lags[len(lags)*99/100].Microseconds())/1000, "p99-ms")
}
