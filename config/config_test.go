package config

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/mcptrail/mcptrail/ingest/redact"
)

func writeConfig(t *testing.T, text string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "config.yaml")
	if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestDefault(t *testing.T) {
	c := Default()
	if c.Listen != "127.0.0.1:7420" || c.SSH != "127.0.0.1:2222" || c.Durability != "strict" ||
		time.Duration(c.BatchWindow) != 2*time.Millisecond || c.MaxMessageBytes != 4<<20 {
		t.Errorf("Default() = %+v", c)
	}
	if err := c.Validate(); err != nil {
		t.Errorf("Default().Validate() = %v", err)
	}
}

func TestLoadFull(t *testing.T) {
	t.Setenv("MCPTRAIL_TEST_TOKEN", "tok-from-env")
	t.Setenv("MCPTRAIL_TEST_HS", "hs-secret")
	path := writeConfig(t, `
listen: 0.0.0.0:8080
ssh: "[::1]:2022"
authorized_keys: /etc/mcptrail/authorized_keys
durability: batch
batch_window: 5ms
max_message_bytes: 1048576
max_depth: 64
allowed_origins: [https://console.example.com]
upstreams:
  fs:
    command: [npx, -y, "@modelcontextprotocol/server-filesystem", /srv/data]
    env: {NODE_ENV: production}
    dir: /srv
  search:
    url: https://search.internal.example.com/mcp
    headers: {Authorization: Bearer upstream-credential}
tokens:
  - token_env: MCPTRAIL_TEST_TOKEN
    agent: claude-code
    on_behalf_of: alice@example.com
  - token: literal-token
    agent: ci-bot
    subject: svc-ci
jwt:
  issuer: https://idp.example.com
  audience: mcptrail
  hs256_secret_env: MCPTRAIL_TEST_HS
redact:
  keys: [ssn]
  patterns: ['cust-[0-9]{6}']
sinks:
  - syslog+tcp://siem.example.com:514?format=cef
`)
	c, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	want := &Config{
		Listen:          "0.0.0.0:8080",
		SSH:             "[::1]:2022",
		AuthorizedKeys:  "/etc/mcptrail/authorized_keys",
		Durability:      "batch",
		BatchWindow:     Duration(5 * time.Millisecond),
		MaxMessageBytes: 1 << 20,
		MaxDepth:        64, MaxSessions: 256, MaxSessionsPerPrincipal: 32,
		AllowedOrigins: []string{"https://console.example.com"},
		Upstreams: map[string]Upstream{
			"fs": {Command: []string{"npx", "-y", "@modelcontextprotocol/server-filesystem", "/srv/data"},
				Env: map[string]string{"NODE_ENV": "production"}, Dir: "/srv"},
			"search": {URL: "https://search.internal.example.com/mcp",
				Headers: map[string]string{"Authorization": "Bearer upstream-credential"}},
		},
		Tokens: []Token{
			{TokenEnv: "MCPTRAIL_TEST_TOKEN", Agent: "claude-code", OnBehalfOf: "alice@example.com"},
			{Token: "literal-token", Agent: "ci-bot", Subject: "svc-ci"},
		},
		JWT:     &JWT{Issuer: "https://idp.example.com", Audience: "mcptrail", HS256SecretEnv: "MCPTRAIL_TEST_HS"},
		Redact:  redact.Rules{Keys: []string{"ssn"}, Patterns: []string{"cust-[0-9]{6}"}},
		Sinks:   []string{"syslog+tcp://siem.example.com:514?format=cef"},
		Metrics: Metrics{ToolLabel: true}, // the default, which the file leaves alone
		Tracing: Tracing{SampleRatio: 1},  // the default, which the file leaves alone
	}
	if !reflect.DeepEqual(c, want) {
		t.Errorf("Load =\n%+v\nwant\n%+v", c, want)
	}
	ks, err := c.JWT.KeySet()
	if err != nil || string(ks.HS256[0]) != "hs-secret" || ks.Issuer != "https://idp.example.com" || ks.Audience != "mcptrail" {
		t.Errorf("KeySet = %+v, %v", ks, err)
	}
}

