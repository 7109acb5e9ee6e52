package siem

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/mcptrail/mcptrail/internal/termsafe"
	"github.com/mcptrail/mcptrail/internal/termsafe/termsafetest"
	"github.com/mcptrail/mcptrail/siem/siemtest"
	"github.com/mcptrail/mcptrail/store"
)

// hostileEvents is the hostile agent's session as the encoders get it.
func hostileEvents(t *testing.T) []*store.Event {
	t.Helper()
	var evs []*store.Event
	_, err := termsafetest.Record(testTime, func(ev *store.Event) (uint64, error) {
		ev.Seq = uint64(len(evs) + 1)
		evs = append(evs, ev)
		return ev.Seq, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return evs
}

// Every format, framed for syslog or not, carries no control character,
// C1 or bidi control, and is valid UTF-8; the JSON formats give the
// agent's strings back exactly.
func TestEveryFormatKeepsAgentControlsOutOfTheLog(t *testing.T) {
	framer := &SyslogFramer{Facility: FacilityLogAudit, Hostname: "gw", AppName: "mcptrail", ProcID: "1"}
	for _, f := range []Format{FormatJSONL, FormatOCSF, FormatECS, FormatCEF} {
		enc, err := NewEncoder(f, Options{Hostname: "gw", Bodies: true})
		if err != nil {
			t.Fatal(err)
		}
		for _, ev := range hostileEvents(t) {
			b, err := enc.Encode(ev)
			if err != nil {
				t.Fatalf("%s: %v", f, err)
			}
			if err := termsafetest.Check(b, false); err != nil {
				t.Fatalf("%s %s: %v", f, ev.Kind, err)
			}
			msg := framer.Message(ev, b)
			if err := termsafetest.Check(msg, false); err != nil {
				t.Fatalf("syslog %s %s: %v", f, ev.Kind, err)
			}
			m, err := siemtest.ParseRFC5424(string(msg))
			if err != nil {
				t.Fatalf("syslog %s: %v\n%q", f, err, msg)
			}
			if got := m.SD[DefaultSDID]["session"]; got != termsafe.Line(ev.Session) {
				t.Fatalf("syslog session %q, want %q", got, termsafe.Line(ev.Session))
			}
			switch f {
			case FormatJSONL:
				var back store.Event
				if err := json.Unmarshal(b, &back); err != nil {
					t.Fatal(err)
				}
				if back.Session != ev.Session || back.Tool != ev.Tool || back.Agent.Name != ev.Agent.Name ||
					back.Agent.ClientName != ev.Agent.ClientName || back.Upstream != ev.Upstream || back.Task.Name != ev.Task.Name ||
					(ev.Kind != store.KindBadInput && back.Detail != ev.Detail) || string(back.JSONRPCID) != string(termsafe.JSON(ev.JSONRPCID)) {
					t.Fatalf("jsonl is not lossless:\n%+v\n%+v", back, *ev)
				}
				if !jsonEqual(back.Params, ev.Params) || !jsonEqual(back.Result, ev.Result) || !jsonEqual(back.Error, ev.Error) {
					t.Fatalf("jsonl bodies changed:\n%s\n%s", back.Params, ev.Params)
				}
			case FormatOCSF, FormatECS:
				if ev.Kind == store.KindRequest && !containsString(t, b, ev.Tool) {
					t.Fatalf("%s does not give the tool name back exactly: %s", f, b)
				}
			case FormatCEF:
				r, err := siemtest.ParseCEF(string(b))
				if err != nil {
					t.Fatal(err)
				}
				if r.Ext["cs1"] != termsafe.Log(ev.Session) {
					t.Fatalf("cef session %q, want %q", r.Ext["cs1"], termsafe.Log(ev.Session))
				}
			}
		}
	}
}

func jsonEqual(a, b json.RawMessage) bool {
	if len(a) == 0 || len(b) == 0 {
		return len(a) == len(b)
	}
	var x, y any
	if json.Unmarshal(a, &x) != nil || json.Unmarshal(b, &y) != nil {
		return false
	}
	xa, _ := json.Marshal(x)
	ya, _ := json.Marshal(y)
	return string(xa) == string(ya)
}

// containsString reports whether some string in JSON record b is s.
func containsString(t *testing.T, b []byte, s string) bool {
	var v any
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatal(err)
	}
	var walk func(any) bool
	walk = func(v any) bool {
		switch x := v.(type) {
		case string:
			return x == s
		case map[string]any:
			for _, e := range x {
				if walk(e) {
					return true
				}
			}
		case []any:
			for _, e := range x {
				if walk(e) {
					return true
				}
			}
		}
		return false
	}
	return walk(v) || strings.Contains(string(b), s)
}
