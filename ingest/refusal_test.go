package ingest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/mcptrail/mcptrail/ingest/identity"
	"github.com/mcptrail/mcptrail/internal/testkit"
	"github.com/mcptrail/mcptrail/store"
)

// refusalAuth authenticates as the daemon does: two known tokens, JWTs
// verified against a key, the reasons named by ingest's errors.
func refusalAuth(keys identity.KeySet) func(r *http.Request) (*Overrides, error) {
	return func(r *http.Request) (*Overrides, error) {
		tok, ok := identity.BearerToken(r.Header.Get("Authorization"))
		switch {
		case !ok:
			return nil, ErrNoCredential
		case tok == "alice-token-0123456789":
			return &Overrides{Principal: &store.Principal{Subject: "alice", CredentialID: identity.TokenFingerprint(tok), Kind: "token", Verified: true}}, nil
		case tok == "bob-token-0123456789":
			return &Overrides{Principal: &store.Principal{Subject: "bob", CredentialID: identity.TokenFingerprint(tok), Kind: "token", Verified: true}}, nil
		case identity.LooksLikeJWT(tok):
			c, err := identity.VerifyJWT(tok, keys, time.Now())
			if err != nil {
				// An authenticator that quotes what it got: the gateway
				// must keep it out of the record all the same.
				return nil, fmt.Errorf("%w (token %s)", err, tok)
			}
			return &Overrides{Principal: &store.Principal{Subject: c.Subject, Kind: "jwt", Verified: true}}, nil
		}
		return nil, fmt.Errorf("%w %s", ErrUnknownCredential, tok)
	}
}

func refusalEvents(evs []store.Event) []store.Event {
	var out []store.Event
	for _, ev := range evs {
		if ev.Kind == store.KindRefusal {
			out = append(out, ev)
		}
	}
	return out
}

