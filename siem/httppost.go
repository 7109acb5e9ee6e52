package siem

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// httpPoster posts the HTTP sinks' requests (HEC, webhook): the same
// client settings, headers on every request, errors that never show the
// URL, and a bounded read of the reply.
type httpPoster struct {
	client *http.Client
	name   string      // the sink's kind, the prefix of its errors
	header http.Header // set on every request
	limit  int64       // the most of a reply read
}

func newHTTPPoster(spec *SinkSpec, header http.Header, limit int64) (*httpPoster, error) {
	client, err := httpClient(spec)
	if err != nil {
		return nil, err
	}
	header.Set("User-Agent", "mcptrail")
	return &httpPoster{client: client, name: spec.Kind, header: header, limit: limit}, nil
}

// post sends body to url and reads the reply. A reply whose body could not
// be read comes back with the error: its status still says what the
// receiver did.
func (p *httpPoster) post(ctx context.Context, url string, body []byte) (*http.Response, []byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return nil, nil, err
	}
	for k, v := range p.header {
		req.Header[k] = v
	}
	resp, err := p.client.Do(req)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", p.name, scrub(err))
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, p.limit))
	if err != nil {
		return resp, data, fmt.Errorf("%s: reading the response: %w", p.name, err)
	}
	return resp, data, nil
}

// busy reports whether the receiver asks to be retried later (503, 429).
func busy(resp *http.Response) bool {
	return resp.StatusCode == http.StatusServiceUnavailable || resp.StatusCode == http.StatusTooManyRequests
}

// retryAfter is a reply's Retry-After in seconds, at most 5 minutes; 0:
// none.
func retryAfter(resp *http.Response) time.Duration {
	if v := resp.Header.Get("Retry-After"); v != "" {
		if n, err := strconv.Atoi(v); err == nil && n > 0 {
			return min(time.Duration(n)*time.Second, 5*time.Minute)
		}
	}
	return 0
}

func (p *httpPoster) close() { p.client.CloseIdleConnections() }

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
