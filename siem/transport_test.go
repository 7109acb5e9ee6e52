package siem

import (
	"bufio"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mcptrail/mcptrail/siem/siemtest"
)

// hecReceiver is a Splunk HTTP Event Collector stand-in that checks the
// documented wire format of every request it gets.
type hecReceiver struct {
	t     *testing.T
	token string

	mu        sync.Mutex
	seqs      []uint64
	requests  int
	maxBatch  int
	busyFirst int    // answer this many first requests 503
	ack       bool   // indexer acknowledgment on
	channel   string // the channel seen
	nextAck   int64
	lostAck   map[int64]bool // ackIds never acknowledged
	polls     map[int64]int
	pending   map[int64][]uint64 // ackId → its events, counted once acknowledged
	problems  []string
	retryHint bool
}

func (h *hecReceiver) problem(format string, a ...any) {
	h.problems = append(h.problems, fmt.Sprintf(format, a...))
}

func (h *hecReceiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if r.Method != http.MethodPost {
		h.problem("method %s", r.Method)
	}
	if got := r.Header.Get("Authorization"); got != "Splunk "+h.token {
		h.problem("Authorization %q", got)
		w.WriteHeader(http.StatusUnauthorized)
		io.WriteString(w, `{"text":"Invalid token","code":4}`)
		return
	}
	ch := r.Header.Get("X-Splunk-Request-Channel")
	if h.ack {
		if ch == "" {
			h.problem("no X-Splunk-Request-Channel with ack on")
			w.WriteHeader(http.StatusBadRequest)
			io.WriteString(w, `{"text":"Data channel is missing","code":10}`)
			return
		}
		if h.channel == "" {
			h.channel = ch
		} else if ch != h.channel {
			h.problem("channel changed from %s to %s", h.channel, ch)
		}
	} else if ch != "" {
		h.problem("channel header without ack")
	}
	body, _ := io.ReadAll(r.Body)
	switch r.URL.Path {
	case "/services/collector/ack":
		if !h.ack || r.URL.Query().Get("channel") != h.channel {
			h.problem("ack query %s", r.URL)
		}
		var q struct {
			Acks []int64 `json:"acks"`
		}
		if err := json.Unmarshal(body, &q); err != nil {
			h.problem("ack body %q", body)
		}
		out := map[string]bool{}
		for _, id := range q.Acks {
			h.polls[id]++
			// Indexed on the second poll, unless lost.
			done := h.polls[id] >= 2 && !h.lostAck[id]
			out[strconv.FormatInt(id, 10)] = done
			if done && h.pending[id] != nil {
				h.seqs = append(h.seqs, h.pending[id]...)
				delete(h.pending, id)
			}
		}
		json.NewEncoder(w).Encode(map[string]any{"acks": out})
		return
	case "/services/collector/event":
	default:
		h.problem("path %s", r.URL.Path)
	}
	if ct := r.Header.Get("Content-Type"); ct != "application/json" {
		h.problem("Content-Type %q", ct)
	}
	h.requests++
	if h.requests <= h.busyFirst {
		if h.requests == 1 && h.retryHint {
			w.Header().Set("Retry-After", "1")
		}
		w.WriteHeader(http.StatusServiceUnavailable)
		io.WriteString(w, `{"text":"Server is busy","code":9}`)
		return
	}
	// Envelopes concatenated: no array, no commas.
	if t := strings.TrimSpace(string(body)); !strings.HasPrefix(t, "{") || strings.HasPrefix(t, "[") {
		h.problem("body does not start with an envelope: %.40q", t)
	}
	dec := json.NewDecoder(strings.NewReader(string(body)))
	dec.UseNumber()
	var batch []uint64
	for {
		var env map[string]json.RawMessage
		err := dec.Decode(&env)
		if err == io.EOF {
			break
		}
		if err != nil {
			h.problem("envelope: %v", err)
			break
		}
		for k := range env {
			switch k {
			case "time", "host", "source", "sourcetype", "index", "event", "fields":
			default:
				h.problem("unknown envelope key %q", k)
			}
		}
		var tm float64
		if err := json.Unmarshal(env["time"], &tm); err != nil || tm < 1e9 {
			h.problem("time %s: want epoch seconds", env["time"])
		}
		for _, k := range []string{"host", "source", "sourcetype"} {
			var s string
			if json.Unmarshal(env[k], &s) != nil || s == "" {
				h.problem("%s %s", k, env[k])
			}
		}
		var fields map[string]string
		if err := json.Unmarshal(env["fields"], &fields); err != nil {
			h.problem("fields must map to strings: %s", env["fields"])
		}
		var event map[string]any
		if err := json.Unmarshal(env["event"], &event); err != nil {
			h.problem("event is not a JSON object: %.60s", env["event"])
		}
		seq, _ := strconv.ParseUint(fields["mcptrail_seq"], 10, 64)
		if ms, ok := siemtest.At(event, "metadata.sequence").(float64); !ok || uint64(ms) != seq {
			h.problem("event %v: metadata.sequence does not match fields", seq)
		}
		batch = append(batch, seq)
	}
	h.maxBatch = max(h.maxBatch, len(batch))
	if h.ack {
		id := h.nextAck
		h.nextAck++
		h.pending[id] = batch
		fmt.Fprintf(w, `{"text":"Success","code":0,"ackId":%d}`, id)
		return
	}
	h.seqs = append(h.seqs, batch...)
	io.WriteString(w, `{"text":"Success","code":0}`)
}

