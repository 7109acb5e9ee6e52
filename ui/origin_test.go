package ui

import (
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/x/ansi"
	"github.com/charmbracelet/x/exp/teatest"
	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/mcptrail/mcptrail/collect"
	"github.com/mcptrail/mcptrail/internal/termsafe/termsafetest"
	"github.com/mcptrail/mcptrail/siem"
	"github.com/mcptrail/mcptrail/store"
)

// origin:HOST (or a store id) narrows a central store's sessions and
// events to one origin; a local session matches no origin filter.
func TestOriginFilter(t *testing.T) {
	f, err := ParseFilter("origin:laptop-7 agent:bot", Filter{})
	if err != nil {
		t.Fatal(err)
	}
	if f.Origin != "laptop-7" || f.String() != "agent:bot origin:laptop-7" {
		t.Fatalf("filter %+v %q", f, f.String())
	}
	now := time.Now()
	laptop := &store.SessionSummary{Agent: &store.Agent{ID: "bot"}, Origin: &store.Origin{Store: "01A", Host: "laptop-7"}}
	ci := &store.SessionSummary{Agent: &store.Agent{ID: "bot"}, Origin: &store.Origin{Store: "01B", Host: "ci-3"}}
	local := &store.SessionSummary{Agent: &store.Agent{ID: "bot"}}
	if !f.MatchSession(laptop, now) || f.MatchSession(ci, now) || f.MatchSession(local, now) {
		t.Fatal("origin filter on sessions")
	}
	if byID, _ := ParseFilter("origin:01B", Filter{}); !byID.MatchSession(ci, now) {
		t.Fatal("origin by store id")
	}
	if q := f.Apply(store.Query{}, now); q.Origin != "laptop-7" {
		t.Fatalf("query %+v", q)
	}
	if cleared, _ := ParseFilter("-origin", f); cleared.Origin != "" {
		t.Fatal("-origin")
	}
}

// fleetStore is a central store filled the way a collector fills one: two
// gateways' stores (laptop-7 and ci-3) stream their records through the
// Kafka sink into a cluster of three brokers in this process, and the
// collector merges both chains into the central store.
func fleetStore(t *testing.T) *store.Store {
	t.Helper()
	return fleetStoreOf(t, "laptop-7", "ci-3")
}