// TestHTTPRefusalsRecorded sends each kind of request the gateway refuses
// and checks that each is recorded exactly once, with its reason and
// status, what was refused, the principal of a known credential, and
// never a credential — neither in the store file nor in the log.
func TestHTTPRefusalsRecorded(t *testing.T) {
	logs := &testkit.LogBuf{}
	keys := identity.KeySet{HS256: [][]byte{[]byte("the-idp-secret-of-32-bytes-long!!")}}
	dbPath := ""
	f := newHTFixture(t, func(o *HTTPOptions) {
		o.Limits.MaxMessageBytes = 1024
		o.Authenticate = refusalAuth(keys)
		o.Logger = slog.New(slog.NewTextHandler(logs, nil))
		o.MaxSessionsPerPrincipal = 1
	})
	dbPath = f.st.Path()
	unknownToken := "unknown-SECRET-token-5f1e2d3c4b5a"
	forgedJWT := testkit.HS256JWT("not-the-idp-secret", map[string]any{"sub": "mallory", "exp": time.Now().Add(time.Hour).Unix()})
	alice := "Bearer alice-token-0123456789"
	big := `{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"echo","arguments":{"text":"` + strings.Repeat("x", 2000) + `"}}}`

	// Alice's one session (the per-principal cap is 1).
	resp, body := rawPost(t, f.url("local"), htInit, http.Header{"Authorization": {alice}})
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("alice's initialize: %d %s", resp.StatusCode, body)
	}
	aliceSID := resp.Header.Get(hdrSessionID)

	for _, tc := range []struct {
		name        string
		method      string
		url, body   string
		header      http.Header
		host        string
		status      int
		reason      string
		detail      string
		principal   string // subject recorded, "" for none
		origin, sid string // recorded as sent
		version     string
		inSession   bool // refused in the client's session: the event names it
	}{
		{name: "no token", body: htInit, status: 401, reason: RefusedAuth, detail: "no bearer token"},
		{name: "unknown token", body: htInit, header: http.Header{"Authorization": {"Bearer " + unknownToken}}, status: 401, reason: RefusedAuth, detail: "unknown token"},
		{name: "forged JWT", body: htInit, header: http.Header{"Authorization": {"Bearer " + forgedJWT}}, status: 401, reason: RefusedAuth, detail: "jwt: bad signature"},
		{name: "cross-site origin", body: htInit, header: http.Header{"Authorization": {alice}, "Origin": {"https://evil.example"}}, status: 403, reason: RefusedOrigin, principal: "alice", origin: "https://evil.example"},
		{name: "DNS rebinding host", body: htInit, header: http.Header{"Authorization": {alice}}, host: "attacker.example:80", status: 403, reason: RefusedHost, principal: "alice"},
		{name: "forged session", body: `{"jsonrpc":"2.0","id":2,"method":"tools/list"}`, header: http.Header{"Authorization": {alice}, "Mcp-Session-Id": {"FORGED-SESSION-ID"}}, status: 404, reason: RefusedSession, principal: "alice", sid: "FORGED-SESSION-ID"},
		{name: "unknown protocol version", body: htInit, header: http.Header{"Authorization": {alice}, "Mcp-Protocol-Version": {"1999-01-01"}}, status: 400, reason: RefusedVersion, principal: "alice", version: "1999-01-01"},
		{name: "too large", body: big, header: http.Header{"Authorization": {alice}, "Mcp-Protocol-Version": {modernVersion}}, status: 413, reason: RefusedSize, principal: "alice", detail: "exceeds 1024 bytes"},
		{name: "session cap", body: htInit, header: http.Header{"Authorization": {alice}}, status: 429, reason: RefusedCap, principal: "alice", detail: "max_sessions_per_principal"},
		{name: "method", method: http.MethodPut, body: htInit, header: http.Header{"Authorization": {alice}}, status: 405, reason: RefusedRequest, principal: "alice"},
		{name: "GET without Accept", method: http.MethodGet, header: http.Header{"Authorization": {alice}, "Mcp-Session-Id": {aliceSID}, "Accept": {"application/json"}},
			status: 400, reason: RefusedRequest, principal: "alice", sid: aliceSID, detail: "Accept"},
		{name: "malformed Last-Event-ID", method: http.MethodGet, header: http.Header{"Authorization": {alice}, "Mcp-Session-Id": {aliceSID}, "Last-Event-Id": {"garbage"}},
			status: 400, reason: RefusedRequest, principal: "alice", sid: aliceSID, detail: "Last-Event-ID", inSession: true},
		{name: "DELETE without session", method: http.MethodDelete, header: http.Header{"Authorization": {alice}}, status: 400, reason: RefusedRequest, principal: "alice", detail: "DELETE without"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := len(refusalEvents(f.events(t)))
			method := tc.method
			if method == "" {
				method = http.MethodPost
			}
			req, _ := http.NewRequest(method, f.url("local"), strings.NewReader(tc.body))
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("Accept", "application/json, text/event-stream")
			for k, v := range tc.header {
				req.Header[k] = v
			}
			if tc.host != "" {
				req.Host = tc.host
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			b := new(bytes.Buffer)
			b.ReadFrom(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tc.status {
				t.Fatalf("status %d, want %d (%s)", resp.StatusCode, tc.status, b)
			}
			if tc.status == 429 {
				var rpc struct {
					Error *struct{ Code int } `json:"error"`
				}
				if resp.Header.Get("Retry-After") == "" || json.Unmarshal(b.Bytes(), &rpc) != nil || rpc.Error == nil {
					t.Errorf("429 without Retry-After or a JSON-RPC error: %v %s", resp.Header, b)
				}
			}
			refs := refusalEvents(f.events(t))[before:]
			if len(refs) != 1 {
				t.Fatalf("%d refusal events, want 1: %+v", len(refs), refs)
			}
			ev := refs[0]
			r := ev.Refusal
			if r == nil || r.Reason != tc.reason || r.Status != tc.status {
				t.Fatalf("refusal %+v, want reason %s status %d", r, tc.reason, tc.status)
			}
			if !strings.Contains(ev.Detail, tc.detail) {
				t.Errorf("detail %q, want it to say %q", ev.Detail, tc.detail)
			}
			if r.RemoteAddr != "127.0.0.1" || r.HTTPMethod != method || r.Path != "/mcp/local" || ev.Upstream != "local" || ev.Transport != "http" {
				t.Errorf("refusal source %+v upstream %q transport %q", r, ev.Upstream, ev.Transport)
			}
			if r.Origin != tc.origin || r.SessionID != tc.sid || ev.ProtocolVersion != tc.version && tc.reason == RefusedVersion {
				t.Errorf("recorded origin %q session id %q version %q, want %q %q %q", r.Origin, r.SessionID, ev.ProtocolVersion, tc.origin, tc.sid, tc.version)
			}
			if (ev.Session != "") != tc.inSession {
				t.Errorf("session %q, want one: %v", ev.Session, tc.inSession)
			}
			if tc.host != "" && r.Host != tc.host {
				t.Errorf("recorded host %q, want %q", r.Host, tc.host)
			}
			got := ""
			if ev.Principal != nil {
				got = ev.Principal.Subject
			}
			if got != tc.principal {
				t.Errorf("principal %q, want %q", got, tc.principal)
			}
		})
	}

	// Nothing of a refused credential is anywhere: not in the events, not
	// in the store file, not in the log.
	all, _ := json.Marshal(f.events(t))
	f.srv.Close()
	f.gw.Close()
	if err := f.st.Close(); err != nil {
		t.Fatal(err)
	}
	// Every file of the store: the database and whatever log beside it.
	var file []byte
	entries, err := os.ReadDir(filepath.Dir(dbPath))
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join(filepath.Dir(dbPath), e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		file = append(file, b...)
	}
	if len(file) == 0 {
		t.Fatal("no store file")
	}
	jwtSig := forgedJWT[strings.LastIndexByte(forgedJWT, '.')+1:]
	for _, secret := range []string{unknownToken, forgedJWT, jwtSig, "alice-token-0123456789"} {
		if bytes.Contains(all, []byte(secret)) {
			t.Errorf("the record holds the credential %q", secret)
		}
		if bytes.Contains(file, []byte(secret)) {
			t.Errorf("the store file holds the credential %q", secret)
		}
		if strings.Contains(logs.String(), secret) {
			t.Errorf("the log holds the credential %q", secret)
		}
	}
	if n := strings.Count(logs.String(), "request refused"); n != 13 {
		t.Errorf("%d refusals logged, want 13", n)
	}
}