func newHEC(t *testing.T) (*hecReceiver, *httptest.Server) {
	h := &hecReceiver{t: t, token: "11111111-2222-3333-4444-555555555555", lostAck: map[int64]bool{}, polls: map[int64]int{}, pending: map[int64][]uint64{}}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return h, srv
}

func (h *hecReceiver) got() []uint64 {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]uint64(nil), h.seqs...)
}

func (h *hecReceiver) check(t *testing.T) {
	t.Helper()
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, p := range h.problems {
		t.Error("HEC wire format: " + p)
	}
}

func TestHECBatchesAndRetriesBusy(t *testing.T) {
	h, srv := newHEC(t)
	h.busyFirst, h.retryHint = 3, true
	st := openStore(t, "strict")
	appendCalls(t, st, 150) // 300 events
	u := strings.Replace(srv.URL, "http://", "hec+http://"+h.token+"@", 1) + "?format=ocsf&batch=100"
	f := newTestForwarder(t, st, u, nil)
	start := time.Now()
	f.Start()
	waitFor(t, "HEC delivery", 20*time.Second, func() bool { return f.Status().Cursor == 300 })
	f.Stop(time.Second)
	h.check(t)
	checkAtLeastOnceInOrder(t, h.got(), 300)
	if len(h.got()) != 300 {
		t.Errorf("%d events delivered for 300: a 503 must not have delivered any", len(h.got()))
	}
	if h.maxBatch < 50 {
		t.Errorf("largest batch %d events: envelopes were not batched", h.maxBatch)
	}
	if time.Since(start) < time.Second {
		t.Errorf("delivered in %v despite Retry-After: 1", time.Since(start))
	}
	if s := f.Status(); s.Failures < 3 || !strings.Contains(s.LastError, "503") {
		t.Errorf("status %+v: want the 503s counted", s)
	}
}

func TestHECSmallMaxBytesSplitsRequests(t *testing.T) {
	h, srv := newHEC(t)
	st := openStore(t, "strict")
	appendCalls(t, st, 20)
	u := strings.Replace(srv.URL, "http://", "hec+http://"+h.token+"@", 1) + "?format=ocsf&max_bytes=4KB"
	f := newTestForwarder(t, st, u, nil)
	f.Start()
	waitFor(t, "HEC delivery", 20*time.Second, func() bool { return f.Status().Cursor == 40 })
	f.Stop(time.Second)
	h.check(t)
	checkAtLeastOnceInOrder(t, h.got(), 40)
	if h.requests < 10 {
		t.Errorf("%d requests for 40 events of ~1KB under max_bytes=4KB", h.requests)
	}
}

