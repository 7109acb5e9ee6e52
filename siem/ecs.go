package siem

import (
	"cmp"
	"strconv"
	"time"

	"github.com/mcptrail/mcptrail/store"
)

// ECSVersion is the Elastic Common Schema version the records declare
// (ecs.version) and are checked against field by field: 9.x, since the
// gen_ai.* fields first appear in ECS 9.1. Everything ECS does not define
// is under mcptrail.*, which siem/elasticsearch/mcptrail-template.json maps.
const ECSVersion = "9.4.0"

type ecsEncoder struct{ o Options }

func (e *ecsEncoder) Format() Format { return FormatECS }

// ECS objects, written nested, the form ECS documents use (Elasticsearch
// maps the dotted names identically). The OpenTelemetry MCP attribute
// names (mcp.method.name, jsonrpc.request.id, rpc.response.status_code) are
// not ECS fields, so the method, session, protocol version and JSON-RPC id
// are under mcptrail.* by their record names, and the error code is in
// error.code.
type (
	ecsEvent struct {
		Kind     string   `json:"kind"`
		Category []string `json:"category"`
		Type     []string `json:"type"`
		Action   string   `json:"action"`
		Outcome  string   `json:"outcome"`
		Duration int64    `json:"duration,omitempty"` // ns
		Sequence uint64   `json:"sequence"`
		Hash     string   `json:"hash,omitempty"`
		ID       string   `json:"id"`
		Dataset  string   `json:"dataset"`
		Module   string   `json:"module"`
		Provider string   `json:"provider,omitempty"`
		Reason   string   `json:"reason,omitempty"`
		Severity int      `json:"severity,omitempty"`
	}
	ecsUser struct {
		Name   string `json:"name,omitempty"`
		ID     string `json:"id,omitempty"`
		Domain string `json:"domain,omitempty"`
	}
	ecsNamed struct {
		Name string `json:"name,omitempty"`
	}
	ecsIDName struct {
		ID   string `json:"id,omitempty"`
		Name string `json:"name,omitempty"`
	}
	ecsService struct {
		Name string `json:"name,omitempty"`
		Type string `json:"type,omitempty"`
	}
	ecsObserver struct {
		Hostname string `json:"hostname"`
		Product  string `json:"product"`
		Vendor   string `json:"vendor"`
		Version  string `json:"version"`
		Type     string `json:"type"`
	}
	ecsEndpoint struct {
		Address string `json:"address,omitempty"`
		Domain  string `json:"domain,omitempty"`
		IP      string `json:"ip,omitempty"`
		Port    int    `json:"port,omitempty"`
	}
	ecsUserAgent struct {
		Name    string `json:"name,omitempty"`
		Version string `json:"version,omitempty"`
	}
	ecsGenAI struct {
		Operation *ecsNamed  `json:"operation,omitempty"`
		Tool      *ecsNamed  `json:"tool,omitempty"`
		Agent     *ecsIDName `json:"agent,omitempty"`
	}
	ecsError struct {
		Type    string `json:"type,omitempty"`
		Code    string `json:"code,omitempty"`
		Message string `json:"message,omitempty"`
	}
	ecsID struct {
		ID string `json:"id"`
	}
	ecsRule struct {
		ID          string `json:"id"`
		Name        string `json:"name"`
		Description string `json:"description,omitempty"`
		Category    string `json:"category,omitempty"`
		Ruleset     string `json:"ruleset"`
	}
	ecsNetwork struct {
		Transport string `json:"transport,omitempty"`
		Protocol  string `json:"protocol"`
	}
	ecsRecord struct {
		Timestamp   string         `json:"@timestamp"`
		Message     string         `json:"message,omitempty"`
		ECS         ecsVersion     `json:"ecs"`
		Event       ecsEvent       `json:"event"`
		User        *ecsUser       `json:"user,omitempty"`
		UserAgent   *ecsUserAgent  `json:"user_agent,omitempty"`
		Service     *ecsService    `json:"service,omitempty"`
		Destination *ecsEndpoint   `json:"destination,omitempty"`
		Network     ecsNetwork     `json:"network"`
		Observer    ecsObserver    `json:"observer"`
		Host        ecsNamedHost   `json:"host"`
		GenAI       *ecsGenAI      `json:"gen_ai,omitempty"`
		Error       *ecsError      `json:"error,omitempty"`
		Trace       *ecsID         `json:"trace,omitempty"`
		Span        *ecsID         `json:"span,omitempty"`
		Rule        *ecsRule       `json:"rule,omitempty"`
		Source      *ecsSource     `json:"source,omitempty"` // a refusal's client (ecsRefusal)
		HTTP        *ecsHTTP       `json:"http,omitempty"`
		URL         *ecsURL        `json:"url,omitempty"`
		MCPTrail    map[string]any `json:"mcptrail"`
	}
	ecsVersion struct {
		Version string `json:"version"`
	}
	ecsNamedHost struct {
		Hostname string `json:"hostname"`
	}
)

// ecsTypes maps the call's class to event.type (allowed with category api):
// read → access, write → change, delete → deletion, else info; denied
// calls add denied; session boundaries are start and end.
func ecsTypes(ev *store.Event) []string {
	if m, ok := approvalOf(ev); ok {
		return []string{m.ecsType}
	}
	var t []string
	switch ev.Kind {
	case store.KindSessionStart:
		return []string{"start"}
	case store.KindSessionEnd:
		return []string{"end"}
	}
	switch ev.Class {
	case "read":
		t = []string{"access"}
	case "write":
		t = []string{"change"}
	case "delete":
		t = []string{"deletion"}
	default:
		t = []string{"info"}
	}
	if ev.Outcome == store.OutcomeDenied {
		t = append(t, "denied")
	}
	return t
}

