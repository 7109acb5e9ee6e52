package siem

import (
	"testing"

	"github.com/mcptrail/mcptrail/siem/siemtest"
)

// TestRefusalFormats: a refusal is a failed request in every format, with
// the client's address, the HTTP status and, on a summary, the count.
func TestRefusalFormats(t *testing.T) {
	evs := sampleEvents()
	for name, want := range map[string]map[string]any{
		"refusal_origin": {
			"class_uid": 6003.0, "activity_id": 99.0, "activity_name": "refusal", "status_id": 2.0, "status": "Failure",
			"status_code": "403", "status_detail": "origin: Origin not allowed", "severity_id": 3.0,
			"src_endpoint.ip": "192.0.2.10", "http_request.http_method": "POST", "http_request.url.path": "/mcp/web",
			"http_response.code": 403.0, "unmapped.refusal.origin": "https://evil.example", "actor.user.name": "alice",
		},
		"refusal_auth": {"status_code": "401", "status": "Failure", "actor.app_name": "unknown", "src_endpoint.ip": "192.0.2.11"},
		"refusal_summary": {
			"count": 9990.0, "status": "Failure", "start_time": float64(evs["refusal_summary"].Time.UnixMilli() - 60_000),
			"end_time": float64(evs["refusal_summary"].Time.UnixMilli()), "unmapped.refusal.suppressed": 9990.0,
		},
	} {
		m := decode(t, encodeWith(t, FormatOCSF, testOpts, evs[name]))
		for path, v := range want {
			if got := siemtest.At(m, path); got != v {
				t.Errorf("OCSF %s: %s = %#v, want %#v", name, path, got, v)
			}
		}
	}
	if m := decode(t, encodeWith(t, FormatOCSF, testOpts, evs["refusal_summary"])); m["http_request"] != nil || m["duration"] != nil {
		t.Errorf("OCSF summary: http_request %v duration %v, want neither", m["http_request"], m["duration"])
	}

	for name, want := range map[string]map[string]any{
		"refusal_origin": {"event.outcome": "failure", "event.action": "refusal", "source.ip": "192.0.2.10",
			"http.request.method": "POST", "http.response.status_code": 403.0, "url.path": "/mcp/web", "event.reason": "Origin not allowed"},
		"refusal_auth":    {"event.outcome": "failure", "source.ip": "192.0.2.11"},
		"refusal_summary": {"event.outcome": "failure", "mcptrail.refusal.suppressed": 9990.0},
	} {
		m := decode(t, encodeWith(t, FormatECS, testOpts, evs[name]))
		for path, v := range want {
			if got := siemtest.At(m, path); got != v {
				t.Errorf("ECS %s: %s = %#v, want %#v", name, path, got, v)
			}
		}
	}
	for name, cat := range map[string][2]string{"refusal_origin": {"network", "denied"}, "refusal_auth": {"authentication", "start"}} {
		m := decode(t, encodeWith(t, FormatECS, testOpts, evs[name]))
		c, _ := siemtest.At(m, "event.category").([]any)
		ty, _ := siemtest.At(m, "event.type").([]any)
		if len(c) != 1 || c[0] != cat[0] || len(ty) != 1 || ty[0] != cat[1] {
			t.Errorf("ECS %s: category %v type %v, want %v", name, c, ty, cat)
		}
	}

	for name, want := range map[string]map[string]string{
		"refusal_origin":  {"class": "refusal:origin", "name": "Request refused: origin", "src": "192.0.2.10", "requestMethod": "POST", "request": "/mcp/web", "flexNumber1": "403", "flexNumber1Label": "httpStatus"},
		"refusal_summary": {"class": "refusal:auth", "name": "Request refused: auth", "cnt": "9990", "src": "192.0.2.11"},
	} {
		r, err := siemtest.ParseCEF(string(encodeWith(t, FormatCEF, testOpts, evs[name])))
		if err != nil {
			t.Fatal(err)
		}
		if r.Header[3] != want["class"] || r.Header[4] != want["name"] || r.Header[5] != "7" {
			t.Errorf("CEF %s: header %q", name, r.Header)
		}
		for k, v := range want {
			if k != "class" && k != "name" && r.Ext[k] != v {
				t.Errorf("CEF %s: %s = %q, want %q", name, k, r.Ext[k], v)
			}
		}
	}
}
