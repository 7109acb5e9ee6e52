package siem

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
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
	auth     string
	client   *http.Client
	lines    bool
	cef      bool
	maxBytes int
}

func newWebhookSink(spec *SinkSpec) (*webhookSink, error) {
	u := *spec.u
	u.Scheme = strings.TrimPrefix(u.Scheme, "webhook+")
	u.User = nil
	// The sink's own options are not the endpoint's query.
	q := u.Query()
	for _, k := range append([]string{"name", "format", "batch", "kinds", "start", "bodies", "token_env", "linger"}, sinkParams["webhook"]...) {
		q.Del(k)
	}
	u.RawQuery = q.Encode()
	client, err := httpClient(spec)
	if err != nil {
		return nil, err
	}
	s := &webhookSink{url: u.String(), client: client, lines: spec.query.Get("mode") == "lines", cef: spec.Format == FormatCEF, maxBytes: defaultMaxBytes}
	if v := spec.query.Get("max_bytes"); v != "" {
		n, err := parseSize(v)
		if err != nil || n < 1024 {
			return nil, fmt.Errorf("sink %s: max_bytes=%q: want a size of at least 1KB", spec.Redacted, v)
		}
		s.maxBytes = int(n)
	}
	if sec := spec.secret; sec != "" {
		if strings.Contains(sec, ":") {
			s.auth = "Basic " + base64.StdEncoding.EncodeToString([]byte(sec))
		} else {
			s.auth = "Bearer " + sec
		}
	}
	return s, nil
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
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.url, bytes.NewReader(body))
	if err != nil {
		return err
	}
	switch {
	case !s.lines:
		req.Header.Set("Content-Type", "application/json")
	case s.cef:
		req.Header.Set("Content-Type", "text/plain; charset=utf-8")
	default:
		req.Header.Set("Content-Type", "application/x-ndjson")
	}
	req.Header.Set("User-Agent", "mcptrail")
	if s.auth != "" {
		req.Header.Set("Authorization", s.auth)
	}
	resp, err := s.client.Do(req)
	if err != nil {
		return fmt.Errorf("webhook: %w", scrub(err))
	}
	defer resp.Body.Close()
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	switch {
	case resp.StatusCode/100 == 2:
		return nil
	case resp.StatusCode == http.StatusServiceUnavailable || resp.StatusCode == http.StatusTooManyRequests:
		return &RetryAfterError{Err: fmt.Errorf("webhook: %s", resp.Status), After: retryAfter(resp)}
	}
	return fmt.Errorf("webhook: %s: %s", resp.Status, strings.TrimSpace(string(msg)))
}

func (s *webhookSink) Reset() { s.client.CloseIdleConnections() }

func (s *webhookSink) Close() error {
	s.client.CloseIdleConnections()
	return nil
}

// httpClient builds the client of an HTTP sink.
func httpClient(spec *SinkSpec) (*http.Client, error) {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = 4
	if strings.HasSuffix(spec.u.Scheme, "https") {
		c, err := spec.tlsConfig()
		if err != nil {
			return nil, err
		}
		tr.TLSClientConfig = c
	}
	return &http.Client{
		Transport: tr,
		Timeout:   60 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error {
			// A redirect would resend the Authorization header elsewhere.
			return http.ErrUseLastResponse
		},
	}, nil
}

// scrub drops the URL from net/http's errors (its query could hold more
// than a reader of the log should see) but keeps the cause.
func scrub(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return fmt.Errorf("%s: %w", ue.Op, ue.Err)
	}
	return err
}