// fleetStoreOf is fleetStore with the two origins' host names given: each
// origin's forwarder names its host as a deployment's would, and the
// collector takes it from the record's header.
func fleetStoreOf(t *testing.T, laptop, ci string) *store.Store {
	t.Helper()
	cluster, err := kfake.NewCluster(kfake.NumBrokers(3), kfake.SeedTopics(3, "mcptrail"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cluster.Close)
	url := "kafka://" + strings.Join(cluster.ListenAddrs(), ",") + "/mcptrail"
	keys := map[string]string{}
	want := 0
	for _, o := range []struct{ name, host, agent, tool, sess string }{
		{"laptop", laptop, "triage-assistant", "read_file", "01JLAPTOP00000000000000000"},
		{"ci", ci, "nightly-ops-bot", "delete_user", "01JCI000000000000000000000"},
	} {
		skey, _, err := store.GenerateKey(o.name)
		if err != nil {
			t.Fatal(err)
		}
		st, err := store.Open(filepath.Join(t.TempDir(), o.name+".db"), store.Options{SigningKey: skey, CheckpointEvery: 4})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		keys[st.ID()] = st.VerifierKey()
		f := &fixture{t: t, st: st, at: t0}
		b := base(o.sess, o.agent, "FLEET-1")
		start := b
		start.Kind = store.KindSessionStart
		f.append(start)
		f.call(b, o.tool, map[string]any{"path": "/srv/" + o.host}, "write", true, "ok", map[string]any{"content": []any{}})
		f.flush()
		want += 3
		spec, err := siem.ParseSinkURL(url)
		if err != nil {
			t.Fatal(err)
		}
		fw, err := siem.NewForwarder(st, spec, siem.ForwarderOptions{
			Encoding: siem.Options{Origin: st.ID(), OriginKey: st.VerifierKey(), Hostname: o.host},
			Poll:     5 * time.Millisecond, Linger: time.Millisecond, MinBackoff: time.Millisecond, MaxBackoff: 10 * time.Millisecond,
			Checkpoints: siem.StoreCheckpoints(st),
		})
		if err != nil {
			t.Fatal(err)
		}
		if err := fw.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { fw.Stop(time.Second) })
	}
	central, err := store.Open(filepath.Join(t.TempDir(), "central.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { central.Close() })
	spec, err := collect.ParseURL(url + "?group=central")
	if err != nil {
		t.Fatal(err)
	}
	c, err := collect.Start(central, spec, collect.Options{Keys: keys})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Stop)
	deadline := time.Now().Add(30 * time.Second)
	for c.Status().Stats.Events < uint64(want) {
		if time.Now().After(deadline) {
			t.Fatalf("collector merged %+v of %d events", c.Status().Stats, want)
		}
		time.Sleep(5 * time.Millisecond)
	}
	if err := central.Flush(); err != nil {
		t.Fatal(err)
	}
	return central
}

// The console over a central store: sessions of both hosts in one list
// with an ORIGIN column, at 80 and at 200 columns; `f origin:HOST`
// narrows it to one host; all calls name each call's host.
func TestConsoleShowsTheFleet(t *testing.T) {
	central := fleetStore(t)
	for _, size := range [][2]int{{80, 24}, {200, 50}} {
		t.Run(fmt.Sprintf("%dx%d", size[0], size[1]), func(t *testing.T) {
			h := startSized(t, testOptions(central, RoleViewer), size[0], size[1])
			h.waitFor("session 1 of 2")
			sessions := h.final()
			h = startSized(t, testOptions(central, RoleViewer), size[0], size[1])
			h.waitFor("session 1 of 2")
			h.keys("f", "origin:ci-3", "enter")
			h.waitFor("origin:ci-3 ×")
			h.waitFor("session 1 of 1")
			narrowed := h.final()

			for _, frame := range []string{sessions, narrowed} {
				for _, line := range strings.Split(ansi.Strip(frame), "\n") {
					if w := ansi.StringWidth(line); w > size[0] {
						t.Fatalf("line %d wide at %d columns: %q", w, size[0], line)
					}
				}
			}
			containsAll(t, "fleet's sessions", ansi.Strip(sessions), "ORIGIN", "laptop-7", "ci-3", "triage-assistant", "nightly-ops-bot", "AGENT")
			narrowed = ansi.Strip(narrowed)
			containsAll(t, "sessions of ci-3", narrowed, "ORIGIN", "ci-3", "nightly-ops-bot")
			if strings.Contains(narrowed, "laptop-7") || strings.Contains(narrowed, "triage-assistant") {
				t.Fatalf("origin:ci-3 still lists laptop-7's session:\n%s", narrowed)
			}
		})
	}
}

// All calls of a fleet name each call's origin next to its agent, each
// collected call on one row with its outcome (which names its request by
// the origin's seq), and the
// ARGUMENTS column still gets the most room; one session's timeline names
// its host in the heading.
func TestFleetTimelineOriginColumn(t *testing.T) {
	central := fleetStore(t)
	h := startSized(t, testOptions(central, RoleViewer), 80, 24)
	h.waitFor("session 1 of 2")
	h.keys("c")
	h.waitFor("delete_us")
	all := ansi.Strip(h.final())
	containsAll(t, "all calls", all, "ORIGIN", "laptop-7", "ci-3", "read_file", "delete_us", "ARGUMENTS")
	for _, line := range strings.Split(all, "\n") {
		if strings.Contains(line, "delete_us") && (!strings.Contains(line, "ci-3") || !strings.Contains(line, " ok ")) {
			t.Fatalf("ci-3's call without its origin: %q", line)
		}
	}
	cols := (&timelineScreen{screenBase: screenBase{c: &Common{Fleet: true}}}).columns()
	widths := layout(cols, 198)
	for i, c := range cols {
		if c.title != "ARGUMENTS" && widths[i] >= widths[slices.IndexFunc(cols, func(c column) bool { return c.title == "ARGUMENTS" })] {
			t.Fatalf("at 200 columns %s (%d) is as wide as ARGUMENTS: %v", c.title, widths[i], widths)
		}
	}
	h = startSized(t, testOptions(central, RoleViewer), 80, 24)
	h.waitFor("session 1 of 2")
	h.keys("enter")
	h.waitFor("· on ")
	h.final()
}

// A gateway's own store has no ORIGIN column: it looks as it always did.
func TestSingleHostHasNoOriginColumn(t *testing.T) {
	f := newFixture(t)
	demoRecord(f)
	h := start(t, testOptions(f.st, RoleViewer))
	h.waitFor("session 1 of 2")
	h.keys("c")
	h.waitFor("delete_user")
	frame := ansi.Strip(h.final())
	if strings.Contains(frame, "ORIGIN") || h.app.c.Fleet {
		t.Fatalf("a single host's console shows origins:\n%s", frame)
	}
}

// An origin names its own host, and a compromised one (or anyone who can
// produce into the topic) can name it anything: the ORIGIN column, the
// session's heading and the collector's first-sight alert show it escaped,
// never as control sequences.
func TestFleetHostNameNeverDrivesTheTerminal(t *testing.T) {
	central := fleetStoreOf(t, termsafetest.Named("host"), "ci-3")
	opts := testOptions(central, RoleViewer)
	rec := &frameRecorder{App: New(opts)}
	tm := teatest.NewTestModel(t, rec, teatest.WithInitialTermSize(160, 48))
	t.Cleanup(func() { tm.Quit() })
	h := &harness{t: t, tm: tm, app: rec.App}
	h.waitFor("session 1 of 2")
	h.keys("G", "enter")
	h.waitFor("· on ")
	h.keys("esc", "a")
	h.waitFor("New origin")
	h.keys("enter") // each origin's first-sight alert names its host
	h.waitFor("seen for the first time")
	h.keys("esc", "j", "enter")
	h.waitFor("seen for the first time")
	h.keys("esc", "esc", "c")
	h.waitFor("delete_us")
	h.tm.Send(tea.KeyMsg{Type: tea.KeyCtrlC})
	h.tm.FinalModel(t, teatest.WithFinalTimeout(5*time.Second))
	rec.mu.Lock()
	frames := rec.frames
	rec.mu.Unlock()
	for _, frame := range frames {
		if err := termsafetest.Check([]byte(frame), false); err != nil {
			t.Fatalf("%v\nin the frame:\n%s", err, frame)
		}
	}
	if raw := string(h.seen); strings.Contains(raw, "\x1b]") || strings.Contains(raw, "\x07") || strings.Contains(raw, "\u009b") {
		t.Fatalf("a control sequence from the host name reached the terminal")
	}
	if joined := strings.Join(frames, "\n"); !strings.Contains(joined, `host:evil\x1b]52`) {
		t.Error("no frame shows the host name escaped")
	}
}
