package siem

import (
	"cmp"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net"
	"net/url"
	"os"
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
//	kafka://[USER:PASSWORD@]HOST:PORT[,HOST:PORT...]/TOPIC?format=jsonl|ocsf|ecs&tls=1&sasl=scram-sha-512… (ParseKafkaURL)
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

// sinkKind is one kind of sink: how its URL is read and how it is opened.
type sinkKind struct {
	// parse checks a URL of the kind and fills the spec in. Each parser
	// reads the common options with parseCommon (or its parts) where its
	// own checks must come, so that a URL with several faults reports the
	// same one whichever kind it is.
	parse func(*SinkSpec) error
	open  func(*SinkSpec, Options) (Sink, error)
}

// sinkSchemes maps each URL scheme to its kind of sink. The bare syslog
// scheme has a parser only to refuse it with a hint.
var sinkSchemes = map[string]string{
	"file":       "file",
	"syslog+tcp": "syslog", "syslog+tls": "syslog", "syslog": "syslog",
	"hec+https": "hec", "hec+http": "hec",
	"webhook+https": "webhook", "webhook+http": "webhook",
	"kafka": "kafka",
}

// sinkKinds are the kinds of sink, by name (SinkSpec.Kind).
var sinkKinds = map[string]sinkKind{
	"file":    {parse: parseFileURL, open: func(s *SinkSpec, _ Options) (Sink, error) { return newFileSink(s) }},
	"syslog":  {parse: parseSyslogURL, open: func(s *SinkSpec, o Options) (Sink, error) { return newSyslogSink(s, o) }},
	"hec":     {parse: parseHECURL, open: func(s *SinkSpec, o Options) (Sink, error) { return newHECSink(s, o) }},
	"webhook": {parse: parseWebhookURL, open: func(s *SinkSpec, _ Options) (Sink, error) { return newWebhookSink(s) }},
	"kafka":   {parse: parseKafkaSinkURL, open: func(s *SinkSpec, o Options) (Sink, error) { return newKafkaSink(s, o) }},
}

// commonParams are the options every sink takes.
var commonParams = []string{"name", "format", "batch", "kinds", "start", "bodies", "token_env", "linger"}

// ParseSinkURL parses and checks a sink URL without touching the network.
// Its errors are *SinkError.
func ParseSinkURL(raw string) (*SinkSpec, error) {
	u, err := parseURL(raw)
	if err != nil {
		return nil, err
	}
	s := &SinkSpec{raw: raw, u: u, query: u.Query(), Batch: 500, Start: "beginning", Linger: -1}
	s.Redacted = redactURL(u)
	s.Kind = sinkSchemes[u.Scheme]
	kind, ok := sinkKinds[s.Kind]
	if !ok {
		return nil, &SinkError{URL: s.Redacted, Reason: fmt.Sprintf("unknown scheme %q (want file, syslog+tcp, syslog+tls, hec+https, hec+http, webhook+https, webhook+http or kafka)", u.Scheme)}
	}
	if err := kind.parse(s); err != nil {
		return nil, err
	}
	if s.Name == "" {
		s.Name = cmp.Or(s.query.Get("name"), cursorURL(u, false))
	}
	return s, nil
}

// parseURL parses a sink's URL. url's errors quote the whole URL, secret
// included: this one shows none of it.
func parseURL(raw string) (*url.URL, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return nil, &SinkError{URL: "(unparsable URL)", Reason: "does not parse as a URL (check its syntax; secrets are not shown)"}
	}
	return u, nil
}

// cursorURL is the default name of a sink's cursor: where the events go,
// stable across changes of token, format or options. hidePath replaces
// the path by a hash of it, for URLs whose path may be a secret.
func cursorURL(u *url.URL, hidePath bool) string {
	base := *u
	base.User, base.RawQuery, base.Fragment = nil, "", ""
	if hidePath && base.Path != "" {
		sum := sha256.Sum256([]byte(base.Path))
		base.Path = "/" + hex.EncodeToString(sum[:6])
	}
	return base.String()
}

// errorf is a *SinkError about s.
func (s *SinkSpec) errorf(format string, a ...any) error {
	return &SinkError{URL: s.Redacted, Reason: fmt.Sprintf(format, a...)}
}

