package ingest

import (
	"cmp"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/mcptrail/mcptrail/ingest/identity"
	"github.com/mcptrail/mcptrail/store"
)

// Errors an Authenticate function may return (wrapped or not), so that the
// refusal it causes is recorded with its reason: the credential itself
// never is.
var (
	ErrNoCredential      = errors.New("no bearer token")
	ErrUnknownCredential = errors.New("unknown token")
)

// Reasons of refusal events (store.Refusal.Reason). The default detection
// rule and the SIEM formats key on them: they are part of the record.
const (
	RefusedAuth     = "auth"     // 401: no, an unknown or an invalid credential
	RefusedOrigin   = "origin"   // 403: a browser origin that is not allowed
	RefusedHost     = "host"     // 403: a Host header a loopback listener does not answer to (DNS rebinding)
	RefusedSession  = "session"  // 404: an Mcp-Session-Id that is not the client's
	RefusedVersion  = "version"  // 400: an unsupported MCP-Protocol-Version
	RefusedRequest  = "request"  // 400/405: a request the transport does not allow
	RefusedSize     = "size"     // 413: a body over the message limit
	RefusedCap      = "cap"      // 429: the session caps
	RefusedUpstream = "upstream" // 404: no such upstream
)

// Bounds of what a refusal records of what the client sent.
const maxRefusedField = 256

// Refusal rate limits: each source (client IP address and reason) may have
// refusalBurst events recorded at once and one more every refusalEvery;
// all sources together globalBurst, and one more every globalEvery. What
// they hold back is counted and recorded as one summary event per source
// and reason every refusalWindow — for the maxSummaries sources that
// suppressed most, and one per reason for the rest. maxRefusalSources
// bounds the sources tracked; beyond it new sources share one ("*") per
// reason.
const (
	refusalBurst      = 10
	refusalEvery      = 10 * time.Second
	globalBurst       = 100
	globalEvery       = time.Second
	refusalWindow     = time.Minute
	maxRefusalSources = 1024
	maxSummaries      = 16
)

// refusal is one request the gateway turned away, as the handler saw it.
type refusal struct {
	status   int
	reason   string
	detail   string
	upstream string
	session  string // the gateway session it was refused in, if it named one of its owner's
	size     int    // bytes of the refused body, when it was too large
	ov       *Overrides
}

// refusals records what the HTTP gateway turns away, at a bounded rate:
// a flood of refusals costs at most the burst and refill of the buckets
// plus one summary event per source and reason each window.
type refusals struct {
	rec Recorder
	log *slog.Logger
	now func() time.Time
	// label identifies the credential of a refused request that was
	// refused before authentication (its principal is worth recording).
	label func(r *http.Request) *Overrides

	mu      sync.Mutex
	global  bucket
	sources map[refusalKey]*refusalSource
	window  time.Time // when the current summary window began
}

type refusalKey struct{ addr, reason string }

// refusalSource is one source's state: its bucket, and what it had
// suppressed since the window began.
type refusalSource struct {
	bucket     bucket
	suppressed int64
	status     int
	upstream   string
}

func newRefusals(rec Recorder, log *slog.Logger) *refusals {
	return &refusals{rec: rec, log: log, now: time.Now, sources: make(map[refusalKey]*refusalSource)}
}

// record records one refusal of r, or counts it when its source or the
// gateway as a whole is over its rate.
func (rf *refusals) record(r *http.Request, f refusal) {
	addr := remoteIP(r)
	now := rf.now()
	rf.mu.Lock()
	k := refusalKey{addr, f.reason}
	src := rf.sources[k]
	if src == nil {
		if len(rf.sources) >= maxRefusalSources {
			k.addr = "*"
			src = rf.sources[k]
		}
		if src == nil {
			src = &refusalSource{}
			rf.sources[k] = src
		}
	}
	if rf.window.IsZero() {
		rf.window = now
	}
	// Both buckets pay only for an event that is recorded.
	ok := src.bucket.take(now, refusalBurst, refusalEvery)
	if ok && !rf.global.take(now, globalBurst, globalEvery) {
		src.bucket.tokens++ // not spent after all
		ok = false
	}
	if !ok {
		src.suppressed++
		src.status, src.upstream = f.status, f.upstream
	}
	summaries := rf.dueLocked(now, false)
	rf.mu.Unlock()

	if ok {
		rf.write(rf.event(r, addr, f))
	}
	rf.writeAll(summaries)
}

// flush records the summaries of a window that has ended (all of them
// when force is set: the gateway is closing).
func (rf *refusals) flush(force bool) {
	rf.mu.Lock()
	summaries := rf.dueLocked(rf.now(), force)
	rf.mu.Unlock()
	rf.writeAll(summaries)
}

