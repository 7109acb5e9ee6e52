package siem

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mcptrail/mcptrail/siem/siemtest"
	"github.com/mcptrail/mcptrail/store"
)

func openStore(t testing.TB, durability string) *store.Store {
	t.Helper()
	st, err := store.Open(filepath.Join(t.TempDir(), "siem.db"), store.Options{Durability: durability})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

// appendCalls records n request/outcome pairs (2n events).
func appendCalls(t testing.TB, st *store.Store, n int) {
	t.Helper()
	for i := 0; i < n; i++ {
		req := &store.Event{Kind: store.KindRequest, Session: "s1", Upstream: "fs", Transport: "stdio", From: store.FromClient,
			Method: "tools/call", Tool: fmt.Sprintf("tool_%d", i%7), Class: "write", JSONRPCID: []byte(fmt.Sprint(i)),
			Agent: &store.Agent{ID: "agent-a"}, Principal: &store.Principal{Subject: "alice", Kind: "os_user"}}
		seq, err := st.AppendNoWait(req)
		if err != nil {
			t.Fatal(err)
		}
		out := &store.Event{Kind: store.KindCall, Session: "s1", Upstream: "fs", Transport: "stdio", From: store.FromClient,
			Method: "tools/call", Tool: req.Tool, Class: "write", JSONRPCID: req.JSONRPCID, Call: seq, Outcome: store.OutcomeOK, DurationNS: 1000}
		if _, err := st.AppendNoWait(out); err != nil {
			t.Fatal(err)
		}
	}
	if err := st.Flush(); err != nil {
		t.Fatal(err)
	}
}

// memSink records what it is sent; fail decides whether a Send fails and
// how many of its items it delivers first.
type memSink struct {
	mu      sync.Mutex
	got     []uint64
	bodies  [][]byte
	sends   int
	fail    func(send int, items []Item) (deliver int, err error)
	block   chan struct{}
	resets  int
	settled uint64
}

func (m *memSink) Send(ctx context.Context, items []Item) error {
	if m.block != nil {
		select {
		case <-m.block:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.sends++
	deliver, err := len(items), error(nil)
	if m.fail != nil {
		deliver, err = m.fail(m.sends, items)
	}
	for _, it := range items[:deliver] {
		m.got = append(m.got, it.Event.Seq)
		m.bodies = append(m.bodies, it.Body)
	}
	return err
}
func (m *memSink) Reset()       { m.mu.Lock(); m.resets++; m.mu.Unlock() }
func (m *memSink) Close() error { return nil }

func (m *memSink) seqs() []uint64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]uint64(nil), m.got...)
}

