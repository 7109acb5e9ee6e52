package siem

import (
	"fmt"
	"net"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl/scram"
)

// Kafka URLs, the sink's and the collector's:
//
//	kafka://[USER:PASSWORD@]HOST:PORT[,HOST:PORT...]/TOPIC?tls=1&ca=FILE&cert=FILE&key=FILE
//	       &server_name=NAME&insecure=1&sasl=scram-sha-256|scram-sha-512&token_env=VAR
//	       &client_id=NAME&timeout=30s
//
// The hosts are the seed brokers (port 9092 when omitted). sasl needs a
// user and password: the URL's userinfo, or token_env=VAR naming an
// environment variable that holds USER:PASSWORD. SCRAM never sends the
// password itself, but without tls=1 the records travel in clear, so a
// URL with sasl and without tls is refused unless insecure_plaintext=1.
// A sink also takes max_prestate=BYTES (the largest pre-state it ships
// whole; see kafkaSink).

// kafkaParams are the connection options of a Kafka URL.
var kafkaParams = []string{"tls", "ca", "cert", "key", "server_name", "insecure", "sasl", "client_id", "timeout", "token_env", "insecure_plaintext"}

// KafkaConn is how to reach a Kafka topic, from a kafka:// URL. Its
// fields hold no secret; Redacted is the URL to show.
type KafkaConn struct {
	Brokers  []string
	Topic    string
	Redacted string
	Timeout  time.Duration // how long a produce may take before it fails (the sink retries)
	// MaxPrestate is the largest pre-state the sink ships (max_prestate);
	// a larger one travels as its hash and size only.
	MaxPrestate int

	tls   bool
	sasl  string
	user  string
	pass  string
	query url.Values
}

// ParseKafkaURL parses a kafka:// URL whose other options are own (the
// collector's). It reads token_env but touches neither files nor the
// network. Its errors show the URL with secrets masked.
func ParseKafkaURL(raw string, own ...string) (*KafkaConn, url.Values, error) {
	u, err := parseURL(raw)
	if err != nil {
		return nil, nil, err
	}
	redacted := redactURL(u)
	if u.Scheme != "kafka" {
		return nil, nil, &SinkError{URL: redacted, Reason: fmt.Sprintf("unknown scheme %q (want kafka)", u.Scheme)}
	}
	q := u.Query()
	for k := range q {
		if !slices.Contains(kafkaParams, k) && !slices.Contains(own, k) {
			return nil, nil, &SinkError{URL: redacted, Reason: fmt.Sprintf("unknown option %q", k)}
		}
	}
	secret, err := urlSecret(u, q)
	if err != nil {
		return nil, nil, &SinkError{URL: redacted, Reason: err.Error()}
	}
	c, err := parseKafka(u, q, secret, redacted)
	if err != nil {
		return nil, nil, err
	}
	return c, q, nil
}

