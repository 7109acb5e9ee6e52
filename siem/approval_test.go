package siem

import (
	"strings"
	"testing"

	"github.com/mcptrail/mcptrail/siem/siemtest"
)

// TestApprovalFormats: a held call's events say, in every format, that
// the call was held, approved, or refused (denied, expired), with the
// approval's rule and params hash kept.
func TestApprovalFormats(t *testing.T) {
	evs := sampleEvents()
	for name, want := range map[string][5]any{ // OCSF activity_name, status, severity_id; ECS type, outcome
		"approval_requested": {"approval_requested", "Unknown", 1.0, "info", "unknown"},
		"approval_approved":  {"approved", "Success", 1.0, "allowed", "success"},
		"approval_denied":    {"denied", "Failure", 3.0, "denied", "failure"},
		"approval_expired":   {"expired", "Failure", 3.0, "denied", "failure"},
	} {
		m := decode(t, encodeWith(t, FormatOCSF, testOpts, evs[name]))
		for path, v := range map[string]any{"class_uid": 6003.0, "activity_id": 99.0, "activity_name": want[0], "status": want[1], "severity_id": want[2],
			"unmapped.approval.rule": "fs-writes", "unmapped.approval.params_sha256": strings.Repeat("0f", 32), "unmapped.call": 3.0} {
			if got := siemtest.At(m, path); got != v {
				t.Errorf("OCSF %s: %s = %#v, want %#v", name, path, got, v)
			}
		}
		m = decode(t, encodeWith(t, FormatECS, testOpts, evs[name]))
		ty, _ := siemtest.At(m, "event.type").([]any)
		if len(ty) != 1 || ty[0] != want[3] || siemtest.At(m, "event.outcome") != want[4] {
			t.Errorf("ECS %s: type %v outcome %v, want %v %v", name, ty, siemtest.At(m, "event.outcome"), want[3], want[4])
		}
		if siemtest.At(m, "mcptrail.approval.rule") != "fs-writes" {
			t.Errorf("ECS %s: no mcptrail.approval", name)
		}
	}
	if msg := siemtest.At(decode(t, encodeWith(t, FormatOCSF, testOpts, evs["approval_denied"])), "message"); !strings.Contains(msg.(string), "denied by SHA256:") ||
		!strings.Contains(msg.(string), "not during the freeze") {
		t.Errorf("OCSF denied message %q names neither approver nor reason", msg)
	}
	for name, want := range map[string][3]string{
		"approval_requested": {"approval_requested", "Call held for approval", "5"},
		"approval_approved":  {"approved", "Held call approved", "5"},
		"approval_denied":    {"denied", "Held call denied", "7"},
		"approval_expired":   {"expired", "Held call expired", "7"},
	} {
		r, err := siemtest.ParseCEF(string(encodeWith(t, FormatCEF, testOpts, evs[name])))
		if err != nil {
			t.Fatal(err)
		}
		if r.Header[3] != want[0] || r.Header[4] != want[1] || r.Header[5] != want[2] {
			t.Errorf("CEF %s: header %q, want class %s name %q severity %s", name, r.Header, want[0], want[1], want[2])
		}
	}
}
