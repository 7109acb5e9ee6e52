package ui

import (
	"encoding/base64"
	"encoding/json"
	"strings"
	"sync"
	"testing"
	"time"

	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/x/exp/teatest"

	"github.com/mcptrail/mcptrail/internal/termsafe/termsafetest"
	"github.com/mcptrail/mcptrail/internal/testkit"
	"github.com/mcptrail/mcptrail/rollback"
	"github.com/mcptrail/mcptrail/store"
)

// frameRecorder is the console with every frame it draws kept: under the
// ASCII color profile (TestMain) the program styles nothing, so a frame
// holds no escape sequence of its own and any control character in it
// came from the record.
type frameRecorder struct {
	*App
	mu     sync.Mutex
	frames []string
}

func (f *frameRecorder) Update(msg tea.Msg) (tea.Model, tea.Cmd) {
	_, cmd := f.App.Update(msg)
	return f, cmd
}

func (f *frameRecorder) View() string {
	v := f.App.View()
	f.mu.Lock()
	f.frames = append(f.frames, v)
	f.mu.Unlock()
	return v
}

// hostileRollback plans, applies and shows history with the hostile
// agent's strings in every field a plan carries.
type hostileRollback struct{ plan *rollback.Plan }

func newHostileRollback() *hostileRollback {
	h := termsafetest.Hostile
	args, _ := json.Marshal(map[string]string{"path": termsafetest.Path})
	return &hostileRollback{plan: &rollback.Plan{
		ID: "01PLANHOSTILE", Created: now, CreatedBy: "alice", State: rollback.PlanPlanned, Checked: true, Note: termsafetest.Named("note"),
		Steps: []rollback.Step{{
			N: 1, Reverts: 3, Session: termsafetest.Session, Upstream: h, Tool: termsafetest.Tool, Args: termsafetest.Named("args"),
			Keys: []string{termsafetest.Named("resource")}, Status: rollback.StatusConflict, Reason: termsafetest.Named("reason"),
			Calls: []rollback.InverseCall{{Tool: termsafetest.Tool, Args: args}},
			Diff:  "--- current\n+++ restored\n@@ -1 +1 @@\n-" + termsafetest.Named("diff old") + "\n+" + termsafetest.Named("diff new") + "\n",
		}},
	}}
}

func (r *hostileRollback) RollbackPlan(rollback.Selection, string) (*rollback.Plan, error) {
	return clonePlan(r.plan), nil
}
func (r *hostileRollback) RollbackGet(string) (*rollback.Plan, error) { return clonePlan(r.plan), nil }
func (r *hostileRollback) RollbackApply(string, rollback.Approver) (*rollback.Plan, error) {
	return clonePlan(r.plan), nil
}
func (r *hostileRollback) RollbackPlans(int) ([]*rollback.Plan, error) {
	return []*rollback.Plan{clonePlan(r.plan)}, nil
}
func (r *hostileRollback) RollbackHistory(call uint64) (*rollback.History, error) {
	return &rollback.History{Key: termsafetest.Named("key"), Upstream: termsafetest.Named("upstream"), Versions: []rollback.Version{{
		Call: call, Session: termsafetest.Session, Tool: termsafetest.Tool, Outcome: "ok", Note: termsafetest.Named("history note"),
		Diff: "--- before\n+++ after\n-" + termsafetest.Named("version old") + "\n+" + termsafetest.Named("version new") + "\n",
	}}}, nil
}

