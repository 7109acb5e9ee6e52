package siem

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Sink URLs (docs/architecture.md "Sinks as URLs"; every option in docs/siem.md):
//
//	file:///PATH?format=ocsf|ecs|cef|jsonl&max_size=100MB&max_files=5&sync=1s
//	syslog+tcp://HOST:PORT?format=cef|json|ocsf|ecs&facility=audit&sd_id=NAME@PEN&settle=2s
//	syslog+tls://HOST:PORT?…&ca=FILE&cert=FILE&key=FILE&server_name=NAME&insecure=1
//	hec+https://TOKEN@HOST:PORT[/services/collector/event]?format=ocsf|ecs|cef|jsonl&index=I&sourcetype=S&source=S&ack=1
//	hec+http://…                                                 (tests, or a local collector)
//	webhook+https://[TOKEN@]HOST/PATH?format=ocsf|ecs|jsonl&mode=array|lines
//	webhook+http://…                                             (other parameters are passed to the endpoint)
//	kafka://[USER:PASSWORD@]HOST:PORT[,HOST:PORT...]/TOPIC?format=jsonl|ocsf|ecs&tls=1&sasl=scram-sha-512… (kafka.go)
//
// Options every sink takes: name=NAME (the cursor's name; default: the URL
// without secrets and query), format, batch=N (most events per send),
// linger=200ms (how long a caught-up forwarder lets new events gather
// before it sends them), kinds=
// request,call,alert (only these kinds; the cursor still moves past the
// others), start=beginning|end (where a new sink's cursor starts),
// bodies=1 (include params and results), token_env=VAR (read the secret
// from the environment instead of the URL).
//
// Secrets — the userinfo of a URL, token_env's value — never appear in
// logs, errors or status: those show Redacted.

// SinkSpec is a parsed sink URL.
type SinkSpec struct {
	raw      string
	Kind     string // file, syslog, hec, webhook, kafka
	Name     string // the cursor's name
	Redacted string // the URL with secrets masked, for logs and status
	Format   Format
	Batch    int
	Kinds    map[string]bool // nil: every kind
	Start    string          // beginning or end
	Bodies   bool
	Linger   time.Duration // how long a caught-up forwarder gathers events before sending; -1: the default

	u      *url.URL
	secret string // token, or user:password for a webhook or Kafka's SASL
	query  url.Values
	kafka  *KafkaConn
}

// SecretParams are query parameters masked in Redacted.
var secretParams = map[string]bool{"token": true, "password": true, "secret": true, "key_password": true, "apikey": true, "api_key": true}

// SinkError is a problem with a sink URL. Its text shows the URL with
// secrets masked.
type SinkError struct {
	URL    string // redacted
	Reason string
}

func (e *SinkError) Error() string { return "sink " + e.URL + ": " + e.Reason }

// RedactURL masks the secrets of a sink URL (userinfo, secret-looking
// query parameters); a URL that does not parse is masked whole.
func RedactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparsable URL)"
	}
	return redactURL(u)
}

