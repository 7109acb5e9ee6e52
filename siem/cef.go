package siem

import (
	"cmp"
	"net"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/mcptrail/mcptrail/internal/termsafe"
	"github.com/mcptrail/mcptrail/store"
)

// CEF (ArcSight Common Event Format, Implementation Standard revision 27):
//
//	CEF:0|Device Vendor|Device Product|Device Version|Device Event Class ID|Name|Severity|Extension
//
// Header fields escape '\' and '|' with a backslash; they cannot hold line
// breaks, which become spaces. Extension values escape '\' and '=' with a
// backslash and write line breaks as \n and \r; a '|' needs no escape
// there. Extension keys are fixed names from the CEF dictionary.
//
// CEF says nothing of other control characters, and a log is read in a
// terminal: every other one (ESC, BEL, C1 such as U+009B, bidi controls,
// invalid UTF-8) is first made visible by termsafe.Log, whose backslash
// the CEF escape then doubles, so a parser reads back the text "\x1b".
var (
	cefHeaderEsc = strings.NewReplacer(`\`, `\\`, `|`, `\|`, "\r", " ", "\n", " ")
	cefValueEsc  = strings.NewReplacer(`\`, `\\`, `=`, `\=`, "\n", `\n`, "\r", `\r`)
)

// cefHeader escapes a header field.
func cefHeader(s string) string { return cefHeaderEsc.Replace(termsafe.Log(s)) }

// cefValue escapes an extension value.
func cefValue(s string) string { return cefValueEsc.Replace(termsafe.Log(s)) }

// truncate cuts s to at most n bytes on a rune boundary.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

type cefEncoder struct{ o Options }

func (e *cefEncoder) Format() Format { return FormatCEF }

// cefLimits is the one table of the CEF key dictionary's length limits
// (CEF Implementation Standard, revision 27) for every key and header field
// mcptrail writes: a value is cut to its limit, counted in bytes of the
// value before CEF escaping (stricter than the standard's characters). A
// key missing here is a programming error the tests catch. Numbers and
// addresses have their own bounded forms; 0 marks them.
var cefLimits = map[string]int{
	"header:deviceVendor": 63, "header:deviceProduct": 63, "header:deviceVersion": 31,
	"header:deviceEventClassId": 1023, "header:name": 512,
	"act": 63, "app": 31, "outcome": 63, "dvchost": 100, "externalId": 40,
	"cat": 1023, "msg": 1023, "reason": 1023, "request": 1023, "requestMethod": 1023,
	"requestClientApplication": 1023, "shost": 1023, "dhost": 1023, "suser": 1023,
	"destinationServiceName": 1023,
	"cs1":                    4000, "cs2": 4000, "cs3": 4000, "cs4": 4000, "cs5": 4000, "cs6": 4000,
	"cs1Label": 1023, "cs2Label": 1023, "cs3Label": 1023, "cs4Label": 1023, "cs5Label": 1023, "cs6Label": 1023,
	"cn1Label": 1023, "cn2Label": 1023, "cn3Label": 1023, "c6a2Label": 1023, "c6a3Label": 1023,
	"flexString1": 1023, "flexString2": 1023, "flexString1Label": 128, "flexString2Label": 128, "flexNumber1Label": 128,
	"rt": 0, "cnt": 0, "cn1": 0, "cn2": 0, "cn3": 0, "flexNumber1": 0, "dpt": 0, "src": 0, "dst": 0, "c6a2": 0, "c6a3": 0,
}

// cefLimit is key's limit; an unknown key panics, so that a key outside
// the table cannot ship (every encoder path runs in the tests).
func cefLimit(key string) int {
	n, ok := cefLimits[key]
	if !ok {
		panic("siem: CEF key " + key + " is not in cefLimits")
	}
	if n == 0 {
		return 64 // a number or an address
	}
	return n
}

// cefFit makes s terminal-safe (termsafe.Log, which may lengthen it) and
// then cuts it to key's limit, so the limit holds for what is sent.
func cefFit(key, s string) string { return truncate(termsafe.Log(s), cefLimit(key)) }

// cefExt builds an extension in order.
type cefExt struct{ b strings.Builder }

// add appends key=value when value is not empty, within the key's limit.
func (x *cefExt) add(key, value string) {
	if value == "" {
		return
	}
	if x.b.Len() > 0 {
		x.b.WriteByte(' ')
	}
	x.b.WriteString(key)
	x.b.WriteByte('=')
	x.b.WriteString(cefValueEsc.Replace(cefFit(key, value)))
}

func (x *cefExt) num(key string, n uint64) {
	if n != 0 {
		x.add(key, strconv.FormatUint(n, 10))
	}
}

// labelled adds a custom field and its label.
func (x *cefExt) labelled(key, label, value string) {
	if value == "" {
		return
	}
	x.add(key+"Label", label)
	x.add(key, value)
}

func (x *cefExt) labelledNum(key, label string, n uint64) {
	if n == 0 {
		return
	}
	x.add(key+"Label", label)
	x.add(key, strconv.FormatUint(n, 10))
}

// addr puts an IP address in the IPv4 key, or in the custom IPv6 one
// (labelled) when it is not IPv4: the dictionary's src and dst are IPv4.
func (x *cefExt) addr(v4Key, v6Key, v6Label, ip string) {
	if p := net.ParseIP(ip); p != nil && p.To4() != nil {
		x.add(v4Key, p.String())
	} else if p != nil {
		x.labelled(v6Key, v6Label, p.String())
	}
}

// cefSeverity: ordinary events 3 (low), failed calls 5, denied calls and
// bad input 7; alerts by their rule: informational 3, low 4, medium 6,
// high 8, critical 10.
func cefSeverity(ev *store.Event) int {
	switch {
	case ev.Kind == store.KindAlert:
		return []int{3, 4, 6, 8, 10}[severityRank(alertInfo(ev).Rule.Severity)]
	case ev.Outcome == store.OutcomeDenied || ev.Kind == store.KindBadInput || ev.Kind == store.KindRefusal || approvalRefused(ev):
		return 7
	case ev.Kind == store.KindApprovalRequested || ev.Kind == store.KindApproved:
		return 5
	case failed(ev.Outcome):
		return 5
	}
	return 3
}

// cefClassID is the Device Event Class ID: kind and method ("call:tools/call"),
// the kind alone, or "alert:" and the rule's id.
func cefClassID(ev *store.Event) string {
	switch {
	case ev.Kind == store.KindAlert:
		return "alert:" + alertInfo(ev).Rule.ID
	case ev.Kind == store.KindRefusal:
		return "refusal:" + refusalReason(ev)
	case ev.Method != "" && (ev.Kind == store.KindRequest || ev.Kind == store.KindCall || ev.Kind == store.KindNotification):
		return ev.Kind + ":" + knownMethod(ev.Method)
	}
	return ev.Kind
}

// cefName is the header's Name: short and stable (one per method and kind,
// per rule, per refusal reason), since SIEMs group and count by it; what
// this event did (agent, tool, detail) is in the extension.
func cefName(ev *store.Event) string {
	switch ev.Kind {
	case store.KindAlert:
		return alertInfo(ev).Rule.Title
	case KindCheckpoint:
		return "Signed checkpoint of the record"
	case store.KindRefusal:
		return refusalName(ev)
	}
	if m, ok := approvalOf(ev); ok {
		return m.name
	}
	if ev.Method != "" {
		return knownMethod(ev.Method) + " " + ev.Kind
	}
	return ev.Kind
}

// mcpMethods are the methods the MCP specification defines (2024-11-05 to
// 2026-07-28). The agent chooses a message's method: in the CEF header,
// which SIEMs group and count by, any other is "other" — a hostile agent
// cannot mint a Name per message — and the method itself is in cs3.
var mcpMethods = map[string]bool{
	"initialize": true, "ping": true, "server/discover": true,
	"tools/list": true, "tools/call": true,
	"resources/list": true, "resources/templates/list": true, "resources/read": true,
	"resources/subscribe": true, "resources/unsubscribe": true,
	"prompts/list": true, "prompts/get": true, "completion/complete": true, "logging/setLevel": true,
	"sampling/createMessage": true, "elicitation/create": true, "roots/list": true,
	"tasks/get": true, "tasks/result": true, "tasks/list": true, "tasks/cancel": true,
	"notifications/initialized": true, "notifications/cancelled": true, "notifications/progress": true,
	"notifications/message": true, "notifications/resources/updated": true,
	"notifications/resources/list_changed": true, "notifications/tools/list_changed": true,
	"notifications/prompts/list_changed": true, "notifications/roots/list_changed": true,
	"notifications/elicitation/complete": true, "notifications/tasks/status": true,
}

func knownMethod(m string) string {
	if mcpMethods[m] {
		return m
	}
	return "other"
}

func (e *cefEncoder) Encode(ev *store.Event) ([]byte, error) {
	name := cefName(ev)
	var b strings.Builder
	b.WriteString("CEF:0|")
	for _, f := range [][2]string{{"deviceVendor", VendorName}, {"deviceProduct", ProductName}, {"deviceVersion", e.o.Version},
		{"deviceEventClassId", cefClassID(ev)}, {"name", name}} {
		b.WriteString(cefHeaderEsc.Replace(cefFit("header:"+f[0], f[1])))
		b.WriteByte('|')
	}
	b.WriteString(strconv.Itoa(cefSeverity(ev)))
	b.WriteByte('|')

	var x cefExt
	x.add("rt", strconv.FormatInt(ev.Time.UnixMilli(), 10))
	x.add("externalId", ev.ID)
	x.add("cat", ev.Class)
	x.add("act", operation(ev))
	x.add("outcome", ev.Outcome)
	x.add("app", "MCP")
	if p := ev.Principal; p != nil {
		x.add("suser", p.Subject)
	}
	if a := ev.Agent; a != nil && a.ClientName != "" {
		x.add("requestClientApplication", strings.TrimSpace(a.ClientName+" "+a.ClientVersion))
	}
	if ev.Transport == "stdio" {
		x.add("shost", e.o.Hostname)
	}
	x.add("destinationServiceName", ev.Upstream)
	if up := e.o.upstreamEndpoint(ev); up.host != "" {
		if isIP(up.host) {
			x.addr("dst", "c6a3", "destinationIPv6Address", up.host)
		} else {
			x.add("dhost", up.host)
		}
		if up.port != 0 {
			x.add("dpt", strconv.Itoa(up.port))
		}
	}
	x.add("dvchost", e.o.Hostname)
	if ev.Kind == store.KindAlert || failed(ev.Outcome) || ev.Kind == store.KindBadInput {
		x.add("reason", ev.Detail)
	}
	if ev.Kind == store.KindRefusal {
		cefRefusal(&x, ev)
	}
	x.add("msg", cmp.Or(ev.Detail, message(ev)))
	if ev.Kind == KindCheckpoint {
		x.labelledNum("cn1", "checkpointSize", ev.Seq)
	} else {
		x.labelledNum("cn1", "seq", ev.Seq)
	}
	x.labelledNum("cn2", "call", ev.Call)
	if ev.DurationNS > 0 {
		x.labelledNum("cn3", "durationMs", uint64(ev.DurationNS/1e6))
	}
	x.labelled("cs1", "session", ev.Session)
	x.labelled("cs2", "agent", store.AgentLabel(ev.Agent))
	x.labelled("cs3", "method", ev.Method)
	x.labelled("cs4", "jsonrpcId", store.JSONRPCIDText(ev.JSONRPCID))
	if t := ev.Task; t != nil {
		x.labelled("cs5", "task", cmp.Or(t.ID, t.Name))
	}
	x.labelled("cs6", "hash", ev.Hash)
	x.labelled("flexString1", "onBehalfOf", ev.OnBehalfOf)
	if ev.Kind == store.KindAlert {
		x.labelled("flexString2", "rule", alertInfo(ev).Rule.ID)
	}
	b.WriteString(x.b.String())
	return []byte(b.String()), nil
}