// parseKafka checks the connection part of a kafka:// URL.
func parseKafka(u *url.URL, q url.Values, secret, redacted string) (*KafkaConn, error) {
	fail := func(format string, a ...any) (*KafkaConn, error) {
		return nil, &SinkError{URL: redacted, Reason: fmt.Sprintf(format, a...)}
	}
	c := &KafkaConn{Redacted: redacted, Timeout: 30 * time.Second, query: q}
	for _, h := range strings.Split(u.Host, ",") {
		if h == "" {
			return fail("needs at least one broker: kafka://HOST:PORT[,HOST:PORT...]/TOPIC")
		}
		host, port, err := net.SplitHostPort(h)
		if err != nil {
			host, port = h, "9092"
		}
		if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 || host == "" {
			return fail("broker %q: want HOST:PORT", h)
		}
		c.Brokers = append(c.Brokers, net.JoinHostPort(host, port))
	}
	c.Topic = strings.TrimPrefix(u.Path, "/")
	if !validTopic(c.Topic) {
		return fail("topic %q: want /TOPIC, 1 to 249 of a-z A-Z 0-9 . _ -", c.Topic)
	}
	var err error
	if c.tls, err = boolParam(q, "tls"); err != nil {
		return fail("%v", err)
	}
	if _, err := boolParam(q, "insecure"); err != nil {
		return fail("%v", err)
	}
	plain, err := boolParam(q, "insecure_plaintext")
	if err != nil {
		return fail("%v", err)
	}
	for _, k := range []string{"ca", "cert", "key", "server_name", "insecure"} {
		if q.Get(k) != "" && !c.tls {
			return fail("%s needs tls=1", k)
		}
	}
	if v := q.Get("timeout"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d < time.Second || d > 10*time.Minute {
			return fail("timeout=%q: want a duration from 1s to 10m", v)
		}
		c.Timeout = d
	}
	switch c.sasl = q.Get("sasl"); c.sasl {
	case "":
		if secret != "" {
			return fail("a user and password need sasl=scram-sha-256 or sasl=scram-sha-512")
		}
	case "scram-sha-256", "scram-sha-512":
		user, pass, ok := strings.Cut(secret, ":")
		if !ok || user == "" || pass == "" {
			return fail("sasl=%s needs USER:PASSWORD@ in the URL or token_env=VAR holding USER:PASSWORD", c.sasl)
		}
		c.user, c.pass = user, pass
		if !c.tls && !plain {
			return fail("sasl without tls=1 sends every record in clear; add tls=1 (or insecure_plaintext=1 on a trusted network)")
		}
	default:
		return fail("sasl=%q: want scram-sha-256 or scram-sha-512", c.sasl)
	}
	return c, nil
}

// DefaultMaxPrestate is the largest pre-state a Kafka sink ships unless
// max_prestate says otherwise: half of Kafka's default largest record
// (message.max.bytes, about 1 MB), so a record with its headers fits.
const DefaultMaxPrestate = 512 << 10

// maxMaxPrestate bounds max_prestate: the collector refuses larger records.
const maxMaxPrestate = 16 << 20

// maxPrestate parses max_prestate (bytes; 0 ships hashes and sizes only).
func maxPrestate(v string) (int, error) {
	if v == "" {
		return DefaultMaxPrestate, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 || n > maxMaxPrestate {
		return 0, fmt.Errorf("max_prestate=%q: want bytes from 0 to %d", v, maxMaxPrestate)
	}
	return n, nil
}

// validTopic is Kafka's rule for topic names.
func validTopic(t string) bool {
	if t == "" || len(t) > 249 || t == "." || t == ".." {
		return false
	}
	for _, r := range t {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '_' || r == '-') {
			return false
		}
	}
	return true
}

// ClientOpts are the franz-go options that connect to the cluster: seed
// brokers, TLS (reading the ca, cert and key files) and SASL. No logger:
// franz-go's logs could carry what mcptrail keeps out of its own.
func (c *KafkaConn) ClientOpts() ([]kgo.Opt, error) {
	opts := []kgo.Opt{kgo.SeedBrokers(c.Brokers...), kgo.DialTimeout(10 * time.Second)}
	if id := c.query.Get("client_id"); id != "" {
		opts = append(opts, kgo.ClientID(id))
	} else {
		opts = append(opts, kgo.ClientID("mcptrail"))
	}
	if c.tls {
		spec := &SinkSpec{Redacted: c.Redacted, query: c.query, u: &url.URL{}}
		cfg, err := spec.tlsConfig()
		if err != nil {
			return nil, err
		}
		// Each broker is checked against its own name unless server_name
		// says otherwise (franz-go fills in the dialed host).
		cfg.ServerName = c.query.Get("server_name")
		opts = append(opts, kgo.DialTLSConfig(cfg))
	}
	switch c.sasl {
	case "scram-sha-256":
		opts = append(opts, kgo.SASL(scram.Auth{User: c.user, Pass: c.pass}.AsSha256Mechanism()))
	case "scram-sha-512":
		opts = append(opts, kgo.SASL(scram.Auth{User: c.user, Pass: c.pass}.AsSha512Mechanism()))
	}
	return opts, nil
}