// ParseSinkURL parses and checks a sink URL without touching the network.
// Its errors are *SinkError.
func ParseSinkURL(raw string) (*SinkSpec, error) {
	u, err := url.Parse(raw)
	if err != nil {
		// url's errors quote the whole URL, secret included.
		return nil, &SinkError{URL: "(unparsable URL)", Reason: "does not parse as a URL (check its syntax; secrets are not shown)"}
	}
	s := &SinkSpec{raw: raw, u: u, query: u.Query(), Batch: 500, Start: "beginning", Linger: -1}
	s.Redacted = redactURL(u)
	switch u.Scheme {
	case "file":
		s.Kind = "file"
	case "syslog+tcp", "syslog+tls", "syslog":
		s.Kind = "syslog"
	case "hec+https", "hec+http":
		s.Kind = "hec"
	case "webhook+https", "webhook+http":
		s.Kind = "webhook"
		// Webhook URLs often carry their secret in the path or the query
		// (Slack, Teams, Azure Functions): show neither.
		s.Redacted = redactWebhook(u)
	case "kafka":
		s.Kind = "kafka"
	default:
		return nil, &SinkError{URL: s.Redacted, Reason: fmt.Sprintf("unknown scheme %q (want file, syslog+tcp, syslog+tls, hec+https, hec+http, webhook+https, webhook+http or kafka)", u.Scheme)}
	}
	fail := func(format string, a ...any) (*SinkSpec, error) {
		return nil, &SinkError{URL: s.Redacted, Reason: fmt.Sprintf(format, a...)}
	}
	known := map[string]bool{"name": true, "format": true, "batch": true, "kinds": true, "start": true, "bodies": true, "token_env": true, "linger": true}
	for _, k := range sinkParams[s.Kind] {
		known[k] = true
	}
	for k := range s.query {
		// A webhook's other parameters are its endpoint's own.
		if !known[k] && s.Kind != "webhook" {
			return fail("unknown option %q", k)
		}
	}

	// Format: each sink's default, and what it can carry.
	f := s.query.Get("format")
	switch {
	case f == "" && s.Kind == "syslog":
		f = "cef"
	case f == "" && (s.Kind == "file" || s.Kind == "kafka"):
		f = "jsonl" // Kafka: what a collector reads
	case f == "":
		f = "ocsf"
	case f == "json" && s.Kind == "syslog":
		f = "jsonl" // syslog's "json" is the record's own JSON
	}
	if s.Format, err = ParseFormat(f); err != nil {
		return fail("%v", err)
	}
	if s.Kind == "webhook" && s.Format == FormatCEF && s.query.Get("mode") != "lines" {
		return fail("format=cef needs mode=lines (a JSON array holds JSON records)")
	}

	if v := s.query.Get("batch"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 10000 {
			return fail("batch=%q: want 1 to 10000", v)
		}
		s.Batch = n
	}
	if v := s.query.Get("kinds"); v != "" {
		s.Kinds = map[string]bool{}
		for _, k := range strings.Split(v, ",") {
			if k = strings.TrimSpace(k); k != "" {
				s.Kinds[k] = true
			}
		}
	}
	switch v := s.query.Get("start"); v {
	case "", "beginning":
	case "end":
		s.Start = "end"
	default:
		return fail("start=%q: want beginning or end", v)
	}
	if v := s.query.Get("linger"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d < 0 || d > time.Minute {
			return fail("linger=%q: want a duration from 0s to 1m", v)
		}
		s.Linger = d
	}
	if s.Bodies, err = boolParam(s.query, "bodies"); err != nil {
		return fail("%v", err)
	}
	if env := s.query.Get("token_env"); env != "" {
		s.secret = os.Getenv(env)
		if s.secret == "" {
			return fail("token_env %s is not set in the environment", env)
		}
	} else if u.User != nil {
		s.secret = u.User.Username()
		if p, ok := u.User.Password(); ok {
			s.secret += ":" + p
		}
	}

	switch s.Kind {
	case "file":
		if u.Host != "" && u.Host != "localhost" {
			return fail("want file:///ABSOLUTE/PATH (three slashes)")
		}
		if u.Path == "" || !filepath.IsAbs(u.Path) {
			return fail("want an absolute path, as in file:///var/log/mcptrail/events.jsonl")
		}
		if v := s.query.Get("max_size"); v != "" {
			if _, err := parseSize(v); err != nil {
				return fail("max_size: %v", err)
			}
		}
		if v := s.query.Get("max_files"); v != "" {
			if n, err := strconv.Atoi(v); err != nil || n < 1 || n > 1000 {
				return fail("max_files=%q: want 1 to 1000", v)
			}
		}
		if v := s.query.Get("sync"); v != "" {
			if d, err := time.ParseDuration(v); err != nil || d < 0 || d > time.Minute {
				return fail("sync=%q: want a duration from 0s to 1m", v)
			}
		}
	case "syslog", "hec", "webhook":
		if u.Hostname() == "" {
			return fail("needs a host")
		}
		if s.Kind == "syslog" && u.Port() == "" {
			return fail("needs a port (514 is usual for TCP, 6514 for TLS)")
		}
		if p := u.Port(); p != "" {
			if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
				return fail("port %q", p)
			}
		}
	}
	switch s.Kind {
	case "kafka":
		if !s.Format.JSON() {
			return fail("format %s: a Kafka record is one JSON object (jsonl, ocsf or ecs)", s.Format)
		}
		if s.kafka, err = parseKafka(u, s.query, s.secret, s.Redacted); err != nil {
			return nil, err
		}
		if s.kafka.MaxPrestate, err = maxPrestate(s.query.Get("max_prestate")); err != nil {
			return fail("%v", err)
		}
	case "syslog":
		if s.Format != FormatCEF && !s.Format.JSON() {
			return fail("format %s", s.Format)
		}
		if v := s.query.Get("facility"); v != "" {
			if _, err := ParseFacility(v); err != nil {
				return fail("%v", err)
			}
		}
		if v := s.query.Get("settle"); v != "" {
			if d, err := time.ParseDuration(v); err != nil || d < 0 {
				return fail("settle=%q: want a duration such as 2s", v)
			}
		}
		if v := s.query.Get("sd_id"); v != "" && v != "-" && (len(v) > 32 || strings.ContainsAny(v, " =]\"") || !strings.Contains(v, "@")) {
			return fail("sd_id=%q: want NAME@ENTERPRISE-NUMBER (at most 32 characters) or -", v)
		}
		if u.Scheme == "syslog" {
			return fail("say syslog+tcp:// or syslog+tls:// (UDP loses events and is not offered)")
		}
		if _, err := boolParam(s.query, "insecure"); err != nil {
			return fail("%v", err)
		}
	case "hec":
		if s.secret == "" {
			return fail("needs a token: hec+https://TOKEN@HOST:PORT or token_env=VAR")
		}
		if _, err := boolParam(s.query, "ack"); err != nil {
			return fail("%v", err)
		}
		if _, err := boolParam(s.query, "insecure"); err != nil {
			return fail("%v", err)
		}
	case "webhook":
		switch s.query.Get("mode") {
		case "", "array", "lines":
		default:
			return fail("mode=%q: want array or lines", s.query.Get("mode"))
		}
		if _, err := boolParam(s.query, "insecure"); err != nil {
			return fail("%v", err)
		}
	}
	if s.Name = s.query.Get("name"); s.Name == "" {
		// Stable across changes of token, format or options: only where the
		// events go names the cursor.
		base := *u
		base.User, base.RawQuery, base.Fragment = nil, "", ""
		if s.Kind == "webhook" && base.Path != "" {
			sum := sha256.Sum256([]byte(base.Path))
			base.Path = "/" + hex.EncodeToString(sum[:6])
		}
		s.Name = base.String()
	}
	return s, nil
}

