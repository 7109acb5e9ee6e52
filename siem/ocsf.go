package siem

import (
	"bytes"
	"cmp"
	"encoding/json"
	"strconv"
	"time"

	"github.com/mcptrail/mcptrail/store"
)

// OCSFVersion is the OCSF schema version the records claim
// (metadata.version) and are validated against, attribute by attribute,
// with the compiled 1.8.0 schema (none of them deprecated there). Older
// consumers: actor.app_name and app_uid appeared in OCSF 1.2, the trace
// profile and is_alert in 1.4, user.programmatic_credentials in 1.6 (it
// replaced user.credential_uid), so nothing before 1.6 reads every one.
const OCSFVersion = "1.8.0"

// OCSF class and category numbers.
const (
	ocsfClassAPIActivity      = 6003
	ocsfCategoryApplication   = 6
	ocsfClassDetectionFinding = 2004
	ocsfCategoryFindings      = 2
)

type ocsfEncoder struct{ o Options }

func (e *ocsfEncoder) Format() Format { return FormatOCSF }

func (e *ocsfEncoder) Encode(ev *store.Event) ([]byte, error) {
	switch ev.Kind {
	case store.KindAlert:
		return marshal(e.finding(ev))
	case KindCheckpoint:
		return marshal(e.checkpoint(ev))
	}
	return marshal(e.apiActivity(ev))
}

// ocsfClass is what every OCSF event class begins with.
type ocsfClass struct {
	ActivityID     int    `json:"activity_id"`
	ActivityName   string `json:"activity_name"`
	CategoryUID    int    `json:"category_uid"`
	CategoryName   string `json:"category_name"`
	ClassUID       int    `json:"class_uid"`
	ClassName      string `json:"class_name"`
	TypeUID        int    `json:"type_uid"`
	TypeName       string `json:"type_name"`
	SeverityID     int    `json:"severity_id"`
	Severity       string `json:"severity"`
	Time           int64  `json:"time"`
	TimezoneOffset int    `json:"timezone_offset"`
}

// ocsfBaseEvent is class 0, Base Event: "a generic concrete event ... for
// events not otherwise defined by the schema". A signed checkpoint of the
// record is one.
type ocsfBaseEvent struct {
	ocsfClass
	Message  string         `json:"message"`
	Metadata ocsfMetadata   `json:"metadata"`
	Unmapped map[string]any `json:"unmapped"`
}

// checkpoint maps a forwarded checkpoint (Seq = the number of events it
// covers, Hash = the chain's head, Detail = the signed note).
func (e *ocsfEncoder) checkpoint(ev *store.Event) *ocsfBaseEvent {
	md := e.metadata(ev)
	md.Sequence, md.UID = 0, ""
	return &ocsfBaseEvent{
		ocsfClass: ocsfClass{
			ActivityID: 99, ActivityName: "checkpoint", CategoryUID: 0, CategoryName: "Uncategorized",
			ClassUID: 0, ClassName: "Base Event", TypeUID: 99, TypeName: "Base Event: Other",
			SeverityID: 1, Severity: "Informational", Time: ev.Time.UnixMilli(),
		},
		Message:  "signed checkpoint: the record held " + strconv.FormatUint(ev.Seq, 10) + " events with head hash " + ev.Hash,
		Metadata: md,
		Unmapped: map[string]any{"kind": KindCheckpoint, "size": ev.Seq, "hash": ev.Hash, "note": ev.Detail},
	}
}

