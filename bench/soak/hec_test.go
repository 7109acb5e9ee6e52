package soak

// A Splunk HTTP Event Collector stand-in, written from Splunk's documented
// wire format (not from mcptrail's sink): POST /services/collector/event
// with `Authorization: Splunk TOKEN`, a body of JSON event envelopes
// concatenated without separators, answered {"text":"Success","code":0}.
// (siem/transport_test.go has a fuller one, but it lives in package siem's
// tests and cannot be imported.)

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
)

type hecReceiver struct {
	token string
	srv   *httptest.Server

	mu          sync.Mutex
	seqs        []uint64 // mcptrail_seq of each event envelope, in arrival order
	checkpoints int
	requests    int
	problems    []string
}

func startHEC(t testing.TB, token string) *hecReceiver {
	t.Helper()
	h := &hecReceiver{token: token}
	h.srv = httptest.NewServer(h) // 127.0.0.1, a free port
	t.Cleanup(h.srv.Close)
	return h
}

// sinkURL is the daemon's --sink URL for this receiver.
func (h *hecReceiver) sinkURL(query string) string {
	return strings.Replace(h.srv.URL, "http://", "hec+http://"+h.token+"@", 1) + "?" + query
}

func (h *hecReceiver) problem(format string, a ...any) {
	if len(h.problems) < 20 {
		h.problems = append(h.problems, fmt.Sprintf(format, a...))
	}
}

func (h *hecReceiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	h.mu.Lock()
	defer h.mu.Unlock()
	if err != nil {
		h.problem("reading the body: %v", err)
		w.WriteHeader(http.StatusBadRequest)
		io.WriteString(w, `{"text":"No data","code":5}`)
		return
	}
	if r.Method != http.MethodPost || r.URL.Path != "/services/collector/event" {
		h.problem("%s %s", r.Method, r.URL.Path)
		w.WriteHeader(http.StatusNotFound)
		io.WriteString(w, `{"text":"The requested URL was not found on this server.","code":404}`)
		return
	}
	if got := r.Header.Get("Authorization"); got != "Splunk "+h.token {
		h.problem("Authorization %q", got)
		w.WriteHeader(http.StatusUnauthorized)
		io.WriteString(w, `{"text":"Invalid token","code":4}`)
		return
	}
	h.requests++
	dec := json.NewDecoder(strings.NewReader(string(body)))
	var batch []uint64
	cps := 0
	for {
		var env struct {
			Time   json.Number       `json:"time"`
			Event  json.RawMessage   `json:"event"`
			Fields map[string]string `json:"fields"`
		}
		err := dec.Decode(&env)
		if err == io.EOF {
			break
		}
		if err != nil {
			// Splunk rejects the whole request.
			h.problem("envelope: %v in %.80q", err, body)
			w.WriteHeader(http.StatusBadRequest)
			io.WriteString(w, `{"text":"Invalid data format","code":6}`)
			return
		}
		if len(env.Event) == 0 || string(env.Event) == "null" {
			h.problem("envelope without an event")
			w.WriteHeader(http.StatusBadRequest)
			io.WriteString(w, `{"text":"Event field is required","code":12}`)
			return
		}
		if tm, err := env.Time.Float64(); err != nil || tm < 1e9 {
			h.problem("time %q: want epoch seconds", env.Time)
		}
		if env.Fields["mcptrail_kind"] == "checkpoint" {
			cps++
			continue
		}
		seq, err := strconv.ParseUint(env.Fields["mcptrail_seq"], 10, 64)
		if err != nil || seq == 0 {
			h.problem("fields.mcptrail_seq %q", env.Fields["mcptrail_seq"])
			continue
		}
		// The OCSF record inside names the same event.
		var rec struct {
			Metadata struct {
				Sequence uint64 `json:"sequence"`
			} `json:"metadata"`
		}
		if err := json.Unmarshal(env.Event, &rec); err != nil || rec.Metadata.Sequence != seq {
			h.problem("event %d: metadata.sequence %d (%v)", seq, rec.Metadata.Sequence, err)
		}
		batch = append(batch, seq)
	}
	h.seqs = append(h.seqs, batch...)
	h.checkpoints += cps
	io.WriteString(w, `{"text":"Success","code":0}`)
}

func (h *hecReceiver) received() (seqs []uint64, checkpoints, requests int, problems []string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]uint64(nil), h.seqs...), h.checkpoints, h.requests, append([]string(nil), h.problems...)
}
