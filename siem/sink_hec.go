package siem

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// hecSink posts to a Splunk HTTP Event Collector:
//
//	POST /services/collector/event
//	Authorization: Splunk <token>
//	{"time":…,"host":…,"source":…,"sourcetype":…,"index":…,"event":{…},"fields":{…}}{"time":…}…
//
// Envelopes are batched by concatenation (no array, no commas) up to
// max_bytes per request (default 1 MiB). 503 (server busy) and 429 are
// retried with backoff by the forwarder, honouring Retry-After. With
// ack=1 every request carries X-Splunk-Request-Channel, and a batch counts
// as delivered only once /services/collector/ack reports its ackId
// indexed; if that does not happen within ack_timeout (default 2m) the
// batch is sent again.
type hecSink struct {
	endpoint   string // …/services/collector/event
	ackURL     string
	http       *httpPoster
	host       string
	source     string
	sourcetype string
	index      string
	maxBytes   int
	ack        bool
	channel    string
	ackTimeout time.Duration
	jsonEvent  bool
}

const defaultMaxBytes = 1 << 20

// hecParams are a HEC sink's options besides the common ones.
var hecParams = []string{"index", "source", "sourcetype", "host", "ack", "ack_timeout", "insecure", "ca", "max_bytes"}

// parseHECURL reads hec+https://TOKEN@HOST:PORT[/PATH] (or hec+http).
func parseHECURL(s *SinkSpec) error {
	if err := s.parseCommon(hecParams, cmp.Or(s.query.Get("format"), "ocsf")); err != nil {
		return err
	}
	if err := s.needHost(""); err != nil {
		return err
	}
	if s.secret == "" {
		return s.errorf("needs a token: hec+https://TOKEN@HOST:PORT or token_env=VAR")
	}
	return s.checkBools("ack", "insecure")
}

func newHECSink(spec *SinkSpec, o Options) (*hecSink, error) {
	o = o.withDefaults()
	q := spec.query
	scheme := strings.TrimPrefix(spec.u.Scheme, "hec+")
	path := spec.u.Path
	if path == "" || path == "/" {
		path = "/services/collector/event"
	}
	base := scheme + "://" + spec.u.Host
	ack, _ := boolParam(q, "ack")
	h := http.Header{}
	h.Set("Authorization", "Splunk "+spec.secret)
	h.Set("Content-Type", "application/json")
	channel := ""
	if ack {
		// Every request of the sink, the acks' queries too, is on its
		// channel.
		channel = newUUID()
		h.Set("X-Splunk-Request-Channel", channel)
	}
	poster, err := newHTTPPoster(spec, h, 1<<20)
	if err != nil {
		return nil, err
	}
	s := &hecSink{
		endpoint:   base + path,
		ackURL:     base + "/services/collector/ack",
		http:       poster,
		ack:        ack,
		channel:    channel,
		host:       cmp.Or(q.Get("host"), o.Hostname),
		source:     cmp.Or(q.Get("source"), "mcptrail"),
		sourcetype: cmp.Or(q.Get("sourcetype"), "mcptrail:"+string(spec.Format)),
		index:      q.Get("index"),
		ackTimeout: 2 * time.Minute,
		jsonEvent:  spec.Format.JSON(),
	}
	if s.maxBytes, err = spec.maxBytes(); err != nil {
		return nil, err
	}
	if v := q.Get("ack_timeout"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			return nil, fmt.Errorf("sink %s: ack_timeout=%q: want a duration", spec.Redacted, v)
		}
		s.ackTimeout = d
	}
	return s, nil
}

// hecEnvelope is one event as HEC takes it.
type hecEnvelope struct {
	Time       json.Number       `json:"time"`
	Host       string            `json:"host,omitempty"`
	Source     string            `json:"source,omitempty"`
	Sourcetype string            `json:"sourcetype,omitempty"`
	Index      string            `json:"index,omitempty"`
	Event      any               `json:"event"`
	Fields     map[string]string `json:"fields,omitempty"`
}

func (s *hecSink) envelope(it Item) ([]byte, error) {
	ev := it.Event
	env := hecEnvelope{
		// Epoch seconds with milliseconds.
		Time:       json.Number(strconv.FormatFloat(float64(ev.Time.UnixMilli())/1000, 'f', 3, 64)),
		Host:       s.host,
		Source:     s.source,
		Sourcetype: s.sourcetype,
		Index:      s.index,
		Fields:     map[string]string{"mcptrail_seq": strconv.FormatUint(ev.Seq, 10), "mcptrail_kind": ev.Kind},
	}
	if s.jsonEvent {
		env.Event = json.RawMessage(it.Body)
	} else {
		env.Event = string(it.Body)
	}
	return marshal(env)
}

func (s *hecSink) Send(ctx context.Context, items []Item) error {
	var body []byte
	for _, it := range items {
		env, err := s.envelope(it)
		if err != nil {
			return fmt.Errorf("hec: encode event %d: %w", it.Event.Seq, err)
		}
		if len(body) > 0 && len(body)+len(env) > s.maxBytes {
			if err := s.post(ctx, body); err != nil {
				return err
			}
			body = body[:0]
		}
		body = append(body, env...)
	}
	if len(body) == 0 {
		return nil
	}
	return s.post(ctx, body)
}

// hecReply is the collector's answer.
type hecReply struct {
	Text  string `json:"text"`
	Code  int    `json:"code"`
	AckID *int64 `json:"ackId"`
}

func (s *hecSink) post(ctx context.Context, body []byte) error {
	resp, data, err := s.http.post(ctx, s.endpoint, body)
	if err != nil {
		return err
	}
	var r hecReply
	_ = json.Unmarshal(data, &r)
	switch {
	case busy(resp):
		return &RetryAfterError{Err: fmt.Errorf("hec: %s (server busy): %s", resp.Status, r.Text), After: retryAfter(resp)}
	case resp.StatusCode/100 != 2:
		return fmt.Errorf("hec: %s: %s (code %d)", resp.Status, cmp.Or(r.Text, strings.TrimSpace(string(data))), r.Code)
	}
	if !s.ack {
		return nil
	}
	if r.AckID == nil {
		return errors.New("hec: ack=1 but the collector returned no ackId (is indexer acknowledgment enabled on the token?)")
	}
	return s.waitAck(ctx, *r.AckID)
}

// waitAck polls /services/collector/ack until the collector says ackID is
// indexed.
func (s *hecSink) waitAck(ctx context.Context, id int64) error {
	deadline := time.Now().Add(s.ackTimeout)
	delay := 100 * time.Millisecond
	body, _ := json.Marshal(map[string][]int64{"acks": {id}})
	for {
		resp, data, err := s.http.post(ctx, s.ackURL+"?channel="+s.channel, body)
		if err != nil {
			return err
		}
		if resp.StatusCode/100 != 2 {
			return fmt.Errorf("hec: ack query: %s: %s", resp.Status, strings.TrimSpace(string(data)))
		}
		var r struct {
			Acks map[string]bool `json:"acks"`
		}
		if err := json.Unmarshal(data, &r); err != nil {
			return fmt.Errorf("hec: ack query: %w", err)
		}
		if r.Acks[strconv.FormatInt(id, 10)] {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("hec: ackId %d not acknowledged within %s: sending the batch again", id, s.ackTimeout)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(delay):
		}
		delay = min(delay*2, 2*time.Second)
	}
}

func (s *hecSink) Reset() { s.http.close() }

func (s *hecSink) Close() error {
	s.http.close()
	return nil
}

// newUUID returns a random (version 4) UUID, the form HEC channels take.
func newUUID() string {
	var b [16]byte
	rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}
