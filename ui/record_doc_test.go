package ui

import (
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/lipgloss"
	"github.com/charmbracelet/x/exp/golden"
	"github.com/muesli/termenv"

	"github.com/mcptrail/mcptrail/store"
	"github.com/mcptrail/mcptrail/themes"
)

// recordCase is one record the record view lays out: a call (its request
// and outcome), a request alone, or an event.
type recordCase struct {
	name         string
	req, out, ev *store.Event
}

// recordCases appends records that between them reach every line the
// record view can write (every field, every section, a cut body, hostile
// text) and reads them back from the store, hashes and all.
func recordCases(t *testing.T) []recordCase {
	f := newFixture(t)
	in := demoRecord(f)
	get := func(seq uint64) *store.Event {
		t.Helper()
		e, err := f.st.Get(seq)
		if err != nil {
			t.Fatal(err)
		}
		return e
	}

	rich := base(sessOps, "nightly-ops-bot", "INC-4711")
	rich.Agent = &store.Agent{ID: "agent-7", Name: "nightly-ops-bot", ClientName: "claude-code", ClientVersion: "2.1.0"}
	rich.Principal = &store.Principal{Subject: "svc-ops", Kind: "jwt", Issuer: "https://idp.example", CredentialID: "sha256:ab12", Verified: false}
	rich.Task = &store.Task{ID: "INC-4711", Name: "rotate the config", Workflow: "nightly", TraceID: "4bf92f3577b34da6a3ce929d0e0e4736", SpanID: "00f067aa0ba902b7"}
	rich.OnBehalfOf = "carol@example.com"
	rich.Authorization = &store.Authorization{Reviewed: true, Approver: "alice", Method: "console", Time: t0.Add(30 * time.Minute)}
	rich.ProtocolVersion = "2025-06-18"
	rich.ClassSource = "rules"
	rich.Prestate = "sha256:feedface"
	rich.Reverts = in.writeV1
	req := rich
	req.Kind, req.From, req.Method, req.Tool, req.Class = store.KindRequest, store.FromClient, "tools/call", "write_file", "write"
	req.JSONRPCID = json.RawMessage(`"req-\u202e9"`)
	req.Params, _ = json.Marshal(map[string]any{"name": "write_file", "arguments": map[string]any{
		"path":    "/srv/app/config/" + strings.Repeat("very-long-directory-name/", 8) + "app.yaml",
		"content": "replicas: 0\n\x1b[31mred\x1b[0m\u009b2J and a bidi \u202eoverride",
	}})
	req.Annotations = &store.Annotations{ReadOnly: &no, Destructive: &yes, Idempotent: &yes, OpenWorld: &no}
	reqSeq := f.append(req)
	out := req
	out.Kind, out.Params, out.Call, out.LogicalCall, out.Outcome = store.KindCall, nil, reqSeq, reqSeq-1, store.OutcomeRPCError
	out.Error = json.RawMessage(`{"code":-32603,"message":"disk full"}`)
	out.DurationNS = int64(2*time.Second + 345*time.Millisecond)
	outSeq := f.append(out)

	// A request whose outcome never came, with a body too long to show.
	alone := base(sessOps, "nightly-ops-bot", "INC-4711")
	alone.Kind, alone.From, alone.Method, alone.Tool = store.KindRequest, store.FromClient, "tools/call", "bulk_import"
	alone.Principal, alone.Task, alone.Agent = &store.Principal{}, nil, nil
	rows := make([]int, 3200)
	for i := range rows {
		rows[i] = i
	}
	alone.Params, _ = json.Marshal(map[string]any{"name": "bulk_import", "arguments": map[string]any{"rows": rows}})
	aloneSeq := f.append(alone)

	// An event that is not a call, with a body of its own.
	ev := base(sessOps, "nightly-ops-bot", "INC-4711")
	ev.Kind, ev.Method, ev.From = store.KindNotification, "notifications/progress", store.FromServer
	ev.Params = json.RawMessage(`{"progressToken":"t1","progress":50,"total":100,"message":"half way"}`)
	ev.Result, _ = json.Marshal(map[string]any{"note": "\x1b]0;title\x07 a title set", "lines": []any{"one\ntwo", 3.5, true, nil}})
	evSeq := f.append(ev)
	f.flush()

	return []recordCase{
		{name: "the second write_file", req: get(in.writeV2), out: get(in.writeV2 + 1)},
		{name: "a tool error", req: get(in.toolErr), out: get(in.toolErr + 1)},
		{name: "every field", req: get(reqSeq), out: get(outSeq)},
		{name: "an outcome opened alone", out: get(outSeq)},
		{name: "no outcome, a cut body", req: get(aloneSeq)},
		{name: "an alert about a call", ev: get(in.alertSeq)},
		{name: "a notification", ev: get(evSeq)},
		{name: "no record"},
	}
}