// fakeClock is a clock tests move by hand.
type fakeClock struct{ t time.Time }

func (c *fakeClock) now() time.Time      { return c.t }
func (c *fakeClock) add(d time.Duration) { c.t = c.t.Add(d) }
func newFakeClock() *fakeClock           { return &fakeClock{t: time.Date(2026, 7, 28, 12, 0, 0, 0, time.UTC)} }
func (r *sliceRecorder) events() []store.Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]store.Event(nil), r.evs...)
}

// sliceRecorder keeps what it is given.
type sliceRecorder struct {
	mu  sync.Mutex
	evs []store.Event
}

func (r *sliceRecorder) Record(ev *store.Event, _ bool) (uint64, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.evs = append(r.evs, *ev)
	return uint64(len(r.evs)), nil
}

func refusedRequest(addr string) *http.Request {
	r := httptest.NewRequest(http.MethodPost, "/mcp/local", nil)
	r.RemoteAddr = addr
	r.Header.Set("Origin", "https://evil.example")
	return r
}

// count splits refusal events into those recorded one by one and the sum
// their summaries count.
func count(evs []store.Event) (single int, suppressed int64, summaries int) {
	for _, ev := range evs {
		switch {
		case ev.Kind != store.KindRefusal:
		case ev.Refusal.Suppressed > 0:
			summaries++
			suppressed += ev.Refusal.Suppressed
		default:
			single++
		}
	}
	return
}