// The OCSF objects, with the attributes mcptrail fills.
type (
	ocsfProduct struct {
		Name       string `json:"name"`
		VendorName string `json:"vendor_name"`
		Version    string `json:"version,omitempty"`
	}
	ocsfMetadata struct {
		Version        string      `json:"version"`
		Product        ocsfProduct `json:"product"`
		UID            string      `json:"uid,omitempty"`
		Sequence       uint64      `json:"sequence,omitempty"`
		CorrelationUID string      `json:"correlation_uid,omitempty"`
		LogName        string      `json:"log_name,omitempty"`
		OriginalTime   string      `json:"original_time,omitempty"`
		Profiles       []string    `json:"profiles,omitempty"`
	}
	ocsfUser struct {
		Name        string           `json:"name,omitempty"`
		UID         string           `json:"uid,omitempty"`
		TypeID      *int             `json:"type_id,omitempty"`
		Type        string           `json:"type,omitempty"`
		Credentials []ocsfCredential `json:"programmatic_credentials,omitempty"`
	}
	// ocsfCredential is a programmatic_credential (OCSF 1.6; it replaces
	// user.credential_uid, deprecated since): the token's fingerprint and
	// how the principal proved itself (token, jwt, ssh_key).
	ocsfCredential struct {
		UID  string `json:"uid"`
		Type string `json:"type,omitempty"`
	}
	ocsfSession struct {
		UID string `json:"uid"`
	}
	ocsfIdP struct {
		Name string `json:"name"`
	}
	ocsfActor struct {
		User    *ocsfUser    `json:"user,omitempty"`
		AppName string       `json:"app_name,omitempty"`
		AppUID  string       `json:"app_uid,omitempty"`
		Session *ocsfSession `json:"session,omitempty"`
		IdP     *ocsfIdP     `json:"idp,omitempty"`
	}
	ocsfRequest struct {
		UID string `json:"uid"`
	}
	ocsfResponse struct {
		Code         *int64 `json:"code,omitempty"`
		Error        string `json:"error,omitempty"`
		ErrorMessage string `json:"error_message,omitempty"`
	}
	ocsfService struct {
		Name string `json:"name"`
	}
	ocsfAPI struct {
		Operation string        `json:"operation"`
		Request   *ocsfRequest  `json:"request,omitempty"`
		Response  *ocsfResponse `json:"response,omitempty"`
		Service   *ocsfService  `json:"service,omitempty"`
		Version   string        `json:"version,omitempty"`
	}
	ocsfEndpoint struct {
		Name     string `json:"name,omitempty"`
		Hostname string `json:"hostname,omitempty"`
		IP       string `json:"ip,omitempty"`
		Port     int    `json:"port,omitempty"`
		SvcName  string `json:"svc_name,omitempty"`
	}
	ocsfResource struct {
		Type string `json:"type"`
		Name string `json:"name"`
		UID  string `json:"uid,omitempty"`
	}
	ocsfTrace struct {
		UID string `json:"uid"`
	}
)

// ocsfAPIActivity is class 6003.
type ocsfAPIActivity struct {
	ocsfClass
	Duration     *int64         `json:"duration,omitempty"`
	Message      string         `json:"message,omitempty"`
	StatusID     *int           `json:"status_id,omitempty"`
	Status       string         `json:"status,omitempty"`
	StatusCode   string         `json:"status_code,omitempty"`
	StatusDetail string         `json:"status_detail,omitempty"`
	Metadata     ocsfMetadata   `json:"metadata"`
	Actor        ocsfActor      `json:"actor"`
	API          ocsfAPI        `json:"api"`
	SrcEndpoint  ocsfEndpoint   `json:"src_endpoint"`
	DstEndpoint  *ocsfEndpoint  `json:"dst_endpoint,omitempty"`
	Resources    []ocsfResource `json:"resources,omitempty"`
	Trace        *ocsfTrace     `json:"trace,omitempty"`
	// A refusal (ocsfRefusal): the HTTP request, and on a summary how many.
	HTTPRequest  *ocsfHTTPRequest  `json:"http_request,omitempty"`
	HTTPResponse *ocsfHTTPResponse `json:"http_response,omitempty"`
	Count        *int64            `json:"count,omitempty"`
	StartTime    *int64            `json:"start_time,omitempty"`
	EndTime      *int64            `json:"end_time,omitempty"`
	Unmapped     map[string]any    `json:"unmapped,omitempty"`
}

// ocsfActivity maps the call's class to API Activity's activity_id:
// read → 2 Read, write → 3 Update, delete → 4 Delete; a tool of unknown
// class is 0 Unknown; anything else (initialize, tools/list,
// notifications, session boundaries) is 99 Other, named by what it was.
func ocsfActivity(ev *store.Event) (int, string) {
	if _, ok := approvalOf(ev); ok {
		return 99, ev.Kind
	}
	switch ev.Class {
	case "read":
		return 2, "Read"
	case "write":
		return 3, "Update"
	case "delete":
		return 4, "Delete"
	}
	if ev.Tool != "" || ev.Class == "unknown" {
		return 0, "Unknown"
	}
	switch ev.Kind {
	case store.KindRequest, store.KindCall:
		if ev.Method != "" {
			return 99, ev.Method
		}
	}
	return 99, ev.Kind
}