// TestRecordViewBytes pins the record view byte for byte (escape codes
// included) at 80×24 and 200×50 in every theme: every line the call
// screen's layout makes for each record, where its sections start, and the
// first screenful as the screen draws it. The goldens were made from the
// layout before it became recordDoc; the refactor had to keep them.
func TestRecordViewBytes(t *testing.T) {
	cases := recordCases(t)
	for _, theme := range themes.Names() {
		for _, size := range []struct{ w, h int }{{80, 24}, {200, 50}} {
			t.Run(fmt.Sprintf("%s_%dx%d", theme, size.w, size.h), func(t *testing.T) {
				r := lipgloss.NewRenderer(io.Discard)
				r.SetColorProfile(termenv.TrueColor)
				c := &Common{Renderer: r, Loc: time.UTC, Keys: DefaultKeyMap(), ids: new(atomic.Int64)}
				c.setTheme(theme)
				var b strings.Builder
				for _, rc := range cases {
					s := newCall(c, rc.req, rc.out, rc.ev)
					s.SetSize(size.w, size.h-chrome)
					s.req, s.out, s.ev, s.loaded = rc.req, rc.out, rc.ev, true
					m := s.render()()
					s.Update(m)
					rendered := m.(loaded[callLayout]).val
					all := strings.Join(rendered.lines, "\n")
					fmt.Fprintf(&b, "=== %s: %d lines, sha256 %x, sections at %v\n", rc.name, len(rendered.lines), sha256.Sum256([]byte(all)), rendered.sections)
					lines := rendered.lines
					if len(lines) > 150 { // a cut body: its ends here, all of it in the hash
						lines = append(append(slices.Clip(lines[:100]), "[…]"), lines[len(lines)-40:]...)
					}
					writeQuoted(&b, strings.Join(lines, "\n"))
					fmt.Fprintf(&b, "--- %s: the first screen\n", rc.name)
					writeQuoted(&b, s.View())
				}
				golden.RequireEqual(t, []byte(b.String()))
			})
		}
	}
}

// writeQuoted writes text a line at a time, each quoted as Go would, so
// the golden shows escape codes as text and a diff points at the byte.
func writeQuoted(b *strings.Builder, text string) {
	for _, l := range strings.Split(text, "\n") {
		q := strconv.Quote(l)
		b.WriteString(q[1 : len(q)-1])
		b.WriteByte('\n')
	}
}

var _ tea.Model = (*callScreen)(nil)

// BenchmarkConsoleRecordView: the record view's layout of a write with a
// 200-line file in its arguments and a 500-entry result, 200 columns wide,
// in colour: what runs (in a command) each time a record is opened or the
// terminal resized.
func BenchmarkConsoleRecordView(b *testing.B) {
	r := lipgloss.NewRenderer(io.Discard)
	r.SetColorProfile(termenv.TrueColor)
	st := themes.Get(themes.Dark).Build(r)
	content := strings.Repeat("key: a value long enough to matter in a config file\n", 200)
	params, _ := json.Marshal(map[string]any{"name": "write_file", "arguments": map[string]any{"path": "/srv/app/config.yaml", "content": content}})
	entries := make([]map[string]any, 500)
	for i := range entries {
		entries[i] = map[string]any{"id": i, "name": fmt.Sprintf("entry-%d", i), "ok": i%2 == 0}
	}
	result, _ := json.Marshal(map[string]any{"content": entries})
	ev := base(sessOps, "nightly-ops-bot", "INC-4711")
	ev.Seq, ev.Hash, ev.PrevHash = 42, strings.Repeat("ab", 32), strings.Repeat("cd", 32)
	req := ev
	req.Kind, req.Method, req.Tool, req.Params, req.Time = store.KindRequest, "tools/call", "write_file", params, t0
	out := ev
	out.Seq, out.Kind, out.Call, out.Outcome, out.Result, out.Time = 43, store.KindCall, 42, store.OutcomeOK, result, t0.Add(time.Second)
	var n int
	for b.Loop() {
		lines, _ := layoutRecord(st, time.UTC, 199, &req, &out, nil)
		n = len(lines)
	}
	b.ReportMetric(float64(n), "lines")
}
