package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mcptrail/mcptrail/internal/termsafe/termsafetest"
	"github.com/mcptrail/mcptrail/rollback"
	"github.com/mcptrail/mcptrail/store"
)

// hostileStore writes the hostile agent's session into a real store file
// and returns its path.
func hostileStore(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	t.Setenv("MCPTRAIL_HOME", filepath.Join(dir, "home"))
	path := filepath.Join(dir, "evidence.db")
	s, err := store.Open(path, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := termsafetest.Record(time.Date(2026, 1, 15, 3, 0, 0, 0, time.UTC), s.Append); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	return path
}

// `mcptrail sessions` and `export` in every format, run on a record whose
// agent, tool, session and every other agent-chosen string holds OSC 52,
// OSC 0, CSI, C1, BEL, DEL, CR and a bidi override: no such character
// reaches stdout, and the JSON outputs decode to exactly what the agent
// sent.
func TestCLIKeepsAgentControlsOffTheTerminal(t *testing.T) {
	db := hostileStore(t)
	cli := func(args ...string) []byte {
		t.Helper()
		var out, errOut bytes.Buffer
		if code := run(append(args, "--db", db), strings.NewReader(""), &out, &errOut); code != 0 {
			t.Fatalf("%v: exit %d: %s", args, code, errOut.String())
		}
		if err := termsafetest.Check(errOut.Bytes(), false); err != nil {
			t.Fatalf("%v stderr: %v", args, err)
		}
		return out.Bytes()
	}

	text := cli("sessions")
	if err := termsafetest.Check(text, false); err != nil {
		t.Fatalf("sessions: %v\n%s", err, text)
	}
	if !strings.Contains(string(text), `agent:evil\x1b]52;c;cm0gLXJmIH4K\x07`) {
		t.Fatalf("sessions does not show the agent's name visibly:\n%s", text)
	}
	if n := strings.Count(string(text), "\n"); n != 2 {
		t.Fatalf("sessions: %d lines, want a header and one row: a newline in a name must not make a row\n%s", n, text)
	}

	js := cli("sessions", "--json")
	if err := termsafetest.Check(js, false); err != nil {
		t.Fatalf("sessions --json: %v", err)
	}
	var sum store.SessionSummary
	if err := json.Unmarshal(js, &sum); err != nil {
		t.Fatal(err)
	}
	if sum.Session != termsafetest.Session || sum.Agent.Name != termsafetest.Agent || sum.Upstream != termsafetest.Named("upstream") {
		t.Fatalf("sessions --json is not lossless: %+v", sum)
	}

	for _, format := range []string{"jsonl", "ocsf", "ecs", "cef"} {
		out := cli("export", "--format", format)
		if err := termsafetest.Check(out, false); err != nil {
			t.Fatalf("export --format %s: %v", format, err)
		}
		if format == "cef" {
			if !strings.Contains(string(out), `cs1=session:evil\\x1b]52;c;cm0gLXJmIH4K\\x07`) {
				t.Fatalf("cef does not show the session visibly:\n%s", out)
			}
			continue
		}
		sc := bufio.NewScanner(bytes.NewReader(out))
		sc.Buffer(nil, 1<<20)
		tools := 0
		for sc.Scan() {
			var v any
			if err := json.Unmarshal(sc.Bytes(), &v); err != nil {
				t.Fatalf("%s: %v", format, err)
			}
			if format == "jsonl" {
				var ev store.Event
				json.Unmarshal(sc.Bytes(), &ev)
				if ev.Session != termsafetest.Session || ev.Agent.Name != termsafetest.Agent || ev.Agent.ClientName != termsafetest.Named("client") {
					t.Fatalf("jsonl is not lossless: %+v", ev)
				}
				if ev.Kind == store.KindRequest {
					var p struct{ Arguments map[string]string }
					json.Unmarshal(ev.Params, &p)
					if ev.Tool != termsafetest.Tool || p.Arguments["path"] != termsafetest.Path {
						t.Fatalf("jsonl tool or arguments changed: %q %q", ev.Tool, p.Arguments["path"])
					}
				}
			}
			if hasString(v, termsafetest.Tool) {
				tools++
			}
		}
		if tools == 0 {
			t.Fatalf("%s: the tool name is nowhere exactly as the agent sent it", format)
		}
	}
}

func hasString(v any, s string) bool {
	switch x := v.(type) {
	case string:
		return x == s
	case map[string]any:
		for _, e := range x {
			if hasString(e, s) {
				return true
			}
		}
	case []any:
		for _, e := range x {
			if hasString(e, s) {
				return true
			}
		}
	}
	return false
}

// A rollback plan shows the tool, session, arguments, reasons and diffs
// the agent's calls left: none of it drives the terminal.
func TestRollbackTextKeepsAgentControlsOffTheTerminal(t *testing.T) {
	h := termsafetest.Hostile
	args, _ := json.Marshal(map[string]string{"path": h})
	p := &rollback.Plan{
		ID: "p1", State: "planned", Note: h, Error: h,
		Approvals: []rollback.Approval{{Approver: rollback.Approver{Name: h, Via: "cli"}}},
		Steps: []rollback.Step{{
			N: 1, Reverts: 3, Session: h, Tool: h, Args: h, Status: rollback.StatusReady, Reason: h, Error: h,
			Calls: []rollback.InverseCall{{Tool: h, Args: args}},
			Diff:  "--- current\n+++ restored\n-" + h + "\n+" + h + "\n",
		}},
	}
	var out bytes.Buffer
	printPlan(&out, p)
	printApplied(&out, p)
	if err := termsafetest.Check(out.Bytes(), false); err != nil {
		t.Fatalf("rollback text: %v\n%s", err, out.String())
	}
	var js bytes.Buffer
	if err := writeJSON(&js, p); err != nil {
		t.Fatal(err)
	}
	if err := termsafetest.Check(js.Bytes(), false); err != nil {
		t.Fatalf("rollback --json: %v", err)
	}
	var back rollback.Plan
	if err := json.Unmarshal(js.Bytes(), &back); err != nil || back.Steps[0].Tool != h || back.Note != h {
		t.Fatalf("rollback --json is not lossless: %v %+v", err, back)
	}
}

// An error message that quotes something from outside — here a store file
// whose name another user of the host chose — is printed with its controls
// visible.
func TestErrorMessagesKeepControlsOffTheTerminal(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("MCPTRAIL_HOME", filepath.Join(dir, "home"))
	bad := filepath.Join(dir, "x\x1b]0;pwned\x07\u009b2J.db")
	var out, errOut bytes.Buffer
	if code := run([]string{"sessions", "--db", bad}, strings.NewReader(""), &out, &errOut); code == 0 {
		t.Fatal("a missing store file should fail")
	}
	if err := termsafetest.Check(errOut.Bytes(), false); err != nil {
		t.Fatalf("stderr: %v\n%q", err, errOut.String())
	}
	if !strings.Contains(errOut.String(), `x\x1b]0;pwned\x07\u009b2J.db`) {
		t.Fatalf("the error should name the file, visibly: %q", errOut.String())
	}
}
