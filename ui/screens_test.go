package ui

import (
	"encoding/base64"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/mcptrail/mcptrail/themes"
)

// Each test drives the real program (teatest) on a store built from real
// events, at 80×24, and compares the last frame with a golden file
// (go test ./ui -update rewrites them).

func TestSessionsScreen(t *testing.T) {
	h := demoConsole(t, RoleOperator)
	h.waitFor("session 1 of 2")
	h.golden(h.final())
}

func TestTimelineScreen(t *testing.T) {
	h := demoTimeline(t)
	h.golden(h.final())
}

func TestCallScreen(t *testing.T) {
	h := demoTimeline(t)
	h.keys("jjjjj", "enter") // the second write_file
	h.waitFor("verified by the gateway")
	h.golden(h.final())
}

func TestCallScreenSections(t *testing.T) {
	h := demoTimeline(t)
	h.keys("jjjjj", "enter")
	h.waitFor("verified by the gateway")
	h.keys("tab", "tab", "tab", "tab", "tab") // WHO TASK WHAT WHEN PARAMS
	h.waitFor("backup_retention_days: 0")
	h.golden(h.final())
}

func TestDiffUnifiedAndSideBySide(t *testing.T) {
	h := demoTimeline(t)
	h.keys("jjjjj", "d")
	h.waitFor("previous call to write_file on the same path")
	h.keys("s")
	h.waitFor("side by side")
	h.golden(h.final())
}

func TestDiffUnified(t *testing.T) {
	h := demoTimeline(t)
	h.keys("jjjjj", "d")
	h.waitFor("previous call to write_file on the same path")
	frame := h.final()
	containsAll(t, "unified diff", frame, "-     replicas: 3", "+     replicas: 0", "--- call", "+++ call")
	h.golden(frame)
}

func TestDiffFirstCallSaysSo(t *testing.T) {
	h := demoTimeline(t)
	h.keys("jjjjjj", "d") // delete_user: the first of its kind
	h.waitFor("no earlier call with name=carol in the record")
	h.final()
}

func TestAlertsScreen(t *testing.T) {
	h := demoConsole(t, RoleViewer)
	h.keys("a")
	h.waitFor("first use")
	h.golden(h.final())
}

func TestAlertsScreenEmpty(t *testing.T) {
	f := newFixture(t)
	f.call(base(sessTriage, "triage-assistant", "T-1"), "list_tickets", nil, "read", false, "ok", nil)
	f.flush()
	h := start(t, testOptions(f.st, RoleViewer))
	h.waitFor("triage-assistant")
	h.keys("a")
	h.waitFor(`No alerts: the record holds no events of kind "alert".`)
	h.final()
}

func TestAlertBadgeInTimeline(t *testing.T) {
	h := demoTimeline(t)
	frame := h.final()
	var line string
	for _, l := range strings.Split(frame, "\n") {
		if strings.Contains(l, "replicas: 0") || (strings.Contains(l, "write_file") && strings.Contains(l, "WX!")) {
			line = l
		}
	}
	if !strings.Contains(line, "WX!") {
		t.Fatalf("the alerted write should carry W X ! badges:\n%s", frame)
	}
}

func TestQueueOperator(t *testing.T) {
	f := newFixture(t)
	demoRecord(f)
	var actions []string
	opts := testOptions(f.st, RoleOperator)
	opts.OnAction = func(a, d string) { actions = append(actions, a+" "+d) }
	h := startDemo(t, opts)
	h.openOps()
	h.keys("jjjjj", "space") // mark the second write_file
	h.waitFor("marked call")
	h.keys("r")
	h.waitFor("Nothing has been reverted.")
	frame := h.final()
	if !strings.Contains(frame, "SHA256:testkeyfingerprint") || !strings.Contains(frame, "write_file") {
		t.Fatalf("queue should list the marked call and who marked it:\n%s", frame)
	}
	if len(actions) < 2 || !strings.HasPrefix(actions[0], "mark call") || !strings.HasPrefix(actions[1], "queue") {
		t.Fatalf("actions heard: %q", actions)
	}
	// The file console says once that nothing was reverted, and its toast
	// fits the line.
	if n := strings.Count(frame, "othing has been reverted") + strings.Count(frame, "othing was reverted"); n != 1 {
		t.Errorf("the queue says %d times that nothing was reverted:\n%s", n, frame)
	}
	h.golden(frame)
}

