package siem

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/mcptrail/mcptrail/store"
)

// Item is one event on its way to a sink, encoded in the sink's format.
type Item struct {
	Event *store.Event
	Body  []byte
}

// Sink delivers encoded events. Send delivers items in order and returns
// nil once the sink's receiver has them (as far as the transport can say:
// see Settler). A failed Send may have delivered some of them; the
// forwarder sends them again, so receivers see every event at least once.
// A Sink is used by one goroutine at a time.
type Sink interface {
	Send(ctx context.Context, items []Item) error
	// Reset drops the connection, if any: the next Send starts afresh.
	Reset()
	Close() error
}

// Settler is a sink whose Send hands events to a transport that does not
// acknowledge them (TCP syslog): Settled reports the highest seq that is
// safely received, and an error once the connection is known to have
// failed, so that the forwarder replays what was not settled.
type Settler interface {
	Settled() (uint64, error)
}

// Open connects nothing yet: it builds the sink spec describes (the first
// Send dials).
func (spec *SinkSpec) Open(o Options) (Sink, error) {
	kind, ok := sinkKinds[spec.Kind]
	if !ok {
		return nil, fmt.Errorf("sink %s: unknown kind", spec.Redacted)
	}
	return kind.open(spec, o)
}

// tlsConfig builds a client TLS config from the ca, cert, key, server_name
// and insecure options.
func (spec *SinkSpec) tlsConfig() (*tls.Config, error) {
	q := spec.query
	c := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: q.Get("server_name")}
	if c.ServerName == "" {
		c.ServerName = spec.u.Hostname()
	}
	if ca := q.Get("ca"); ca != "" {
		pem, err := os.ReadFile(ca)
		if err != nil {
			return nil, fmt.Errorf("sink %s: ca: %w", spec.Redacted, err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("sink %s: ca %s holds no PEM certificate", spec.Redacted, ca)
		}
		c.RootCAs = pool
	}
	cert, key := q.Get("cert"), q.Get("key")
	if (cert == "") != (key == "") {
		return nil, fmt.Errorf("sink %s: cert and key go together", spec.Redacted)
	}
	if cert != "" {
		pair, err := tls.LoadX509KeyPair(cert, key)
		if err != nil {
			return nil, fmt.Errorf("sink %s: client certificate: %w", spec.Redacted, err)
		}
		c.Certificates = []tls.Certificate{pair}
	}
	if ins, _ := boolParam(q, "insecure"); ins {
		c.InsecureSkipVerify = true
	}
	return c, nil
}

// RetryAfterError asks the forwarder to wait at least After before the
// next attempt.
type RetryAfterError struct {
	Err   error
	After time.Duration
}

func (e *RetryAfterError) Error() string { return e.Err.Error() }
func (e *RetryAfterError) Unwrap() error { return e.Err }

// errPermanent marks a failure that retrying the same batch cannot fix.
var errPermanent = errors.New("permanent")
