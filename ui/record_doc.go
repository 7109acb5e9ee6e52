package ui

import (
	"fmt"
	"strings"
	"time"

	"github.com/charmbracelet/x/ansi"

	"github.com/mcptrail/mcptrail/internal/termsafe"
	"github.com/mcptrail/mcptrail/store"
	"github.com/mcptrail/mcptrail/themes"
)

// recordDoc lays out one record for the call screen: the title line, then
// the sections WHO, TASK, WHAT, WHEN, the bodies and CHAIN, each wrapped to
// the width. A record is a call (its request and outcome together, either
// of which may be missing) or a single event; main is the one whose fields
// the sections describe. Building it runs in a command, off the event loop:
// pretty-printing a large result is not for Update.
type recordDoc struct {
	st           *themes.Styles
	loc          *time.Location
	width        int
	req, out, ev *store.Event // made terminal-safe (safeEvent)
	main         *store.Event // req, else out, else ev

	lines    []string
	sections []int // index in lines of each section's title: tab goes there
}

// labelW is the width of a field's label; values wrap with a hanging
// indent so that they line up under each other.
const labelW = 17

// layoutRecord lays out a record wrapped to width and returns its lines
// and where its sections start.
func layoutRecord(st *themes.Styles, loc *time.Location, width int, req, out, ev *store.Event) ([]string, []int) {
	d := &recordDoc{st: st, loc: loc, width: width, req: safeEvent(req), out: safeEvent(out), ev: safeEvent(ev)}
	d.main = d.req
	if d.main == nil {
		d.main = d.out
	}
	if d.main == nil {
		d.main = d.ev
	}
	if d.main == nil {
		return []string{" no record"}, nil
	}
	d.title()
	d.who()
	d.task()
	d.what()
	d.when()
	d.bodies()
	d.chain()
	return d.lines, d.sections
}

// add appends text hard-wrapped to the width, a line at a time.
func (d *recordDoc) add(s string) {
	for _, l := range strings.Split(ansi.Hardwrap(s, d.width, true), "\n") {
		d.lines = append(d.lines, " "+l)
	}
}

// section starts a section, a blank line after the one before.
func (d *recordDoc) section(title string) {
	if len(d.lines) > 0 {
		d.lines = append(d.lines, "")
	}
	d.sections = append(d.sections, len(d.lines))
	d.add(d.st.Section.Render(title))
}

// field appends a labelled value, word-wrapped under itself.
func (d *recordDoc) field(label, value string) {
	wrapped := strings.Split(ansi.Wrap(value, max(10, d.width-labelW-3), " "), "\n")
	for i, l := range wrapped {
		if i == 0 {
			d.lines = append(d.lines, "   "+d.st.Muted.Render(fmt.Sprintf("%-*s", labelW, label))+l)
		} else {
			d.lines = append(d.lines, "   "+strings.Repeat(" ", labelW)+l)
		}
	}
}

// at is a time as the record view shows it, to the microsecond.
func (d *recordDoc) at(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.In(d.loc).Format("2006-01-02 15:04:05.000000 MST")
}

// title is the first line: what was called and how it ended, or what
// kind of event this is.
func (d *recordDoc) title() {
	st, main, out, ev := d.st, d.main, d.out, d.ev
	var title []string
	if d.req != nil || out != nil {
		name := main.Tool
		if name == "" {
			name = main.Method
		}
		title = append(title, st.Bold.Render(name))
		if out != nil {
			title = append(title, outcomeStyle(st, out.Outcome).Render(out.Outcome))
			if dur := fmtDuration(time.Duration(out.DurationNS)); dur != "" {
				title = append(title, dur)
			}
		} else {
			title = append(title, st.Warn.Render("no outcome recorded"))
		}
		if isWrite(main) {
			title = append(title, st.Badge.Render("write"))
		}
		if isDestructive(main) {
			title = append(title, st.Error.Render("destructive"))
		}
	} else {
		title = append(title, st.Bold.Render(kindLabel(ev)))
		if ev.Tool != "" {
			title = append(title, ev.Tool)
		}
		if ev.Call != 0 {
			title = append(title, fmt.Sprintf("about call %d", ev.Call))
		}
	}
	d.add(strings.Join(title, "  ·  "))
}

// who is WHO: the agent, the principal it acts as (verified or only
// claimed) and whom it acts for.
func (d *recordDoc) who() {
	st, main := d.st, d.main
	d.section("WHO")
	a := main.Agent
	agent := agentName(a)
	if a != nil {
		var extra []string
		if a.ID != "" && a.ID != agent {
			extra = append(extra, "id "+a.ID)
		}
		if a.ClientName != "" {
			extra = append(extra, "client "+strings.TrimSpace(a.ClientName+" "+a.ClientVersion)+" (claimed)")
		}
		if len(extra) > 0 {
			agent += st.Muted.Render(" · " + strings.Join(extra, " · "))
		}
	}
	d.field("agent", agent)
	principal := "-"
	if p := main.Principal; p != nil && *p != (store.Principal{}) {
		parts := []string{p.Subject}
		if p.Kind != "" {
			parts = append(parts, p.Kind)
		}
		if p.Issuer != "" {
			parts = append(parts, "issuer "+p.Issuer)
		}
		if p.CredentialID != "" {
			parts = append(parts, "credential "+p.CredentialID)
		}
		if p.Verified {
			parts = append(parts, st.OK.Render("verified by the gateway"))
		} else {
			parts = append(parts, st.Warn.Render("claimed, not verified"))
		}
		principal = strings.Join(parts, " · ")
	}
	d.field("→ principal", principal)
	obo := main.OnBehalfOf
	if obo == "" {
		obo = st.Muted.Render("- (no human or workflow named)")
	}
	d.field("→ on behalf of", obo)
}

