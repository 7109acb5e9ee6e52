// Package config is the daemon's configuration: a YAML file whose every
// setting has a default, so mcptrail runs with no file at all.
package config

import (
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
	"golang.org/x/mod/sumdb/note"

	"github.com/mcptrail/mcptrail/approval"
	"github.com/mcptrail/mcptrail/collect"
	"github.com/mcptrail/mcptrail/detect"
	"github.com/mcptrail/mcptrail/ingest/identity"
	"github.com/mcptrail/mcptrail/ingest/redact"
	"github.com/mcptrail/mcptrail/siem"
)

// Config is the daemon's configuration.
type Config struct {
	Listen          string            `yaml:"listen"`
	SSH             string            `yaml:"ssh"`
	AuthorizedKeys  string            `yaml:"authorized_keys"`
	SSHRoles        map[string]string `yaml:"ssh_roles"`  // key fingerprint (SHA256:…) → operator | viewer
	Durability      string            `yaml:"durability"` // strict | batch
	BatchWindow     Duration          `yaml:"batch_window"`
	MaxMessageBytes int               `yaml:"max_message_bytes"`
	MaxDepth        int               `yaml:"max_depth"`    // nesting of arrays and objects in one message
	CallTimeout     Duration          `yaml:"call_timeout"` // 0: calls wait as long as their client
	// Caps on the HTTP gateway's open sessions (each session of a stdio
	// upstream is a child process): all together, and per principal.
	MaxSessions             int                 `yaml:"max_sessions"`
	MaxSessionsPerPrincipal int                 `yaml:"max_sessions_per_principal"`
	AllowedOrigins          []string            `yaml:"allowed_origins"` // besides loopback origins
	Upstreams               map[string]Upstream `yaml:"upstreams"`
	Tokens                  []Token             `yaml:"tokens"`
	JWT                     *JWT                `yaml:"jwt"`
	Redact                  redact.Rules        `yaml:"redact"`
	Sinks                   []string            `yaml:"sinks"`      // SIEM sink URLs (siem.ParseSinkURL)
	Detections              detect.Config       `yaml:"detections"` // detection rules (detect.Config)
	Checkpoint              Checkpoint          `yaml:"checkpoint"`
	Retention               Retention           `yaml:"retention"`
	VerifyKey               string              `yaml:"verify_key"` // the verifier key `mcptrail verify` trusts
	FailOpen                bool                `yaml:"fail_open"`  // forward calls that cannot be recorded
	Metrics                 Metrics             `yaml:"metrics"`    // Prometheus listener (docs/metrics.md)
	Tracing                 Tracing             `yaml:"tracing"`    // OpenTelemetry spans (docs/tracing.md)
	Collect                 Collect             `yaml:"collect"`    // a fleet's central collector (docs/fleet.md)
	// Approvals are the rules that hold a tools/call until a person
	// approves it (docs/approvals.md); none by default.
	Approvals []approval.RuleConfig `yaml:"approvals"`
}

// Collect makes this instance the central collector of a fleet: it
// consumes the records every gateway's Kafka sink produces into its own
// store (docs/fleet.md). Off unless URL is set (or `serve --collect URL`).
type Collect struct {
	URL string `yaml:"url"` // kafka://HOST:PORT[,...]/TOPIC?group=NAME (collect.ParseURL)
	// Keys pins each origin's checkpoint verifier key by its store id (what
	// `mcptrail verify --print-key` prints on the origin). An origin not
	// listed is pinned on first sight, with an alert.
	Keys map[string]string `yaml:"keys"`
	// PinnedOnly refuses the records of any origin not listed in Keys.
	PinnedOnly bool `yaml:"pinned_only"`
}

// Tracing configures OpenTelemetry spans over OTLP/HTTP, off unless
// OTLPEndpoint is set.
type Tracing struct {
	OTLPEndpoint  string  `yaml:"otlp_endpoint"`  // e.g. http://127.0.0.1:4318; empty: off
	SampleRatio   float64 `yaml:"sample_ratio"`   // share of new traces sampled, 0 to 1 (default 1)
	IncludeBodies bool    `yaml:"include_bodies"` // params and results in spans (default false)
}