// newTestForwarder builds a forwarder with a sink of the test's own.
func newTestForwarder(t testing.TB, st Source, raw string, sink Sink) *Forwarder {
	t.Helper()
	spec, err := ParseSinkURL(raw)
	if err != nil {
		t.Fatal(err)
	}
	f, err := NewForwarder(st, spec, ForwarderOptions{MinBackoff: time.Millisecond, MaxBackoff: 5 * time.Millisecond, Poll: 5 * time.Millisecond, SaveEvery: 10 * time.Millisecond, Linger: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if sink != nil {
		f.sink = sink
	}
	return f
}

func waitFor(t testing.TB, what string, d time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func checkAtLeastOnceInOrder(t testing.TB, got []uint64, n uint64) {
	t.Helper()
	siemtest.CheckAtLeastOnceInOrder(t, got, n)
}

func TestForwarderDeliversInOrderThroughFailures(t *testing.T) {
	st := openStore(t, "strict")
	appendCalls(t, st, 300) // 600 events
	rng := rand.New(rand.NewPCG(1, 2))
	sink := &memSink{fail: func(send int, items []Item) (int, error) {
		if rng.IntN(3) == 0 {
			return rng.IntN(len(items) + 1), errors.New("connection reset")
		}
		return len(items), nil
	}}
	f := newTestForwarder(t, st, "file:///unused?batch=37", sink)
	if err := f.Start(); err != nil {
		t.Fatal(err)
	}
	// More events while it works.
	appendCalls(t, st, 100)
	waitFor(t, "delivery", 20*time.Second, func() bool { return f.Status().Lag == 0 && f.Status().Cursor == 800 })
	f.Stop(time.Second)
	checkAtLeastOnceInOrder(t, sink.seqs(), 800)
	s := f.Status()
	if s.Failures == 0 || s.LastError == "" || s.Delivered < 800 {
		t.Errorf("status %+v: want failures counted and the last error kept", s)
	}
	if cur, _ := st.Cursors().Get(CursorName("file:///unused")); cur != 800 {
		t.Errorf("saved cursor %d, want 800", cur)
	}
}

func TestForwarderResumesFromSavedCursor(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "r.db")
	st, err := store.Open(path, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	appendCalls(t, st, 50)
	first := &memSink{}
	f := newTestForwarder(t, st, "webhook+https://siem.example/in", first)
	f.Start()
	waitFor(t, "first delivery", 10*time.Second, func() bool { return f.Status().Cursor == 100 })
	f.Stop(time.Second)
	appendCalls(t, st, 25)
	st.Close()

	// A restart: a new store handle, a new forwarder.
	st, err = store.Open(path, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	second := &memSink{}
	f = newTestForwarder(t, st, "webhook+https://TOKEN2@siem.example/in?format=ecs", second)
	f.Start()
	waitFor(t, "second delivery", 10*time.Second, func() bool { return f.Status().Cursor == 150 })
	f.Stop(time.Second)
	got := second.seqs()
	if len(got) != 50 || got[0] != 101 || got[49] != 150 {
		t.Fatalf("after restart got %d events %v..., want 101..150 (same sink: a new token or format keeps the cursor)", len(got), got[:min(3, len(got))])
	}
}

func TestForwarderStartEnd(t *testing.T) {
	st := openStore(t, "strict")
	appendCalls(t, st, 10)
	sink := &memSink{}
	f := newTestForwarder(t, st, "file:///x?start=end", sink)
	f.Start()
	appendCalls(t, st, 1)
	waitFor(t, "delivery", 10*time.Second, func() bool { return f.Status().Cursor == 22 })
	f.Stop(time.Second)
	if got := sink.seqs(); len(got) != 2 || got[0] != 21 {
		t.Fatalf("start=end delivered %v, want only the new events 21, 22", got)
	}
}

func TestForwarderKindsFilter(t *testing.T) {
	st := openStore(t, "strict")
	appendCalls(t, st, 10)
	sink := &memSink{}
	f := newTestForwarder(t, st, "file:///x?kinds=call&batch=3", sink)
	f.Start()
	waitFor(t, "delivery", 10*time.Second, func() bool { return f.Status().Cursor == 20 })
	f.Stop(time.Second)
	got := sink.seqs()
	if len(got) != 10 {
		t.Fatalf("kinds=call delivered %v", got)
	}
	for _, s := range got {
		if s%2 != 0 {
			t.Fatalf("delivered request %d with kinds=call", s)
		}
	}
}

// A sink that never answers must not slow the store's writers: the
// forwarder reads committed events on its own, and the store drops its
// subscription instead of waiting for it.
func TestBackpressureNeverBlocksAppends(t *testing.T) {
	st := openStore(t, "batch")
	sink := &memSink{block: make(chan struct{})}
	f := newTestForwarder(t, st, "file:///x", sink)
	f.Start()
	defer func() { close(sink.block); f.Stop(0) }()
	appendCalls(t, st, 1) // the forwarder is now stuck in Send
	time.Sleep(20 * time.Millisecond)
	start := time.Now()
	appendCalls(t, st, 10000)
	if d := time.Since(start); d > 20*time.Second {
		t.Fatalf("20000 appends took %v with a stuck sink", d)
	}
	if s := f.Status(); s.Lag < 20000 {
		t.Fatalf("lag %d, want the stuck sink's backlog counted", s.Lag)
	}
}

func TestCheckpointsFollowTheirEvents(t *testing.T) {
	st := openStore(t, "strict")
	appendCalls(t, st, 10) // 20 events
	var cps []Checkpoint
	for _, size := range []uint64{5, 12, 20, 30} {
		cps = append(cps, Checkpoint{Size: size, Hash: fmt.Sprintf("h%d", size), Time: time.Now(), Note: fmt.Sprintf("mcptrail\n%d\nhash\n\n— key sig", size)})
	}
	feed := func(after uint64) ([]Checkpoint, error) {
		var out []Checkpoint
		for _, c := range cps {
			if c.Size > after {
				out = append(out, c)
			}
		}
		return out, nil
	}
	sink := &memSink{}
	spec, _ := ParseSinkURL("file:///cp?batch=4")
	f, err := NewForwarder(st, spec, ForwarderOptions{Poll: 5 * time.Millisecond, Checkpoints: feed})
	if err != nil {
		t.Fatal(err)
	}
	f.sink = sink
	f.Start()
	waitFor(t, "checkpoints", 10*time.Second, func() bool { return f.Status().Checkpoints == 20 })
	f.Stop(time.Second)
	// Every checkpoint comes after the last event it covers, and the one
	// covering events not yet in the store is not sent.
	var seen uint64
	cpAt := map[uint64]int{}
	for i, b := range sink.bodies {
		if bytes.Contains(b, []byte(`"kind":"checkpoint"`)) {
			cpAt[sink.got[i]] = i
			if sink.got[i] > seen {
				t.Fatalf("checkpoint %d sent when only %d events were", sink.got[i], seen)
			}
			continue
		}
		seen = max(seen, sink.got[i])
	}
	if len(cpAt) != 3 {
		t.Fatalf("checkpoints sent: %v, want 5, 12, 20", cpAt)
	}
	if c, _ := st.Cursors().Get(CursorName(spec.Name) + "#checkpoints"); c != 20 {
		t.Fatalf("checkpoint cursor %d", c)
	}
}

// Secrets in sink URLs never reach logs, errors or status.
func TestSecretsNeverShown(t *testing.T) {
	const token = "s3cr3t-T0KEN-value"
	for _, raw := range []string{
		"hec+https://" + token + "@127.0.0.1:1?format=ocsf",
		"webhook+https://user:" + token + "@127.0.0.1:1/hook",
		"webhook+https://127.0.0.1:1/services/T0/B0/" + token + "?format=ecs&code=" + token,
		"syslog+tcp://127.0.0.1:1?token=" + token,
		"hec+http://127.0.0.1:1?token_env=MCPTRAIL_TEST_HEC_TOKEN",
		"kafka://alice:" + token + "@127.0.0.1:1/t?sasl=scram-sha-512&insecure_plaintext=1&timeout=1s",
		"kafka://127.0.0.1:1,127.0.0.1:2/t?sasl=scram-sha-256&token_env=MCPTRAIL_TEST_KAFKA_CRED&tls=1&timeout=1s",
	} {
		t.Setenv("MCPTRAIL_TEST_KAFKA_CRED", "alice:"+token)
		t.Setenv("MCPTRAIL_TEST_HEC_TOKEN", token)
		spec, err := ParseSinkURL(raw)
		if err != nil {
			if strings.Contains(err.Error(), token) {
				t.Errorf("error shows the secret: %v", err)
			}
			continue
		}
		if strings.Contains(spec.Redacted, token) || strings.Contains(spec.Name, token) {
			t.Errorf("redacted %q / name %q show the secret", spec.Redacted, spec.Name)
		}
		var logs bytes.Buffer
		st := openStore(t, "strict")
		appendCalls(t, st, 1)
		f, err := NewForwarder(st, spec, ForwarderOptions{Logger: slog.New(slog.NewTextHandler(&logs, nil)), MinBackoff: time.Millisecond, MaxBackoff: time.Millisecond, Poll: time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		f.Start()
		waitFor(t, "a failure", 10*time.Second, func() bool { return f.Status().Failures > 0 })
		f.Stop(0)
		status := fmt.Sprintf("%+v", f.Status())
		if strings.Contains(logs.String(), token) || strings.Contains(status, token) {
			t.Errorf("%s: secret shown\nlogs: %s\nstatus: %s", spec.Redacted, logs.String(), status)
		}
	}
	// Malformed URLs: url.Parse's error would quote the secret.
	if _, err := ParseSinkURL("hec+https://" + token + "@host:port:bad\x7f"); err == nil || strings.Contains(err.Error(), token) {
		t.Errorf("malformed URL error: %v", err)
	}
}

func TestParseSinkURL(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		url    string
		kind   string
		format Format
		err    string
	}{
		{"file://" + dir + "/e.jsonl", "file", FormatJSONL, ""},
		{"file://" + dir + "/e.jsonl?format=ocsf&max_size=10MB&max_files=3", "file", FormatOCSF, ""},
		{"file://relative/path", "", "", "three slashes"},
		{"syslog+tcp://127.0.0.1:514", "syslog", FormatCEF, ""},
		{"syslog+tcp://127.0.0.1:514?format=json", "syslog", FormatJSONL, ""},
		{"syslog+tls://siem.example:6514?format=ecs&ca=/x.pem", "syslog", FormatECS, ""},
		{"syslog+tcp://127.0.0.1", "", "", "needs a port"},
		{"syslog://127.0.0.1:514", "", "", "syslog+tcp"},
		{"syslog+tcp://127.0.0.1:514?facility=bogus", "", "", "facility"},
		{"hec+https://tok@splunk:8088", "hec", FormatOCSF, ""},
		{"hec+https://splunk:8088", "", "", "needs a token"},
		{"hec+http://tok@127.0.0.1:8088?format=cef&ack=1&index=main", "hec", FormatCEF, ""},
		{"webhook+https://hooks.example/in?format=ecs&mode=lines", "webhook", FormatECS, ""},
		{"webhook+https://hooks.example/in?format=cef", "", "", "mode=lines"},
		{"webhook+https://hooks.example/in?mode=stream", "", "", "mode"},
		{"kafka://broker:9092", "", "", "topic"},
		{"kafka://b1:9092,b2:9093/mcptrail.events", "kafka", FormatJSONL, ""},
		{"kafka://b1,b2/t?format=ocsf&tls=1&ca=/x.pem", "kafka", FormatOCSF, ""},
		{"kafka://b1:9092/t?format=cef", "", "", "one JSON object"},
		{"kafka://b1:9092/bad%20topic", "", "", "topic"},
		{"kafka://b1:9092,,b2:9092/t", "", "", "broker"},
		{"kafka://b1:99999/t", "", "", "broker"},
		{"kafka://u:p@b1:9092/t", "", "", "sasl="},
		{"kafka://u:p@b1:9092/t?sasl=scram-sha-256", "", "", "tls=1"},
		{"kafka://u:p@b1:9092/t?sasl=scram-sha-256&tls=1", "kafka", FormatJSONL, ""},
		{"kafka://u@b1:9092/t?sasl=scram-sha-512&tls=1", "", "", "USER:PASSWORD"},
		{"kafka://b1:9092/t?sasl=plain&tls=1", "", "", "sasl="},
		{"kafka://b1:9092/t?ca=/x.pem", "", "", "needs tls=1"},
		{"kafka://b1:9092/t?timeout=1ms", "", "", "timeout"},
		{"kafka://b1:9092/t?group=g", "", "", "unknown option"},
		{"kafka://b1:9092/t?max_prestate=0", "kafka", FormatJSONL, ""},
		{"kafka://b1:9092/t?max_prestate=-1", "", "", "max_prestate"},
		{"kafka://b1:9092/t?max_prestate=99999999", "", "", "max_prestate"},
		{"kafka://b1:9092/t?max_prestate=1k", "", "", "max_prestate"},
		{"hec+https://tok@splunk:8088?bogus=1", "", "", "unknown option"},
		{"file://" + dir + "/x?batch=0", "", "", "batch"},
	} {
		spec, err := ParseSinkURL(tc.url)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%s: err %v, want one mentioning %q", tc.url, err, tc.err)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: %v", tc.url, err)
			continue
		}
		if spec.Kind != tc.kind || spec.Format != tc.format {
			t.Errorf("%s: kind %s format %s", tc.url, spec.Kind, spec.Format)
		}
	}
	a, _ := ParseSinkURL("hec+https://tokA@splunk:8088?format=ocsf")
	b, _ := ParseSinkURL("hec+https://tokB@splunk:8088?format=ecs&index=x")
	if a.Name != b.Name || a.Name != "hec+https://splunk:8088" {
		t.Errorf("names %q %q: want one cursor per destination", a.Name, b.Name)
	}
}

func TestFileSinkRotates(t *testing.T) {
	st := openStore(t, "strict")
	appendCalls(t, st, 100)
	path := filepath.Join(t.TempDir(), "out", "events.jsonl")
	f := newTestForwarder(t, st, "file://"+path+"?format=ocsf&max_size=8KB&max_files=3&batch=7", nil)
	f.Start()
	waitFor(t, "delivery", 10*time.Second, func() bool { return f.Status().Cursor == 200 })
	f.Stop(time.Second)
	var lines []string
	for i := 3; i >= 0; i-- {
		p := path
		if i > 0 {
			p = fmt.Sprintf("%s.%d", path, i)
		}
		data, err := os.ReadFile(p)
		if err != nil {
			t.Fatalf("%s: %v", p, err)
		}
		if len(data) > 8000 {
			t.Errorf("%s is %d bytes, over max_size", p, len(data))
		}
		fi, _ := os.Stat(p)
		if fi.Mode().Perm() != 0o600 {
			t.Errorf("%s mode %v, want 0600", p, fi.Mode().Perm())
		}
		lines = append(lines, strings.Split(strings.TrimSuffix(string(data), "\n"), "\n")...)
	}
	if _, err := os.Stat(path + ".4"); err == nil {
		t.Error("kept more than max_files old files")
	}
	// The newest files hold the newest events, in order, ending with 200.
	var seqs []uint64
	for _, l := range lines {
		m := map[string]any{}
		if err := jsonUnmarshal(l, &m); err != nil {
			t.Fatalf("line %q: %v", l, err)
		}
		seqs = append(seqs, uint64(siemtest.At(m, "metadata.sequence").(float64)))
	}
	for i := 1; i < len(seqs); i++ {
		if seqs[i] != seqs[i-1]+1 {
			t.Fatalf("rotated files out of order at %d: %v", i, seqs)
		}
	}
	if seqs[len(seqs)-1] != 200 {
		t.Fatalf("last event %d", seqs[len(seqs)-1])
	}
}

func jsonUnmarshal(s string, v any) error { return json.Unmarshal([]byte(s), v) }

// With a sink whose deliveries settle later (file: on fsync; syslog: after
// the settle time), a checkpoint sent while newer events are still
// settling must not hold the cursor back.
func TestCheckpointsWithSettlingSinks(t *testing.T) {
	r := newSyslogReceiver(t, nil)
	for _, raw := range []string{
		"file://" + filepath.Join(t.TempDir(), "cp.jsonl") + "?sync=200ms",
		"syslog+tcp://" + r.ln.Addr().String() + "?settle=200ms",
	} {
		st := openStore(t, "strict")
		appendCalls(t, st, 10) // 20 events
		var fw atomic.Pointer[Forwarder]
		feed := func(after uint64) ([]Checkpoint, error) {
			// The checkpoint appears right after the newer events went out.
			if after >= 20 || fw.Load() == nil || fw.Load().Status().Delivered < 26 {
				return nil, nil
			}
			return []Checkpoint{{Size: 20, Hash: "h", Time: time.Now(), Note: "n"}}, nil
		}
		spec, err := ParseSinkURL(raw)
		if err != nil {
			t.Fatal(err)
		}
		// A poll longer than the settle time: the newer events and the
		// checkpoint settle in the same look.
		f, err := NewForwarder(st, spec, ForwarderOptions{Poll: 300 * time.Millisecond, Linger: time.Millisecond, Checkpoints: feed})
		if err != nil {
			t.Fatal(err)
		}
		fw.Store(f)
		f.Start()
		waitFor(t, spec.Kind+" first events settled", 10*time.Second, func() bool { return f.Status().Cursor == 20 })
		// Newer events go out; while they settle, the checkpoint follows.
		appendCalls(t, st, 3)
		waitFor(t, spec.Kind+" cursor past the checkpoint", 10*time.Second, func() bool { s := f.Status(); return s.Cursor == 26 && s.Checkpoints == 20 })
		f.Stop(time.Second)
	}
}
