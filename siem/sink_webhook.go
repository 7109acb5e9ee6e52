package siem

import (
	"bytes"
	"cmp"
	"context"
	"encoding/base64"
	"fmt"
	"net/http"
	"slices"
	"strings"
)

// webhookSink posts batches to an HTTPS endpoint, as a JSON array
// (mode=array, the default; Content-Type application/json) or as JSON
// lines (mode=lines; application/x-ndjson, or text/plain for CEF). A
// secret in the URL's userinfo is sent as Authorization: Bearer TOKEN, or
// Basic for user:password; it is never part of the URL requested. Any 2xx
// is delivery; 429 and 503 honour Retry-After; anything else is retried
// with backoff.
type webhookSink struct {
	url      string
	http     *httpPoster
	lines    bool
	maxBytes int
}

// webhookParams are a webhook sink's options besides the common ones. Its
// other query parameters are the endpoint's own.
var webhookParams = []string{"mode", "insecure", "ca", "max_bytes"}

// parseWebhookURL reads webhook+https://[TOKEN@]HOST/PATH (or
// webhook+http).
func parseWebhookURL(s *SinkSpec) error {
	// Webhook URLs often carry their secret in the path or the query
	// (Slack, Teams, Azure Functions): show neither.
	s.Redacted = redactWebhook(s.u)
	mode := s.query.Get("mode")
	if err := s.setFormat(cmp.Or(s.query.Get("format"), "ocsf")); err != nil {
		return err
	}
	if s.Format == FormatCEF && mode != "lines" {
		return s.errorf("format=cef needs mode=lines (a JSON array holds JSON records)")
	}
	if err := s.parseOptions(); err != nil {
		return err
	}
	if err := s.needHost(""); err != nil {
		return err
	}
	switch mode {
	case "", "array", "lines":
	default:
		return s.errorf("mode=%q: want array or lines", mode)
	}
	if err := s.checkBools("insecure"); err != nil {
		return err
	}
	s.Name = cmp.Or(s.query.Get("name"), cursorURL(s.u, true))
	return nil
}

func newWebhookSink(spec *SinkSpec) (*webhookSink, error) {
	u := *spec.u
	u.Scheme = strings.TrimPrefix(u.Scheme, "webhook+")
	u.User = nil
	// The sink's own options are not the endpoint's query.
	q := u.Query()
	for _, k := range append(slices.Clone(commonParams), webhookParams...) {
		q.Del(k)
	}
	u.RawQuery = q.Encode()
	lines := spec.query.Get("mode") == "lines"
	h := http.Header{}
	switch {
	case !lines:
		h.Set("Content-Type", "application/json")
	case spec.Format == FormatCEF:
		h.Set("Content-Type", "text/plain; charset=utf-8")
	default:
		h.Set("Content-Type", "application/x-ndjson")
	}
	if sec := spec.secret; sec != "" {
		if strings.Contains(sec, ":") {
			h.Set("Authorization", "Basic "+base64.StdEncoding.EncodeToString([]byte(sec)))
		} else {
			h.Set("Authorization", "Bearer "+sec)
		}
	}
	poster, err := newHTTPPoster(spec, h, 512)
	if err != nil {
		return nil, err
	}
	maxBytes, err := spec.maxBytes()
	if err != nil {
		return nil, err
	}
	return &webhookSink{url: u.String(), http: poster, lines: lines, maxBytes: maxBytes}, nil
}

func (s *webhookSink) Send(ctx context.Context, items []Item) error {
	var body bytes.Buffer
	n := 0
	flush := func() error {
		if n == 0 {
			return nil
		}
		if !s.lines {
			body.WriteByte(']')
		}
		err := s.post(ctx, body.Bytes())
		body.Reset()
		n = 0
		return err
	}
	for _, it := range items {
		if n > 0 && body.Len()+len(it.Body)+2 > s.maxBytes {
			if err := flush(); err != nil {
				return err
			}
		}
		switch {
		case s.lines:
			body.Write(it.Body)
			body.WriteByte('\n')
		case n == 0:
			body.WriteByte('[')
			body.Write(it.Body)
		default:
			body.WriteByte(',')
			body.Write(it.Body)
		}
		n++
	}
	return flush()
}

func (s *webhookSink) post(ctx context.Context, body []byte) error {
	// A reply cut short still has its status (and what was read of it).
	resp, msg, err := s.http.post(ctx, s.url, body)
	if resp == nil {
		return err
	}
	switch {
	case resp.StatusCode/100 == 2:
		return nil
	case busy(resp):
		return &RetryAfterError{Err: fmt.Errorf("webhook: %s", resp.Status), After: retryAfter(resp)}
	}
	return fmt.Errorf("webhook: %s: %s", resp.Status, strings.TrimSpace(string(msg)))
}

func (s *webhookSink) Reset() { s.http.close() }

func (s *webhookSink) Close() error {
	s.http.close()
	return nil
}
