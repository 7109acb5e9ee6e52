package siem

import (
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/mcptrail/mcptrail/internal/termsafe"
	"github.com/mcptrail/mcptrail/store"
)

// CEF (ArcSight Common Event Format, revision 25):
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

// cefExt builds an extension in order.
type cefExt struct{ b strings.Builder }

// add appends key=value when value is not empty; max bounds the value's
// length before escaping (the dictionary's lengths: 1023 for most strings,
// 4000 for custom strings).
func (x *cefExt) add(key, value string, max int) {
	if value == "" {
		return
	}
	if x.b.Len() > 0 {
		x.b.WriteByte(' ')
	}
	x.b.WriteString(key)
	x.b.WriteByte('=')
	x.b.WriteString(cefValue(truncate(value, max)))
}

func (x *cefExt) num(key string, n uint64) {
	if n != 0 {
		x.add(key, strconv.FormatUint(n, 10), 32)
	}
}

// labelled adds a custom field and its label.
func (x *cefExt) labelled(key, label, value string) {
	if value == "" {
		return
	}
	x.add(key+"Label", label, 1023)
	x.add(key, value, 4000)
}

func (x *cefExt) labelledNum(key, label string, n uint64) {
	if n == 0 {
		return
	}
	x.add(key+"Label", label, 1023)
	x.add(key, strconv.FormatUint(n, 10), 32)
}

// cefSeverity: ordinary events 3 (low), failed calls 5, denied calls and
// bad input 7; alerts by their rule: informational 3, low 4, medium 6,
// high 8, critical 10.
func cefSeverity(ev *store.Event) int {
	switch {
	case ev.Kind == store.KindAlert:
		return []int{3, 4, 6, 8, 10}[severityRank(alertInfo(ev).Rule.Severity)]
	case ev.Outcome == store.OutcomeDenied || ev.Kind == store.KindBadInput || ev.Kind == store.KindRefusal:
		return 7
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
		return ev.Kind + ":" + ev.Method
	}
	return ev.Kind
}

func (e *cefEncoder) Encode(ev *store.Event) ([]byte, error) {
	name := message(ev)
	switch ev.Kind {
	case store.KindAlert:
		name = alertInfo(ev).Rule.Title
	case KindCheckpoint:
		name = "Signed checkpoint of the record"
	case store.KindRefusal:
		name = refusalName(ev)
	}
	var b strings.Builder
	b.WriteString("CEF:0|")
	for _, f := range []string{VendorName, ProductName, e.o.Version, truncate(cefClassID(ev), 1023), truncate(name, 512)} {
		b.WriteString(cefHeader(f))
		b.WriteByte('|')
	}
	b.WriteString(strconv.Itoa(cefSeverity(ev)))
	b.WriteByte('|')

	var x cefExt
	x.add("rt", strconv.FormatInt(ev.Time.UnixMilli(), 10), 32)
	x.add("externalId", ev.ID, 1023)
	x.add("cat", ev.Class, 1023)
	x.add("act", operation(ev), 63)
	x.add("outcome", ev.Outcome, 63)
	x.add("app", "MCP", 31)
	if p := ev.Principal; p != nil {
		x.add("suser", p.Subject, 1023)
	}
	if a := ev.Agent; a != nil && a.ClientName != "" {
		x.add("requestClientApplication", strings.TrimSpace(a.ClientName+" "+a.ClientVersion), 1023)
	}
	if ev.Transport == "stdio" {
		x.add("shost", e.o.Hostname, 1023)
	}
	x.add("destinationServiceName", ev.Upstream, 1023)
	if up := e.o.upstreamEndpoint(ev); up.host != "" {
		if isIP(up.host) {
			x.add("dst", up.host, 64)
		} else {
			x.add("dhost", up.host, 1023)
		}
		if up.port != 0 {
			x.add("dpt", strconv.Itoa(up.port), 8)
		}
	}
	x.add("dvchost", e.o.Hostname, 1023)
	if ev.Kind == store.KindAlert || failed(ev.Outcome) || ev.Kind == store.KindBadInput {
		x.add("reason", ev.Detail, 1023)
	}
	if ev.Kind == store.KindRefusal {
		cefRefusal(&x, ev)
	}
	x.add("msg", nonEmpty(ev.Detail, message(ev)), 1023)
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
	x.labelled("cs2", "agent", agentLabel(ev.Agent))
	x.labelled("cs3", "method", ev.Method)
	x.labelled("cs4", "jsonrpcId", jsonrpcID(ev.JSONRPCID))
	if t := ev.Task; t != nil {
		x.labelled("cs5", "task", nonEmpty(t.ID, t.Name))
	}
	x.labelled("cs6", "hash", ev.Hash)
	x.labelled("flexString1", "onBehalfOf", ev.OnBehalfOf)
	if ev.Kind == store.KindAlert {
		x.labelled("flexString2", "rule", alertInfo(ev).Rule.ID)
	}
	b.WriteString(x.b.String())
	return []byte(b.String()), nil
}