// parseCommon refuses options that are neither common nor in params, then
// reads the format, named f (the kind's default when the URL gives none),
// and the other common options.
func (s *SinkSpec) parseCommon(params []string, f string) error {
	for k := range s.query {
		if !slices.Contains(commonParams, k) && !slices.Contains(params, k) {
			return s.errorf("unknown option %q", k)
		}
	}
	if err := s.setFormat(f); err != nil {
		return err
	}
	return s.parseOptions()
}

func (s *SinkSpec) setFormat(f string) error {
	var err error
	if s.Format, err = ParseFormat(f); err != nil {
		return s.errorf("%v", err)
	}
	return nil
}

// parseOptions reads batch, kinds, start, linger, bodies and the secret.
func (s *SinkSpec) parseOptions() error {
	if v := s.query.Get("batch"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 10000 {
			return s.errorf("batch=%q: want 1 to 10000", v)
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
		return s.errorf("start=%q: want beginning or end", v)
	}
	if v := s.query.Get("linger"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d < 0 || d > time.Minute {
			return s.errorf("linger=%q: want a duration from 0s to 1m", v)
		}
		s.Linger = d
	}
	var err error
	if s.Bodies, err = boolParam(s.query, "bodies"); err != nil {
		return s.errorf("%v", err)
	}
	if s.secret, err = urlSecret(s.u, s.query); err != nil {
		return s.errorf("%v", err)
	}
	return nil
}

// urlSecret is a URL's secret: the value of the environment variable
// token_env names, or else its userinfo (user, or user:password).
func urlSecret(u *url.URL, q url.Values) (string, error) {
	if env := q.Get("token_env"); env != "" {
		secret := os.Getenv(env)
		if secret == "" {
			return "", fmt.Errorf("token_env %s is not set in the environment", env)
		}
		return secret, nil
	}
	if u.User == nil {
		return "", nil
	}
	secret := u.User.Username()
	if p, ok := u.User.Password(); ok {
		secret += ":" + p
	}
	return secret, nil
}

// needHost checks a network sink's host and port; portHint, when not
// empty, makes the port required and says what is usual.
func (s *SinkSpec) needHost(portHint string) error {
	if s.u.Hostname() == "" {
		return s.errorf("needs a host")
	}
	if portHint != "" && s.u.Port() == "" {
		return s.errorf("needs a port (%s)", portHint)
	}
	if p := s.u.Port(); p != "" {
		if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
			return s.errorf("port %q", p)
		}
	}
	return nil
}

// checkBools checks that the options named are booleans.
func (s *SinkSpec) checkBools(names ...string) error {
	for _, k := range names {
		if _, err := boolParam(s.query, k); err != nil {
			return s.errorf("%v", err)
		}
	}
	return nil
}

// maxBytes reads max_bytes, the most bytes an HTTP sink puts in one
// request.
func (s *SinkSpec) maxBytes() (int, error) {
	v := s.query.Get("max_bytes")
	if v == "" {
		return defaultMaxBytes, nil
	}
	n, err := parseSize(v)
	if err != nil || n < 1024 {
		return 0, fmt.Errorf("sink %s: max_bytes=%q: want a size of at least 1KB", s.Redacted, v)
	}
	return int(n), nil
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

// redactURL masks the userinfo and secret-looking query values. A URL
// with a slash or a colon missing or too many (hec+https:TOKEN@HOST,
// hec+https:///TOKEN@HOST, no scheme at all) holds its userinfo where
// url.Parse cannot tell it is one: an opaque part or a path (but a
// file's) with an '@' is masked whole, and so is any fragment.
func redactURL(u *url.URL) string {
	c := *u
	if c.User != nil {
		c.User = url.User("***")
	}
	if strings.Contains(c.Opaque, "@") {
		c.Opaque = "***"
	}
	if strings.Contains(c.Path, "@") && c.Scheme != "file" {
		// A slash too many, or no scheme: the userinfo went into the
		// path (a file's path is where the events go, and shown).
		c.Path, c.RawPath = "/***", ""
	}
	if c.Fragment != "" {
		c.Fragment, c.RawFragment = "***", ""
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
	return strings.ReplaceAll(s, "%2A%2A%2A", "***")
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