// TestRefusalFlood: 10,000 refusals from one source at once are 10 events
// and one summary counting the other 9,990; spread over time, the events
// stay within the buckets' refill, and the summaries count exactly what
// was not recorded.
func TestRefusalFlood(t *testing.T) {
	t.Run("at once", func(t *testing.T) {
		rec, clk := &sliceRecorder{}, newFakeClock()
		rf := newRefusals(rec, slog.New(slog.NewTextHandler(&testkit.LogBuf{}, nil)))
		rf.now = clk.now
		for range 10_000 {
			rf.record(refusedRequest("203.0.113.7:4444"), refusal{status: 403, reason: RefusedOrigin, upstream: "local"})
		}
		rf.flush(false) // the window is not over: no summary yet
		if single, sup, sums := count(rec.events()); single != refusalBurst || sup != 0 || sums != 0 {
			t.Fatalf("before the window ends: %d single, %d suppressed in %d summaries; want %d, 0, 0", single, sup, sums, refusalBurst)
		}
		clk.add(refusalWindow)
		rf.flush(false)
		evs := rec.events()
		single, sup, sums := count(evs)
		if single != refusalBurst || sums != 1 || sup != 10_000-refusalBurst {
			t.Fatalf("%d single, %d suppressed in %d summaries; want %d, %d in 1", single, sup, sums, refusalBurst, 10_000-refusalBurst)
		}
		last := evs[len(evs)-1]
		if want := "9990 more refusals from 203.0.113.7 for reason origin suppressed in the last 1m0s"; last.Detail != want ||
			last.Refusal.RemoteAddr != "203.0.113.7" || last.Refusal.Status != 403 || last.DurationNS != int64(refusalWindow) {
			t.Errorf("summary %q %+v, want %q", last.Detail, last.Refusal, want)
		}
		// The source is quiet again: forgotten, and a new refusal is
		// recorded at once.
		clk.add(refusalEvery * refusalBurst)
		rf.flush(true)
		rf.record(refusedRequest("203.0.113.7:4444"), refusal{status: 403, reason: RefusedOrigin})
		if single, _, _ := count(rec.events()); single != refusalBurst+1 {
			t.Errorf("after the flood: %d single events, want %d", single, refusalBurst+1)
		}
	})

	t.Run("over time, many sources", func(t *testing.T) {
		rec, clk := &sliceRecorder{}, newFakeClock()
		rf := newRefusals(rec, slog.New(slog.NewTextHandler(&testkit.LogBuf{}, nil)))
		rf.now = clk.now
		const n = 10_000
		const step = 10 * time.Millisecond // 100 s in all
		for i := range n {
			// 2,000 sources: more than the tracked maximum.
			rf.record(refusedRequest(fmt.Sprintf("10.0.%d.%d:1", i%2000/250, i%2000%250)), refusal{status: 401, reason: RefusedAuth})
			clk.add(step)
		}
		rf.flush(true)
		single, sup, sums := count(rec.events())
		if int64(single)+sup != n {
			t.Errorf("%d recorded + %d suppressed = %d, want %d", single, sup, int64(single)+sup, n)
		}
		// The global bucket bounds single events: its burst plus one a
		// second; summaries: one per tracked source (and "*") per window.
		elapsed := time.Duration(n) * step
		if maxSingle := globalBurst + int(elapsed/globalEvery); single > maxSingle {
			t.Errorf("%d single events, want at most %d", single, maxSingle)
		}
		// Summaries: maxSummaries sources and one for the rest (one reason
		// here) per window.
		if windows := int(elapsed/refusalWindow) + 1; sums > windows*(maxSummaries+1) {
			t.Errorf("%d summaries, want at most %d", sums, windows*(maxSummaries+1))
		}
		if len(rf.sources) > maxRefusalSources+1 {
			t.Errorf("%d sources tracked, want at most %d", len(rf.sources), maxRefusalSources+1)
		}
		t.Logf("10,000 refusals from 2,000 sources over %s: %d events, %d summaries", elapsed, single, sums)
	})
}

// TestHTTPRefusalFloodBounded floods the gateway itself with 10,000
// cross-site requests: the record gets a bounded number of events, and
// the summary written at Close counts the rest exactly.
func TestHTTPRefusalFloodBounded(t *testing.T) {
	f := newHTFixture(t, nil)
	clk := newFakeClock()
	var mu sync.Mutex
	f.gw.refusals.now = func() time.Time { mu.Lock(); defer mu.Unlock(); return clk.now() }
	hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 8}}
	var wg sync.WaitGroup
	var failed sync.Once
	for w := range 8 {
		wg.Go(func() {
			for range 10_000 / 8 {
				req, _ := http.NewRequest(http.MethodPost, f.url("local"), strings.NewReader(htInit))
				req.Header.Set("Origin", fmt.Sprintf("https://evil-%d.example", w))
				resp, err := hc.Do(req)
				if err != nil || resp.StatusCode != http.StatusForbidden {
					failed.Do(func() { t.Errorf("flood request: %v %v", err, resp) })
					if err != nil {
						return
					}
				}
				resp.Body.Close()
			}
		})
	}
	wg.Wait()
	f.srv.Close()
	f.gw.Close() // writes the summary
	single, sup, sums := count(f.events(t))
	if single != refusalBurst || sums != 1 || sup != 10_000-refusalBurst {
		t.Errorf("%d single events, %d summaries counting %d; want %d, 1, %d", single, sums, sup, refusalBurst, 10_000-refusalBurst)
	}
}