// ocsfStatus maps an outcome to status_id: ok → 1 Success, failures →
// 2 Failure, unknown → 0 Unknown, input_required → 99 Other. A request
// (whose outcome is a later event) has status 0 Unknown.
func ocsfStatus(ev *store.Event) (id int, name, detail string, ok bool) {
	if m, ok := approvalOf(ev); ok {
		return m.statusID, m.status, ev.Detail, true
	}
	switch ev.Kind {
	case store.KindRequest:
		return 0, "Unknown", "request recorded; its outcome is the event whose call is " + strconv.FormatUint(ev.Seq, 10), true
	case store.KindCall, store.KindRollbackStep:
	default:
		return 0, "", "", false
	}
	detail = ev.Outcome
	if ev.Detail != "" {
		detail += ": " + ev.Detail
	}
	switch {
	case ev.Outcome == store.OutcomeOK:
		return 1, "Success", detail, true
	case ev.Outcome == store.OutcomeInputRequired:
		return 99, "input_required", detail, true
	case ev.Outcome == store.OutcomeUnknown || ev.Outcome == "":
		return 0, "Unknown", detail, true
	}
	return 2, "Failure", detail, true
}

func (e *ocsfEncoder) metadata(ev *store.Event) ocsfMetadata {
	m := ocsfMetadata{
		Version:      OCSFVersion,
		Product:      ocsfProduct{Name: ProductName, VendorName: VendorName, Version: e.o.Version},
		UID:          ev.ID,
		Sequence:     ev.Seq,
		LogName:      "mcptrail",
		OriginalTime: ev.Time.UTC().Format(time.RFC3339Nano),
	}
	if c := callSeq(ev); c != 0 && ev.Session != "" {
		// The request and its outcome share one correlation id.
		m.CorrelationUID = ev.Session + "/" + strconv.FormatUint(c, 10)
	}
	if ev.Task != nil && ev.Task.TraceID != "" {
		m.Profiles = []string{"trace"}
	}
	return m
}

func (e *ocsfEncoder) actor(ev *store.Event) ocsfActor {
	var a ocsfActor
	if p := ev.Principal; p != nil && p.Subject != "" {
		a.User = &ocsfUser{Name: p.Subject, UID: p.Subject}
		if p.CredentialID != "" {
			a.User.Credentials = []ocsfCredential{{UID: p.CredentialID, Type: p.Kind}}
		}
		if p.Kind == "os_user" {
			// An operating-system account: user.type_id 1 User. A token,
			// JWT or SSH key says how the principal proved itself, not what
			// kind of account it is: that is the credential's type.
			one := 1
			a.User.TypeID, a.User.Type = &one, "User"
		}
		if p.Issuer != "" {
			a.IdP = &ocsfIdP{Name: p.Issuer}
		}
	}
	if ag := ev.Agent; ag != nil {
		a.AppName = store.AgentLabel(ag)
		a.AppUID = ag.ID
	}
	if ev.Session != "" {
		a.Session = &ocsfSession{UID: ev.Session}
	}
	if a.User == nil && a.AppName == "" && a.Session == nil {
		// The class requires an actor with at least one attribute.
		a.AppName = "unknown"
	}
	return a
}

func (e *ocsfEncoder) srcEndpoint(ev *store.Event) ocsfEndpoint {
	src := ocsfEndpoint{Name: "unknown"}
	if ev.Agent != nil {
		if n := ev.Agent.ClientName; n != "" {
			src.Name = n
		} else if n := store.AgentLabel(ev.Agent); n != "" {
			src.Name = n
		}
	}
	if ev.Transport == "stdio" {
		// A stdio agent started `mcptrail wrap` on the gateway's host.
		src.Hostname = e.o.Hostname
	}
	if ev.From == store.FromServer {
		// A server-initiated request (sampling, elicitation) flows the
		// other way: the upstream is the source.
		up := e.o.upstreamEndpoint(ev)
		src = ocsfEndpoint{Name: cmp.Or(ev.Upstream, "unknown"), SvcName: "mcp"}
		setHost(&src, up)
	}
	return src
}