// ecsOutcome: ok → success, a failure outcome → failure, anything else
// (a request, whose outcome comes later; unknown) → unknown.
func ecsOutcome(ev *store.Event) string {
	if m, ok := approvalOf(ev); ok {
		return m.ecsOutcome
	}
	switch {
	case ev.Kind == store.KindAlert || ev.Kind == store.KindRequest:
		return "unknown"
	case ev.Outcome == store.OutcomeOK:
		return "success"
	case failed(ev.Outcome):
		return "failure"
	case ev.Outcome == "" && ev.Kind != store.KindCall:
		return "success" // notifications, session boundaries: they happened
	}
	return "unknown"
}

func (e *ecsEncoder) Encode(ev *store.Event) ([]byte, error) {
	r := &ecsRecord{
		Timestamp: ev.Time.UTC().Format(time.RFC3339Nano),
		Message:   message(ev),
		ECS:       ecsVersion{Version: ECSVersion},
		Event: ecsEvent{
			Kind:     "event",
			Category: []string{"api"},
			Type:     ecsTypes(ev),
			Action:   operation(ev),
			Outcome:  ecsOutcome(ev),
			Duration: ev.DurationNS,
			Sequence: ev.Seq,
			Hash:     ev.Hash,
			ID:       ev.ID,
			Dataset:  "mcptrail.events",
			Module:   "mcptrail",
			Provider: ev.Upstream,
		},
		Network:  ecsNetwork{Protocol: "mcp"},
		Observer: ecsObserver{Hostname: e.o.Hostname, Product: ProductName, Vendor: VendorName, Version: e.o.Version, Type: "gateway"},
		Host:     ecsNamedHost{Hostname: e.o.Hostname},
		MCPTrail: unmapped(ev, e.o.Bodies),
	}
	if ev.Transport == "http" {
		// network.transport is an IANA transport protocol name. A stdio
		// upstream is a pipe to a child process, which has none: its
		// transport is in mcptrail.transport.
		r.Network.Transport = "tcp"
	}
	if ev.Detail != "" && ev.Kind != store.KindAlert {
		r.Event.Reason = ev.Detail
	}
	if p := ev.Principal; p != nil && p.Subject != "" {
		r.User = &ecsUser{Name: p.Subject, ID: p.Subject, Domain: p.Issuer}
	}
	if a := ev.Agent; a != nil && a.ClientName != "" {
		r.UserAgent = &ecsUserAgent{Name: a.ClientName, Version: a.ClientVersion}
	}
	if ev.Upstream != "" {
		r.Service = &ecsService{Name: ev.Upstream, Type: "mcp"}
		if up := e.o.upstreamEndpoint(ev); up.host != "" {
			d := &ecsEndpoint{Address: up.host, Port: up.port}
			if isIP(up.host) {
				d.IP = up.host
			} else {
				d.Domain = up.host
			}
			r.Destination = d
		}
	}
	genai := &ecsGenAI{}
	if ev.Tool != "" {
		genai.Tool = &ecsNamed{Name: ev.Tool}
		if ev.Method == "tools/call" {
			genai.Operation = &ecsNamed{Name: "execute_tool"}
		}
	}
	if a := ev.Agent; a != nil && (a.ID != "" || store.AgentLabel(a) != "") {
		genai.Agent = &ecsIDName{ID: a.ID, Name: store.AgentLabel(a)}
	}
	if *genai != (ecsGenAI{}) {
		r.GenAI = genai
	}
	if ev.Session != "" {
		r.MCPTrail["session"] = ev.Session
	}
	if ev.ProtocolVersion != "" {
		r.MCPTrail["protocol_version"] = ev.ProtocolVersion
	}
	if id := store.JSONRPCIDText(ev.JSONRPCID); id != "" {
		r.MCPTrail["jsonrpc_id"] = id
	}
	if code, msg, ok := rpcError(ev.Error); ok {
		r.Error = &ecsError{Type: ev.Outcome, Code: strconv.FormatInt(code, 10), Message: msg}
	} else if failed(ev.Outcome) {
		r.Error = &ecsError{Type: ev.Outcome, Message: ev.Detail}
	}
	if t := ev.Task; t != nil {
		if t.TraceID != "" {
			r.Trace = &ecsID{ID: t.TraceID}
		}
		if t.SpanID != "" {
			r.Span = &ecsID{ID: t.SpanID}
		}
	}
	if ev.Kind == store.KindRefusal {
		ecsRefusal(r, ev)
	}
	if ev.Kind == KindCheckpoint {
		// A signed checkpoint: the state of the record, not an action.
		r.Event.Kind, r.Event.Category, r.Event.Type, r.Event.Action = "state", []string{"database"}, []string{"info"}, KindCheckpoint
		r.Event.Outcome, r.Event.Sequence, r.Event.ID = "success", 0, ""
		r.MCPTrail = map[string]any{"kind": KindCheckpoint, "size": ev.Seq, "hash": ev.Hash, "note": ev.Detail}
		r.Message = "signed checkpoint of the record: " + strconv.FormatUint(ev.Seq, 10) + " events"
	}
	if ev.Kind == store.KindAlert {
		a := alertInfo(ev)
		r.Event.Kind = "alert"
		r.Event.Type = []string{"info"}
		r.Event.Action = a.Rule.ID
		r.Event.Severity = []int{1, 21, 47, 73, 99}[severityRank(a.Rule.Severity)] // Elastic's rule severity scores
		r.Message = cmp.Or(ev.Detail, a.Rule.Title)
		r.Rule = &ecsRule{ID: a.Rule.ID, Name: a.Rule.Title, Description: a.Rule.Description, Category: a.Rule.Type, Ruleset: "mcptrail"}
	}
	return marshal(r)
}
