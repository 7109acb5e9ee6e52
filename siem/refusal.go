package siem

import (
	"cmp"
	"strconv"
	"time"

	"github.com/mcptrail/mcptrail/store"
)

// How each format carries a refusal of the HTTP gateway (kind refusal):
// a request turned away, so a failed one.
//
// OCSF: API Activity (6003), activity 99 "refusal", status Failure with
// the HTTP status as status_code, http_request/http_response, the client
// in src_endpoint.ip, and on a summary the suppressed count in count over
// start_time..end_time. Authentication (3002) was the other candidate for
// 401s, but it requires a user, which an unknown token does not have, and
// one class for every refusal keeps one query for them all.
// ECS: event.outcome failure; a 401 is category authentication, type
// start (ECS's failed logon), the others network/denied; http.*, source.ip
// and url.path say what was refused.
// CEF: class id "refusal:<reason>", Name "Request refused: <reason>"
// (stable per reason), src (c6a2 for IPv6), requestMethod, request, the
// HTTP status in flexNumber1, cnt.

// refusalName is the stable name of a refusal.
func refusalName(ev *store.Event) string {
	return "Request refused: " + refusalReason(ev)
}

func refusalReason(ev *store.Event) string {
	if ev.Refusal == nil || ev.Refusal.Reason == "" {
		return "unknown"
	}
	return ev.Refusal.Reason
}

// refusalMessage is the one-line summary of a refusal.
func refusalMessage(ev *store.Event) string {
	r := ev.Refusal
	if r == nil {
		return cmp.Or(ev.Detail, ev.Kind)
	}
	if r.Suppressed > 0 {
		return cmp.Or(ev.Detail, strconv.FormatInt(r.Suppressed, 10)+" refusals suppressed")
	}
	s := "gateway refused " + cmp.Or(r.HTTPMethod, "a request") + " " + r.Path + " from " + cmp.Or(r.RemoteAddr, "unknown") +
		": " + strconv.Itoa(r.Status) + " " + r.Reason
	if ev.Detail != "" {
		s += " (" + ev.Detail + ")"
	}
	return s
}

// OCSF objects only refusals use.
type (
	ocsfURL struct {
		Path     string `json:"path,omitempty"`
		Hostname string `json:"hostname,omitempty"`
	}
	ocsfHTTPHeader struct {
		Name  string `json:"name"`
		Value string `json:"value"`
	}
	ocsfHTTPRequest struct {
		HTTPMethod  string           `json:"http_method,omitempty"`
		URL         *ocsfURL         `json:"url,omitempty"`
		HTTPHeaders []ocsfHTTPHeader `json:"http_headers,omitempty"`
	}
	ocsfHTTPResponse struct {
		Code int `json:"code"`
	}
)

// ocsfRefusal fills what API Activity says of a refusal.
func ocsfRefusal(out *ocsfAPIActivity, ev *store.Event) {
	r := ev.Refusal
	failure := 2
	out.StatusID, out.Status = &failure, "Failure"
	out.StatusDetail = refusalReason(ev)
	if ev.Detail != "" {
		out.StatusDetail += ": " + ev.Detail
	}
	out.SeverityID, out.Severity = 3, "Medium"
	out.Duration = nil
	if r == nil {
		return
	}
	out.StatusCode = strconv.Itoa(r.Status)
	if isIP(r.RemoteAddr) {
		out.SrcEndpoint.IP = r.RemoteAddr
	}
	if r.Suppressed > 0 {
		n := r.Suppressed
		out.Count = &n
		end := ev.Time.UnixMilli()
		start := ev.Time.Add(-time.Duration(ev.DurationNS)).UnixMilli()
		out.StartTime, out.EndTime = &start, &end
		return
	}
	req := &ocsfHTTPRequest{HTTPMethod: r.HTTPMethod}
	if r.Path != "" || r.Host != "" {
		req.URL = &ocsfURL{Path: r.Path, Hostname: r.Host}
	}
	for _, h := range [][2]string{{"Origin", r.Origin}, {"Host", r.Host}, {"Mcp-Session-Id", r.SessionID}, {"MCP-Protocol-Version", ev.ProtocolVersion}} {
		if h[1] != "" {
			req.HTTPHeaders = append(req.HTTPHeaders, ocsfHTTPHeader{Name: h[0], Value: h[1]})
		}
	}
	out.HTTPRequest = req
	if r.Status != 0 {
		out.HTTPResponse = &ocsfHTTPResponse{Code: r.Status}
	}
}

// ECS objects only refusals use.
type (
	ecsHTTPRequest struct {
		Method string `json:"method,omitempty"`
	}
	ecsHTTPResponse struct {
		StatusCode int `json:"status_code,omitempty"`
	}
	ecsHTTP struct {
		Request  *ecsHTTPRequest  `json:"request,omitempty"`
		Response *ecsHTTPResponse `json:"response,omitempty"`
	}
	ecsURL struct {
		Path   string `json:"path,omitempty"`
		Domain string `json:"domain,omitempty"`
	}
	ecsSource struct {
		IP string `json:"ip,omitempty"`
	}
)

// ecsRefusal fills what ECS says of a refusal.
func ecsRefusal(rec *ecsRecord, ev *store.Event) {
	rec.Event.Outcome = "failure"
	rec.Event.Action = "refusal"
	if refusalReason(ev) == "auth" {
		rec.Event.Category, rec.Event.Type = []string{"authentication"}, []string{"start"}
	} else {
		rec.Event.Category, rec.Event.Type = []string{"network"}, []string{"denied"}
	}
	r := ev.Refusal
	if r == nil {
		return
	}
	rec.Event.Reason = cmp.Or(ev.Detail, r.Reason)
	if isIP(r.RemoteAddr) {
		rec.Source = &ecsSource{IP: r.RemoteAddr}
	}
	if r.Suppressed > 0 {
		return
	}
	rec.HTTP = &ecsHTTP{Response: &ecsHTTPResponse{StatusCode: r.Status}}
	if r.HTTPMethod != "" {
		rec.HTTP.Request = &ecsHTTPRequest{Method: r.HTTPMethod}
	}
	if r.Path != "" {
		rec.URL = &ecsURL{Path: r.Path, Domain: r.Host}
	}
}

// cefRefusal adds what CEF says of a refusal.
func cefRefusal(x *cefExt, ev *store.Event) {
	r := ev.Refusal
	if r == nil {
		return
	}
	if isIP(r.RemoteAddr) {
		x.addr("src", "c6a2", "sourceIPv6Address", r.RemoteAddr)
	}
	x.add("requestMethod", r.HTTPMethod)
	x.add("request", r.Path)
	x.add("reason", cmp.Or(ev.Detail, r.Reason))
	if r.Status != 0 {
		x.labelledNum("flexNumber1", "httpStatus", uint64(r.Status))
	}
	if r.Suppressed > 0 {
		x.add("cnt", strconv.FormatInt(r.Suppressed, 10))
	}
}