func (e *ocsfEncoder) dstEndpoint(ev *store.Event) *ocsfEndpoint {
	if ev.Upstream == "" {
		return nil
	}
	if ev.From == store.FromServer {
		return &ocsfEndpoint{Name: "agent", Hostname: e.o.Hostname}
	}
	dst := &ocsfEndpoint{Name: ev.Upstream, SvcName: "mcp"}
	setHost(dst, e.o.upstreamEndpoint(ev))
	return dst
}

func setHost(ep *ocsfEndpoint, up endpoint) {
	if up.host != "" {
		if isIP(up.host) {
			ep.IP = up.host
		} else {
			ep.Hostname = up.host
		}
	}
	ep.Port = up.port
}

func (e *ocsfEncoder) apiActivity(ev *store.Event) *ocsfAPIActivity {
	id, name := ocsfActivity(ev)
	out := &ocsfAPIActivity{
		ocsfClass: ocsfClass{
			ActivityID:   id,
			ActivityName: name,
			CategoryUID:  ocsfCategoryApplication,
			CategoryName: "Application Activity",
			ClassUID:     ocsfClassAPIActivity,
			ClassName:    "API Activity",
			TypeUID:      ocsfClassAPIActivity*100 + id,
			TypeName:     "API Activity: " + name,
			SeverityID:   1,
			Severity:     "Informational",
			Time:         ev.Time.UnixMilli(),
		},
		Message:     message(ev),
		Metadata:    e.metadata(ev),
		Actor:       e.actor(ev),
		API:         ocsfAPI{Operation: operation(ev), Version: ev.ProtocolVersion},
		SrcEndpoint: e.srcEndpoint(ev),
		DstEndpoint: e.dstEndpoint(ev),
	}
	switch id {
	case 0:
		out.TypeName = "API Activity: Unknown"
	case 99:
		out.TypeName = "API Activity: Other"
	}
	if ev.Kind == store.KindBadInput || ev.Outcome == store.OutcomeDenied || approvalRefused(ev) {
		out.SeverityID, out.Severity = 3, "Medium"
	}
	if ev.DurationNS > 0 {
		ms := ev.DurationNS / int64(time.Millisecond)
		out.Duration = &ms
	}
	if sid, sname, detail, ok := ocsfStatus(ev); ok {
		out.StatusID, out.Status, out.StatusDetail = &sid, sname, detail
	}
	if rid := store.JSONRPCIDText(ev.JSONRPCID); rid != "" {
		out.API.Request = &ocsfRequest{UID: rid}
	}
	if ev.Upstream != "" {
		out.API.Service = &ocsfService{Name: ev.Upstream}
	}
	if ev.Kind == store.KindCall {
		resp := &ocsfResponse{}
		if code, msg, ok := rpcError(ev.Error); ok {
			resp.Code = &code
			resp.ErrorMessage = msg
			out.StatusCode = strconv.FormatInt(code, 10)
		}
		if failed(ev.Outcome) {
			resp.Error = ev.Outcome
		}
		if resp.Code != nil || resp.Error != "" {
			out.API.Response = resp
		}
	}
	if ev.Tool != "" {
		out.Resources = []ocsfResource{{Type: "MCP Tool", Name: ev.Tool, UID: ev.Upstream + "/" + ev.Tool}}
	}
	if ev.Task != nil && ev.Task.TraceID != "" {
		out.Trace = &ocsfTrace{UID: ev.Task.TraceID}
	}
	if ev.Kind == store.KindRefusal {
		ocsfRefusal(out, ev)
	}
	out.Unmapped = unmapped(ev, e.o.Bodies)
	return out
}