func TestHECIndexerAcknowledgment(t *testing.T) {
	h, srv := newHEC(t)
	h.ack = true
	h.lostAck[1] = true // the second batch is never indexed: it must be sent again
	st := openStore(t, "strict")
	appendCalls(t, st, 50)
	u := strings.Replace(srv.URL, "http://", "hec+http://"+h.token+"@", 1) + "?format=ocsf&batch=25&ack=1&ack_timeout=300ms"
	f := newTestForwarder(t, st, u, nil)
	f.Start()
	waitFor(t, "acknowledged delivery", 20*time.Second, func() bool { return f.Status().Cursor == 100 })
	f.Stop(time.Second)
	h.check(t)
	checkAtLeastOnceInOrder(t, h.got(), 100)
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.channel == "" || len(h.polls) < 4 {
		t.Errorf("channel %q, %d ackIds polled", h.channel, len(h.polls))
	}
	if f.Status().Failures == 0 {
		t.Error("the lost ack did not count as a failure")
	}
}

func TestWebhookArrayAndLines(t *testing.T) {
	for _, mode := range []string{"array", "lines"} {
		t.Run(mode, func(t *testing.T) {
			var mu sync.Mutex
			var seqs []uint64
			var problems []string
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				mu.Lock()
				defer mu.Unlock()
				if r.Header.Get("Authorization") != "Bearer hooktoken" {
					problems = append(problems, "auth "+r.Header.Get("Authorization"))
				}
				if r.URL.Path != "/in" || r.URL.Query().Get("tenant") != "t1" || r.URL.Query().Get("format") != "" {
					problems = append(problems, "url "+r.URL.String())
				}
				body, _ := io.ReadAll(r.Body)
				var recs []map[string]any
				switch mode {
				case "array":
					if r.Header.Get("Content-Type") != "application/json" {
						problems = append(problems, "content type "+r.Header.Get("Content-Type"))
					}
					if err := json.Unmarshal(body, &recs); err != nil {
						problems = append(problems, "array: "+err.Error())
					}
				case "lines":
					if r.Header.Get("Content-Type") != "application/x-ndjson" {
						problems = append(problems, "content type "+r.Header.Get("Content-Type"))
					}
					for _, l := range strings.Split(strings.TrimSuffix(string(body), "\n"), "\n") {
						var m map[string]any
						if err := json.Unmarshal([]byte(l), &m); err != nil {
							problems = append(problems, "line: "+err.Error())
						}
						recs = append(recs, m)
					}
				}
				for _, m := range recs {
					seqs = append(seqs, uint64(siemtest.At(m, "event.sequence").(float64)))
				}
			}))
			defer srv.Close()
			st := openStore(t, "strict")
			appendCalls(t, st, 30)
			u := strings.Replace(srv.URL, "http://", "webhook+http://hooktoken@", 1) + "/in?tenant=t1&format=ecs&mode=" + mode + "&batch=16"
			f := newTestForwarder(t, st, u, nil)
			f.Start()
			waitFor(t, "webhook delivery", 10*time.Second, func() bool { return f.Status().Cursor == 60 })
			f.Stop(time.Second)
			mu.Lock()
			defer mu.Unlock()
			for _, p := range problems {
				t.Error(p)
			}
			checkAtLeastOnceInOrder(t, seqs, 60)
		})
	}
}

// syslogReceiver is a TCP (or TLS) syslog receiver that reads octet-counted
// frames and can drop its connection after a number of messages.
type syslogReceiver struct {
	ln       net.Listener
	mu       sync.Mutex
	msgs     []string
	dropOnce map[int]bool // drop the connection once this many messages are in
	conns    int
}

func newSyslogReceiver(t *testing.T, tlsConf *tls.Config) *syslogReceiver {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if tlsConf != nil {
		ln = tls.NewListener(ln, tlsConf)
	}
	r := &syslogReceiver{ln: ln, dropOnce: map[int]bool{}}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			r.mu.Lock()
			r.conns++
			r.mu.Unlock()
			go r.serve(c)
		}
	}()
	return r
}

func (r *syslogReceiver) serve(c net.Conn) {
	defer c.Close()
	br := bufio.NewReader(c)
	for {
		lenStr, err := br.ReadString(' ')
		if err != nil {
			return
		}
		n, err := strconv.Atoi(strings.TrimSuffix(lenStr, " "))
		if err != nil || n <= 0 {
			return
		}
		buf := make([]byte, n)
		if _, err := io.ReadFull(br, buf); err != nil {
			return
		}
		r.mu.Lock()
		r.msgs = append(r.msgs, string(buf))
		drop := r.dropOnce[len(r.msgs)]
		delete(r.dropOnce, len(r.msgs))
		r.mu.Unlock()
		if drop {
			// An abrupt end, unread data and all.
			if tc, ok := c.(*net.TCPConn); ok {
				tc.SetLinger(0)
			}
			return
		}
	}
}