// Every screen that shows what the hostile agent recorded — sessions,
// timeline, record view, diff (unified and side by side), resource
// history, rollback plan review, queue, alerts, search, filter chips,
// help — draws it with its control characters visible: no frame holds
// ESC, BEL, a C1 or bidi control, so the agent can neither set the
// clipboard or the title nor clear the header. The copy (y) is the
// record's JSON, lossless and inert.
func TestConsoleKeepsAgentControlsOffTheTerminal(t *testing.T) {
	f := newFixture(t)
	if _, err := termsafetest.Record(t0, f.st.Append); err != nil {
		t.Fatal(err)
	}
	f.flush()
	opts := testOptions(f.st, RoleOperator)
	opts.Rollback = newHostileRollback()
	opts.Identity.Name = termsafetest.Named("ssh user") // an SSH client picks its user name
	clip := &testkit.LogBuf{}
	opts.Clipboard = clip
	rec := &frameRecorder{App: New(opts)}
	tm := teatest.NewTestModel(t, rec, teatest.WithInitialTermSize(160, 48))
	t.Cleanup(func() { tm.Quit() })
	h := &harness{t: t, tm: tm, app: rec.App, clip: clip}

	h.waitFor("agent:evil") // sessions
	h.keys("enter")
	h.waitFor("tool:evil") // timeline
	h.keys("j", "j", "enter")
	h.waitFor("content v2") // record view
	h.keys("tab", "tab", "tab", "tab", "tab", "tab")
	h.waitFor("result:evil")
	h.keys("y")
	h.waitFor("copied 2 records")
	h.keys("esc", "d")
	h.waitFor("content v1") // diff
	h.keys("s")
	h.waitFor("side by side")
	h.keys("esc", "H")
	h.waitFor("version new") // resource history
	h.keys("esc", "r")
	h.waitFor("reason:evil") // plan review
	h.keys("esc", "R")
	h.waitFor("PLANS (1)") // queue
	h.keys("esc", "esc", "esc", "a")
	h.waitFor("› Alerts") // alerts
	h.keys("esc", "/", "upstream:evil")
	h.waitFor("known") // search
	h.keys("enter")
	h.waitFor("filters:") // a chip with the agent's upstream
	h.keys("f")
	h.waitFor("filter ›") // the filter line, holding the chip's value
	h.keys("esc")
	h.keys("?")
	h.waitFor("Glyphs") // help
	h.keys("esc", "c")
	h.waitFor("tool calls of all sessions") // every session's calls

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
	// What the program wrote to the terminal, its own cursor moves and all:
	// no OSC, no BEL, no C1.
	raw := string(h.seen)
	for _, bad := range []string{"\x1b]", "\x07", "\u009b", "\u009d", "\u009c", "\x1b[2J", "\u202e"} {
		if strings.Contains(raw, bad) {
			t.Fatalf("%q reached the terminal", bad)
		}
	}
	joined := strings.Join(frames, "\n")
	for _, want := range []string{`agent:evil\x1b]52;c;cm0gLXJmIH4K\x07`, `tool:evil\x1b]52`, `\u009b2J`, `\u202e`} {
		if !strings.Contains(joined, want) {
			t.Errorf("no frame shows %q: the agent's strings should be visible, escaped", want)
		}
	}

	// The copy: OSC 52 around base64 of JSON lines that decode to exactly
	// what the agent sent, with no raw control character in them.
	c := clip.String()
	data, err := base64.StdEncoding.DecodeString(strings.TrimSuffix(strings.TrimPrefix(c, "\x1b]52;c;"), "\x07"))
	if err != nil {
		t.Fatal(err)
	}
	if err := termsafetest.Check(data, false); err != nil {
		t.Fatalf("the copied JSON: %v", err)
	}
	var ev store.Event
	if err := json.Unmarshal([]byte(strings.SplitN(string(data), "\n", 2)[0]), &ev); err != nil {
		t.Fatal(err)
	}
	if ev.Tool != termsafetest.Tool || ev.Session != termsafetest.Session || ev.Agent.ClientName != termsafetest.Named("client") {
		t.Fatalf("the copy is not lossless: %+v", ev)
	}
}

// TestSessionCopyKeepsAgentControlsOut: `y` on the sessions screen copies
// the session's summary, whose names the agent chose: the copy is JSON with
// no raw control, C1 or bidi character, and loses nothing.
func TestSessionCopyKeepsAgentControlsOut(t *testing.T) {
	f := newFixture(t)
	if _, err := termsafetest.Record(t0, f.st.Append); err != nil {
		t.Fatal(err)
	}
	f.flush()
	h := start(t, testOptions(f.st, RoleOperator))
	h.waitFor("agent:evil")
	h.keys("y")
	h.waitFor("copied session")
	h.final()
	c := h.clip.String()
	data, err := base64.StdEncoding.DecodeString(strings.TrimSuffix(strings.TrimPrefix(c, "\x1b]52;c;"), "\x07"))
	if err != nil {
		t.Fatalf("%v: %q", err, c)
	}
	if err := termsafetest.Check(data, false); err != nil {
		t.Fatalf("the copied summary: %v", err)
	}
	var sum store.SessionSummary
	if err := json.Unmarshal(data, &sum); err != nil {
		t.Fatal(err)
	}
	if sum.Session != termsafetest.Session || sum.Agent == nil || sum.Agent.Name != termsafetest.Agent {
		t.Fatalf("the copy is not lossless: %+v", sum)
	}
}
