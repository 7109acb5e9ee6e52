package store

import (
	"errors"
	"fmt"
	"reflect"
	"slices"
	"testing"
	"time"
)

func TestSessionSummaryCounts(t *testing.T) {
	s := tempStore(t, Options{})
	t0 := base
	at := func(i int) time.Time { return t0.Add(time.Duration(i) * time.Second) }
	req := func(i int, class string) *Event {
		return &Event{Time: at(i), Kind: KindRequest, From: FromClient, Session: "s1", Method: "tools/call", Tool: "t", Class: class}
	}
	outcome := func(i int, o string) *Event {
		return &Event{Time: at(i), Kind: KindCall, Session: "s1", Method: "tools/call", Outcome: o}
	}
	events := []*Event{
		{Time: at(0), Kind: KindSessionStart, Session: "s1", Upstream: "fs", Agent: &Agent{ClientName: "claude-code"}, Principal: &Principal{}},
		req(1, "read"), outcome(2, OutcomeOK),
		req(3, "write"), outcome(4, OutcomeToolError),
		req(5, "delete"), outcome(6, OutcomeInputRequired),
		req(7, ""), outcome(8, OutcomeTimeout),
		{Time: at(9), Kind: KindRequest, From: FromServer, Session: "s1", Method: "sampling/createMessage", Class: "write"},
		{Time: at(10), Kind: KindNotification, From: FromClient, Session: "s1", Transport: "stdio",
			Agent: &Agent{ID: "agent-7", ClientName: "other"}, Principal: &Principal{Subject: "alice", Kind: "os_user"}, Task: &Task{ID: "T1"}},
		{Time: at(11), Kind: KindAlert, Session: "s1", Upstream: "other", Detail: "50 writes"},
		{Time: at(12), Kind: KindAlert, Session: "s2"},
		{Time: at(13), Kind: KindSessionEnd, Session: "s1", Principal: &Principal{Subject: "mallory"}},
		{Time: at(14), Kind: KindBadInput, Session: "s1"},
		{Time: at(15), Kind: KindNotification}, // no session: no summary
	}
	fill(t, s, events)

	got, err := s.Session("s1")
	if err != nil {
		t.Fatal(err)
	}
	want := SessionSummary{
		Session: "s1", Upstream: "fs", Transport: "stdio",
		Agent:     &Agent{ID: "agent-7", ClientName: "claude-code"},
		Principal: &Principal{Subject: "alice", Kind: "os_user"},
		Task:      &Task{ID: "T1"},
		Started:   at(0), Ended: at(13), LastSeen: at(14),
		Calls: 4, Writes: 2, Errors: 2, Alerts: 1, Events: 14,
	}
	if !reflect.DeepEqual(*got, want) {
		t.Fatalf("summary\n got %+v %+v %+v\nwant %+v %+v %+v", *got, *got.Agent, *got.Principal, want, *want.Agent, *want.Principal)
	}
	if s2, err := s.Session("s2"); err != nil || s2.Alerts != 1 || s2.Events != 1 || s2.Agent != nil || !s2.Ended.IsZero() {
		t.Fatalf("s2 = %+v, %v", s2, err)
	}
	if _, err := s.Session("nope"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Session(nope): %v", err)
	}
}

func TestSessionsNewestFirstWithPaging(t *testing.T) {
	s := tempStore(t, Options{Durability: DurabilityBatch})
	var events []*Event
	// Sessions start at staggered times, some at the same instant, and
	// their events interleave.
	for i := range 30 {
		id := fmt.Sprintf("s%02d", i)
		start := base.Add(time.Duration(i/3) * time.Minute)
		agent := &Agent{ID: []string{"a", "b", "c"}[i%3]}
		events = append(events,
			&Event{Time: start, Kind: KindSessionStart, Session: id, Upstream: []string{"fs", "gh"}[i%2], Agent: agent},
		)
	}
	for i := range 30 {
		events = append(events, &Event{Time: base.Add(time.Hour), Kind: KindRequest, From: FromClient, Session: fmt.Sprintf("s%02d", i)})
	}
	fill(t, s, events)

	// Newest start first; the same start ordered by id.
	var want []string
	for i := 27; i >= 0; i -= 3 {
		want = append(want, fmt.Sprintf("s%02d", i), fmt.Sprintf("s%02d", i+1), fmt.Sprintf("s%02d", i+2))
	}
	for _, tc := range []struct {
		q    SessionQuery
		want []string
	}{
		{SessionQuery{}, want},
		{SessionQuery{Agent: "b"}, slices.DeleteFunc(slices.Clone(want), func(id string) bool { return (id[2]-'0'+(id[1]-'0')*10)%3 != 1 })},
		{SessionQuery{Upstream: "gh"}, slices.DeleteFunc(slices.Clone(want), func(id string) bool { return (id[2]-'0')%2 == 0 })},
		{SessionQuery{Agent: "a", Upstream: "gh"}, slices.DeleteFunc(slices.Clone(want), func(id string) bool {
			n := int(id[2]-'0') + 10*int(id[1]-'0')
			return n%3 != 0 || n%2 != 1
		})},
	} {
		for _, limit := range []int{1, 4, 100} {
			q := tc.q
			q.Limit = limit
			var got []string
			for n := 0; n < 100; n++ {
				page, err := s.Sessions(q)
				if err != nil {
					t.Fatal(err)
				}
				for _, sum := range page {
					got = append(got, sum.Session)
					if sum.Events != 2 || sum.Calls != 1 {
						t.Fatalf("%s: %+v", sum.Session, sum)
					}
				}
				if len(page) < limit {
					break
				}
				q.Cursor = page[len(page)-1].Session
			}
			if !slices.Equal(got, tc.want) {
				t.Fatalf("%+v:\n got %v\nwant %v", q, got, tc.want)
			}
		}
	}
	if _, err := s.Sessions(SessionQuery{Cursor: "nope"}); !errors.Is(err, ErrNotFound) {
		t.Fatalf("unknown cursor: %v", err)
	}
}

// Summaries kept across many commits agree with counting the events.
func TestSessionSummariesMatchEvents(t *testing.T) {
	s := tempStore(t, Options{Durability: DurabilityBatch, MaxBatch: 37})
	events := dataset(1000, true, false)
	fill(t, s, events)
	counts := map[string]*SessionSummary{}
	for _, ev := range events {
		if ev.Session == "" {
			continue
		}
		if counts[ev.Session] == nil {
			counts[ev.Session] = &SessionSummary{Session: ev.Session, Started: ev.Time}
		}
		counts[ev.Session].add(ev)
	}
	all, err := s.Sessions(SessionQuery{})
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != len(counts) {
		t.Fatalf("%d sessions, want %d", len(all), len(counts))
	}
	for _, got := range all {
		want := counts[got.Session]
		if got.Events != want.Events || got.Calls != want.Calls || got.Writes != want.Writes ||
			got.Errors != want.Errors || got.Alerts != want.Alerts || !got.Started.Equal(want.Started) || !got.LastSeen.Equal(want.LastSeen) {
			t.Fatalf("%q:\n got %+v\nwant %+v", got.Session, got, *want)
		}
	}
}