// TestSessionCaps: the N+1th initialize is refused with 429 and recorded;
// once a session is deleted a new one is accepted; a principal's cap does
// not touch another principal.
func TestSessionCaps(t *testing.T) {
	initialize := func(t *testing.T, f *htFixture, auth string) (*http.Response, []byte) {
		t.Helper()
		h := http.Header{}
		if auth != "" {
			h.Set("Authorization", "Bearer "+auth)
		}
		return rawPost(t, f.url("local"), htInit, h)
	}
	deleteSession := func(t *testing.T, f *htFixture, sid, auth string) {
		t.Helper()
		req, _ := http.NewRequest(http.MethodDelete, f.url("local"), nil)
		req.Header.Set(hdrSessionID, sid)
		if auth != "" {
			req.Header.Set("Authorization", "Bearer "+auth)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusNoContent {
			t.Fatalf("DELETE: %d", resp.StatusCode)
		}
	}
	capRefusals := func(f *htFixture) int {
		n := 0
		for _, ev := range refusalEvents(f.events(t)) {
			if ev.Refusal.Reason == RefusedCap && ev.Refusal.Status == 429 {
				n++
			}
		}
		return n
	}

	t.Run("total", func(t *testing.T) {
		f := newHTFixture(t, func(o *HTTPOptions) { o.MaxSessions = 3 })
		var sids []string
		for i := range 3 {
			resp, body := initialize(t, f, "")
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("initialize %d: %d %s", i, resp.StatusCode, body)
			}
			sids = append(sids, resp.Header.Get(hdrSessionID))
		}
		resp, body := initialize(t, f, "")
		var rpc struct {
			ID    int `json:"id"`
			Error *struct {
				Code    int    `json:"code"`
				Message string `json:"message"`
			} `json:"error"`
		}
		if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") == "" ||
			json.Unmarshal(body, &rpc) != nil || rpc.Error == nil || rpc.ID != 1 || !strings.Contains(rpc.Error.Message, "max_sessions") {
			t.Fatalf("4th initialize: %d Retry-After %q %s, want 429 with a JSON-RPC error for id 1", resp.StatusCode, resp.Header.Get("Retry-After"), body)
		}
		if n := capRefusals(f); n != 1 {
			t.Errorf("%d cap refusals recorded, want 1", n)
		}
		if n := f.gw.Sessions(); n != 3 {
			t.Errorf("%d sessions open, want 3", n)
		}
		deleteSession(t, f, sids[0], "")
		if resp, body := initialize(t, f, ""); resp.StatusCode != http.StatusOK {
			t.Fatalf("initialize after a DELETE: %d %s", resp.StatusCode, body)
		}
	})

	t.Run("per principal", func(t *testing.T) {
		f := newHTFixture(t, func(o *HTTPOptions) {
			o.MaxSessionsPerPrincipal = 2
			o.Authenticate = refusalAuth(identity.KeySet{})
		})
		alice, bob := "alice-token-0123456789", "bob-token-0123456789"
		var sids []string
		for range 2 {
			resp, body := initialize(t, f, alice)
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("alice: %d %s", resp.StatusCode, body)
			}
			sids = append(sids, resp.Header.Get(hdrSessionID))
		}
		if resp, _ := initialize(t, f, alice); resp.StatusCode != http.StatusTooManyRequests {
			t.Fatalf("alice's 3rd session: %d, want 429", resp.StatusCode)
		}
		for range 2 {
			if resp, body := initialize(t, f, bob); resp.StatusCode != http.StatusOK {
				t.Fatalf("bob, under his own cap: %d %s", resp.StatusCode, body)
			}
		}
		if resp, _ := initialize(t, f, bob); resp.StatusCode != http.StatusTooManyRequests {
			t.Fatalf("bob's 3rd session: %d, want 429", resp.StatusCode)
		}
		refs := refusalEvents(f.events(t))
		if len(refs) != 2 || refs[0].Principal.Subject != "alice" || refs[1].Principal.Subject != "bob" {
			t.Fatalf("cap refusals %+v, want alice's then bob's", refs)
		}
		// Bob cannot free Alice's slot; Alice can.
		req, _ := http.NewRequest(http.MethodDelete, f.url("local"), nil)
		req.Header.Set(hdrSessionID, sids[0])
		req.Header.Set("Authorization", "Bearer "+bob)
		if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != http.StatusNotFound {
			t.Fatalf("bob deleting alice's session: %v %v", err, resp)
		}
		deleteSession(t, f, sids[0], alice)
		if resp, body := initialize(t, f, alice); resp.StatusCode != http.StatusOK {
			t.Fatalf("alice after a DELETE: %d %s", resp.StatusCode, body)
		}
	})

	t.Run("sessionless clients count", func(t *testing.T) {
		f := newHTFixture(t, func(o *HTTPOptions) { o.MaxSessions = 1 })
		if resp, body := initialize(t, f, ""); resp.StatusCode != http.StatusOK {
			t.Fatalf("initialize: %d %s", resp.StatusCode, body)
		}
		resp, body := rawPost(t, f.url("local"), `{"jsonrpc":"2.0","id":7,"method":"tools/list","params":{"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientInfo":{"name":"c","version":"1"}}}}`,
			http.Header{"Mcp-Protocol-Version": {modernVersion}})
		if resp.StatusCode != http.StatusTooManyRequests || !bytes.Contains(body, []byte(`"id":7`)) {
			t.Fatalf("a sessionless request over the cap: %d %s, want 429 answering id 7", resp.StatusCode, body)
		}
	})
}

