package rollback

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/mcptrail/mcptrail/collect"
	"github.com/mcptrail/mcptrail/siem"
	"github.com/mcptrail/mcptrail/store"
)

// collectInto merges every event of origin (host "laptop") and every
// pre-state its outcomes name into central, through the collector's
// merger, as the Kafka sink's records would carry them.
func collectInto(t *testing.T, origin, central *store.Store) {
	t.Helper()
	origin.Flush()
	m, err := collect.NewMerger(central, nil, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	id := []byte(origin.ID())
	for seq := uint64(1); seq <= origin.Stats().Events; seq++ {
		ev, err := origin.Get(seq)
		if err != nil {
			t.Fatal(err)
		}
		v, err := siem.MarshalExact(ev)
		if err != nil {
			t.Fatal(err)
		}
		h := map[string][]byte{siem.HeaderOrigin: id, siem.HeaderHost: []byte("laptop"), siem.HeaderSeq: []byte(strconv.FormatUint(seq, 10)),
			siem.HeaderKind: []byte(ev.Kind), siem.HeaderFormat: []byte("jsonl")}
		if err := m.Merge(id, v, h); err != nil {
			t.Fatal(err)
		}
		if ev.Call == 0 || !strings.HasPrefix(ev.Prestate, "sha256:") {
			continue
		}
		blob, err := origin.Rollback().Prestate(ev.Call)
		if err != nil {
			t.Fatal(err)
		}
		ph := map[string][]byte{siem.HeaderOrigin: id, siem.HeaderSeq: []byte(strconv.FormatUint(ev.Call, 10)), siem.HeaderKind: []byte(siem.KindPrestate),
			siem.HeaderSHA256: []byte(ev.Prestate), siem.HeaderSize: []byte(strconv.Itoa(len(blob)))}
		if err := m.Merge(id, blob, ph); err != nil {
			t.Fatal(err)
		}
	}
	if err := m.Commit(); err != nil {
		t.Fatal(err)
	}
	if s := m.Stats(); s.Alerts != 0 || s.Prestates == 0 {
		t.Fatalf("collecting: %+v", s)
	}
}

// centralPlan records a kvserver write on the origin (a's old value
// "before" overwritten), collects it into a central store and plans its
// reversal there; it returns the fixture, the central store and the plan.
func centralPlan(t *testing.T) (*kvFixture, *store.Store, *Plan) {
	t.Helper()
	f := newKV(t, "")
	f.setKV(map[string]string{"a": "before"})
	f.call("put", map[string]any{"key": "a", "value": "agent"})
	f.call("put", map[string]any{"key": "b", "value": "other"})
	central, err := store.Open(filepath.Join(t.TempDir(), "central.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { central.Close() })
	collectInto(t, f.st, central)
	page, err := central.Query(store.Query{Tool: "put", Kind: store.KindRequest, Limit: 10})
	if err != nil || len(page.Events) != 2 {
		t.Fatalf("collected puts: %+v %v", page.Events, err)
	}
	// The planner could connect: it must not, for calls of another host.
	p := &Planner{Rules: f.rules, Source: central.Rollback(), Connect: f.connector(nil)}
	plan, err := p.Build(context.Background(), Selection{Calls: []uint64{page.Events[0].Seq}}, "oncall")
	if err != nil {
		t.Fatal(err)
	}
	if err := SavePlan(central.Rollback(), plan); err != nil {
		t.Fatal(err)
	}
	return f, central, plan
}

// A plan built on a central store from collected events, with the
// pre-state the origin shipped, shows the diff, refuses to apply there,
// and, exported to a file, applies on the origin and reverts the write.
func TestCentralPlanAppliesOnTheOrigin(t *testing.T) {
	f, central, plan := centralPlan(t)
	if plan.Origin != f.st.ID() || plan.OriginHost != "laptop" || len(plan.Steps) != 1 || len(plan.Targets) != 0 || plan.Checked {
		t.Fatalf("central plan: %+v", plan)
	}
	st := plan.Steps[0]
	if st.Status != StatusReady || st.Restored != "before" || !strings.Contains(st.Diff, "before") || st.Origin == nil || st.Origin.Store != f.st.ID() {
		t.Fatalf("central step (from the shipped pre-state): %+v", st)
	}
	if !strings.Contains(plan.Note, "rollback export-plan "+plan.ID) || !strings.Contains(plan.Note, "rollback apply --plan-file") {
		t.Fatalf("note: %s", plan.Note)
	}
	x := &Executor{Rules: f.rules, Store: central.Rollback(), Record: central.Append, Connect: f.connector(nil)}
	if _, err := x.Apply(context.Background(), plan.ID, alice, nil); !errors.Is(err, ErrAppliedElsewhere) {
		t.Fatalf("apply on the central store: %v", err)
	}
	if f.kv()["a"] != "agent" {
		t.Fatal("the central apply changed the origin's server")
	}

	file, _ := json.Marshal(plan)
	got, err := ReadPlanFile(bytes.NewReader(file))
	if err != nil {
		t.Fatal(err)
	}
	sel, err := got.OriginSelection(f.st.ID(), f.st)
	if err != nil {
		t.Fatal(err)
	}
	if want := f.requests("put")[0]; len(sel.Calls) != 1 || sel.Calls[0] != want {
		t.Fatalf("selection on the origin: %+v, want call %d", sel, want)
	}
	local := f.build(sel)
	if local.Origin != "" || !local.Checked || statuses(local) != "put:ready" {
		t.Fatalf("origin's plan: %+v", local)
	}
	applied, err := f.executor(nil).Apply(context.Background(), local.ID, alice, nil)
	if err != nil || applied.State != PlanApplied {
		t.Fatalf("apply on the origin: %+v %v", applied, err)
	}
	if kv := f.kv(); kv["a"] != "before" || kv["b"] != "other" {
		t.Fatalf("after the apply: %v", kv)
	}
}

// A forged plan file is refused as a whole, naming the step: a changed
// origin seq, a changed hash, another origin, a call the origin never
// recorded, a step without its origin.
func TestPlanFileRefusesForgeries(t *testing.T) {
	f, _, plan := centralPlan(t)
	puts := f.requests("put")
	forge := func(change func(p *Plan)) *Plan {
		data, _ := json.Marshal(plan)
		var p Plan
		json.Unmarshal(data, &p)
		change(&p)
		return &p
	}
	for name, c := range map[string]struct {
		p    *Plan
		want string
	}{
		"changed seq":  {forge(func(p *Plan) { p.Steps[0].Origin.Seq = puts[1] }), "step 1: call " + strconv.FormatUint(puts[1], 10) + "'s hash"},
		"outcome seq":  {forge(func(p *Plan) { p.Steps[0].Origin.Seq++ }), "not the request"},
		"changed hash": {forge(func(p *Plan) { p.Steps[0].Origin.Hash = strings.Repeat("0", 64) }), "step 1: call"},
		"other origin": {forge(func(p *Plan) { p.Origin = "01OTHERSTORE" }), "the plan is for store"},
		"other step":   {forge(func(p *Plan) { p.Steps[0].Origin.Store = "01OTHERSTORE" }), "step 1 (call"},
		"missing call": {forge(func(p *Plan) { p.Steps[0].Origin.Seq = 9999 }), "step 1: call 9999 of this store is not in its record"},
		"no origin":    {forge(func(p *Plan) { p.Steps[0].Origin = nil }), "does not name a call"},
		"appended step": {forge(func(p *Plan) {
			s := p.Steps[0]
			s.N = 2
			o := *s.Origin
			o.Hash = "x"
			s.Origin = &o
			p.Steps = append(p.Steps, s)
		}), "step 2"},
	} {
		sel, err := c.p.OriginSelection(f.st.ID(), f.st)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %+v %v, want an error with %q", name, sel, err, c.want)
		}
	}
	for name, file := range map[string]string{
		"not json":     "step 1",
		"local plan":   `{"plan":"X","steps":[{"step":1,"reverts":3}]}`,
		"no steps":     `{"plan":"X","origin":"Y","steps":[]}`,
		"a list":       `[1,2]`,
		"huge garbage": strings.Repeat(" ", MaxPlanFile+1),
	} {
		if _, err := ReadPlanFile(strings.NewReader(file)); err == nil {
			t.Errorf("%s: read as a plan", name)
		}
	}
}
