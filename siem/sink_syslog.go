package siem

import (
	"cmp"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"time"
)

// syslogSink sends RFC 5424 messages with octet-counting framing over TCP
// or TLS (RFC 6587, RFC 5425).
//
// Syslog over TCP has no acknowledgment: a write succeeds once the kernel
// has the bytes, whether or not the receiver ever reads them. So the sink
// holds delivery back by a settle time: what was written at least `settle`
// ago on a connection that is still up (the receiver never writes, so a
// reader sees EOF or an error as soon as the peer closes or resets it) is
// settled, and the forwarder's cursor moves only over settled events.
// When the connection fails, everything not yet settled is sent again: a
// receiver that stops loses nothing it had not read, at the price of
// duplicates around the failure.
type syslogSink struct {
	addr   string
	tls    *tls.Config
	framer *SyslogFramer
	msgFmt Format
	settle time.Duration

	conn    net.Conn
	dead    chan struct{} // closed when the reader sees the connection end
	marks   []mark        // what was written when, oldest first
	settled uint64        // the highest seq settled on this connection
	wbuf    []byte
}

type mark struct {
	seq uint64
	at  time.Time
}

const defaultSettle = 2 * time.Second

// syslogParams are a syslog sink's options besides the common ones.
var syslogParams = []string{"facility", "sd_id", "settle", "ca", "cert", "key", "server_name", "insecure", "hostname", "app_name"}

// parseSyslogURL reads syslog+tcp://HOST:PORT and syslog+tls://HOST:PORT
// (and refuses a bare syslog://).
func parseSyslogURL(s *SinkSpec) error {
	f := cmp.Or(s.query.Get("format"), "cef")
	if f == "json" {
		f = "jsonl" // syslog's "json" is the record's own JSON
	}
	if err := s.parseCommon(syslogParams, f); err != nil {
		return err
	}
	if err := s.needHost("514 is usual for TCP, 6514 for TLS"); err != nil {
		return err
	}
	if s.Format != FormatCEF && !s.Format.JSON() {
		return s.errorf("format %s", s.Format)
	}
	if v := s.query.Get("facility"); v != "" {
		if _, err := ParseFacility(v); err != nil {
			return s.errorf("%v", err)
		}
	}
	if v := s.query.Get("settle"); v != "" {
		if d, err := time.ParseDuration(v); err != nil || d < 0 {
			return s.errorf("settle=%q: want a duration such as 2s", v)
		}
	}
	if v := s.query.Get("sd_id"); v != "" && v != "-" && (len(v) > 32 || strings.ContainsAny(v, " =]\"") || !strings.Contains(v, "@")) {
		return s.errorf("sd_id=%q: want NAME@ENTERPRISE-NUMBER (at most 32 characters) or -", v)
	}
	if s.u.Scheme == "syslog" {
		return s.errorf("say syslog+tcp:// or syslog+tls:// (UDP loses events and is not offered)")
	}
	return s.checkBools("insecure")
}

func newSyslogSink(spec *SinkSpec, o Options) (*syslogSink, error) {
	o = o.withDefaults()
	q := spec.query
	f := NewSyslogFramer()
	f.Hostname = o.Hostname
	if v := q.Get("hostname"); v != "" {
		f.Hostname = v
	}
	if v := q.Get("app_name"); v != "" {
		f.AppName = v
	}
	if v := q.Get("facility"); v != "" {
		f.Facility, _ = ParseFacility(v)
	}
	f.SDID = q.Get("sd_id")
	s := &syslogSink{addr: hostPort(spec.u, "514"), framer: f, msgFmt: spec.Format, settle: defaultSettle}
	if v := q.Get("settle"); v != "" {
		s.settle, _ = time.ParseDuration(v)
	}
	if spec.u.Scheme == "syslog+tls" {
		c, err := spec.tlsConfig()
		if err != nil {
			return nil, err
		}
		s.tls = c
		s.addr = hostPort(spec.u, "6514")
	}
	return s, nil
}

func (s *syslogSink) dial(ctx context.Context) error {
	if s.conn != nil {
		select {
		case <-s.dead:
			s.Reset()
			return errors.New("syslog: the receiver closed the connection")
		default:
			return nil
		}
	}
	d := &net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}
	var conn net.Conn
	var err error
	if s.tls != nil {
		td := &tls.Dialer{NetDialer: d, Config: s.tls}
		conn, err = td.DialContext(ctx, "tcp", s.addr)
	} else {
		conn, err = d.DialContext(ctx, "tcp", s.addr)
	}
	if err != nil {
		return fmt.Errorf("syslog: %w", err)
	}
	dead := make(chan struct{})
	go func() {
		// The receiver says nothing; any read result means the end.
		io.Copy(io.Discard, conn)
		close(dead)
	}()
	s.conn, s.dead, s.marks, s.settled = conn, dead, nil, 0
	return nil
}

func (s *syslogSink) Send(ctx context.Context, items []Item) error {
	if len(items) == 0 {
		return nil
	}
	if err := s.dial(ctx); err != nil {
		return err
	}
	b := s.wbuf[:0]
	for _, it := range items {
		msg := s.framer.Message(it.Event, it.Body)
		b = appendFrame(b, msg)
	}
	s.wbuf = b
	s.conn.SetWriteDeadline(time.Now().Add(30 * time.Second))
	if _, err := s.conn.Write(b); err != nil {
		s.Reset()
		return fmt.Errorf("syslog: %w", err)
	}
	s.marks = append(s.marks, mark{seq: items[len(items)-1].Event.Seq, at: time.Now()})
	return nil
}

func appendFrame(b, msg []byte) []byte {
	b = fmt.Appendf(b, "%d ", len(msg))
	return append(b, msg...)
}

// Settled implements Settler.
func (s *syslogSink) Settled() (uint64, error) {
	if s.conn == nil {
		return 0, nil
	}
	select {
	case <-s.dead:
		s.Reset()
		return 0, errors.New("syslog: the receiver closed the connection")
	default:
	}
	cut := time.Now().Add(-s.settle)
	var seq uint64
	i := 0
	for ; i < len(s.marks) && !s.marks[i].at.After(cut); i++ {
		// Marks are not in seq order: a checkpoint (seq = its size) comes
		// after the events it covers.
		seq = max(seq, s.marks[i].seq)
	}
	s.marks = s.marks[i:]
	s.settled = max(s.settled, seq)
	return s.settled, nil
}

func (s *syslogSink) Reset() {
	if s.conn != nil {
		s.conn.Close()
		s.conn = nil
	}
	s.marks, s.settled = nil, 0
}

func (s *syslogSink) Close() error {
	s.Reset()
	return nil
}
