package store

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"
)

var base = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

// dataset returns n varied events one second apart. jitter makes a fifth of
// them up to 4s late (stamped, then appended after later ones), as
// concurrent gateway sessions do; outlier adds one event an hour late.
func dataset(n int, jitter, outlier bool) []*Event {
	r := rand.New(rand.NewPCG(uint64(n), 7))
	pick := func(vs ...string) string { return vs[r.IntN(len(vs))] }
	agents := []*Agent{nil, {ID: "id1", Name: "ignored"}, {Name: "bob"}, {ClientName: "cursor"}, {}}
	var out []*Event
	for i := range n {
		t := base.Add(time.Duration(i) * time.Second)
		if jitter && r.IntN(5) == 0 {
			t = t.Add(-time.Duration(r.IntN(4000)) * time.Millisecond)
		}
		if outlier && i == n/2 {
			t = t.Add(-time.Hour)
		}
		out = append(out, &Event{
			Time:     t,
			Kind:     pick(KindRequest, KindCall, KindNotification, KindAlert),
			Session:  pick("a", "a\x00b", "s2", "s3", ""),
			Upstream: pick("fs", "github"),
			Method:   pick("tools/call", "resources/read", ""),
			Tool:     pick("read_file", "write_file", "delete_file", ""),
			Outcome:  pick(OutcomeOK, OutcomeToolError, ""),
			Class:    pick("read", "write", ""),
			From:     pick(FromClient, FromServer),
			Agent:    agents[r.IntN(len(agents))],
		})
	}
	return out
}