// task is TASK: the unit of work and whether a person reviewed the call.
func (d *recordDoc) task() {
	st, main := d.st, d.main
	d.section("TASK")
	if t := main.Task; t != nil && *t != (store.Task{}) {
		d.field("task", taskName(t))
		if t.ID != "" && t.ID != taskName(t) {
			d.field("id", t.ID)
		}
		if t.Workflow != "" {
			d.field("workflow", t.Workflow)
		}
		if t.TraceID != "" {
			d.field("trace", t.TraceID+" span "+t.SpanID)
		}
	} else {
		d.field("task", "-")
	}
	auth := st.Warn.Render("not reviewed by a human")
	if z := main.Authorization; z != nil && z.Reviewed {
		auth = st.OK.Render("reviewed") + " by " + z.Approver
		if z.Method != "" {
			auth += " via " + z.Method
		}
		if !z.Time.IsZero() {
			auth += " at " + d.at(z.Time)
		}
	}
	d.field("authorization", auth)
}

// what is WHAT: where the call went, the method and its class.
func (d *recordDoc) what() {
	st, main := d.st, d.main
	d.section("WHAT")
	d.field("session", main.Session)
	up := main.Upstream
	if main.Transport != "" {
		up += " · " + main.Transport
	}
	if main.ProtocolVersion != "" {
		up += " · protocol " + main.ProtocolVersion
	}
	d.field("upstream", up)
	if main.Method != "" {
		method := main.Method
		if len(main.JSONRPCID) > 0 {
			method += st.Muted.Render(" · jsonrpc id " + string(main.JSONRPCID))
		}
		if main.From != "" {
			method += st.Muted.Render(" · from " + main.From)
		}
		d.field("method", method)
	}
	if main.Class != "" || main.Annotations != nil {
		class := termsafe.OrDash(main.Class)
		if main.ClassSource != "" {
			class += st.Muted.Render(" · by " + main.ClassSource)
		}
		d.field("class", class+annotationText(st, main.Annotations))
	}
	if main.Detail != "" {
		d.field("detail", main.Detail)
	}
}

// when is WHEN: the time of each record, and how long the call took.
func (d *recordDoc) when() {
	d.section("WHEN")
	if d.req != nil {
		d.field("request", d.at(d.req.Time))
	}
	if d.out != nil {
		d.field("outcome", d.at(d.out.Time)+d.st.Muted.Render(" · took "+termsafe.OrDash(fmtDuration(time.Duration(d.out.DurationNS)))))
	}
	if d.ev != nil {
		d.field("event", d.at(d.ev.Time))
	}
}

// bodies are the JSON bodies, each a section: params, result, error.
func (d *recordDoc) bodies() {
	if d.req != nil {
		d.body("PARAMS", d.req.Params)
	}
	if d.ev != nil {
		d.body("PARAMS", d.ev.Params)
	}
	if d.out != nil {
		d.body("RESULT", d.out.Result)
		d.body("ERROR", d.out.Error)
	}
	if d.ev != nil {
		d.body("RESULT", d.ev.Result)
	}
}

// body is one JSON body pretty-printed, cut at 3,000 lines (y copies it
// whole); an empty body has no section.
func (d *recordDoc) body(title string, raw []byte) {
	if len(raw) == 0 {
		return
	}
	d.section(title)
	pretty, cut := prettyLines(raw, themedJSON(d.st), false, 3000)
	for _, l := range pretty {
		d.add("  " + l)
	}
	if cut {
		d.add("  " + d.st.Muted.Render("… cut here in the view; y copies the whole record"))
	}
}

// chain is CHAIN: each record's place in the hash chain, and what the
// call links to (the call it reverts, its pre-state).
func (d *recordDoc) chain() {
	d.section("CHAIN")
	d.link("request", d.req)
	d.link("outcome", d.out)
	d.link("event", d.ev)
	main := d.main
	links := []string{}
	if main.Reverts != 0 {
		links = append(links, fmt.Sprintf("reverts call %d", main.Reverts))
	}
	if main.Prestate != "" {
		links = append(links, "pre-state "+main.Prestate)
	}
	if d.req != nil && d.out == nil {
		links = append(links, "no outcome found after the request (still running, or the gateway stopped)")
	}
	if len(links) > 0 {
		d.field("links", strings.Join(links, " · "))
	}
}

// link is one record's seq, id and hashes; nothing for a missing record.
func (d *recordDoc) link(label string, e *store.Event) {
	if e == nil {
		return
	}
	s := fmt.Sprintf("seq %d · id %s", e.Seq, e.ID)
	if e.Call != 0 {
		s += fmt.Sprintf(" · outcome of request %d", e.Call)
	}
	if e.LogicalCall != 0 && e.LogicalCall != e.Call {
		s += fmt.Sprintf(" · logical call %d", e.LogicalCall)
	}
	d.field(label, s)
	d.field("  hash", e.Hash)
	d.field("  prev hash", e.PrevHash)
}

// annotationText is the tool's hints as the server advertised them.
func annotationText(st *themes.Styles, a *store.Annotations) string {
	if a == nil {
		return ""
	}
	var parts []string
	for _, h := range []struct {
		p       *bool
		yes, no string
	}{
		{a.ReadOnly, "read-only", "not read-only"},
		{a.Destructive, "destructive", "not destructive"},
		{a.Idempotent, "idempotent", "not idempotent"},
		{a.OpenWorld, "open world", "closed world"},
	} {
		switch {
		case h.p == nil:
		case *h.p:
			parts = append(parts, h.yes)
		default:
			parts = append(parts, h.no)
		}
	}
	if len(parts) == 0 {
		return ""
	}
	return st.Muted.Render(" · server says: " + strings.Join(parts, ", "))
}