// unmapped holds the record's fields OCSF has no place for, under their
// record names, so nothing is lost on the way.
func unmapped(ev *store.Event, bodies bool) map[string]any {
	u := map[string]any{"seq": ev.Seq, "kind": ev.Kind}
	set := func(k string, v any, ok bool) {
		if ok {
			u[k] = v
		}
	}
	set("from", ev.From, ev.From != "")
	set("transport", ev.Transport, ev.Transport != "")
	set("method", ev.Method, ev.Method != "")
	set("tool", ev.Tool, ev.Tool != "")
	set("class", ev.Class, ev.Class != "")
	set("class_source", ev.ClassSource, ev.ClassSource != "")
	set("outcome", ev.Outcome, ev.Outcome != "")
	set("call", ev.Call, ev.Call != 0)
	set("logical_call", ev.LogicalCall, ev.LogicalCall != 0)
	set("duration_ns", ev.DurationNS, ev.DurationNS != 0)
	set("agent", ev.Agent, ev.Agent != nil)
	set("principal", ev.Principal, ev.Principal != nil)
	set("on_behalf_of", ev.OnBehalfOf, ev.OnBehalfOf != "")
	set("task", ev.Task, ev.Task != nil)
	set("authorization", ev.Authorization, ev.Authorization != nil)
	set("annotations", ev.Annotations, ev.Annotations != nil)
	set("prestate", ev.Prestate, ev.Prestate != "")
	set("reverts", ev.Reverts, ev.Reverts != 0)
	set("detail", ev.Detail, ev.Detail != "")
	set("size", ev.Size, ev.Size != 0)
	set("refusal", ev.Refusal, ev.Refusal != nil)
	set("approval", ev.Approval, ev.Approval != nil)
	set("prev_hash", ev.PrevHash, ev.PrevHash != "")
	set("hash", ev.Hash, ev.Hash != "")
	if bodies || ev.Kind == store.KindAlert {
		if ev.Kind == store.KindBadInput {
			body(u, "raw_body", ev.Params)
		} else {
			body(u, "params", ev.Params)
		}
		body(u, "result", ev.Result)
	}
	body(u, "error", ev.Error)
	return u
}

// body sets a JSON body so that each key keeps one type in every record: a
// JSON object under name, anything else (the excerpt of a malformed
// message, a non-object result) as a string under name+"_raw". "raw_body",
// what arrived of a message that was not valid, is a string always. A SIEM maps a field on the first value it sees and rejects a
// later one of another type, so an object and a string must never share a
// name.
func body(u map[string]any, name string, raw json.RawMessage) {
	if len(raw) == 0 || string(raw) == "null" {
		return
	}
	if t := bytes.TrimLeft(raw, " \t\r\n"); name != "raw_body" && len(t) > 0 && t[0] == '{' && json.Valid(raw) {
		u[name] = raw
		return
	}
	var s string
	if json.Unmarshal(raw, &s) != nil {
		s = string(raw)
	}
	if name != "raw_body" {
		name += "_raw"
	}
	u[name] = s
}

// message is a one-line summary of the event.
func message(ev *store.Event) string {
	who := store.AgentLabel(ev.Agent)
	if who == "" {
		who = "unknown agent"
	}
	switch ev.Kind {
	case store.KindRequest:
		if ev.Tool != "" {
			return who + " called " + ev.Upstream + "/" + ev.Tool
		}
		return who + " sent " + ev.Method + " to " + ev.Upstream
	case store.KindCall:
		s := ev.Upstream + "/" + operation(ev) + ": " + cmp.Or(ev.Outcome, "unknown")
		if ev.Detail != "" {
			s += " (" + ev.Detail + ")"
		}
		return s
	case store.KindSessionStart:
		return who + " started a session with " + ev.Upstream
	case store.KindSessionEnd:
		return "session with " + ev.Upstream + " ended"
	case store.KindNotification:
		return ev.Method
	case store.KindRefusal:
		return refusalMessage(ev)
	case store.KindApprovalRequested, store.KindApproved, store.KindDenied, store.KindExpired:
		return approvalMessage(ev)
	}
	if ev.Detail != "" {
		return ev.Detail
	}
	return ev.Kind
}