func TestQueueSelectedAndAfter(t *testing.T) {
	f := newFixture(t)
	in := demoRecord(f)
	h := startDemo(t, testOptions(f.st, RoleOperator))
	h.openOps()
	h.keys("jjjjj", "r") // no marks: the selected call and every call after it
	h.waitFor("Nothing has been reverted.")
	h.final()
	marks := h.app.c.Marks.List()
	if len(marks) != 2 || marks[0].Seq != in.writeV2 || marks[1].Tool != "delete_user" {
		t.Fatalf("queued %+v, want the second write_file and delete_user", marks)
	}
}

func TestViewerCannotMark(t *testing.T) {
	h := demoConsole(t, RoleViewer)
	h.openOps()
	h.keys("jjjjj", "space")
	h.waitFor("viewer role: only operators may mark calls for reversal")
	h.keys("r")
	h.final()
	if n := h.app.c.Marks.Len(); n != 0 {
		t.Fatalf("a viewer marked %d calls", n)
	}
}

func TestHelpOverlay(t *testing.T) {
	h := demoTimeline(t)
	h.keys("?")
	h.waitFor("Keys — nightly-ops-bot")
	h.golden(h.final())
}

// On the sessions screen `/` picks from what the record holds (agents,
// tools, sessions); a timeline's `/` searches text (textsearch_test.go).
func TestSearchAddsAgentChip(t *testing.T) {
	h := demoConsole(t, RoleOperator)
	h.waitFor("session 1 of 2")
	h.keys("/", "nightlyops")
	h.waitFor("agent     nightly-ops-bot")
	h.keys("enter")
	h.waitFor("agent:nightly-ops-bot ×")
	h.keys("j") // a key ends the note on the status line
	h.waitFor("session 1 of 1")
	frame := h.final()
	if strings.Contains(frame, "triage-assistant") {
		t.Fatalf("the sessions list should show only nightly-ops-bot's session:\n%s", frame)
	}
	h.golden(frame)
}

func TestSearchOpensSession(t *testing.T) {
	h := demoConsole(t, RoleOperator)
	h.keys("/", "01JTRIAGE")
	h.waitFor("session   " + sessTriage)
	h.keys("enter")
	h.waitFor("list_tickets")
	h.final()
}

func TestFilterChipsAddAndRemove(t *testing.T) {
	h := demoTimeline(t)
	h.keys("f", "outcome:tool_error", "enter")
	h.waitFor("outcome:tool_error ×")
	h.waitFor("runbooks/dns.md")
	h.keys("tab", "x")
	h.waitFor("removed filter outcome:tool_error")
	h.waitFor("delete_user")
	frame := h.final()
	if !strings.Contains(frame, "no filters") {
		t.Fatalf("chip not removed:\n%s", frame)
	}
}

func TestFilterBadInputSaysWhy(t *testing.T) {
	h := demoConsole(t, RoleOperator)
	h.keys("f", "outcome:sideways", "enter")
	h.waitFor(`outcome "sideways": want one of`)
	h.keys("esc")
	h.final()
}

func TestFilterAgentOnSessions(t *testing.T) {
	h := demoConsole(t, RoleOperator)
	h.keys("f", "agent:triage-assistant", "enter")
	h.waitFor("agent:triage-assistant ×")
	h.waitFor("session 1 of 1")
	h.golden(h.final())
}

func TestYankCopiesRecordViaOSC52(t *testing.T) {
	f := newFixture(t)
	in := demoRecord(f)
	h := startDemo(t, testOptions(f.st, RoleOperator))
	h.openOps()
	h.keys("jjjjj", "y")
	h.waitFor("copied 2 records")
	h.final()
	clip := h.clip.String()
	if !strings.HasPrefix(clip, "\x1b]52;c;") || !strings.HasSuffix(clip, "\x07") {
		t.Fatalf("not an OSC 52 sequence: %q", clip)
	}
	data, err := base64.StdEncoding.DecodeString(strings.TrimSuffix(strings.TrimPrefix(clip, "\x1b]52;c;"), "\x07"))
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(data)), "\n")
	if len(lines) != 2 || !strings.Contains(lines[0], fmt.Sprintf(`"seq":%d`, in.writeV2)) || !strings.Contains(lines[1], fmt.Sprintf(`"call":%d`, in.writeV2)) {
		t.Fatalf("clipboard holds %q", data)
	}
}