func (r *syslogReceiver) messages() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.msgs...)
}

// parseSyslogSeqs checks that each message is RFC 5424 with a CEF or JSON
// MSG and returns the seqs in arrival order.
func parseSyslogSeqs(t *testing.T, msgs []string, format Format) []uint64 {
	t.Helper()
	var seqs []uint64
	for _, raw := range msgs {
		m, err := siemtest.ParseRFC5424(raw)
		if err != nil {
			t.Fatalf("not RFC 5424: %v\n%s", err, raw)
		}
		seq, err := strconv.ParseUint(m.SD[DefaultSDID]["seq"], 10, 64)
		if err != nil {
			t.Fatalf("SD %v", m.SD)
		}
		switch format {
		case FormatCEF:
			c, err := siemtest.ParseCEF(m.Msg)
			if err != nil {
				t.Fatalf("MSG is not CEF: %v\n%s", err, m.Msg)
			}
			if c.Ext["cn1"] != strconv.FormatUint(seq, 10) {
				t.Fatalf("CEF cn1 %q, SD seq %d", c.Ext["cn1"], seq)
			}
		default:
			var v map[string]any
			if err := json.Unmarshal([]byte(m.Msg), &v); err != nil {
				t.Fatalf("MSG is not JSON: %v\n%s", err, m.Msg)
			}
		}
		seqs = append(seqs, seq)
	}
	return seqs
}

func TestSyslogTCPReplaysAfterDisconnect(t *testing.T) {
	r := newSyslogReceiver(t, nil)
	r.dropOnce[40], r.dropOnce[130] = true, true
	st := openStore(t, "strict")
	appendCalls(t, st, 50)
	f := newTestForwarder(t, st, "syslog+tcp://"+r.ln.Addr().String()+"?format=cef&settle=200ms&batch=20", nil)
	f.Start()
	appendCalls(t, st, 50)
	waitFor(t, "syslog delivery", 20*time.Second, func() bool { return f.Status().Cursor == 200 })
	f.Stop(time.Second)
	seqs := parseSyslogSeqs(t, r.messages(), FormatCEF)
	checkAtLeastOnceInOrder(t, seqs, 200)
	if r.conns < 3 {
		t.Errorf("%d connections: the drops did not happen", r.conns)
	}
}

func TestSyslogTLS(t *testing.T) {
	serverConf, caFile := testTLS(t)
	r := newSyslogReceiver(t, serverConf)
	st := openStore(t, "strict")
	appendCalls(t, st, 30)
	u := fmt.Sprintf("syslog+tls://%s?format=json&settle=50ms&ca=%s", r.ln.Addr(), caFile)
	f := newTestForwarder(t, st, u, nil)
	f.Start()
	waitFor(t, "TLS delivery", 20*time.Second, func() bool { return f.Status().Cursor == 60 })
	f.Stop(time.Second)
	checkAtLeastOnceInOrder(t, parseSyslogSeqs(t, r.messages(), FormatJSONL), 60)

	// Without the CA the server is not trusted.
	st2 := openStore(t, "strict")
	appendCalls(t, st2, 1)
	f = newTestForwarder(t, st2, fmt.Sprintf("syslog+tls://%s", r.ln.Addr()), nil)
	f.Start()
	waitFor(t, "a TLS failure", 10*time.Second, func() bool { return f.Status().Failures > 0 })
	f.Stop(0)
	if s := f.Status(); !strings.Contains(s.LastError, "certificate") || s.Cursor != 0 {
		t.Errorf("untrusted server: %+v", s)
	}
}

// testTLS makes a CA-signed certificate for 127.0.0.1 and returns the
// server config and the CA's PEM file.
func testTLS(t *testing.T) (*tls.Config, string) {
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test CA"}, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, KeyUsage: x509.KeyUsageCertSign, BasicConstraintsValid: true}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "127.0.0.1"}, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, KeyUsage: x509.KeyUsageDigitalSignature}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}), 0o600)
	return &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}}, caFile
}