// dueLocked ends the summary window if it is over (or force): it returns
// the summaries of the sources that suppressed refusals — one each for the
// maxSummaries that suppressed most, one per reason for all the others —
// and forgets the sources that are back where a new one starts.
func (rf *refusals) dueLocked(now time.Time, force bool) []*store.Event {
	if rf.window.IsZero() || (!force && now.Sub(rf.window) < refusalWindow) {
		return nil
	}
	span := now.Sub(rf.window)
	var loud []refusalKey
	for k, src := range rf.sources {
		if src.suppressed > 0 {
			loud = append(loud, k)
		}
	}
	slices.SortFunc(loud, func(a, b refusalKey) int {
		if c := cmp.Compare(rf.sources[b].suppressed, rf.sources[a].suppressed); c != 0 {
			return c
		}
		return cmp.Or(cmp.Compare(a.addr, b.addr), cmp.Compare(a.reason, b.reason))
	})
	var out []*store.Event
	others := map[string]*refusalSource{} // reason → the sum of the quieter sources
	othersN := map[string]int{}
	var reasons []string
	for i, k := range loud {
		src := rf.sources[k]
		if i < maxSummaries {
			out = append(out, summary(k.addr, k.reason, src, span,
				fmt.Sprintf("%d more refusals from %s for reason %s suppressed in the last %s", src.suppressed, k.addr, k.reason, span.Round(time.Second))))
		} else {
			o := others[k.reason]
			if o == nil {
				o = &refusalSource{}
				others[k.reason] = o
				reasons = append(reasons, k.reason)
			}
			o.suppressed += src.suppressed
			o.status, o.upstream = src.status, src.upstream
			othersN[k.reason]++
		}
		src.suppressed = 0
	}
	for _, reason := range reasons {
		o := others[reason]
		out = append(out, summary("*", reason, o, span,
			fmt.Sprintf("%d more refusals from %d other sources for reason %s suppressed in the last %s", o.suppressed, othersN[reason], reason, span.Round(time.Second))))
	}
	for k, src := range rf.sources {
		if src.bucket.full(now, refusalBurst, refusalEvery) {
			delete(rf.sources, k)
		}
	}
	rf.window = now
	if len(rf.sources) == 0 {
		rf.window = time.Time{}
	}
	return out
}

// summary is the event that counts a source's suppressed refusals.
func summary(addr, reason string, src *refusalSource, span time.Duration, detail string) *store.Event {
	return &store.Event{
		Kind:       store.KindRefusal,
		Transport:  "http",
		Upstream:   src.upstream,
		DurationNS: int64(span),
		Detail:     detail,
		Refusal:    &store.Refusal{Reason: reason, Status: src.status, RemoteAddr: addr, Suppressed: src.suppressed},
	}
}

// event describes a refused request: what the client sent (bounded), who
// a known credential says it is, and never the credential.
func (rf *refusals) event(r *http.Request, addr string, f refusal) *store.Event {
	ov := f.ov
	if ov == nil && f.reason != RefusedAuth && rf.label != nil {
		ov = rf.label(r)
	}
	ev := &store.Event{
		Kind:            store.KindRefusal,
		Session:         f.session,
		Upstream:        clip(f.upstream),
		Transport:       "http",
		ProtocolVersion: clip(r.Header.Get(hdrProtocolVersion)),
		Detail:          scrubCredential(r, f.detail),
		Size:            f.size,
		Refusal: &store.Refusal{
			Reason:     f.reason,
			Status:     f.status,
			RemoteAddr: addr,
			HTTPMethod: clip(r.Method),
			Path:       clip(r.URL.Path),
			Origin:     clip(r.Header.Get("Origin")),
			Host:       clip(r.Host),
			SessionID:  clip(r.Header.Get(hdrSessionID)),
		},
	}
	if ov != nil {
		ev.Principal, ev.Agent, ev.OnBehalfOf = ov.Principal, ov.Agent, clip(ov.OnBehalfOf)
	}
	return ev
}

func (rf *refusals) writeAll(evs []*store.Event) {
	for _, ev := range evs {
		rf.write(ev)
	}
}

func (rf *refusals) write(ev *store.Event) {
	rf.log.Warn("request refused", "reason", ev.Refusal.Reason, "status", ev.Refusal.Status,
		"remote", ev.Refusal.RemoteAddr, "upstream", ev.Upstream, "detail", ev.Detail)
	if rf.rec == nil {
		return
	}
	if _, err := rf.rec.Record(ev, false); err != nil {
		rf.log.Warn("recording a refusal", "err", err)
	}
}

// scrubCredential removes the request's bearer token (and the whole
// Authorization value) from a detail — an authenticator's error might
// quote it — and withholds a detail that still holds it (a token that is
// part of the mark put in its place): it must be in no record or log.
func scrubCredential(r *http.Request, detail string) string {
	h := strings.TrimSpace(r.Header.Get("Authorization"))
	var secrets []string
	if tok, ok := identity.BearerToken(h); ok && tok != "" {
		secrets = append(secrets, tok)
	}
	if h != "" {
		secrets = append(secrets, h)
	}
	for _, sec := range secrets {
		detail = strings.ReplaceAll(detail, sec, "[credential]")
	}
	holds := func(s string) bool {
		return slices.ContainsFunc(secrets, func(sec string) bool { return strings.Contains(s, sec) })
	}
	for _, d := range []string{clip(detail), "(reason withheld: it quoted the credential)"} {
		if !holds(d) {
			return d
		}
	}
	return ""
}

// remoteIP is the client's address without its port.
func remoteIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	return clip(host)
}

// clip bounds a string the client chose, on a rune boundary.
func clip(s string) string {
	if len(s) <= maxRefusedField {
		return s
	}
	cut := maxRefusedField
	for cut > 0 && s[cut]&0xC0 == 0x80 {
		cut--
	}
	return s[:cut] + "…"
}