func TestFollowShowsNewEvents(t *testing.T) {
	f := newFixture(t)
	demoRecord(f)
	h := startDemo(t, testOptions(f.st, RoleOperator))
	h.openOps()
	h.keys("F")
	h.waitFor("● FOLLOW")
	f.call(base(sessOps, "nightly-ops-bot", "INC-4711"), "export_customer_data", map[string]any{"bucket": "s3://tmp-7731"}, "read", false, "ok", nil)
	f.flush()
	h.waitFor("export_customer")
	h.final()
}

func TestThemeCycles(t *testing.T) {
	h := demoConsole(t, RoleOperator)
	h.keys("t")
	h.waitFor("theme light")
	h.keys("t")
	h.waitFor("theme high-contrast")
	h.keys("t")
	h.waitFor("theme mono")
	frame := h.final()
	if !strings.Contains(frame, themes.SelectedGlyph) {
		t.Fatalf("mono must keep the selection glyph:\n%s", frame)
	}
}

func TestNoColorStartsMono(t *testing.T) {
	f := newFixture(t)
	demoRecord(f)
	opts := testOptions(f.st, RoleOperator)
	opts.NoColor = true
	h := startDemo(t, opts)
	frame := h.final()
	if !strings.Contains(frame, " mono") || !strings.Contains(frame, themes.SelectedGlyph+" 01-15") {
		t.Fatalf("NO_COLOR: want mono theme and ▶ on the selected row:\n%s", frame)
	}
}

func TestGoToTime(t *testing.T) {
	h := demoConsole(t, RoleOperator)
	h.keys("c") // all calls
	h.waitFor("tool calls of all sessions")
	h.keys("g")
	h.keys("T", t0.Add(20*time.Second).Format("15:04:05"), "enter")
	h.waitFor("from 2026-01-15 03:00:20")
	frame := h.final()
	// The window reopens at the first call at or after 03:00:20 and
	// selects it; earlier calls are read back in above it as context.
	if !strings.Contains(frame, themes.SelectedGlyph+" 03:00:21.000") {
		t.Fatalf("go to 03:00:20 should select the call of 03:00:21:\n%s", frame)
	}
}

func TestBackAndQuit(t *testing.T) {
	h := demoTimeline(t)
	h.keys("esc")
	h.waitFor("session 1 of 2")
	frame := h.final()
	if strings.Contains(frame, "›  nightly") {
		t.Fatal("esc should go back to sessions")
	}
}

func TestEmptyRecord(t *testing.T) {
	f := newFixture(t)
	h := start(t, testOptions(f.st, RoleOperator))
	h.waitFor("no sessions in the record yet")
	h.final()
}

// demoConsole opens the console on the demo's record, at its sessions.
func demoConsole(t *testing.T, role Role) *harness {
	t.Helper()
	f := newFixture(t)
	demoRecord(f)
	return startDemo(t, testOptions(f.st, role))
}

// startDemo starts the console with opts on a store holding demoRecord,
// and waits for its sessions.
func startDemo(t *testing.T, opts Options) *harness {
	t.Helper()
	h := start(t, opts)
	h.waitFor("nightly-ops-bot")
	return h
}

// openOps opens the ops agent's session (the first on the sessions
// screen) and waits for its timeline: where most screens are reached from.
func (h *harness) openOps() {
	h.t.Helper()
	h.keys("enter")
	h.waitFor("delete_user")
}

// demoTimeline opens the console as an operator in the ops agent's session
// timeline.
func demoTimeline(t *testing.T) *harness {
	t.Helper()
	h := demoConsole(t, RoleOperator)
	h.openOps()
	return h
}
