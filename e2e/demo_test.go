package e2e

import (
	"encoding/json"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// `mcptrail demo --no-ui` is the README's first command: it must record the
// scripted incident through the real gateway into a store that verifies.
func TestDemoRecordsTheIncident(t *testing.T) {
	in := newInstance(t)
	t.Setenv("TMPDIR", t.TempDir()) // the demo makes its data directory there
	res := in.MustRun(t, "demo", "--no-ui")
	m := regexp.MustCompile(`the record is in (\S+)`).FindStringSubmatch(res.Stdout)
	if m == nil {
		t.Fatalf("demo did not say where the record is:\n%s", res.Stdout)
	}
	// --no-ui leaves the demo's daemon running, and says how to stop it.
	demo := &Instance{Home: m[1], ConfigHome: filepath.Join(m[1], "config")}
	t.Cleanup(func() { demo.stopLeftoverDaemon(t) })
	if !strings.Contains(res.Stdout, "XDG_CONFIG_HOME="+demo.ConfigHome) || !strings.Contains(res.Stdout, "mcptrail stop") {
		t.Errorf("demo --no-ui did not say how to reach and stop its daemon:\n%s", res.Stdout)
	}
	if demo.daemonPID(t) == 0 {
		t.Errorf("demo --no-ui left no daemon running")
	}

	if v := demo.Run(t, "verify"); v.Code != 0 {
		t.Fatalf("verify of the demo store: exit %d\n%s%s", v.Code, v.Stdout, v.Stderr)
	}
	out := demo.MustRun(t, "sessions", "--json").Stdout
	bots := map[string]map[string]any{}
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		var s map[string]any
		if err := json.Unmarshal([]byte(line), &s); err != nil {
			t.Fatalf("sessions --json line %q: %v", line, err)
		}
		agent, _ := s["agent"].(map[string]any)
		name, _ := agent["name"].(string)
		bots[name] = s
	}
	ops, triage := bots["nightly-ops-bot"], bots["triage-assistant"]
	if ops == nil || triage == nil {
		t.Fatalf("want both demo agents' sessions, got %v", out)
	}
	// 12 writes (the customer export, 5 ticket closes and 1 update, a config
	// rewrite, a file and a user deleted, a user created, a role granted)
	// and one tool error.
	if ops["writes"] != float64(12) || ops["errors"] != float64(1) {
		t.Errorf("ops agent: writes %v errors %v, want 12 and 1", ops["writes"], ops["errors"])
	}
	if triage["writes"] != float64(0) || triage["errors"] != float64(0) {
		t.Errorf("triage agent: writes %v errors %v, want 0 and 0", triage["writes"], triage["errors"])
	}
	exported := demo.MustRun(t, "export", "--format", "jsonl", "--tool", "write_file").Stdout
	if strings.Contains(exported, "wJalrXUtnFEMI") || !strings.Contains(exported, "[REDACTED") {
		t.Errorf("the secret the agent wrote was not redacted in the record:\n%s", exported)
	}
}