// Detection Finding (2004), for alerts.
type (
	ocsfAnalytic struct {
		UID    string `json:"uid"`
		Name   string `json:"name"`
		TypeID int    `json:"type_id"`
		Type   string `json:"type"`
	}
	ocsfRelatedEvent struct {
		UID string `json:"uid"`
	}
	ocsfFindingInfo struct {
		UID           string             `json:"uid"`
		Title         string             `json:"title"`
		Desc          string             `json:"desc,omitempty"`
		Analytic      ocsfAnalytic       `json:"analytic"`
		Types         []string           `json:"types,omitempty"`
		CreatedTime   int64              `json:"created_time"`
		RelatedEvents []ocsfRelatedEvent `json:"related_events,omitempty"`
	}
	ocsfEvidence struct {
		Actor       *ocsfActor    `json:"actor,omitempty"`
		API         *ocsfAPI      `json:"api,omitempty"`
		DstEndpoint *ocsfEndpoint `json:"dst_endpoint,omitempty"`
	}
	ocsfDetectionFinding struct {
		ocsfClass
		Message     string          `json:"message,omitempty"`
		StatusID    int             `json:"status_id"`
		Status      string          `json:"status"`
		IsAlert     bool            `json:"is_alert"`
		Metadata    ocsfMetadata    `json:"metadata"`
		FindingInfo ocsfFindingInfo `json:"finding_info"`
		Evidences   []ocsfEvidence  `json:"evidences,omitempty"`
		Resources   []ocsfResource  `json:"resources,omitempty"`
		Unmapped    map[string]any  `json:"unmapped,omitempty"`
	}
)

// ocsfSeverity maps a rule's severity to severity_id: informational 1,
// low 2, medium 3, high 4, critical 5.
func ocsfSeverity(s string) (int, string) {
	r := severityRank(s)
	return r + 1, []string{"Informational", "Low", "Medium", "High", "Critical"}[r]
}

func (e *ocsfEncoder) finding(ev *store.Event) *ocsfDetectionFinding {
	a := alertInfo(ev)
	sid, sname := ocsfSeverity(a.Rule.Severity)
	out := &ocsfDetectionFinding{
		ocsfClass: ocsfClass{
			ActivityID:   1,
			ActivityName: "Create",
			CategoryUID:  ocsfCategoryFindings,
			CategoryName: "Findings",
			ClassUID:     ocsfClassDetectionFinding,
			ClassName:    "Detection Finding",
			TypeUID:      ocsfClassDetectionFinding*100 + 1,
			TypeName:     "Detection Finding: Create",
			SeverityID:   sid,
			Severity:     sname,
			Time:         ev.Time.UnixMilli(),
		},
		Message:  cmp.Or(ev.Detail, a.Rule.Title),
		StatusID: 1,
		Status:   "New",
		IsAlert:  true,
		Metadata: e.metadata(ev),
		FindingInfo: ocsfFindingInfo{
			UID:         ev.ID,
			Title:       a.Rule.Title,
			Desc:        cmp.Or(ev.Detail, a.Rule.Description),
			Analytic:    ocsfAnalytic{UID: a.Rule.ID, Name: a.Rule.Title, TypeID: 1, Type: "Rule"},
			CreatedTime: ev.Time.UnixMilli(),
		},
		Unmapped: unmapped(ev, true),
	}
	if a.Rule.Type != "" {
		out.FindingInfo.Types = []string{a.Rule.Type}
	}
	calls := a.Calls
	if len(calls) == 0 && ev.Call != 0 {
		calls = []uint64{ev.Call}
	}
	for _, c := range calls {
		// Related events are the triggering requests, by the correlation id
		// their API Activity records carry (metadata.correlation_uid).
		uid := strconv.FormatUint(c, 10)
		if ev.Session != "" {
			uid = ev.Session + "/" + uid
		}
		out.FindingInfo.RelatedEvents = append(out.FindingInfo.RelatedEvents, ocsfRelatedEvent{UID: uid})
	}
	actor := e.actor(ev)
	evd := ocsfEvidence{Actor: &actor, DstEndpoint: e.dstEndpoint(ev)}
	if ev.Tool != "" || ev.Method != "" {
		evd.API = &ocsfAPI{Operation: operation(ev)}
	}
	out.Evidences = []ocsfEvidence{evd}
	if ev.Tool != "" {
		out.Resources = []ocsfResource{{Type: "MCP Tool", Name: ev.Tool, UID: ev.Upstream + "/" + ev.Tool}}
	}
	return out
}