// Metrics configures the Prometheus metrics listener, which is off unless
// Listen is set (or `serve --metrics ADDR`).
type Metrics struct {
	Listen string `yaml:"listen"` // host:port serving GET /metrics; empty: off
	// ToolLabel keeps the tool label on mcptrail_calls_total (default
	// true); false drops it when upstreams have many tool names.
	ToolLabel bool `yaml:"tool_label"`
	// AllowRemote must be true for Listen to be anything but loopback:
	// the listener has no authentication, so serving it on every interface
	// is a choice the operator writes down, not a typo.
	AllowRemote bool `yaml:"allow_remote"`
}

// RemoteAllowed refuses a listen address that is not loopback unless
// AllowRemote says the operator meant it.
func (m Metrics) RemoteAllowed() error {
	if m.Listen == "" || IsLoopback(m.Listen) || m.AllowRemote {
		return nil
	}
	return fmt.Errorf("metrics: listen %q is not a loopback address and the metrics listener has no authentication; set metrics.allow_remote: true to serve it there anyway", m.Listen)
}

// Upstream is one MCP server behind the gateway: exactly one of URL
// (Streamable HTTP) or Command (stdio).
type Upstream struct {
	URL     string            `yaml:"url"`
	Command []string          `yaml:"command"`
	Env     map[string]string `yaml:"env"`
	Dir     string            `yaml:"dir"`
	// Headers are sent to an HTTP upstream. The gateway holds upstream
	// credentials itself and never passes the client's token through.
	Headers map[string]string `yaml:"headers"`
}

// Token is a bearer token the gateway accepts, and the agent it names.
type Token struct {
	Token      string `yaml:"token"`     // literal; prefer TokenEnv, which keeps it out of the file
	TokenEnv   string `yaml:"token_env"` // environment variable holding the token
	Agent      string `yaml:"agent"`
	Subject    string `yaml:"subject"` // defaults to Agent
	OnBehalfOf string `yaml:"on_behalf_of"`
}

// JWT configures verification of JWT bearer tokens.
type JWT struct {
	Issuer         string   `yaml:"issuer"`
	Audience       string   `yaml:"audience"`
	HS256SecretEnv string   `yaml:"hs256_secret_env"`
	PublicKeys     []string `yaml:"public_keys"` // PEM files
}

// KeySet loads the keys JWTs are verified with.
func (j *JWT) KeySet() (identity.KeySet, error) {
	ks := identity.KeySet{Issuer: j.Issuer, Audience: j.Audience}
	if j.HS256SecretEnv != "" {
		secret := os.Getenv(j.HS256SecretEnv)
		if secret == "" {
			return ks, fmt.Errorf("jwt: hs256_secret_env %s is not set in the environment", j.HS256SecretEnv)
		}
		ks.HS256 = [][]byte{[]byte(secret)}
	}
	keys, err := identity.LoadPublicKeys(j.PublicKeys)
	if err != nil {
		return ks, fmt.Errorf("jwt: public_keys: %w", err)
	}
	ks.Public = keys
	return ks, nil
}

// Duration is a time.Duration written as "2ms" or "30s" in YAML.
type Duration time.Duration

func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode {
		return fmt.Errorf("line %d: want a duration such as \"2ms\"", n.Line)
	}
	if n.Value == "0" {
		*d = 0
		return nil
	}
	v, err := time.ParseDuration(n.Value)
	if err != nil {
		return fmt.Errorf("line %d: %q is not a duration such as \"2ms\" or \"30s\"", n.Line, n.Value)
	}
	*d = Duration(v)
	return nil
}

func (d Duration) MarshalYAML() (any, error) { return time.Duration(d).String(), nil }

func (d Duration) String() string { return time.Duration(d).String() }

