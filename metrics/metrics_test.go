package metrics

import (
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/mcptrail/mcptrail/collect"
	"github.com/mcptrail/mcptrail/siem"
	"github.com/mcptrail/mcptrail/store"
)

func TestToolLabelOffAndScrapeSources(t *testing.T) {
	now := time.Date(2026, 11, 27, 5, 0, 0, 0, time.UTC)
	m := New(Options{
		Version:    "x",
		ToolLabel:  false,
		StoreStats: func() store.Stats { return store.Stats{Events: 42, FileBytes: 4096, Commits: 7} },
		LastCheckpoint: func() (*store.Checkpoint, error) {
			return &store.Checkpoint{Size: 40, Time: now.Add(-90 * time.Second)}, nil
		},
		Sinks: func() []siem.SinkStatus {
			return []siem.SinkStatus{{Name: "hec-0", Kind: "hec", State: "failing", Lag: 5, Failures: 3, Delivered: 37}}
		},
		Alerts:         func() uint64 { return 2 },
		ActiveSessions: func() int { return 4 },
		Now:            func() time.Time { return now },
		Collector: func() *collect.Status {
			return &collect.Status{State: "failing", Stats: collect.Stats{Events: 11, Alerts: 2, Duplicates: 1, Origins: 1},
				Origins: []store.OriginState{{Store: "o1", Host: "laptop", Seq: 11}}}
		},
	})
	for _, tool := range []string{"a", "b", "c"} {
		m.Recorded(&store.Event{Kind: store.KindCall, Upstream: "u", Method: "tools/call", Tool: tool, Outcome: "ok", DurationNS: 1e6}, time.Now(), true, nil)
	}
	m.Recorded(&store.Event{Kind: store.KindCall, Upstream: "u", Method: "tools/call", Tool: "undo", Outcome: "ok", Reverts: 9}, time.Now(), true, nil)
	m.Recorded(&store.Event{Kind: store.KindRequest}, time.Now(), true, errTest{})
	var nilM *Metrics
	nilM.Recorded(&store.Event{}, time.Now(), false, nil) // metrics off: a no-op

	srv := httptest.NewServer(m.Handler())
	defer srv.Close()
	resp, err := srv.Client().Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	parser := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	calls := fams["mcptrail_calls_total"].GetMetric()
	if len(calls) != 1 || calls[0].GetCounter().GetValue() != 4 {
		t.Fatalf("calls without the tool label: %v", calls)
	}
	for _, l := range calls[0].GetLabel() {
		if l.GetName() == "tool" {
			t.Errorf("tool label present with ToolLabel off")
		}
	}
	one := func(name string) float64 {
		ms := fams[name].GetMetric()
		if len(ms) != 1 {
			t.Fatalf("%s: %d series", name, len(ms))
		}
		switch {
		case ms[0].Counter != nil:
			return ms[0].GetCounter().GetValue()
		case ms[0].Gauge != nil:
			return ms[0].GetGauge().GetValue()
		}
		return -1
	}
	for name, want := range map[string]float64{
		"mcptrail_store_events":                  42,
		"mcptrail_store_file_bytes":              4096,
		"mcptrail_store_commits_total":           7,
		"mcptrail_checkpoint_age_seconds":        90,
		"mcptrail_checkpoint_size_events":        40,
		"mcptrail_sink_lag_events":               5,
		"mcptrail_sink_errors_total":             3,
		"mcptrail_sink_delivered_events_total":   37,
		"mcptrail_sink_up":                       0,
		"mcptrail_detections_fired_total":        2,
		"mcptrail_active_sessions":               4,
		"mcptrail_rollback_steps_total":          1,
		"mcptrail_record_errors_total":           1,
		"mcptrail_collector_merged_events_total": 11,
		"mcptrail_collector_refused_total":       2,
		"mcptrail_collector_duplicates_total":    1,
		"mcptrail_collector_up":                  0,
		"mcptrail_collector_origin_seq":          11,
	} {
		if got := one(name); got != want {
			t.Errorf("%s = %v, want %v", name, got, want)
		}
	}
}

type errTest struct{}

func (errTest) Error() string { return "boom" }

// docs/metrics.md lists every mcptrail_ metric.
func TestDocsListEveryMetric(t *testing.T) {
	data, err := os.ReadFile("../docs/metrics.md")
	if err != nil {
		t.Fatal(err)
	}
	m := New(Options{
		ToolLabel:      true,
		StoreStats:     func() store.Stats { return store.Stats{} },
		LastCheckpoint: func() (*store.Checkpoint, error) { return &store.Checkpoint{}, nil },
		Sinks: func() []siem.SinkStatus {
			now := time.Now()
			return []siem.SinkStatus{{Name: "s", Kind: "file", LastDeliveryAt: &now}}
		},
		Alerts:         func() uint64 { return 0 },
		ActiveSessions: func() int { return 0 },
		Collector: func() *collect.Status {
			return &collect.Status{Origins: []store.OriginState{{Store: "o", Host: "h", Seq: 3}}}
		},
	})
	m.Recorded(&store.Event{Kind: store.KindRequest, Seq: 7}, time.Now(), true, nil)
	for _, k := range []string{store.KindCall, store.KindSessionStart} {
		m.Recorded(&store.Event{Kind: k, Reverts: 1, DurationNS: 1, Call: 7}, time.Now(), true, nil)
	}
	m.Recorded(&store.Event{}, time.Now(), true, errTest{})
	fams, err := m.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, f := range fams {
		if name := f.GetName(); strings.HasPrefix(name, Namespace+"_") {
			n++
			if !strings.Contains(string(data), "`"+name+"`") {
				t.Errorf("docs/metrics.md does not list %s", name)
			}
		}
	}
	if n < 20 {
		t.Errorf("only %d mcptrail_ metrics gathered", n)
	}
}