// sinkParams are the options of each kind of sink, besides the common ones.
var sinkParams = map[string][]string{
	"file":    {"max_size", "max_files", "sync"},
	"syslog":  {"facility", "sd_id", "settle", "ca", "cert", "key", "server_name", "insecure", "hostname", "app_name"},
	"hec":     {"index", "source", "sourcetype", "host", "ack", "ack_timeout", "insecure", "ca", "max_bytes"},
	"webhook": {"mode", "insecure", "ca", "max_bytes"},
	"kafka":   append(slices.Clone(kafkaParams), "max_prestate"),
}

func boolParam(q url.Values, k string) (bool, error) {
	switch v := q.Get(k); v {
	case "":
		return false, nil
	case "1", "true", "yes", "on":
		return true, nil
	case "0", "false", "no", "off":
		return false, nil
	default:
		return false, fmt.Errorf("%s=%q: want 1 or 0", k, v)
	}
}

// redactURL masks the userinfo and secret-looking query values.
func redactURL(u *url.URL) string {
	c := *u
	if c.User != nil {
		c.User = url.User("***")
	}
	q := c.Query()
	changed := false
	for k := range q {
		if secretParams[strings.ToLower(k)] {
			q.Set(k, "***")
			changed = true
		}
	}
	if changed {
		c.RawQuery = q.Encode()
	}
	s := c.String()
	return strings.Replace(s, "%2A%2A%2A", "***", -1)
}

// redactWebhook shows a webhook URL's scheme and host only.
func redactWebhook(u *url.URL) string {
	c := url.URL{Scheme: u.Scheme, Host: u.Host}
	if u.User != nil {
		c.User = url.User("***")
	}
	s := strings.Replace(c.String(), "%2A%2A%2A", "***", 1)
	if u.Path != "" && u.Path != "/" {
		s += "/***"
	}
	var ours []string
	for k := range u.Query() {
		switch k {
		case "format", "mode", "batch", "kinds", "start", "bodies", "name", "linger":
			ours = append(ours, k+"="+u.Query().Get(k))
		}
	}
	sort.Strings(ours)
	if len(ours) > 0 {
		s += "?" + strings.Join(ours, "&")
	}
	return s
}

// parseSize reads 1048576, 64KB, 100MB, 1GiB...
func parseSize(s string) (int64, error) {
	t := strings.TrimSpace(strings.ToUpper(s))
	mult := int64(1)
	for _, u := range []struct {
		suffix string
		m      int64
	}{{"KIB", 1 << 10}, {"MIB", 1 << 20}, {"GIB", 1 << 30}, {"KB", 1000}, {"MB", 1000_000}, {"GB", 1000_000_000}, {"K", 1 << 10}, {"M", 1 << 20}, {"G", 1 << 30}, {"B", 1}} {
		if strings.HasSuffix(t, u.suffix) {
			t, mult = strings.TrimSuffix(t, u.suffix), u.m
			break
		}
	}
	n, err := strconv.ParseInt(strings.TrimSpace(t), 10, 64)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("%q is not a size such as 100MB", s)
	}
	return n * mult, nil
}

// hostPort returns the URL's host:port with a default port.
func hostPort(u *url.URL, dflt string) string {
	if u.Port() != "" {
		return u.Host
	}
	return net.JoinHostPort(u.Hostname(), dflt)
}