func TestSessionCapsDefaults(t *testing.T) {
	c := newSessionCaps(0, 0)
	if c.total != DefaultMaxSessions || c.perPrincipal != DefaultMaxSessionsPerPrincipal {
		t.Fatalf("defaults %d/%d", c.total, c.perPrincipal)
	}
	const alice = "token\x00\x00\x00alice"
	var releases []func()
	for range DefaultMaxSessionsPerPrincipal {
		rel, err := c.take(alice)
		if err != nil {
			t.Fatal(err)
		}
		releases = append(releases, rel)
	}
	var ce *capError
	if _, err := c.take(alice); !errors.As(err, &ce) || !ce.perPrincipal {
		t.Fatalf("over the per-principal cap: %v", err)
	}
	releases[0]()
	releases[0]() // twice is once
	if _, err := c.take(alice); err != nil {
		t.Fatalf("after a release: %v", err)
	}
	if _, err := c.take(alice); err == nil {
		t.Fatal("a double release gave two slots back")
	}
	// Anonymous (loopback) clients cannot be told apart: they meet the
	// total cap only.
	for i := range DefaultMaxSessions - DefaultMaxSessionsPerPrincipal {
		if _, err := c.take(""); err != nil {
			t.Fatalf("anonymous session %d: %v", i, err)
		}
	}
	if _, err := c.take(""); !errors.As(err, &ce) || ce.perPrincipal {
		t.Fatalf("over the total cap: %v", err)
	}
}

