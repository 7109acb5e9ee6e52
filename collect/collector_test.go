package collect

import (
	"context"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/mcptrail/mcptrail/siem"
	"github.com/mcptrail/mcptrail/store"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"golang.org/x/mod/sumdb/note"
)

const topic = "mcptrail"

func cluster(t testing.TB) (*kfake.Cluster, string) {
	t.Helper()
	c, err := kfake.NewCluster(kfake.NumBrokers(3), kfake.SeedTopics(3, topic))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c, "kafka://" + strings.Join(c.ListenAddrs(), ",") + "/" + topic
}

// originStore is a gateway's store that signs a checkpoint every 5 events.
func originStore(t testing.TB, name string) *store.Store {
	t.Helper()
	skey, _, err := store.GenerateKey(name)
	if err != nil {
		t.Fatal(err)
	}
	st, err := store.Open(filepath.Join(t.TempDir(), name+".db"), store.Options{SigningKey: skey, CheckpointEvery: 5})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

func centralStore(t testing.TB, path string) *store.Store {
	t.Helper()
	skey, _, err := store.GenerateKey("central")
	if err != nil {
		t.Fatal(err)
	}
	st, err := store.Open(path, store.Options{SigningKey: skey})
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// forward starts st's Kafka sink.
func forward(t testing.TB, st *store.Store, url, host string) *siem.Forwarder {
	t.Helper()
	spec, err := siem.ParseSinkURL(url + "?batch=7")
	if err != nil {
		t.Fatal(err)
	}
	f, err := siem.NewForwarder(st, spec, siem.ForwarderOptions{
		Encoding: siem.Options{Origin: st.ID(), OriginKey: st.VerifierKey(), Hostname: host},
		Poll:     5 * time.Millisecond, Linger: time.Millisecond, MinBackoff: time.Millisecond, MaxBackoff: 10 * time.Millisecond,
		Checkpoints: siem.StoreCheckpoints(st),
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Stop(time.Second) })
	return f
}

// record appends calls to st: a request and its outcome each.
func record(t testing.TB, st *store.Store, n int, arg string) {
	t.Helper()
	for i := range n {
		req := &store.Event{Kind: store.KindRequest, Session: "s-" + st.ID(), Upstream: "fs", From: store.FromClient, Method: "tools/call",
			Tool: "write_file", Class: "write", JSONRPCID: json.RawMessage(strconv.Itoa(i)),
			Params: json.RawMessage(fmt.Sprintf(`{"name":"write_file","arguments":{"path":%q}}`, arg+strconv.Itoa(i)))}
		seq, err := st.Append(req)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := st.Append(&store.Event{Kind: store.KindCall, Session: req.Session, Call: seq, Outcome: store.OutcomeOK, Tool: "write_file",
			Result: json.RawMessage(`{"content":[]}`)}); err != nil {
			t.Fatal(err)
		}
	}
}

func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// collected lists the origin seqs of origin's events in the central store,
// in the central store's order.
func collected(t testing.TB, st *store.Store, origin string) []uint64 {
	t.Helper()
	var out []uint64
	for cur := uint64(1); cur != 0; {
		page, err := st.Query(store.Query{Cursor: cur, Limit: 1000, Origin: origin})
		if err != nil {
			t.Fatal(err)
		}
		for _, ev := range page.Events {
			if ev.Kind != store.KindCheckpoint {
				out = append(out, ev.Origin.Seq)
			}
		}
		cur = page.Next
	}
	return out
}

func checkOnceInOrder(t testing.TB, got []uint64, n uint64) {
	t.Helper()
	if uint64(len(got)) != n {
		t.Fatalf("%d events collected, want %d", len(got), n)
	}
	for i, s := range got {
		if s != uint64(i+1) {
			t.Fatalf("event %d is origin seq %d: want each once, in order", i, s)
		}
	}
}

func alerts(t testing.TB, st *store.Store) map[string][]string {
	t.Helper()
	page, err := st.Query(store.Query{Kind: store.KindAlert, Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]string{}
	for _, ev := range page.Events {
		var p struct {
			Rule struct{ ID string } `json:"rule"`
		}
		json.Unmarshal(ev.Params, &p)
		out[p.Rule.ID] = append(out[p.Rule.ID], ev.Detail)
	}
	return out
}

func verifyAll(t testing.TB, central *store.Store, keys map[string]string) []OriginResult {
	t.Helper()
	if r, err := central.Verify(); err != nil || !r.OK {
		t.Fatalf("central verify: %+v %v", r, err)
	}
	res, err := VerifyOrigins(central, keys)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range res {
		if !r.OK {
			t.Fatalf("origin verify: %+v", r)
		}
	}
	return res
}

// Two origins stream into one collector: every event arrives once, in
// order per origin, with its origin; both chains and the central one
// verify, with the keys pinned in the config.
func TestCollectorMergesTwoOrigins(t *testing.T) {
	_, url := cluster(t)
	a, b := originStore(t, "laptop"), originStore(t, "ci")
	forward(t, a, url, "laptop")
	forward(t, b, url, "ci-runner")
	central := centralStore(t, filepath.Join(t.TempDir(), "central.db"))
	defer central.Close()
	spec, err := ParseURL(url + "?group=central")
	if err != nil {
		t.Fatal(err)
	}
	keys := map[string]string{a.ID(): a.VerifierKey(), b.ID(): b.VerifierKey()}
	c, err := Start(central, spec, Options{Keys: keys})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Stop()
	record(t, a, 40, "/a/")
	record(t, b, 25, "/b/")
	waitFor(t, "both origins", func() bool { s := c.Status().Stats; return s.Events == 130 && s.Checkpoints >= 26 }) // one every 5 events of each
	central.Flush()
	checkOnceInOrder(t, collected(t, central, a.ID()), 80)
	checkOnceInOrder(t, collected(t, central, "ci-runner"), 50) // by host too
	ev, err := central.Query(store.Query{Origin: "laptop", Tool: "write_file", Limit: 1})
	if err != nil || len(ev.Events) != 1 || !strings.Contains(string(ev.Events[0].Params), "/a/0") || ev.Events[0].Origin.Host != "laptop" {
		t.Fatalf("collected event: %+v %v", ev, err)
	}
	sums, _ := central.Sessions(store.SessionQuery{Origin: "ci-runner"})
	if len(sums) != 1 || sums[0].Origin.Store != b.ID() {
		t.Fatalf("sessions of ci-runner: %+v", sums)
	}
	if al := alerts(t, central); len(al[RuleFirstSeen]) != 2 || len(al) != 1 {
		t.Fatalf("alerts: %v", al)
	}
	for _, r := range verifyAll(t, central, keys) {
		if !r.Pinned || r.Checkpoints == 0 || r.Covered == 0 {
			t.Fatalf("origin verify: %+v", r)
		}
	}
}

// rawRecord is a record as the Kafka sink makes it, for the attacker's
// hand to change.
type rawRecord struct {
	ev      store.Event
	headers map[string]string
}

func sinkRecord(t testing.TB, st *store.Store, seq uint64) rawRecord {
	t.Helper()
	ev, err := st.Get(seq)
	if err != nil {
		t.Fatal(err)
	}
	return rawRecord{ev: *ev, headers: map[string]string{siem.HeaderOrigin: st.ID(), siem.HeaderHost: "laptop",
		siem.HeaderSeq: strconv.FormatUint(ev.Seq, 10), siem.HeaderKind: ev.Kind, siem.HeaderFormat: "jsonl"}}
}

func (r rawRecord) kgo(t testing.TB) *kgo.Record {
	t.Helper()
	v, err := siem.MarshalExact(&r.ev)
	if err != nil {
		t.Fatal(err)
	}
	rec := &kgo.Record{Topic: topic, Key: []byte(r.headers[siem.HeaderOrigin]), Value: v}
	for k, v := range r.headers {
		rec.Headers = append(rec.Headers, kgo.RecordHeader{Key: k, Value: []byte(v)})
	}
	return rec
}

func produce(t testing.TB, c *kfake.Cluster, recs ...*kgo.Record) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	if err := cl.ProduceSync(context.Background(), recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
}

// Records produced straight into the topic by someone other than the
// origin's gateway: a changed argument, a dropped event, a replayed old
// event, a checkpoint signed by another key. Each is an alert and none is
// merged; the genuine events that follow still are.
func TestCollectorRefusesForgedRecords(t *testing.T) {
	cl, url := cluster(t)
	a := originStore(t, "laptop")
	record(t, a, 5, "/ok/") // seq 1..10, produced by hand below
	central := centralStore(t, filepath.Join(t.TempDir(), "central.db"))
	defer central.Close()
	spec, _ := ParseURL(url)
	c, err := Start(central, spec, Options{Keys: map[string]string{a.ID(): a.VerifierKey()}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Stop()
	var genuine []*kgo.Record
	for seq := uint64(1); seq <= 6; seq++ {
		genuine = append(genuine, sinkRecord(t, a, seq).kgo(t))
	}
	produce(t, cl, genuine...)
	waitFor(t, "6 events", func() bool { return c.Status().Stats.Events == 6 })

	changed := sinkRecord(t, a, 7) // the request of call 4: its path changed
	changed.ev.Params = json.RawMessage(strings.Replace(string(changed.ev.Params), "/ok/3", "/etc/passwd", 1))
	dropped := sinkRecord(t, a, 8) // 7 never sent
	replayed := sinkRecord(t, a, 1)
	replayed.ev.Seq, replayed.ev.PrevHash = 7, sinkRecord(t, a, 6).ev.Hash
	replayed.headers[siem.HeaderSeq] = "7"
	altered := sinkRecord(t, a, 3) // a redelivery of a merged seq with other content
	altered.ev.Tool = "delete_file"
	altered.ev.Hash = strings.Repeat("ab", 32)
	forked := sinkRecord(t, a, 7) // chained onto another head, its hash made to match
	other := strings.Repeat("cd", 32)
	forked.ev.PrevHash = other
	var prev [32]byte
	hex.Decode(prev[:], []byte(other))
	orig := forked.ev
	orig.PrevHash, orig.Hash = "", ""
	sum, _ := store.ChainHash(prev, &orig)
	forked.ev.Hash = hex.EncodeToString(sum[:])
	skey, _, _ := store.GenerateKey("mallory")
	forgedCP := rawRecord{ev: store.Event{Seq: 5, Kind: store.KindCheckpoint, Hash: sinkRecord(t, a, 5).ev.Hash,
		Detail: signedNote(t, skey, a.ID(), 5, sinkRecord(t, a, 5).ev.Hash)},
		headers: map[string]string{siem.HeaderOrigin: a.ID(), siem.HeaderSeq: "5", siem.HeaderKind: store.KindCheckpoint}}
	produce(t, cl, changed.kgo(t), dropped.kgo(t), replayed.kgo(t), altered.kgo(t), forked.kgo(t), forgedCP.kgo(t))
	waitFor(t, "6 alerts in the store", func() bool {
		n := 0
		for _, a := range alerts(t, central) {
			n += len(a)
		}
		return n == 7 // and the origin's first sight
	})
	if s := c.Status().Stats; s.Events != 6 || s.Checkpoints != 0 {
		t.Fatalf("merged after forgeries: %+v", s)
	}
	al := alerts(t, central)
	if len(al[RuleForged]) != 2 || len(al[RuleGap]) != 1 || len(al[RuleFork]) != 2 || len(al[RuleCheckpoint]) != 1 {
		t.Fatalf("alerts: %v", al)
	}
	// The genuine rest still merges.
	var rest []*kgo.Record
	for seq := uint64(7); seq <= 10; seq++ {
		rest = append(rest, sinkRecord(t, a, seq).kgo(t))
	}
	produce(t, cl, rest...)
	waitFor(t, "10 events", func() bool { return len(collected(t, central, a.ID())) == 10 })
	checkOnceInOrder(t, collected(t, central, a.ID()), 10)
	page, _ := central.Query(store.Query{Tool: "delete_file"})
	if len(page.Events) != 0 {
		t.Fatalf("forged event merged: %+v", page.Events)
	}
	verifyAll(t, central, map[string]string{a.ID(): a.VerifierKey()})
}

// signedNote signs a checkpoint of (size, hash) for origin id with skey:
// what an attacker holding some other key can make.
func signedNote(t testing.TB, skey, id string, size uint64, hash string) string {
	t.Helper()
	h, _ := hex.DecodeString(hash)
	text := fmt.Sprintf("mcptrail/%s\n%d\n%s\nprev %s\ntime %s\n", id, size, base64.StdEncoding.EncodeToString(h),
		base64.StdEncoding.EncodeToString(make([]byte, 32)), time.Now().UTC().Format(time.RFC3339Nano))
	signer, err := note.NewSigner(skey)
	if err != nil {
		t.Fatal(err)
	}
	msg, err := note.Sign(&note.Note{Text: text}, signer)
	if err != nil {
		t.Fatal(err)
	}
	return string(msg)
}

// A collector stopped mid-stream and started again on the reopened
// store (offsets of what it merged may or may not be committed) loses and
// duplicates nothing.
func TestCollectorResumesWithoutLossOrDuplicates(t *testing.T) {
	_, url := cluster(t)
	a := originStore(t, "laptop")
	forward(t, a, url, "laptop")
	path := filepath.Join(t.TempDir(), "central.db")
	spec, _ := ParseURL(url + "?group=g")
	keys := map[string]string{a.ID(): a.VerifierKey()}
	record(t, a, 100, "/r/")
	for round := range 3 {
		central := centralStore(t, path)
		c, err := Start(central, spec, Options{Keys: keys, MaxPoll: 17})
		if err != nil {
			t.Fatal(err)
		}
		want := uint64(200 * (round + 1))
		waitFor(t, "some progress", func() bool { s := c.Status().Stats; return s.Events+s.Duplicates > 0 })
		if round < 2 {
			record(t, a, 100, "/r/") // more while it runs
		}
		c.Stop() // mid-stream, most likely
		central.Close()
		if round == 2 {
			central = centralStore(t, path)
			c, _ = Start(central, spec, Options{Keys: keys})
			central.Flush()
			waitFor(t, "every event", func() bool { return uint64(len(collected(t, central, a.ID()))) == want })
			c.Stop()
			central.Flush()
			checkOnceInOrder(t, collected(t, central, a.ID()), want)
			if al := alerts(t, central); len(al) != 1 {
				t.Fatalf("alerts: %v", al)
			}
			verifyAll(t, central, keys)
			central.Close()
		}
	}
}

// With pinned_only, an origin the config does not pin is refused whole.
func TestCollectorPinnedOnlyRefusesUnknownOrigins(t *testing.T) {
	a, b := originStore(t, "pinned"), originStore(t, "stranger")
	record(t, a, 1, "/a/")
	record(t, b, 1, "/b/")
	central := centralStore(t, filepath.Join(t.TempDir(), "central.db"))
	defer central.Close()
	m, err := newMerger(central, map[string]string{a.ID(): a.VerifierKey()}, true, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, st := range []*store.Store{a, b} {
		r := sinkRecord(t, st, 1)
		k := r.kgo(t)
		if err := m.Merge(k.Key, k.Value, headersOf(r.headers)); err != nil {
			t.Fatal(err)
		}
	}
	if err := m.Commit(); err != nil {
		t.Fatal(err)
	}
	if got := collected(t, central, b.ID()); len(got) != 0 {
		t.Fatalf("unpinned origin merged: %v", got)
	}
	if got := collected(t, central, a.ID()); len(got) != 1 {
		t.Fatalf("pinned origin: %v", got)
	}
	if al := alerts(t, central); len(al[RuleUnpinned]) != 1 {
		t.Fatalf("alerts: %v", al)
	}
}

// A collector restarted when the events a pending checkpoint signs lie
// further back in the central store than its window of recent events
// still checks and merges that checkpoint, and the ones after it.
func TestCheckpointAfterRestartBeyondTheRecentWindow(t *testing.T) {
	a := originStore(t, "laptop") // a checkpoint every 5 events
	record(t, a, 20, "/c/")       // 40 events
	cps, err := a.Checkpoints().After(0)
	if err != nil || len(cps) < 2 {
		t.Fatalf("checkpoints %v %v", cps, err)
	}
	path := filepath.Join(t.TempDir(), "central.db")
	keys := map[string]string{a.ID(): a.VerifierKey()}
	mergeRec := func(m *Merger, r rawRecord) {
		k := r.kgo(t)
		if err := m.Merge(k.Key, k.Value, headersOf(r.headers)); err != nil {
			t.Fatal(err)
		}
	}
	cpRecord := func(cp store.Checkpoint) rawRecord {
		return rawRecord{ev: store.Event{Seq: cp.Size, Time: cp.Time, Kind: store.KindCheckpoint, Hash: cp.Hash, Detail: cp.Note},
			headers: map[string]string{siem.HeaderOrigin: a.ID(), siem.HeaderSeq: strconv.FormatUint(cp.Size, 10), siem.HeaderKind: store.KindCheckpoint}}
	}
	central := centralStore(t, path)
	m, err := NewMerger(central, keys, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	// Events a little past the second checkpoint's size, and the first
	// checkpoint.
	for seq := uint64(1); seq <= cps[1].Size+3; seq++ {
		mergeRec(m, sinkRecord(t, a, seq))
	}
	mergeRec(m, cpRecord(cps[0]))
	// Then many events of the central store's own: beyond the window.
	for range recentHashes + 100 {
		central.AppendNoWait(&store.Event{Kind: store.KindNotification})
	}
	if err := m.Commit(); err != nil {
		t.Fatal(err)
	}
	central.Close()

	central = centralStore(t, path)
	defer central.Close()
	m, err = NewMerger(central, keys, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	mergeRec(m, cpRecord(cps[1]))
	for seq := cps[1].Size + 4; seq <= cps[len(cps)-1].Size; seq++ {
		mergeRec(m, sinkRecord(t, a, seq))
	}
	for _, cp := range cps[2:] {
		mergeRec(m, cpRecord(cp))
	}
	if err := m.Commit(); err != nil {
		t.Fatal(err)
	}
	if s := m.Stats(); s.Alerts != 0 || s.Checkpoints != uint64(len(cps)-1) {
		t.Fatalf("after the restart: %+v; alerts %v", s, alerts(t, central))
	}
	verifyAll(t, central, keys)
}