// Default is the configuration used when there is no file.
func Default() *Config {
	return &Config{
		Listen:          "127.0.0.1:7420",
		SSH:             "127.0.0.1:2222",
		Durability:      "strict",
		BatchWindow:     Duration(2 * time.Millisecond),
		MaxMessageBytes: 4 << 20,
		// 256 sessions (children) keep a host with typical MCP servers
		// within a few GB; 32 per principal leave an agent room for
		// parallel sub-agents without letting one take every slot.
		MaxSessions:             256,
		MaxDepth:                128,
		MaxSessionsPerPrincipal: 32,
		Metrics:                 Metrics{ToolLabel: true},
		Tracing:                 Tracing{SampleRatio: 1},
	}
}

// DefaultPath is where the config lives when --config is not given.
func DefaultPath() string {
	if dir := os.Getenv("XDG_CONFIG_HOME"); filepath.IsAbs(dir) { // the XDG spec ignores relative paths
		return filepath.Join(dir, "mcptrail", "config.yaml")
	}
	home, _ := os.UserHomeDir()
	return filepath.Join(home, ".config", "mcptrail", "config.yaml")
}

// DataDir holds the store, signing key, spool and daemon socket. Every
// command must resolve it alike to find the same daemon, so a relative
// MCPTRAIL_HOME is made absolute.
func DataDir() string {
	if dir := os.Getenv("MCPTRAIL_HOME"); dir != "" {
		if abs, err := filepath.Abs(dir); err == nil {
			return abs
		}
		return dir
	}
	if dir := os.Getenv("XDG_STATE_HOME"); filepath.IsAbs(dir) {
		return filepath.Join(dir, "mcptrail")
	}
	home, _ := os.UserHomeDir()
	return filepath.Join(home, ".local", "state", "mcptrail")
}

// Load reads and validates a config file. An empty path means
// DefaultPath, where a missing file yields the defaults; a missing file at
// a path the user named is an error. Errors name the file and line.
func Load(path string) (*Config, error) {
	explicit := path != ""
	if !explicit {
		path = DefaultPath()
	}
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) && !explicit {
		c := Default()
		return c, c.Validate()
	}
	if err != nil {
		return nil, err
	}
	c, err := parse(path, data)
	if err != nil {
		return nil, err
	}
	return c, nil
}

var yamlLine = regexp.MustCompile(`^(?:yaml: )?line (\d+): (.*)$`)

func parse(path string, data []byte) (*Config, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, fileError(path, err)
	}
	c := Default()
	if len(doc.Content) == 0 {
		return c, c.Validate() // an empty file
	}
	root := doc.Content[0]
	if root.Kind != yaml.MappingNode {
		return nil, fmt.Errorf("%s:%d: want a mapping of settings", path, root.Line)
	}
	if err := checkKeys(root, reflect.TypeFor[Config](), ""); err != nil {
		return nil, fmt.Errorf("%s:%w", path, err)
	}
	if err := root.Decode(c); err != nil {
		return nil, fileError(path, err)
	}
	if err := c.Validate(); err != nil {
		var fe *fieldError
		if errors.As(err, &fe) {
			return nil, fmt.Errorf("%s:%d: %s", path, lineOf(root, fe.path), fe.msg)
		}
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return c, nil
}

// fileError rewrites yaml's "line N: msg" errors as "path:N: msg", the
// form editors jump to.
func fileError(path string, err error) error {
	var lines []string
	if te, ok := err.(*yaml.TypeError); ok {
		lines = te.Errors
	} else {
		lines = []string{err.Error()}
	}
	m := yamlLine.FindStringSubmatch(lines[0])
	if m == nil {
		return fmt.Errorf("%s: %s", path, strings.TrimPrefix(lines[0], "yaml: "))
	}
	return fmt.Errorf("%s:%s: %s", path, m[1], m[2])
}

// fieldError is a validation problem at a path of keys ("upstreams",
// "fs", "url"), so Load can point at its line.
type fieldError struct {
	path []string
	msg  string
}

func (e *fieldError) Error() string { return e.msg }

func errAt(msg string, path ...string) error { return &fieldError{path: path, msg: msg} }