// FuzzRefusalEvent: whatever a client puts in its headers, a refusal's
// fields stay bounded and valid UTF-8 when cut, and its credential is in
// not in the reason recorded.
func FuzzRefusalEvent(f *testing.F) {
	f.Add("https://evil.example", "FORGED", "2025-06-18", "Bearer tok-123456", "unknown token tok-123456")
	f.Add(strings.Repeat("é", 300), strings.Repeat("x", 1000), "\x1b]52;c;AAAA\x07", "Bearer  a b ", "quoted: Bearer  a b")
	f.Add("", "", "", "bearer Zm9vYmFy", "jwt: header: Zm9vYmFy")
	f.Add("", "", "", "Bearer cred", "unknown token cred")
	f.Fuzz(func(t *testing.T, origin, sid, version, auth, detail string) {
		r := httptest.NewRequest(http.MethodPost, "/mcp/local", nil)
		r.RemoteAddr = "192.0.2.1:1234"
		for k, v := range map[string]string{"Origin": origin, hdrSessionID: sid, hdrProtocolVersion: version, "Authorization": auth} {
			r.Header[k] = []string{v}
		}
		rf := newRefusals(nil, slog.New(slog.NewTextHandler(&testkit.LogBuf{}, nil)))
		ev := rf.event(r, remoteIP(r), refusal{status: 401, reason: RefusedAuth, detail: detail})
		for name, v := range map[string]string{"origin": ev.Refusal.Origin, "session id": ev.Refusal.SessionID, "version": ev.ProtocolVersion, "detail": ev.Detail} {
			if len(v) > maxRefusedField+len("…") {
				t.Errorf("%s: %d bytes", name, len(v))
			}
		}
		if utf8.ValidString(origin) && !utf8.ValidString(ev.Refusal.Origin) {
			t.Errorf("a valid origin cut into invalid UTF-8: %q", ev.Refusal.Origin)
		}
		if tok, ok := identity.BearerToken(auth); ok && strings.Contains(ev.Detail, tok) {
			t.Errorf("the token %q is in the detail %q", tok, ev.Detail)
		}
	})
}

// TestNoRefusalsInNormalUse: real clients of both eras, on every kind of
// upstream, connecting, calling and closing, cause no refusal: the record
// of refusals is not noise an investigator learns to ignore.
func TestNoRefusalsInNormalUse(t *testing.T) {
	f := newHTFixture(t, nil)
	for _, up := range []string{"local", "web", "webless"} {
		for _, v := range []string{era2025, ""} {
			c := f.connect(t, up, v, nil)
			c.call(t, "echo", map[string]any{"text": "x"}, nil)
			c.cs.Close()
		}
	}
	for _, ev := range refusalEvents(f.events(t)) {
		t.Errorf("refusal in normal use: %+v %s", ev.Refusal, ev.Detail)
	}
}

// TestForgedSessionIDsOnHTTPUpstream: an HTTP upstream judges session ids
// the gateway has not seen, and each costs a session in the record; a
// client sending forged ids gets that for its first 32 (then one every 10
// seconds), and beyond, the gateway's own 404, recorded as a refusal at
// the refusals' rate: forged ids cannot flood the record.
func TestForgedSessionIDsOnHTTPUpstream(t *testing.T) {
	f := newHTFixture(t, nil)
	clk := newFakeClock()
	var mu sync.Mutex
	adopt := f.gw.upstreams["web"].(*proxyUpstream).adopt
	adopt.mu.Lock()
	adopt.now = func() time.Time { mu.Lock(); defer mu.Unlock(); return clk.now() }
	adopt.mu.Unlock()
	forge := func(i int) int {
		resp, _ := rawPost(t, f.url("web"), `{"jsonrpc":"2.0","id":2,"method":"tools/list"}`,
			http.Header{"Mcp-Session-Id": {fmt.Sprintf("FORGED-%d", i)}, "Mcp-Protocol-Version": {era2025}})
		return resp.StatusCode
	}
	for i := range 40 {
		if s := forge(i); s != http.StatusNotFound {
			t.Fatalf("forged id %d: %d, want 404", i, s)
		}
	}
	starts := func() int {
		n := 0
		for _, ev := range f.events(t) {
			if ev.Kind == store.KindSessionStart && ev.Upstream == "web" {
				n++
			}
		}
		return n
	}
	refused := 0
	for _, ev := range refusalEvents(f.events(t)) {
		if ev.Refusal.Reason == RefusedSession && ev.Upstream == "web" {
			refused++
		}
	}
	if n := starts(); n != adoptBurst || refused != 40-adoptBurst {
		t.Fatalf("%d sessions and %d refusals for 40 forged ids, want %d and %d", n, refused, adoptBurst, 40-adoptBurst)
	}
	mu.Lock()
	clk.add(adoptEvery)
	mu.Unlock()
	forge(100)
	if n := starts(); n != adoptBurst+1 {
		t.Errorf("%d sessions after 10 seconds, want %d", n, adoptBurst+1)
	}
}
