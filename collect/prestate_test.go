package collect

import (
	"encoding/json"
	"errors"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/mcptrail/mcptrail/siem"
	"github.com/mcptrail/mcptrail/store"
	"github.com/twmb/franz-go/pkg/kgo"
)

// capturedCall records a write whose pre-state the gateway captured, as
// the capture hook does: the blob under the request's seq, its reference
// in the outcome. It returns the request's seq.
func capturedCall(t testing.TB, st *store.Store, blob []byte) uint64 {
	t.Helper()
	req := &store.Event{Kind: store.KindRequest, Session: "s-" + st.ID(), Upstream: "kv", From: store.FromClient, Method: "tools/call",
		Tool: "set", Class: "write", JSONRPCID: json.RawMessage("1"), Params: json.RawMessage(`{"name":"set","arguments":{"key":"k"}}`)}
	seq, err := st.Append(req)
	if err != nil {
		t.Fatal(err)
	}
	ref, err := st.Rollback().PutPrestate(seq, blob)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.Append(&store.Event{Kind: store.KindCall, Session: req.Session, Call: seq, Outcome: store.OutcomeOK, Tool: "set",
		Prestate: ref, Result: json.RawMessage(`{"content":[]}`)}); err != nil {
		t.Fatal(err)
	}
	return seq
}

