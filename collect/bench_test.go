package collect

import (
	"bufio"
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
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

// brokersEnv, set, makes the test binary a three-broker cluster
// (TestMain): the benchmarks run their brokers in a process of their own,
// as a deployment runs them on other machines, so that the collector's
// CPU is measured apart from theirs.
const brokersEnv = "MCPTRAIL_BENCH_BROKERS"

func TestMain(m *testing.M) {
	if os.Getenv(brokersEnv) != "" {
		runBrokers()
		return
	}
	os.Exit(m.Run())
}

// runBrokers serves a cluster and prints its addresses; then each line
// "cpu" on stdin is answered with the process's CPU time so far (ns), and
// the end of stdin stops it.
func runBrokers() {
	c, err := kfake.NewCluster(kfake.NumBrokers(3), kfake.SeedTopics(10, topic))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	defer c.Close()
	fmt.Println(strings.Join(c.ListenAddrs(), ","))
	in := bufio.NewScanner(os.Stdin)
	for in.Scan() {
		if in.Text() == "cpu" {
			fmt.Println(int64(cpuTime()))
		}
	}
}

// brokers is the cluster process, seen from the benchmark.
type brokers struct {
	in  io.WriteCloser
	out *bufio.Scanner
}

// cpu is the brokers' CPU time so far.
func (k *brokers) cpu(b testing.TB) time.Duration {
	if _, err := io.WriteString(k.in, "cpu\n"); err != nil {
		b.Fatal(err)
	}
	if !k.out.Scan() {
		b.Fatalf("brokers: no answer: %v", k.out.Err())
	}
	ns, err := strconv.ParseInt(k.out.Text(), 10, 64)
	if err != nil {
		b.Fatal(err)
	}
	return time.Duration(ns)
}

func benchCluster(b *testing.B) (*brokers, *kgo.Client, string) {
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), brokersEnv+"=1")
	cmd.Stderr = os.Stderr
	in, err := cmd.StdinPipe()
	if err != nil {
		b.Fatal(err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		in.Close() // the cluster stops at the end of its stdin
		if err := cmd.Wait(); err != nil {
			b.Errorf("brokers: %v", err)
		}
	})
	k := &brokers{in: in, out: bufio.NewScanner(out)}
	if !k.out.Scan() {
		b.Fatalf("brokers did not start: %v", k.out.Err())
	}
	addrs := strings.Split(k.out.Text(), ",")
	// Batches compressed as the gateways' Kafka sink compresses them
	// (zstd): the collector pays for their decompression.
	p, err := kgo.NewClient(kgo.SeedBrokers(addrs...), kgo.DefaultProduceTopic(topic), kgo.ProducerLinger(0),
		kgo.ProducerBatchCompression(kgo.ZstdCompression()))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(p.Close)
	return k, p, "kafka://" + strings.Join(addrs, ",") + "/" + topic
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
	k, p, url := benchCluster(b)
	fleet := origins(10)
	now := time.Now()
	batch := make([]*kgo.Record, 0, 1000)
	for i := range b.N {
		batch = append(batch, fleet[i%len(fleet)].next(b, now))
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
	start, cpu0, kcpu0 := time.Now(), cpuTime(), k.cpu(b)
	c, err := Start(central, spec, Options{})
	if err != nil {
		b.Fatal(err)
	}
	for c.Status().Stats.Events < uint64(b.N) {
		time.Sleep(time.Millisecond)
	}
	central.Flush()
	elapsed, cpu, kcpu := time.Since(start), cpuTime()-cpu0, k.cpu(b)-kcpu0
	b.StopTimer()
	c.Stop()
	if s := c.Status().Stats; s.Alerts != 0 || s.Events != uint64(b.N) {
		b.Fatalf("stats %+v", s)
	}
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "events/s")
	// CPU per event, on a shared machine the steady measure: the
	// collector's process (the collector, its Kafka client and the
	// central store) and, apart, the brokers serving its fetches.
	b.ReportMetric(float64(cpu.Microseconds())/float64(b.N), "cpu-µs/event")
	b.ReportMetric(float64(kcpu.Microseconds())/float64(b.N), "broker-cpu-µs/event")
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
	fleet := origins(10)
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
			p.Produce(context.Background(), fleet[sent%len(fleet)].next(b, time.Now()), nil)
			sent++
		}
	}
	<-done
	b.StopTimer()
	slices.Sort(lags)
	b.ReportMetric(float64(lags[len(lags)/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(lags[len(lags)*99/100].Microseconds())/1000, "p99-ms")
}
