package collect

import (
	"encoding/json"
	"path/filepath"
	"testing"

	"github.com/mcptrail/mcptrail/siem"
	"github.com/mcptrail/mcptrail/store"
	"github.com/twmb/franz-go/pkg/kgo"
)

func headersOf(h map[string]string) map[string][]byte {
	out := map[string][]byte{}
	for k, v := range h {
		out[k] = []byte(v)
	}
	return out
}

func TestDecodeRecordRefusesDisagreeingParts(t *testing.T) {
	a := originStore(t, "laptop")
	record(t, a, 1, "/p/")
	good := sinkRecord(t, a, 1)
	rec := good.kgo(t)
	if _, err := DecodeRecord(rec.Key, rec.Value, headersOf(good.headers)); err != nil {
		t.Fatalf("genuine record: %v", err)
	}
	for name, change := range map[string]func(r *rawRecord) []byte{
		"key is another origin": func(r *rawRecord) []byte { return []byte("someone-else") },
		"seq header differs":    func(r *rawRecord) []byte { r.headers[siem.HeaderSeq] = "2"; return nil },
		"kind header differs":   func(r *rawRecord) []byte { r.headers[siem.HeaderKind] = "alert"; return nil },
		"ocsf record":           func(r *rawRecord) []byte { r.headers[siem.HeaderFormat] = "ocsf"; return nil },
		"no origin":             func(r *rawRecord) []byte { delete(r.headers, siem.HeaderOrigin); return []byte{} },
		"bad hash":              func(r *rawRecord) []byte { r.ev.Hash = "zz"; return nil },
		"already collected":     func(r *rawRecord) []byte { r.ev.Origin = &store.Origin{Store: "x"}; return nil },
	} {
		r := sinkRecord(t, a, 1)
		key := change(&r)
		k := r.kgo(t)
		if key != nil {
			k.Key = key
		}
		if _, err := DecodeRecord(k.Key, k.Value, headersOf(r.headers)); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

// A header given twice counts once, as first given: a second origin (or
// seq, kind, host) header appended to a genuine record changes nothing.
func TestRecordHeadersFirstOfRepeatedCounts(t *testing.T) {
	a := originStore(t, "laptop")
	record(t, a, 1, "/p/")
	rec := sinkRecord(t, a, 1).kgo(t)
	want := len(rec.Headers)
	for _, k := range []string{siem.HeaderOrigin, siem.HeaderSeq, siem.HeaderKind, siem.HeaderHost} {
		rec.Headers = append(rec.Headers, kgo.RecordHeader{Key: k, Value: []byte("forged")})
	}
	if len(rec.Headers) != want+4 {
		t.Fatal("headers not appended")
	}
	h := recordHeaders(rec.Headers)
	var r Record
	if err := r.decode(rec.Key, rec.Value, &h); err != nil {
		t.Fatalf("genuine record with repeated headers: %v", err)
	}
	if r.Origin != string(rec.Key) || r.Seq != 1 || r.Host == "forged" {
		t.Fatalf("decoded origin %q seq %d", r.Origin, r.Seq)
	}
}

// Whatever a record holds, the merger neither panics nor merges anything
// that breaks the origin's chain: the central store and every origin
// still verify.
func FuzzMerge(f *testing.F) {
	a := originStore(f, "fuzz")
	record(f, a, 2, "/f/")
	for seq := uint64(1); seq <= 4; seq++ {
		r := sinkRecord(f, a, seq)
		rec := r.kgo(f)
		f.Add(rec.Key, rec.Value, r.headers[siem.HeaderSeq], r.headers[siem.HeaderKind], "")
	}
	f.Add([]byte("o"), []byte(`{"seq":1,"kind":"checkpoint","hash":"`+string(make([]byte, 64))+`","detail":"x\n\n"}`), "1", "checkpoint", "k")
	genuine := sinkRecord(f, a, 1).kgo(f)
	f.Fuzz(func(t *testing.T, key, value []byte, seq, kind, vkey string) {
		central, err := store.Open(filepath.Join(t.TempDir(), "central.db"), store.Options{Durability: store.DurabilityBatch})
		if err != nil {
			t.Fatal(err)
		}
		defer central.Close()
		m, err := NewMerger(central, nil, nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		headers := map[string][]byte{siem.HeaderOrigin: key, siem.HeaderSeq: []byte(seq), siem.HeaderKind: []byte(kind), siem.HeaderVerifierKey: []byte(vkey)}
		if err := m.Merge(key, value, headers); err != nil {
			t.Fatal(err)
		}
		if err := m.Merge(genuine.Key, genuine.Value, headersOf(map[string]string{siem.HeaderOrigin: a.ID(), siem.HeaderSeq: "1", siem.HeaderKind: "request"})); err != nil {
			t.Fatal(err)
		}
		if err := m.Commit(); err != nil {
			t.Fatal(err)
		}
		res, err := VerifyOrigins(central, nil)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range res {
			if !r.OK && r.Problem != store.ProblemUnknownKey {
				t.Fatalf("merged a record that breaks %s's chain: %+v (value %q)", r.Origin, r, value)
			}
		}
	})
}

// The decoder alone, fast: any input is an error or a record whose parts
// agree.
func FuzzDecodeRecord(f *testing.F) {
	f.Add([]byte("o"), []byte(`{"seq":1,"kind":"request","prev_hash":"`+zeros+`","hash":"`+zeros+`"}`), "o", "1", "request", "")
	f.Add([]byte("o"), []byte(`{"seq":1,"kind":"checkpoint","hash":"`+zeros+`","detail":"n"}`), "o", "1", "checkpoint", `{"seq":1}`)
	f.Fuzz(func(t *testing.T, key, value []byte, origin, seq, kind, exact string) {
		h := map[string][]byte{siem.HeaderOrigin: []byte(origin), siem.HeaderSeq: []byte(seq), siem.HeaderKind: []byte(kind)}
		if exact != "" {
			h[siem.HeaderExact] = []byte(exact)
		}
		r, err := DecodeRecord(key, value, h)
		if err != nil {
			return
		}
		if r.Origin != string(key) || r.Event.Seq != r.Seq || r.Event.Kind != r.Kind || r.Seq == 0 || r.Event.Origin != nil {
			t.Fatalf("parts disagree: %+v", r)
		}
		// The fast decoder reads what encoding/json reads.
		body := value
		if exact != "" {
			body = []byte(exact)
		}
		var std store.Event
		if err := json.Unmarshal(body, &std); err == nil {
			a, _ := json.Marshal(&std)
			b, _ := json.Marshal(&r.Event)
			if string(a) != string(b) {
				t.Fatalf("decoders differ:\nencoding/json %s\nsegmentio     %s", a, b)
			}
		}
	})
}

const zeros = "0000000000000000000000000000000000000000000000000000000000000000"