// centralSeq is the central seq of the origin's event seq.
func centralSeq(t testing.TB, central *store.Store, origin string, seq uint64) uint64 {
	t.Helper()
	page, err := central.Query(store.Query{Origin: origin, Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	for _, ev := range page.Events {
		if ev.Origin != nil && ev.Origin.Seq == seq && ev.Kind != store.KindCheckpoint {
			return ev.Seq
		}
	}
	t.Fatalf("origin seq %d not collected", seq)
	return 0
}

// A pre-state captured on the origin arrives centrally, by the Kafka sink,
// with the same bytes under the central seq of its call; one larger than
// the sink's max_prestate travels as hash and size only, and the central
// store says why it is missing.
func TestPrestatesTravelWithTheirCalls(t *testing.T) {
	_, url := cluster(t)
	a := originStore(t, "laptop")
	spec, err := siem.ParseSinkURL(url + "?max_prestate=200")
	if err != nil {
		t.Fatal(err)
	}
	f, err := siem.NewForwarder(a, spec, siem.ForwarderOptions{
		Encoding: siem.Options{Origin: a.ID(), OriginKey: a.VerifierKey(), Hostname: "laptop", Prestates: a.Rollback().Prestate},
		Poll:     5 * time.Millisecond, Linger: time.Millisecond, MinBackoff: time.Millisecond, MaxBackoff: 10 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Start(); err != nil {
		t.Fatal(err)
	}
	defer f.Stop(time.Second)
	central := centralStore(t, filepath.Join(t.TempDir(), "central.db"))
	defer central.Close()
	cspec, _ := ParseURL(url)
	c, err := Start(central, cspec, Options{Keys: map[string]string{a.ID(): a.VerifierKey()}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Stop()

	small := []byte(`{"v":1,"call":1,"reads":{"old":{"result":{"value":"before"}}}}`)
	big := []byte(`{"v":1,"reads":{"old":{"result":"` + strings.Repeat("x", 300) + `"}}}`)
	s1 := capturedCall(t, a, small)
	s2 := capturedCall(t, a, big)
	waitFor(t, "both pre-states", func() bool { return c.Status().Stats.Prestates == 2 })
	central.Flush()

	got, err := central.Rollback().Prestate(centralSeq(t, central, a.ID(), s1))
	if err != nil || string(got) != string(small) {
		t.Fatalf("shipped pre-state: %q %v", got, err)
	}
	_, err = central.Rollback().Prestate(centralSeq(t, central, a.ID(), s2))
	if !errors.Is(err, store.ErrNotFound) || !strings.Contains(err.Error(), "too large to ship") || !strings.Contains(err.Error(), strconv.Itoa(len(big))) {
		t.Fatalf("oversize pre-state: %v", err)
	}
	if al := alerts(t, central); len(al[RulePrestate]) != 0 {
		t.Fatalf("alerts: %v", al)
	}
}

// prestateRecord is the record the Kafka sink makes of call's pre-state.
func prestateKgo(origin string, call uint64, ref string, data []byte, size int) *kgo.Record {
	rec := &kgo.Record{Topic: topic, Key: []byte(origin), Value: data}
	for k, v := range map[string]string{siem.HeaderOrigin: origin, siem.HeaderHost: "laptop", siem.HeaderSeq: strconv.FormatUint(call, 10),
		siem.HeaderKind: siem.KindPrestate, siem.HeaderSHA256: ref, siem.HeaderSize: strconv.Itoa(size)} {
		rec.Headers = append(rec.Headers, kgo.RecordHeader{Key: k, Value: []byte(v)})
	}
	return rec
}

// A pre-state whose bytes were changed on the way (the outcome's hash
// kept), or that names a hash no merged outcome holds, is an alert and
// is not stored; the genuine one that follows is.
func TestCollectorRefusesTamperedPrestate(t *testing.T) {
	cl, url := cluster(t)
	a := originStore(t, "laptop")
	blob := []byte(`{"v":1,"reads":{"old":{"result":{"value":"before"}}}}`)
	call := capturedCall(t, a, blob)
	ref := store.PrestateRef(blob)
	central := centralStore(t, filepath.Join(t.TempDir(), "central.db"))
	defer central.Close()
	spec, _ := ParseURL(url)
	c, err := Start(central, spec, Options{Keys: map[string]string{a.ID(): a.VerifierKey()}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Stop()
	produce(t, cl, sinkRecord(t, a, 1).kgo(t), sinkRecord(t, a, 2).kgo(t))
	waitFor(t, "the call", func() bool { return c.Status().Stats.Events == 2 })

	tampered := []byte(strings.Replace(string(blob), "before", "attack", 1))
	otherRef := store.PrestateRef(tampered)
	produce(t, cl,
		prestateKgo(a.ID(), call, ref, tampered, len(tampered)),      // bytes changed, hash kept
		prestateKgo(a.ID(), call, otherRef, tampered, len(tampered)), // hash changed to match: no outcome names it
		prestateKgo(a.ID(), call+7, ref, blob, len(blob)))            // a call never merged
	waitFor(t, "3 pre-state alerts", func() bool { return len(alerts(t, central)[RulePrestate]) == 3 })
	at := centralSeq(t, central, a.ID(), call)
	if got, err := central.Rollback().Prestate(at); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("tampered pre-state stored: %q %v", got, err)
	}
	produce(t, cl, prestateKgo(a.ID(), call, ref, blob, len(blob)))
	waitFor(t, "the genuine pre-state", func() bool { return c.Status().Stats.Prestates == 1 })
	if got, err := central.Rollback().Prestate(at); err != nil || string(got) != string(blob) {
		t.Fatalf("genuine pre-state: %q %v", got, err)
	}
}

// FuzzDecodePrestate: whatever a producer puts in a pre-state record, the
// decoder either refuses it or returns parts that agree: a positive seq,
// a well-formed reference, a value that is the size its header says (or
// none, withheld).
func FuzzDecodePrestate(f *testing.F) {
	blob := []byte(`{"v":1}`)
	f.Add([]byte("o"), blob, "o", "3", store.PrestateRef(blob), "7")
	f.Add([]byte("o"), []byte{}, "o", "3", store.PrestateRef(blob), "9999999")
	f.Add([]byte("o"), blob, "o", "3", "sha256:zz", "7")
	f.Add([]byte("o"), blob, "p", "0", store.PrestateRef(blob), "-1")
	f.Fuzz(func(t *testing.T, key, value []byte, origin, seq, ref, size string) {
		h := map[string][]byte{siem.HeaderOrigin: []byte(origin), siem.HeaderSeq: []byte(seq), siem.HeaderKind: []byte(siem.KindPrestate),
			siem.HeaderSHA256: []byte(ref), siem.HeaderSize: []byte(size)}
		hs := headersOfMap(h)
		r, err := decodePrestate(key, value, &hs)
		if err != nil {
			return
		}
		if r.Origin != string(key) || r.Seq == 0 || !strings.HasPrefix(r.Ref, "sha256:") || len(r.Ref) != 71 || r.Size < 0 ||
			(r.Data != nil && len(r.Data) != r.Size) || (r.Data == nil && len(value) != 0) {
			t.Fatalf("parts disagree: %+v", r)
		}
	})
}
