package ui

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/lipgloss"
	"github.com/charmbracelet/x/ansi"
	"github.com/charmbracelet/x/exp/golden"
	"github.com/charmbracelet/x/exp/teatest"
	"github.com/muesli/termenv"

	"github.com/mcptrail/mcptrail/internal/testkit"
	"github.com/mcptrail/mcptrail/store"
)

// kvServer is rollback's test MCP server (realrollback_test.go).
var kvServer string

func TestMain(m *testing.M) {
	// Goldens hold text only: no color codes, whatever the terminal.
	lipgloss.SetColorProfile(termenv.Ascii)
	testkit.MainWithPrograms(m, map[string]*string{"../rollback/testdata/kvserver": &kvServer})
}

// t0 is the night of the incident; now is an hour later.
var (
	t0  = time.Date(2026, 1, 15, 3, 0, 0, 0, time.UTC)
	now = t0.Add(time.Hour)
)

const (
	sessTriage = "01JTRIAGE0000000000000000A"
	sessOps    = "01JOPS00000000000000000000"
)

// fixture appends real events to a store in a temp dir, as the gateway
// would record them: requests, outcomes naming their request in `call`,
// session start and end, an alert.
type fixture struct {
	t    *testing.T
	st   *store.Store
	path string
	n    int
	at   time.Time
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	path := filepath.Join(t.TempDir(), "mcptrail.db")
	st, err := store.Open(path, store.Options{Durability: store.DurabilityBatch})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return &fixture{t: t, st: st, path: path, at: t0}
}

func (f *fixture) append(ev store.Event) uint64 {
	f.t.Helper()
	f.n++
	f.at = f.at.Add(1500 * time.Millisecond)
	if ev.Time.IsZero() {
		ev.Time = f.at
	}
	ev.ID = fmt.Sprintf("01JEVENT%018d", f.n) // fixed ids: stable hashes in goldens
	seq, err := f.st.Append(&ev)
	if err != nil {
		f.t.Fatal(err)
	}
	return seq
}

func (f *fixture) flush() {
	f.t.Helper()
	if err := f.st.Flush(); err != nil {
		f.t.Fatal(err)
	}
}

func base(sess, agent, task string) store.Event {
	return store.Event{
		Session: sess, Upstream: "acme-ops", Transport: "stdio",
		Agent:     &store.Agent{ID: agent, Name: agent, ClientName: "claude-code", ClientVersion: "2.1.0"},
		Principal: &store.Principal{Subject: "oncall", Kind: "os_user", Verified: true},
		Task:      &store.Task{ID: task},
	}
}

var (
	yes = true
	no  = false
)

// call appends a tool call (request, then outcome) and returns the
// request's seq.
func (f *fixture) call(b store.Event, tool string, args any, class string, destructive bool, outcome string, result any) uint64 {
	f.t.Helper()
	params, _ := json.Marshal(map[string]any{"name": tool, "arguments": args})
	req := b
	req.Kind, req.From, req.Method, req.Tool, req.Params, req.Class = store.KindRequest, store.FromClient, "tools/call", tool, params, class
	req.JSONRPCID = json.RawMessage(fmt.Sprint(f.n + 1))
	req.Annotations = &store.Annotations{ReadOnly: &no, Destructive: &destructive}
	if class == "read" {
		req.Annotations = &store.Annotations{ReadOnly: &yes}
	}
	seq := f.append(req)
	out := req
	out.Kind, out.Params, out.Call, out.Outcome = store.KindCall, nil, seq, outcome
	out.Result, _ = json.Marshal(result)
	out.DurationNS = int64(1200 * time.Microsecond)
	f.append(out)
	return seq
}

type incident struct {
	writeV1, writeV2, toolErr, alertSeq uint64
}

// demoRecord is a small 3 AM incident: a well-behaved triage session and a
// night-shift agent that rewrites a config twice, deletes a user and trips
// an alert.
func demoRecord(f *fixture) incident {
	var in incident
	tr := base(sessTriage, "triage-assistant", "TRIAGE-2291")
	start := tr
	start.Kind = store.KindSessionStart
	f.append(start)
	f.call(tr, "list_tickets", nil, "read", false, "ok", map[string]any{"content": []any{map[string]any{"type": "text", "text": "6 tickets"}}})
	f.call(tr, "read_file", map[string]any{"path": "config.yaml"}, "read", false, "ok", map[string]any{"content": []any{map[string]any{"type": "text", "text": "replicas: 3\n"}}})
	end := tr
	end.Kind, end.Detail = store.KindSessionEnd, "client closed the session"
	f.append(end)

	ops := base(sessOps, "nightly-ops-bot", "INC-4711")
	start = ops
	start.Kind = store.KindSessionStart
	f.append(start)
	f.call(ops, "update_ticket", map[string]any{"id": "OPS-101", "status": "closed"}, "write", false, "ok", map[string]any{"content": []any{}})
	in.toolErr = f.call(ops, "read_file", map[string]any{"path": "runbooks/dns.md"}, "read", false, "tool_error", map[string]any{"isError": true})
	in.writeV1 = f.call(ops, "write_file", map[string]any{"path": "config.yaml", "content": "replicas: 3\nmaintenance: false\nbackup_retention_days: 30\n"}, "write", true, "ok", map[string]any{"content": []any{}})
	f.call(ops, "update_ticket", map[string]any{"id": "OPS-102", "status": "closed"}, "write", false, "ok", map[string]any{"content": []any{}})
	in.writeV2 = f.call(ops, "write_file", map[string]any{"path": "config.yaml", "content": "replicas: 0\nmaintenance: true\nbackup_retention_days: 0\n"}, "write", true, "ok", map[string]any{"content": []any{}})
	f.call(ops, "delete_user", map[string]any{"name": "carol"}, "delete", true, "ok", map[string]any{"content": []any{}})
	alert := ops
	alert.Kind, alert.Tool, alert.Call, alert.Detail = store.KindAlert, "write_file", in.writeV2, "first use: nightly-ops-bot never called write_file before"
	in.alertSeq = f.append(alert)
	f.flush()
	return in
}

