package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// `config check` names the line of each class of mistake: unknown keys
// (TestLoadErrorsNameTheLine has more), bad URLs and addresses, unreadable
// or broken rule files, and weak permissions.
func TestCheckNamesTheLineOfEachMistake(t *testing.T) {
	t.Setenv("MCPTRAIL_CHECK_TOKEN", "s3cret")
	dir := t.TempDir()
	badRules := filepath.Join(dir, "bad-rules.yaml")
	os.WriteFile(badRules, []byte("rules:\n  - id: x\n    typ: new_value\n"), 0o600)
	goodRules := filepath.Join(dir, "rules.yaml")
	os.WriteFile(goodRules, []byte("rules: []\n"), 0o600)
	unreadable := filepath.Join(dir, "unreadable.yaml")
	os.WriteFile(unreadable, []byte("rules: []\n"), 0o000)
	keys := filepath.Join(dir, "authorized_keys")
	os.WriteFile(keys, nil, 0o600)
	os.Chmod(keys, 0o666)

	tests := []struct {
		name, text string
		mode       os.FileMode
		want       string // prefix after the path; "" = no error
	}{
		{"unknown key", "listen: 127.0.0.1:1\nmetrics:\n  listen: 127.0.0.1:9\n  tool_labels: false\n", 0o600, `:4: unknown key "tool_labels" in metrics`},
		{"bad upstream url", "upstreams:\n  a: {command: [x]}\n  gh:\n    url: ftp://example.com/mcp\n", 0o600, `:3: upstream "gh": url "ftp://example.com/mcp"`},
		{"bad sink url", "sinks:\n  - file:///tmp/x.jsonl\n  - hec+https://\n", 0o600, `:3: sinks:`},
		{"bad origin", "allowed_origins:\n  - https://ok.example.com\n  - ok.example.com\n", 0o600, `:3: allowed_origins: "ok.example.com"`},
		{"bad metrics address", "listen: 127.0.0.1:1\nmetrics:\n  listen: localhost\n", 0o600, `:3: metrics: listen "localhost": want host:port`},
		{"missing rules file", "detections:\n  files:\n    - " + goodRules + "\n    - " + filepath.Join(dir, "nope.yaml") + "\n", 0o600, `:4: detections: files:`},
		{"rules that do not parse", "detections:\n  files: [" + badRules + "]\n", 0o600, `:2: detections: files: ` + badRules + `:3: field typ not found`},
		{"world-writable file", "listen: 127.0.0.1:1\n", 0o666, `:1: writable by group or others (mode 0666)`},
		{"group-writable file", "listen: 127.0.0.1:1\n", 0o620, `:1: writable by group or others (mode 0620)`},
		{"literal token, world-readable", "listen: 127.0.0.1:1\ntokens:\n  - agent: a\n    token: hunter2\n", 0o644, `:4: tokens[0].token is a secret in a file everyone can read (mode 0644)`},
		{"hec token in url, world-readable", "sinks:\n  - hec+https://TOKEN@splunk.example.com:8088\n", 0o644, `:2: the credentials in sinks[0] is a secret`},
		{"upstream auth header, world-readable", "upstreams:\n  gh:\n    url: https://x.example.com/mcp\n    headers:\n      Authorization: Bearer x\n", 0o604, `:5: upstreams.gh.headers.Authorization is a secret`},
		{"writable authorized_keys", "ssh: 127.0.0.1:2\nauthorized_keys: " + keys + "\n", 0o600, `:2: authorized_keys: whoever can edit it can open the console: ` + keys + `: writable by group or others (mode 0666); fix: chmod go-w ` + keys},
		{"metrics on every interface", "metrics:\n  listen: 0.0.0.0:9464\n", 0o600, `:2: metrics: listen "0.0.0.0:9464" is not a loopback address`},
		{"metrics on every interface, allowed", "metrics:\n  listen: 0.0.0.0:9464\n  allow_remote: true\n", 0o600, ""},
		{"ssh_roles: not a fingerprint", "ssh_roles:\n  alice: operator\n", 0o600, `:2: ssh_roles: "alice" is not a key fingerprint`},
		{"world-readable without secrets", "listen: 127.0.0.1:1\ntokens:\n  - {agent: a, token_env: MCPTRAIL_CHECK_TOKEN}\n", 0o644, ""},
		{"group-readable literal token", "listen: 127.0.0.1:1\ntokens:\n  - agent: a\n    token: hunter2\n", 0o640, ""},
	}
	if os.Getuid() != 0 {
		tests = append(tests, struct {
			name, text string
			mode       os.FileMode
			want       string
		}{"unreadable rules file", "detections:\n  files:\n    - " + unreadable + "\n", 0o600, `:3: detections: files: open ` + unreadable + `: permission denied`})
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := writeConfig(t, tt.text)
			if err := os.Chmod(path, tt.mode); err != nil {
				t.Fatal(err)
			}
			_, err := Check(path)
			if tt.want == "" {
				if err != nil {
					t.Fatalf("Check: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatal("no error")
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

// A config file another user owns can be rewritten by them whatever its
// mode: Check refuses it as sshd refuses such a file, naming the chown.
func TestCheckRefusesAConfigAnotherUserOwns(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skip("needs root to chown the file to nobody")
	}
	path := writeConfig(t, "listen: 127.0.0.1:1\n")
	if err := os.Chown(path, 65534, 65534); err != nil {
		t.Fatal(err)
	}
	_, err := Check(path)
	if err == nil || !strings.Contains(err.Error(), "owned by uid 65534") || !strings.Contains(err.Error(), "chown 0 "+path) {
		t.Fatalf("Check: %v", err)
	}
}
