package ui

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	tea "github.com/charmbracelet/bubbletea"

	"github.com/mcptrail/mcptrail/store"
)

// The console on a 1 M-event store: time to first screen, key-to-frame
// latency and memory. The store is built once (batch appends) and cached
// in the temp dir, so only the first run pays for it:
//
//	go test ./ui -run '^$' -bench Console -benchtime 500x -benchmem
//
// Layout: one runaway session of 200,000 events (100,000 tool calls) and
// 8,000 ordinary sessions of 100 events, 1,000,000 events in all.

const (
	benchEvents    = 1_000_000
	benchBigCalls  = 100_000
	benchSmallSess = 8_000
	benchBigID     = "01JBENCHBIGSESSION00000000"
)

func benchStore(b *testing.B) *store.Store {
	b.Helper()
	dir := filepath.Join(os.TempDir(), "mcptrail-ui-bench-1M-v1")
	path := filepath.Join(dir, "mcptrail.db")
	if _, err := os.Stat(filepath.Join(dir, "complete")); err != nil {
		os.RemoveAll(dir)
		start := time.Now()
		buildBenchStore(b, path)
		os.WriteFile(filepath.Join(dir, "complete"), nil, 0o600)
		b.Logf("built a %d-event store in %s at %s", benchEvents, time.Since(start).Round(time.Second), path)
	}
	st, err := store.Open(path, store.Options{ReadOnly: true})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { st.Close() })
	return st
}

func buildBenchStore(b *testing.B, path string) {
	st, err := store.Open(path, store.Options{Durability: store.DurabilityBatch, MaxBatch: 8192, BatchWindow: 20 * time.Millisecond})
	if err != nil {
		b.Fatal(err)
	}
	at := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	tools := []string{"read_file", "write_file", "update_ticket", "list_users", "delete_user", "grant_role"}
	n := 0
	emit := func(ev store.Event) uint64 {
		n++
		at = at.Add(10 * time.Millisecond)
		ev.Time = at
		seq, err := st.AppendNoWait(&ev)
		if err != nil {
			b.Fatal(err)
		}
		return seq
	}
	session := func(id, agent string, calls int) {
		b0 := store.Event{Session: id, Upstream: "acme-ops", Transport: "stdio",
			Agent:     &store.Agent{ID: agent, Name: agent, ClientName: "claude-code", ClientVersion: "2.1.0"},
			Principal: &store.Principal{Subject: "svc-" + agent, Kind: "token", Verified: true},
			Task:      &store.Task{ID: "INC-" + id[len(id)-4:]}}
		for i := 0; i < calls; i++ {
			tool := tools[i%len(tools)]
			args, _ := json.Marshal(map[string]any{"path": fmt.Sprintf("docs/%d.md", i%500), "content": "line one\nline two\n"})
			req := b0
			req.Kind, req.From, req.Method, req.Tool, req.Class = store.KindRequest, store.FromClient, "tools/call", tool, "write"
			req.Params = json.RawMessage(`{"name":"` + tool + `","arguments":` + string(args) + `}`)
			seq := emit(req)
			out := b0
			out.Kind, out.From, out.Method, out.Tool, out.Class, out.Call, out.Outcome = store.KindCall, store.FromClient, "tools/call", tool, "write", seq, store.OutcomeOK
			out.Result = json.RawMessage(`{"content":[{"type":"text","text":"done"}]}`)
			out.DurationNS = int64(time.Millisecond)
			emit(out)
		}
	}
	session(benchBigID, "runaway-bot", benchBigCalls)
	for i := 0; n < benchEvents; i++ {
		session(fmt.Sprintf("01JBENCHSESSION%011d", i), fmt.Sprintf("agent-%d", i%40), 50)
	}
	if err := st.Close(); err != nil {
		b.Fatal(err)
	}
}

func benchApp(st *store.Store) *App {
	opts := testOptions(st, RoleOperator)
	opts.Clipboard = discard{}
	app := New(opts)
	app.Update(tea.WindowSizeMsg{Width: 80, Height: 24})
	return app
}

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }

// settle runs a command and everything it leads to (not timers), then
// draws the frame: what the investigator waits for after a key.
func settle(m *App, cmd tea.Cmd) string {
	queue := []tea.Cmd{cmd}
	for len(queue) > 0 {
		c := queue[0]
		queue = queue[1:]
		if c == nil {
			continue
		}
		ch := make(chan tea.Msg, 1)
		go func() { ch <- c() }()
		var msg tea.Msg
		select {
		case msg = <-ch:
		case <-time.After(2 * time.Second):
			continue // a timer (toast, follow)
		}
		if batch, ok := msg.(tea.BatchMsg); ok {
			queue = append(queue, batch...)
			continue
		}
		if _, ok := msg.(clearToast); ok || msg == nil {
			continue
		}
		_, next := m.Update(msg)
		queue = append(queue, next)
	}
	return m.View()
}

// heapMB is the live heap of the whole test process (the store's file is
// mmapped, not heap), with the console open.
func heapMB() float64 {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return float64(ms.HeapAlloc) / (1 << 20)
}

// BenchmarkConsoleFirstScreen: from New to the sessions screen drawn.
func BenchmarkConsoleFirstScreen(b *testing.B) {
	st := benchStore(b)
	var app *App
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		app = benchApp(st)
		settle(app, app.top().Init())
	}
	b.StopTimer()
	if app.top().(*sessionsScreen).rows == nil {
		b.Fatal("no sessions")
	}
	b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N)/1000, "ms/screen")
	b.ReportMetric(heapMB(), "heap-MB")
	runtime.KeepAlive(app)
}

func openBig(b *testing.B, st *store.Store) (*App, *timelineScreen) {
	app := benchApp(st)
	settle(app, app.top().Init())
	sum, err := st.Session(benchBigID)
	if err != nil {
		b.Fatal(err)
	}
	tl := newTimeline(app.c, sum)
	settle(app, func() tea.Msg { return pushMsg{tl} })
	return app, tl
}

// BenchmarkConsoleOpenBigSession: enter on a 200,000-event session.
func BenchmarkConsoleOpenBigSession(b *testing.B) {
	st := benchStore(b)
	var app *App
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		app = benchApp(st)
		settle(app, app.top().Init())
		sum, _ := st.Session(benchBigID)
		b.StartTimer()
		settle(app, func() tea.Msg { return pushMsg{newTimeline(app.c, sum)} })
	}
	b.StopTimer()
	b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N)/1000, "ms/open")
	b.ReportMetric(heapMB(), "heap-MB")
	runtime.KeepAlive(app)
}

func benchKey(b *testing.B, k tea.KeyMsg, reset func(*App, *timelineScreen)) {
	st := benchStore(b)
	app, tl := openBig(b, st)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if reset != nil && i%500 == 499 {
			b.StopTimer()
			reset(app, tl)
			b.StartTimer()
		}
		settle(app, func() tea.Msg { return k })
	}
	b.StopTimer()
	b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N)/1000, "ms/key")
	b.ReportMetric(heapMB(), "heap-MB")
	b.ReportMetric(float64(len(tl.rows)), "rows-held")
}

// BenchmarkConsoleKeyDown: j in the big session (pages load as it goes).
func BenchmarkConsoleKeyDown(b *testing.B) {
	benchKey(b, tea.KeyMsg{Type: tea.KeyRunes, Runes: []rune{'j'}}, nil)
}

// BenchmarkConsoleKeyPageDown: pgdown, a page-load every few presses.
func BenchmarkConsoleKeyPageDown(b *testing.B) {
	benchKey(b, tea.KeyMsg{Type: tea.KeyPgDown}, nil)
}

// BenchmarkConsoleKeyNewest: G, the far end of 200,000 events, then g.
func BenchmarkConsoleKeyNewest(b *testing.B) {
	st := benchStore(b)
	app, tl := openBig(b, st)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		r := 'G'
		if i%2 == 1 {
			r = 'g'
		}
		settle(app, func() tea.Msg { return tea.KeyMsg{Type: tea.KeyRunes, Runes: []rune{r}} })
	}
	b.StopTimer()
	b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N)/1000, "ms/key")
	b.ReportMetric(heapMB(), "heap-MB")
	b.ReportMetric(float64(len(tl.rows)), "rows-held")
}