// harness runs the real program on a fixture at 80×24.
type harness struct {
	t    *testing.T
	tm   *teatest.TestModel
	app  *App
	seen []byte // what the program drew since the last key
	clip *testkit.LogBuf
}

func testOptions(src Source, role Role) Options {
	return Options{
		Source:      src,
		SourceLabel: "file evidence.db (read-only)",
		Identity:    Identity{Via: "ssh", Name: "alice", Fingerprint: "SHA256:testkeyfingerprint", Role: role},
		Renderer:    lipgloss.DefaultRenderer(),
		Now:         func() time.Time { return now },
		Location:    time.UTC,
		FollowEvery: 50 * time.Millisecond,
	}
}

func start(t *testing.T, opts Options) *harness {
	t.Helper()
	return startSized(t, opts, 80, 24)
}

// startSized runs the program on a w×h terminal.
func startSized(t *testing.T, opts Options, w, h int) *harness {
	t.Helper()
	clip := &testkit.LogBuf{}
	opts.Clipboard = clip
	app := New(opts)
	tm := teatest.NewTestModel(t, app, teatest.WithInitialTermSize(w, h))
	hr := &harness{t: t, tm: tm, app: app, clip: clip}
	t.Cleanup(func() { tm.Quit() })
	return hr
}

// waitFor waits until the program has drawn text (escape codes stripped)
// since the last keys were sent. The renderer only redraws lines that
// changed, so a wait names something the last keys brought on screen.
func (h *harness) waitFor(text string) {
	h.t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	buf := make([]byte, 64*1024)
	for {
		n, _ := h.tm.Output().Read(buf)
		h.seen = append(h.seen, buf[:n]...)
		if strings.Contains(ansi.Strip(string(h.seen)), text) {
			return
		}
		if time.Now().After(deadline) {
			h.t.Fatalf("waited 5s for %q; the screen showed:\n%s", text, ansi.Strip(string(h.seen)))
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func (h *harness) keys(keys ...string) {
	h.seen = h.seen[:0]
	for _, k := range keys {
		switch k {
		case "enter":
			h.tm.Send(tea.KeyMsg{Type: tea.KeyEnter})
		case "esc":
			h.tm.Send(tea.KeyMsg{Type: tea.KeyEsc})
		case "tab":
			h.tm.Send(tea.KeyMsg{Type: tea.KeyTab})
		case "space":
			h.tm.Send(tea.KeyMsg{Type: tea.KeySpace, Runes: []rune{' '}})
		case "backspace":
			h.tm.Send(tea.KeyMsg{Type: tea.KeyBackspace})
		case "ctrl+r":
			h.tm.Send(tea.KeyMsg{Type: tea.KeyCtrlR})
		default:
			h.tm.Type(k)
		}
	}
}

// final quits and returns the last frame as the program would draw it.
func (h *harness) final() string {
	h.t.Helper()
	h.tm.Send(tea.KeyMsg{Type: tea.KeyCtrlC})
	m := h.tm.FinalModel(h.t, teatest.WithFinalTimeout(5*time.Second)).(*App)
	m.quitting = false
	return m.View()
}

func (h *harness) golden(frame string) {
	h.t.Helper()
	golden.RequireEqual(h.t, []byte(frame+"\n"))
}

// countingSource counts store reads, to prove the console reads windows.
type countingSource struct {
	Source
	queries, gets atomic.Int64
	events        atomic.Int64
}

func (c *countingSource) Query(q store.Query) (store.Page, error) {
	c.queries.Add(1)
	p, err := c.Source.Query(q)
	c.events.Add(int64(len(p.Events)))
	return p, err
}

func (c *countingSource) Get(seq uint64) (*store.Event, error) {
	c.gets.Add(1)
	return c.Source.Get(seq)
}

// containsAll reports each of wants that text (what, for the message) lacks.
func containsAll(t *testing.T, what, text string, wants ...string) {
	t.Helper()
	for _, want := range wants {
		if !strings.Contains(text, want) {
			t.Errorf("no %q in the %s:\n%s", want, what, text)
		}
	}
}