func fill(t testing.TB, s *Store, events []*Event) {
	t.Helper()
	for _, ev := range events {
		if _, err := s.Append(ev); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Flush(); err != nil {
		t.Fatal(err)
	}
}

func bruteForce(events []*Event, q Query) []uint64 {
	var out []uint64
	want := q.fields()
	for _, ev := range events {
		if q.match(ev, &want) {
			out = append(out, ev.Seq)
		}
	}
	if q.Newest {
		slices.Reverse(out)
	}
	return out
}

// pages runs q to the end, checking each page, and returns the seqs.
func pages(t *testing.T, s *Store, q Query) []uint64 {
	t.Helper()
	var out []uint64
	for n := 0; ; n++ {
		p, err := s.Query(q)
		if err != nil {
			t.Fatal(err)
		}
		for _, ev := range p.Events {
			out = append(out, ev.Seq)
		}
		if p.Next == 0 {
			return out
		}
		if len(p.Events) != q.Limit || n > 1000 {
			t.Fatalf("%+v: page %d has %d events and a next page", q, n, len(p.Events))
		}
		q.Cursor = p.Next
	}
}

func TestQueryMatchesBruteForce(t *testing.T) {
	for _, tc := range []struct {
		name            string
		jitter, outlier bool
	}{{"ordered", false, false}, {"jittered", true, false}, {"outlier", true, true}} {
		t.Run(tc.name, func(t *testing.T) {
			events := dataset(400, tc.jitter, tc.outlier)
			s := tempStore(t, Options{Durability: DurabilityBatch})
			fill(t, s, events)

			filters := []Query{
				{}, {Session: "a"}, {Session: "a\x00b"}, {Session: "nope"}, {Tool: "write_file"},
				{Agent: "id1"}, {Agent: "bob"}, {Agent: "cursor"}, {Upstream: "github"},
				{Outcome: OutcomeToolError}, {Kind: KindAlert}, {Class: "write"}, {Method: "resources/read"},
				{Session: "s2", Tool: "read_file"}, {Agent: "bob", Outcome: OutcomeOK},
				{Tool: "delete_file", Kind: KindCall, Class: "read"}, {Upstream: "fs", Method: "tools/call"},
			}
			at := func(sec int) time.Time { return base.Add(time.Duration(sec) * time.Second) }
			ranges := [][2]time.Time{
				{}, {at(-7200), time.Time{}}, {at(100), time.Time{}}, {time.Time{}, at(50)},
				{at(120), at(180).Add(300 * time.Millisecond)}, {at(250), at(251)}, {at(399), at(1000)},
				{at(-4000), at(-3000)}, {at(10), at(5)},
			}
			for _, f := range filters {
				for _, r := range ranges {
					for _, newest := range []bool{false, true} {
						q := f
						q.Since, q.Until, q.Newest, q.Limit = r[0], r[1], newest, 7
						want := bruteForce(events, q)
						if got := pages(t, s, q); !slices.Equal(got, want) {
							t.Fatalf("%+v:\n got %v\nwant %v", q, got, want)
						}
						q.Limit = maxLimit
						if got := pages(t, s, q); !slices.Equal(got, want) {
							t.Fatalf("%+v in one page:\n got %v\nwant %v", q, got, want)
						}
					}
				}
			}
		})
	}
}

func TestQueryPageDetails(t *testing.T) {
	s := tempStore(t, Options{Durability: DurabilityBatch})
	p, err := s.Query(Query{})
	if err != nil || len(p.Events) != 0 || p.Next != 0 || p.Events == nil {
		t.Fatalf("empty store: %+v, %v", p, err)
	}
	fill(t, s, dataset(250, false, false))

	p, _ = s.Query(Query{})
	if len(p.Events) != defaultLimit || p.Next != defaultLimit+1 {
		t.Fatalf("default limit: %d events, next %d", len(p.Events), p.Next)
	}
	p, _ = s.Query(Query{Newest: true, Limit: 3})
	if got := []uint64{p.Events[0].Seq, p.Events[2].Seq, p.Next}; !slices.Equal(got, []uint64{250, 248, 247}) {
		t.Fatalf("newest first: %v", got)
	}
	p, _ = s.Query(Query{Cursor: 249, Limit: 5})
	if len(p.Events) != 2 || p.Next != 0 {
		t.Fatalf("last page: %d events, next %d", len(p.Events), p.Next)
	}
	p, _ = s.Query(Query{Cursor: 5000})
	if len(p.Events) != 0 {
		t.Fatalf("cursor past the end: %d events", len(p.Events))
	}
	p, _ = s.Query(Query{Limit: 1 << 30})
	if len(p.Events) != 250 {
		t.Fatalf("huge limit: %d events", len(p.Events))
	}

	ev, err := s.Get(17)
	if err != nil || ev.Seq != 17 {
		t.Fatalf("Get(17) = %+v, %v", ev, err)
	}
	for _, seq := range []uint64{0, 251} {
		if _, err := s.Get(seq); !errors.Is(err, ErrNotFound) {
			t.Fatalf("Get(%d): %v", seq, err)
		}
	}
}

func TestAgentKey(t *testing.T) {
	for _, tc := range []struct {
		a    *Agent
		want string
	}{
		{nil, ""}, {&Agent{}, ""}, {&Agent{ClientName: "c", ClientVersion: "1"}, "c"},
		{&Agent{Name: "n", ClientName: "c"}, "n"}, {&Agent{ID: "i", Name: "n"}, "i"},
	} {
		if got := AgentKey(tc.a); got != tc.want {
			t.Errorf("AgentKey(%+v) = %q, want %q", tc.a, got, tc.want)
		}
	}
}

// A query through an index reads only its page, whatever the store's size:
// checked by timing it against a store 100 times smaller would be flaky, so
// count the events it decodes instead.
func TestQueryReadsOnlyItsPage(t *testing.T) {
	s := tempStore(t, Options{Durability: DurabilityBatch, MaxBatch: 5000})
	var events []*Event
	for i := range 5000 {
		events = append(events, &Event{Kind: KindRequest, Session: fmt.Sprintf("s%d", i%50), Tool: fmt.Sprintf("t%d", i%7), Time: base.Add(time.Duration(i) * time.Millisecond)})
	}
	fill(t, s, events)
	for _, q := range []Query{
		{Session: "s7", Limit: 10},
		{Session: "s7", Limit: 10, Newest: true},
		{Limit: 10, Since: base.Add(4 * time.Second)},
		{Limit: 10, Newest: true, Until: base.Add(time.Second)},
		{Session: "s7", Limit: 10, Since: base.Add(4 * time.Second)},
		{Session: "s7", Tool: "t3", Limit: 10},               // two indices: joined on their keys
		{Session: "s7", Tool: "t3", Limit: 10, Newest: true}, // 1 event in 350 matches
	} {
		reads := 0
		decodeHook = func() { reads++ }
		p, err := s.Query(q)
		decodeHook = nil
		if err != nil || len(p.Events) != 10 {
			t.Fatalf("%+v: %d events, %v", q, len(p.Events), err)
		}
		if reads != 11 {
			t.Errorf("%+v decoded %d events for a page of 10", q, reads)
		}
	}
}

// A value too long for a bbolt key is indexed by its prefix, and neither
// breaks the commit nor makes a query inexact.
func TestQueryLongValues(t *testing.T) {
	s := tempStore(t, Options{})
	long := strings.Repeat("x", 40000)
	a, b := long+"a", long+"b"
	for _, tool := range []string{a, b, a} {
		mustAppend(t, s, &Event{Kind: KindRequest, Tool: tool, Agent: &Agent{Name: tool}})
	}
	for _, q := range []Query{{Tool: a}, {Agent: a, Newest: true, Limit: 1}} {
		if got := pages(t, s, q); !slices.Equal(got, bruteForceStore(t, s, q)) || len(got) != 2 {
			t.Fatalf("%.20v: %v", q, got)
		}
	}
	if _, err := s.Append(&Event{Kind: KindRequest, Session: long}); err == nil {
		t.Fatal("no error for a 40 KB session id")
	}
	mustVerify(t, s, 3)
}

func bruteForceStore(t *testing.T, s *Store, q Query) []uint64 {
	var all []*Event
	for seq := uint64(1); seq <= s.Last(); seq++ {
		ev, err := s.Get(seq)
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, ev)
	}
	return bruteForce(all, q)
}

// AgentLabel is for people (name first); AgentKey is for queries (id
// first). Both fall back to the claimed client name, and neither panics on
// an event without an agent.
func TestAgentLabelAndKey(t *testing.T) {
	for _, c := range []struct {
		a          *Agent
		label, key string
	}{
		{nil, "", ""},
		{&Agent{}, "", ""},
		{&Agent{ID: "a-7", Name: "claude", ClientName: "claude-code"}, "claude", "a-7"},
		{&Agent{ID: "a-7", ClientName: "claude-code"}, "a-7", "a-7"},
		{&Agent{Name: "claude", ClientName: "claude-code"}, "claude", "claude"},
		{&Agent{ClientName: "claude-code", ClientVersion: "1.0"}, "claude-code", "claude-code"},
	} {
		if got := AgentLabel(c.a); got != c.label {
			t.Errorf("AgentLabel(%+v) = %q, want %q", c.a, got, c.label)
		}
		if got := AgentKey(c.a); got != c.key {
			t.Errorf("AgentKey(%+v) = %q, want %q", c.a, got, c.key)
		}
	}
}