func TestLoadKeepsDefaults(t *testing.T) {
	c, err := Load(writeConfig(t, "durability: batch\n"))
	if err != nil {
		t.Fatal(err)
	}
	want := Default()
	want.Durability = "batch"
	if !reflect.DeepEqual(c, want) {
		t.Errorf("Load = %+v", c)
	}
	for _, empty := range []string{"", "# nothing yet\n"} {
		if c, err := Load(writeConfig(t, empty)); err != nil || !reflect.DeepEqual(c, Default()) {
			t.Errorf("empty file: %+v, %v", c, err)
		}
	}
}

func TestLoadMissing(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "nope.yaml")
	if _, err := Load(missing); err == nil || !strings.Contains(err.Error(), "nope.yaml") {
		t.Errorf("explicit missing file: %v", err)
	}
	// No --config and no file where one would be: the defaults.
	t.Setenv("XDG_CONFIG_HOME", t.TempDir())
	c, err := Load("")
	if err != nil || !reflect.DeepEqual(c, Default()) {
		t.Errorf("Load(\"\") = %+v, %v", c, err)
	}
	// ...and a file there is read.
	dir := filepath.Join(os.Getenv("XDG_CONFIG_HOME"), "mcptrail")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "config.yaml"), []byte("listen: 127.0.0.1:9999\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if c, err := Load(""); err != nil || c.Listen != "127.0.0.1:9999" {
		t.Errorf("Load(\"\") = %+v, %v", c, err)
	}
}

func TestLoadErrorsNameTheLine(t *testing.T) {
	t.Setenv("MCPTRAIL_UNSET_TOKEN", "")
	tests := []struct{ name, text, want string }{
		{"unknown top-level key", "listen: 127.0.0.1:1\n\n\nlistn: 0.0.0.0:1\n", `:4: unknown key "listn"`},
		{"unknown upstream key", "upstreams:\n  fs:\n    command: [x]\n    cmd: [y]\n", `:4: unknown key "cmd" in upstreams.fs`},
		{"unknown token key", "tokens:\n  - token: t\n    agent: a\n    agnet: b\n", `:4: unknown key "agnet" in tokens[0]`},
		{"unknown jwt key", "jwt:\n  issuer: x\n  audiences: y\n", `:3: unknown key "audiences" in jwt`},
		{"unknown redact key", "redact:\n  key: [x]\n", `:2: unknown key "key" in redact`},
		{"syntax", "listen: [\n", `:1: did not find expected node content`},
		{"type", "ssh: 127.0.0.1:2\nmax_message_bytes: lots\n", ":2: cannot unmarshal !!str `lots` into int"},
		{"duration", "listen: 127.0.0.1:1\nbatch_window: fast\n", `:2: "fast" is not a duration`},
		{"top level not a mapping", "- a\n- b\n", `:1: want a mapping`},
		{"bad listen", "ssh: 127.0.0.1:2\nlisten: nowhere\n", `:2: listen "nowhere": want host:port`},
		{"durability", "durability: eventually\n", `:1: durability "eventually": want strict or batch`},
		{"upstream both", "upstreams:\n  fs:\n    url: http://x/mcp\n    command: [x]\n", `:2: upstream "fs": needs exactly one of url or command`},
		{"token env unset", "tokens:\n  - agent: a\n    token: x\n  - agent: b\n    token_env: MCPTRAIL_UNSET_TOKEN\n",
			`:5: tokens[1]: token_env MCPTRAIL_UNSET_TOKEN is not set in the environment`},
		{"non-loopback", "durability: batch\nlisten: 0.0.0.0:7420\n", `:2: listening on 0.0.0.0:7420 needs tokens:`},
		{"session caps", "max_sessions: 8\nmax_sessions_per_principal: 9\n", `:2: max_sessions_per_principal 9: must be positive and at most max_sessions (8)`},
		{"bad redact pattern", "redact:\n  patterns: ['(']\n", `:1: redact: pattern "("`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := writeConfig(t, tt.text)
			_, err := Load(path)
			if err == nil {
				t.Fatal("loaded")
			}
			if !strings.HasPrefix(err.Error(), path+tt.want) {
				t.Errorf("error %q\nwant prefix %q", err, path+tt.want)
			}
			if strings.Contains(err.Error(), "\n") {
				t.Errorf("error is not one line: %q", err)
			}
		})
	}
}