// lineOf finds the line of the deepest node along path.
func lineOf(n *yaml.Node, path []string) int {
	line := n.Line
	for _, key := range path {
		switch n.Kind {
		case yaml.MappingNode:
			var next *yaml.Node
			for i := 0; i+1 < len(n.Content); i += 2 {
				if n.Content[i].Value == key {
					line, next = n.Content[i].Line, n.Content[i+1]
				}
			}
			if next == nil {
				return line
			}
			n = next
		case yaml.SequenceNode:
			i, err := strconv.Atoi(key)
			if err != nil || i >= len(n.Content) {
				return line
			}
			n = n.Content[i]
			line = n.Line
		default:
			return line
		}
	}
	return line
}

var upstreamName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]*$`)

// Validate checks the configuration and returns its first problem, in one
// line that names what to fix.
func (c *Config) Validate() error {
	// In the order of the sections' checks: the first error found is the
	// one reported.
	for _, check := range []func() error{
		c.validateListeners,
		c.validateSSHRoles,
		c.validateTracing,
		c.validateApprovals,
		c.validateLimits,
		c.validateOrigins,
		c.validateUpstreams,
		c.validateTokens,
		c.validateJWT,
		c.validateExposure,
		c.validateRedact,
		c.validateStore,
		c.validateSinks,
		c.validateCollect,
		c.validateDetections,
	} {
		if err := check(); err != nil {
			return err
		}
	}
	return nil
}

// validateListeners checks the addresses the daemon listens on.
func (c *Config) validateListeners() error {
	if err := hostPort(c.Listen); err != nil {
		return errAt(fmt.Sprintf("listen %q: %v", c.Listen, err), "listen")
	}
	if err := hostPort(c.SSH); err != nil {
		return errAt(fmt.Sprintf("ssh %q: %v", c.SSH, err), "ssh")
	}
	if c.Metrics.Listen != "" {
		if err := hostPort(c.Metrics.Listen); err != nil {
			return errAt(fmt.Sprintf("metrics: listen %q: %v", c.Metrics.Listen, err), "metrics", "listen")
		}
		if err := c.Metrics.RemoteAllowed(); err != nil {
			return errAt(err.Error(), "metrics", "listen")
		}
	}
	return nil
}

func (c *Config) validateSSHRoles() error {
	for fp, role := range c.SSHRoles {
		if !strings.HasPrefix(fp, "SHA256:") || len(fp) < len("SHA256:")+43 {
			return errAt(fmt.Sprintf("ssh_roles: %q is not a key fingerprint as `ssh-keygen -lf KEY` prints it (SHA256:…)", fp), "ssh_roles", fp)
		}
		if role != "operator" && role != "viewer" {
			return errAt(fmt.Sprintf("ssh_roles: %s: role %q (want operator or viewer)", fp, role), "ssh_roles", fp)
		}
	}
	return nil
}

func (c *Config) validateTracing() error {
	if c.Tracing.OTLPEndpoint != "" {
		if u, err := url.Parse(c.Tracing.OTLPEndpoint); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return errAt(fmt.Sprintf("tracing: otlp_endpoint %q: want http(s)://host:port", c.Tracing.OTLPEndpoint), "tracing", "otlp_endpoint")
		}
	}
	if c.Tracing.SampleRatio < 0 || c.Tracing.SampleRatio > 1 {
		return errAt(fmt.Sprintf("tracing: sample_ratio %v: want 0 to 1", c.Tracing.SampleRatio), "tracing", "sample_ratio")
	}
	return nil
}

func (c *Config) validateApprovals() error {
	if _, err := approval.Compile(c.Approvals); err != nil {
		var re *approval.RuleError
		if errors.As(err, &re) {
			return errAt(err.Error(), "approvals", strconv.Itoa(re.Index), re.Field)
		}
		return errAt(err.Error(), "approvals")
	}
	return nil
}

// validateLimits checks durability and what one call, message or client
// may cost.
func (c *Config) validateLimits() error {
	if c.Durability != "strict" && c.Durability != "batch" {
		return errAt(fmt.Sprintf("durability %q: want strict or batch", c.Durability), "durability")
	}
	if c.BatchWindow < 0 {
		return errAt("batch_window: must not be negative", "batch_window")
	}
	if c.CallTimeout < 0 {
		return errAt("call_timeout: must not be negative", "call_timeout")
	}
	if c.MaxMessageBytes <= 0 {
		return errAt(fmt.Sprintf("max_message_bytes %d: must be positive", c.MaxMessageBytes), "max_message_bytes")
	}
	if c.MaxDepth <= 0 || c.MaxDepth > 1000 {
		// Past 1,000 the go-sdk refuses what the gateway would pass on.
		return errAt(fmt.Sprintf("max_depth %d: must be between 1 and 1000", c.MaxDepth), "max_depth")
	}
	if c.MaxSessions <= 0 {
		return errAt(fmt.Sprintf("max_sessions %d: must be positive", c.MaxSessions), "max_sessions")
	}
	if c.MaxSessionsPerPrincipal <= 0 || c.MaxSessionsPerPrincipal > c.MaxSessions {
		return errAt(fmt.Sprintf("max_sessions_per_principal %d: must be positive and at most max_sessions (%d)", c.MaxSessionsPerPrincipal, c.MaxSessions), "max_sessions_per_principal")
	}
	return nil
}

func (c *Config) validateOrigins() error {
	for i, o := range c.AllowedOrigins {
		u, err := url.Parse(o)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || strings.TrimSuffix(u.Path, "/") != "" || u.RawQuery != "" {
			return errAt(fmt.Sprintf("allowed_origins: %q is not an origin such as https://app.example.com", o), "allowed_origins", strconv.Itoa(i))
		}
	}
	return nil
}

func (c *Config) validateUpstreams() error {
	for _, name := range sortedKeys(c.Upstreams) {
		if err := checkUpstream(name, c.Upstreams[name]); err != nil {
			return errAt(fmt.Sprintf("upstream %q: %v", name, err), "upstreams", name)
		}
	}
	return nil
}

// validateTokens checks each bearer token, and that no two name the same
// secret (a token must name one agent).
func (c *Config) validateTokens() error {
	seen := map[[32]byte]int{}
	for i, t := range c.Tokens {
		switch {
		case t.Token != "" && t.TokenEnv != "":
			return tokenError(i, "set token or token_env, not both", "token")
		case t.Token == "" && t.TokenEnv == "":
			return tokenError(i, "needs token_env (or token)", "")
		case t.Agent == "":
			return tokenError(i, "needs agent: the agent this token belongs to", "")
		}
		secret := t.secret()
		if secret == "" {
			return tokenError(i, fmt.Sprintf("token_env %s is not set in the environment", t.TokenEnv), "token_env")
		}
		h := sha256.Sum256([]byte(secret))
		if j, dup := seen[h]; dup {
			return tokenError(i, fmt.Sprintf("same token as tokens[%d]: a token must name one agent", j), "")
		}
		seen[h] = i
	}
	return nil
}

// tokenError is an error in tokens[i], at field ("": the entry).
func tokenError(i int, msg, field string) error {
	return errAt(fmt.Sprintf("tokens[%d]: %s", i, msg), "tokens", strconv.Itoa(i), field)
}

func (c *Config) validateJWT() error {
	if c.JWT == nil {
		return nil
	}
	j := c.JWT
	switch {
	case j.HS256SecretEnv == "" && len(j.PublicKeys) == 0:
		return errAt("jwt: needs hs256_secret_env or public_keys", "jwt")
	case j.HS256SecretEnv != "" && os.Getenv(j.HS256SecretEnv) == "":
		return errAt(fmt.Sprintf("jwt: hs256_secret_env %s is not set in the environment", j.HS256SecretEnv), "jwt", "hs256_secret_env")
	}
	for i, f := range j.PublicKeys {
		if _, err := identity.LoadPublicKeys([]string{f}); err != nil {
			return errAt(fmt.Sprintf("jwt: public_keys: %v", err), "jwt", "public_keys", strconv.Itoa(i))
		}
	}
	return nil
}

// validateExposure refuses a listener beyond loopback that anyone could
// use: it needs tokens or JWTs.
func (c *Config) validateExposure() error {
	if !IsLoopback(c.Listen) && len(c.Tokens) == 0 && c.JWT == nil {
		return errAt(fmt.Sprintf("listening on %s needs tokens: add tokens: or jwt: to the config, or listen on 127.0.0.1", c.Listen), "listen")
	}
	return nil
}

func (c *Config) validateRedact() error {
	if _, err := redact.New(c.Redact); err != nil {
		return errAt(err.Error(), "redact")
	}
	return nil
}

func (c *Config) validateSinks() error {
	for i, s := range c.Sinks {
		if _, err := siem.ParseSinkURL(s); err != nil {
			msg := err.Error()
			var se *siem.SinkError
			if errors.As(err, &se) {
				msg = fmt.Sprintf("%q: %s", se.URL, se.Reason)
			}
			return errAt("sinks: "+msg, "sinks", strconv.Itoa(i))
		}
	}
	return nil
}

func (c *Config) validateDetections() error {
	for i, f := range c.Detections.Files {
		data, err := os.ReadFile(f)
		if err != nil {
			return errAt(fmt.Sprintf("detections: files: %v", err), "detections", "files", strconv.Itoa(i))
		}
		if _, err := detect.ParseRules(data); err != nil { // the rules file's own line, in one line
			return errAt("detections: files: "+fileError(f, err).Error(), "detections", "files", strconv.Itoa(i))
		}
	}
	if _, err := c.Detections.Load(); err != nil {
		return errAt(err.Error(), "detections")
	}
	return nil
}

func hostPort(addr string) error {
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		return errors.New("want host:port")
	}
	if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		return fmt.Errorf("port %q is not a number from 0 to 65535", port)
	}
	return nil
}

func checkUpstream(name string, u Upstream) error {
	if !upstreamName.MatchString(name) {
		return errors.New("name must be letters, digits, '.', '_' or '-' (it is a URL path segment)")
	}
	switch {
	case (u.URL == "") == (len(u.Command) == 0):
		return errors.New("needs exactly one of url or command")
	case u.URL != "":
		p, err := url.Parse(u.URL)
		if err != nil || (p.Scheme != "http" && p.Scheme != "https") || p.Host == "" {
			return fmt.Errorf("url %q: want http:// or https:// with a host", u.URL)
		}
		if len(u.Env) > 0 || u.Dir != "" {
			return errors.New("env and dir are for command upstreams")
		}
	default:
		if u.Command[0] == "" {
			return errors.New("command: empty program name")
		}
		if len(u.Headers) > 0 {
			return errors.New("headers are for url upstreams")
		}
	}
	return nil
}

// IsLoopback reports whether an address (host:port, or a bare host) is on
// this machine only. An empty host means every interface, so it is not.
func IsLoopback(hostport string) bool {
	host, _, err := net.SplitHostPort(hostport)
	if err != nil {
		host = strings.Trim(hostport, "[]")
	}
	if strings.EqualFold(strings.TrimSuffix(host, "."), "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func (t *Token) secret() string {
	if t.TokenEnv != "" {
		return os.Getenv(t.TokenEnv)
	}
	return t.Token
}

// ResolveToken finds the configured token equal to token. It compares
// SHA-256 digests in constant time and checks every entry, so neither the
// token's length nor its position in the list shows in the timing. The
// result is a copy with Subject defaulted to Agent.
func (c *Config) ResolveToken(token string) (*Token, bool) {
	if token == "" {
		return nil, false
	}
	want := sha256.Sum256([]byte(token))
	var found *Token
	for i := range c.Tokens {
		secret := c.Tokens[i].secret()
		have := sha256.Sum256([]byte(secret))
		if subtle.ConstantTimeCompare(want[:], have[:]) == 1 && secret != "" && found == nil {
			found = &c.Tokens[i]
		}
	}
	if found == nil {
		return nil, false
	}
	t := *found
	if t.Subject == "" {
		t.Subject = t.Agent
	}
	return &t, true
}

// ParseUpstream parses an --upstream flag: "NAME=http://host:port/path"
// or "NAME=stdio:CMD ARG...", the command split as a shell would.
func ParseUpstream(flag string) (name string, u Upstream, err error) {
	name, spec, ok := strings.Cut(flag, "=")
	if !ok || name == "" || spec == "" {
		return "", Upstream{}, fmt.Errorf("--upstream %q: want NAME=URL or NAME=stdio:COMMAND", flag)
	}
	if cmd, ok := strings.CutPrefix(spec, "stdio:"); ok {
		argv, err := splitArgs(cmd)
		if err != nil {
			return "", Upstream{}, fmt.Errorf("--upstream %q: %v", flag, err)
		}
		u.Command = argv
	} else {
		u.URL = spec
	}
	if err := checkUpstream(name, u); err != nil {
		return "", Upstream{}, fmt.Errorf("--upstream %q: %v", flag, err)
	}
	return name, u, nil
}

// AddUpstream adds an --upstream flag to the configured upstreams. A name
// already configured is an error: silently replacing a server would
// record calls under the wrong upstream.
func (c *Config) AddUpstream(flag string) error {
	name, u, err := ParseUpstream(flag)
	if err != nil {
		return err
	}
	if _, dup := c.Upstreams[name]; dup {
		return fmt.Errorf("--upstream %q: upstream %q is already configured", flag, name)
	}
	if c.Upstreams == nil {
		c.Upstreams = map[string]Upstream{}
	}
	c.Upstreams[name] = u
	return nil
}

// splitArgs splits a command line as a POSIX shell does, without any
// expansion: whitespace separates words, single quotes keep everything,
// double quotes keep all but \" \\ \$ \`, and a backslash outside quotes
// keeps the next character.
func splitArgs(s string) ([]string, error) {
	var args []string
	var cur strings.Builder
	inWord := false
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n':
			if inWord {
				args = append(args, cur.String())
				cur.Reset()
				inWord = false
			}
		case c == '\'':
			end := strings.IndexByte(s[i+1:], '\'')
			if end < 0 {
				return nil, errors.New("unterminated ' quote")
			}
			cur.WriteString(s[i+1 : i+1+end])
			i += end + 1
			inWord = true
		case c == '"':
			i++
			for ; i < len(s) && s[i] != '"'; i++ {
				if s[i] == '\\' && i+1 < len(s) && strings.IndexByte("\"\\$`", s[i+1]) >= 0 {
					i++
				}
				cur.WriteByte(s[i])
			}
			if i == len(s) {
				return nil, errors.New("unterminated \" quote")
			}
			inWord = true
		case c == '\\':
			if i+1 == len(s) {
				return nil, errors.New("trailing backslash")
			}
			i++
			cur.WriteByte(s[i])
			inWord = true
		default:
			cur.WriteByte(c)
			inWord = true
		}
	}
	if inWord {
		args = append(args, cur.String())
	}
	if len(args) == 0 {
		return nil, errors.New("empty command")
	}
	return args, nil
}

func (c *Config) validateCollect() error {
	if c.Collect.URL != "" {
		if _, err := collect.ParseURL(c.Collect.URL); err != nil {
			msg := err.Error()
			var se *siem.SinkError
			if errors.As(err, &se) {
				msg = fmt.Sprintf("%q: %s", se.URL, se.Reason)
			}
			return errAt("collect: url: "+msg, "collect", "url")
		}
	}
	for id, k := range c.Collect.Keys {
		if _, err := note.NewVerifier(k); err != nil {
			return errAt(fmt.Sprintf("collect: keys: %s: %v (want the line `mcptrail verify --print-key` prints on that origin)", id, err), "collect", "keys", id)
		}
	}
	if c.Collect.PinnedOnly && len(c.Collect.Keys) == 0 {
		return errAt("collect: pinned_only needs keys", "collect", "pinned_only")
	}
	return nil
}
