package config

import (
	"errors"
	"fmt"
	"net/url"
	"os"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/mcptrail/mcptrail/internal/safefile"
)

// Check is `mcptrail config check`: Load, then what only matters for the
// file as it sits on disk — permissions. A config file others can write
// lets them reroute the gateway; one everyone can read must not hold
// literal secrets; an authorized_keys file others can write lets them into
// the console. Errors name the file and line, as Load's do. (Group read is
// fine: the recommended layout is root:mcptrail 0640.)
func Check(path string) (*Config, error) {
	c, err := Load(path)
	if err != nil {
		return nil, err
	}
	fi, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, fileError(path, err)
	}
	root := &doc
	if len(doc.Content) > 0 {
		root = doc.Content[0]
	}
	mode := fi.Mode().Perm()
	if mode&0o022 != 0 {
		return nil, fmt.Errorf("%s:1: writable by group or others (mode %04o): whoever can edit it can reroute the gateway; chmod go-w %s", path, mode, path)
	}
	if err := safefile.Check(path, fi, safefile.Public); err != nil {
		return nil, fmt.Errorf("%s:1: whoever owns it can reroute the gateway: %w", path, err)
	}
	if mode&0o004 != 0 {
		if where, what := literalSecret(c); where != nil {
			return nil, fmt.Errorf("%s:%d: %s is a secret in a file everyone can read (mode %04o): take it from the environment (token_env) or chmod o-r %s",
				path, lineOf(root, where), what, mode, path)
		}
	}
	if c.AuthorizedKeys != "" {
		if err := safefile.CheckPath(c.AuthorizedKeys, safefile.Public); err != nil && !errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("%s:%d: authorized_keys: whoever can edit it can open the console: %w",
				path, lineOf(root, []string{"authorized_keys"}), err)
		}
	}
	return c, nil
}

// secretParams are sink URL query parameters that hold secrets (as
// siem masks them).
var secretParams = []string{"token", "password", "secret", "key_password", "apikey", "api_key"}

// literalSecret finds the first secret written in the config itself: a
// token, credentials in a sink URL, or an upstream's Authorization header.
func literalSecret(c *Config) (where []string, what string) {
	for i, t := range c.Tokens {
		if t.Token != "" {
			return []string{"tokens", strconv.Itoa(i), "token"}, fmt.Sprintf("tokens[%d].token", i)
		}
	}
	for i, s := range c.Sinks {
		u, err := url.Parse(s)
		if err != nil {
			continue
		}
		if u.User != nil {
			return []string{"sinks", strconv.Itoa(i)}, fmt.Sprintf("the credentials in sinks[%d]", i)
		}
		q := u.Query()
		for _, p := range secretParams {
			if q.Get(p) != "" {
				return []string{"sinks", strconv.Itoa(i)}, fmt.Sprintf("%s= in sinks[%d]", p, i)
			}
		}
	}
	for _, name := range sortedKeys(c.Upstreams) {
		for h := range c.Upstreams[name].Headers {
			if strings.EqualFold(h, "Authorization") || strings.Contains(strings.ToLower(h), "token") || strings.Contains(strings.ToLower(h), "key") {
				return []string{"upstreams", name, "headers", h}, fmt.Sprintf("upstreams.%s.headers.%s", name, h)
			}
		}
	}
	return nil, ""
}