func TestValidate(t *testing.T) {
	t.Setenv("MCPTRAIL_SET", "value")
	t.Setenv("MCPTRAIL_EMPTY", "")
	key := writePublicKey(t)
	tests := []struct {
		name string
		edit func(c *Config)
		want string // "" = valid
	}{
		{"defaults", func(c *Config) {}, ""},
		{"port 0 for tests", func(c *Config) { c.Listen = "127.0.0.1:0" }, ""},
		{"listen no port", func(c *Config) { c.Listen = "127.0.0.1" }, `listen "127.0.0.1": want host:port`},
		{"listen bad port", func(c *Config) { c.Listen = "127.0.0.1:http" }, `port "http"`},
		{"listen port range", func(c *Config) { c.Listen = "127.0.0.1:70000" }, `port "70000"`},
		{"ssh", func(c *Config) { c.SSH = "" }, `ssh "": want host:port`},
		{"durability", func(c *Config) { c.Durability = "" }, `durability "": want strict or batch`},
		{"batch window", func(c *Config) { c.BatchWindow = -1 }, "batch_window"},
		{"max message", func(c *Config) { c.MaxMessageBytes = 0 }, "max_message_bytes 0"},
		{"max sessions", func(c *Config) { c.MaxSessions = 0 }, "max_sessions 0"},
		{"max sessions per principal", func(c *Config) { c.MaxSessionsPerPrincipal = -1 }, "max_sessions_per_principal -1"},
		{"per principal over total", func(c *Config) { c.MaxSessions, c.MaxSessionsPerPrincipal = 4, 5 }, "at most max_sessions (4)"},
		{"max depth", func(c *Config) { c.MaxDepth = 0 }, "max_depth 0"},
		{"max depth past the go-sdk's", func(c *Config) { c.MaxDepth = 1001 }, "max_depth 1001"},
		{"origin", func(c *Config) { c.AllowedOrigins = []string{"https://ok.example.com", "ok.example.com"} }, `allowed_origins: "ok.example.com"`},
		{"origin with path", func(c *Config) { c.AllowedOrigins = []string{"https://ok.example.com/app"} }, `allowed_origins`},
		{"upstream neither", func(c *Config) { c.Upstreams = map[string]Upstream{"fs": {}} }, `upstream "fs": needs exactly one of url or command`},
		{"upstream scheme", func(c *Config) { c.Upstreams = map[string]Upstream{"a": {URL: "ftp://x/"}} }, `upstream "a": url "ftp://x/"`},
		{"upstream no host", func(c *Config) { c.Upstreams = map[string]Upstream{"a": {URL: "http:///mcp"}} }, `want http:// or https:// with a host`},
		{"upstream name", func(c *Config) { c.Upstreams = map[string]Upstream{"a/b": {URL: "http://x/"}} }, `upstream "a/b": name`},
		{"upstream headers on command", func(c *Config) {
			c.Upstreams = map[string]Upstream{"a": {Command: []string{"x"}, Headers: map[string]string{"A": "b"}}}
		}, "headers are for url upstreams"},
		{"upstream env on url", func(c *Config) {
			c.Upstreams = map[string]Upstream{"a": {URL: "http://x/", Env: map[string]string{"A": "b"}}}
		}, "env and dir are for command upstreams"},
		{"upstream empty argv0", func(c *Config) { c.Upstreams = map[string]Upstream{"a": {Command: []string{""}}} }, "empty program name"},
		{"token both", func(c *Config) { c.Tokens = []Token{{Token: "a", TokenEnv: "MCPTRAIL_SET", Agent: "x"}} }, "tokens[0]: set token or token_env, not both"},
		{"token neither", func(c *Config) { c.Tokens = []Token{{Agent: "x"}} }, "tokens[0]: needs token_env"},
		{"token no agent", func(c *Config) { c.Tokens = []Token{{Token: "a"}} }, "tokens[0]: needs agent"},
		{"token env unset", func(c *Config) { c.Tokens = []Token{{TokenEnv: "MCPTRAIL_NOT_SET_ANYWHERE", Agent: "x"}} }, "token_env MCPTRAIL_NOT_SET_ANYWHERE is not set"},
		{"token env empty", func(c *Config) { c.Tokens = []Token{{TokenEnv: "MCPTRAIL_EMPTY", Agent: "x"}} }, "token_env MCPTRAIL_EMPTY is not set"},
		{"token duplicate", func(c *Config) {
			c.Tokens = []Token{{Token: "value", Agent: "x"}, {TokenEnv: "MCPTRAIL_SET", Agent: "y"}}
		}, "tokens[1]: same token as tokens[0]"},
		{"jwt empty", func(c *Config) { c.JWT = &JWT{Issuer: "x"} }, "jwt: needs hs256_secret_env or public_keys"},
		{"jwt env unset", func(c *Config) { c.JWT = &JWT{HS256SecretEnv: "MCPTRAIL_EMPTY"} }, "hs256_secret_env MCPTRAIL_EMPTY is not set"},
		{"jwt key missing", func(c *Config) { c.JWT = &JWT{PublicKeys: []string{"/nonexistent/key.pem"}} }, "jwt: public_keys"},
		{"jwt key ok", func(c *Config) { c.JWT = &JWT{PublicKeys: []string{key}} }, ""},
		{"non-loopback without auth", func(c *Config) { c.Listen = ":7420" }, "listening on :7420 needs tokens: add tokens: or jwt:"},
		{"non-loopback with tokens", func(c *Config) {
			c.Listen = "0.0.0.0:7420"
			c.Tokens = []Token{{TokenEnv: "MCPTRAIL_SET", Agent: "x"}}
		}, ""},
		{"non-loopback with jwt", func(c *Config) {
			c.Listen = "10.0.0.1:7420"
			c.JWT = &JWT{HS256SecretEnv: "MCPTRAIL_SET"}
		}, ""},
		{"redact", func(c *Config) { c.Redact.Patterns = []string{"a(b"} }, `pattern "a(b"`},
		{"sink", func(c *Config) { c.Sinks = []string{"just-a-host"} }, `sinks: "just-a-host"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := Default()
			tt.edit(c)
			err := c.Validate()
			switch {
			case tt.want == "" && err != nil:
				t.Errorf("Validate() = %v", err)
			case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
				t.Errorf("Validate() = %v, want %q", err, tt.want)
			}
		})
	}
}

func writePublicKey(t *testing.T) string {
	t.Helper()
	pub, _, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "idp.pem")
	if err := os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestJWTKeySetLoadsPublicKeys(t *testing.T) {
	j := &JWT{PublicKeys: []string{writePublicKey(t)}}
	ks, err := j.KeySet()
	if err != nil || len(ks.Public) != 1 || ks.HS256 != nil {
		t.Errorf("KeySet = %+v, %v", ks, err)
	}
}

func TestParseUpstream(t *testing.T) {
	tests := []struct {
		flag string
		name string
		want Upstream
	}{
		{"search=http://127.0.0.1:9000/mcp", "search", Upstream{URL: "http://127.0.0.1:9000/mcp"}},
		{"api=https://mcp.example.com/v1?x=a=b", "api", Upstream{URL: "https://mcp.example.com/v1?x=a=b"}},
		{"fs=stdio:npx -y @modelcontextprotocol/server-filesystem /tmp", "fs",
			Upstream{Command: []string{"npx", "-y", "@modelcontextprotocol/server-filesystem", "/tmp"}}},
		{`fs=stdio:server --root '/srv/my data' --name "Team \"A\" \$HOME" plain\ space ''`, "fs",
			Upstream{Command: []string{"server", "--root", "/srv/my data", "--name", `Team "A" $HOME`, "plain space", ""}}},
		{`x=stdio:  a\\b   "c\d"  'e\f'  `, "x", Upstream{Command: []string{`a\b`, `c\d`, `e\f`}}},
		{`x=stdio:py"thon"3 -c 'print("hi")'`, "x", Upstream{Command: []string{"python3", "-c", `print("hi")`}}},
	}
	for _, tt := range tests {
		name, u, err := ParseUpstream(tt.flag)
		if err != nil || name != tt.name || !reflect.DeepEqual(u, tt.want) {
			t.Errorf("ParseUpstream(%q) = %q, %#v, %v\nwant %q, %#v", tt.flag, name, u, err, tt.name, tt.want)
		}
	}
	for flag, want := range map[string]string{
		"nothing":                 "want NAME=URL",
		"=http://x/":              "want NAME=URL",
		"a=":                      "want NAME=URL",
		"a=stdio:":                "empty command",
		"a=stdio:   ":             "empty command",
		`a=stdio:x 'unterminated`: "unterminated ' quote",
		`a=stdio:x "unterminated`: `unterminated " quote`,
		`a=stdio:x \`:             "trailing backslash",
		"a=ftp://x/":              `url "ftp://x/"`,
		"a=localhost:8080":        "want http:// or https://",
		"a b=http://x/":           "name must be",
	} {
		if _, _, err := ParseUpstream(flag); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("ParseUpstream(%q) = %v, want %q", flag, err, want)
		}
	}
}

func TestAddUpstream(t *testing.T) {
	c := Default()
	if err := c.AddUpstream("fs=stdio:mcp-fs /tmp"); err != nil {
		t.Fatal(err)
	}
	if err := c.AddUpstream("web=http://127.0.0.1:9000/mcp"); err != nil {
		t.Fatal(err)
	}
	if len(c.Upstreams) != 2 || c.Upstreams["fs"].Command[1] != "/tmp" {
		t.Errorf("Upstreams = %+v", c.Upstreams)
	}
	if err := c.AddUpstream("fs=http://127.0.0.1:1/"); err == nil || !strings.Contains(err.Error(), "already configured") {
		t.Errorf("duplicate: %v", err)
	}
	if err := c.AddUpstream("bad"); err == nil {
		t.Error("bad flag accepted")
	}
	if err := c.Validate(); err != nil {
		t.Error(err)
	}
}

func TestResolveToken(t *testing.T) {
	t.Setenv("MCPTRAIL_AGENT_TOKEN", "env-token-123")
	c := Default()
	c.Tokens = []Token{
		{Token: "literal-456", Agent: "ci-bot", Subject: "svc-ci"},
		{TokenEnv: "MCPTRAIL_AGENT_TOKEN", Agent: "claude-code", OnBehalfOf: "alice"},
		{TokenEnv: "MCPTRAIL_TOKEN_NOT_SET", Agent: "ghost"},
	}
	got, ok := c.ResolveToken("env-token-123")
	if !ok || got.Agent != "claude-code" || got.Subject != "claude-code" || got.OnBehalfOf != "alice" {
		t.Errorf("env token: %+v, %v", got, ok)
	}
	if c.Tokens[1].Subject != "" {
		t.Error("ResolveToken changed the config")
	}
	if got, ok := c.ResolveToken("literal-456"); !ok || got.Subject != "svc-ci" {
		t.Errorf("literal token: %+v, %v", got, ok)
	}
	for _, bad := range []string{"", "literal-45", "literal-4567", "MCPTRAIL_AGENT_TOKEN", "env-token-123 "} {
		if got, ok := c.ResolveToken(bad); ok {
			t.Errorf("ResolveToken(%q) = %+v", bad, got)
		}
	}
	// The environment is read when tokens are resolved.
	t.Setenv("MCPTRAIL_AGENT_TOKEN", "rotated")
	if _, ok := c.ResolveToken("rotated"); !ok {
		t.Error("rotated token not found")
	}
}

func TestPaths(t *testing.T) {
	home := t.TempDir()
	t.Setenv("HOME", home)
	t.Setenv("XDG_CONFIG_HOME", "")
	t.Setenv("XDG_STATE_HOME", "")
	t.Setenv("MCPTRAIL_HOME", "")

	if got, want := DefaultPath(), filepath.Join(home, ".config", "mcptrail", "config.yaml"); got != want {
		t.Errorf("DefaultPath = %q, want %q", got, want)
	}
	if got, want := DataDir(), filepath.Join(home, ".local", "state", "mcptrail"); got != want {
		t.Errorf("DataDir = %q, want %q", got, want)
	}

	t.Setenv("XDG_CONFIG_HOME", "relative/ignored")
	t.Setenv("XDG_STATE_HOME", "relative/ignored")
	if DefaultPath() != filepath.Join(home, ".config", "mcptrail", "config.yaml") ||
		DataDir() != filepath.Join(home, ".local", "state", "mcptrail") {
		t.Error("relative XDG dirs were used")
	}

	t.Setenv("XDG_CONFIG_HOME", "/xdg/config")
	t.Setenv("XDG_STATE_HOME", "/xdg/state")
	if got := DefaultPath(); got != "/xdg/config/mcptrail/config.yaml" {
		t.Errorf("DefaultPath = %q", got)
	}
	if got := DataDir(); got != "/xdg/state/mcptrail" {
		t.Errorf("DataDir = %q", got)
	}

	t.Setenv("MCPTRAIL_HOME", "/tmp/x")
	if got := DataDir(); got != "/tmp/x" {
		t.Errorf("DataDir = %q, want MCPTRAIL_HOME", got)
	}
	t.Setenv("MCPTRAIL_HOME", "rel")
	wd, _ := os.Getwd()
	if got := DataDir(); got != filepath.Join(wd, "rel") {
		t.Errorf("DataDir = %q, want it absolute", got)
	}
}

func TestIsLoopback(t *testing.T) {
	for addr, want := range map[string]bool{
		"127.0.0.1:7420":   true,
		"127.1.2.3:80":     true,
		"[::1]:7420":       true,
		"localhost:7420":   true,
		"LocalHost.:1":     true,
		"localhost":        true,
		"::1":              true,
		"0.0.0.0:7420":     false,
		":7420":            false,
		"[::]:7420":        false,
		"10.0.0.1:7420":    false,
		"example.com:80":   false,
		"localhost.evil:1": false,
		"":                 false,
	} {
		if got := IsLoopback(addr); got != want {
			t.Errorf("IsLoopback(%q) = %v", addr, got)
		}
	}
}

func TestDurationYAMLRoundTrip(t *testing.T) {
	c, err := Load(writeConfig(t, "batch_window: 1m30s\n"))
	if err != nil {
		t.Fatal(err)
	}
	if time.Duration(c.BatchWindow) != 90*time.Second || c.BatchWindow.String() != "1m30s" {
		t.Errorf("duration: %v", c.BatchWindow)
	}
	if v, _ := c.BatchWindow.MarshalYAML(); v != "1m30s" {
		t.Errorf("MarshalYAML = %v", v)
	}
}

func TestTracingValidate(t *testing.T) {
	for _, bad := range []Tracing{
		{OTLPEndpoint: "127.0.0.1:4318", SampleRatio: 1},
		{OTLPEndpoint: "ftp://x", SampleRatio: 1},
		{OTLPEndpoint: "http://127.0.0.1:4318", SampleRatio: 1.5},
		{SampleRatio: -0.1},
	} {
		c := Default()
		c.Tracing = bad
		if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "tracing") {
			t.Errorf("%+v: %v, want a tracing error", bad, err)
		}
	}
	c := Default()
	c.Tracing.OTLPEndpoint = "http://127.0.0.1:4318"
	if err := c.Validate(); err != nil {
		t.Errorf("a good endpoint: %v", err)
	}
}
