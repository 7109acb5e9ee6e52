package main

import (
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// serve refuses a config file that `config check` refuses for its
// permissions: a world-readable file holding a token, or one others can
// write. The data directory is a plain file, so that a serve which wrongly
// accepted the config fails at once (on the directory) instead of running.
func TestServeRefusesAConfigCheckRefuses(t *testing.T) {
	serve := func(config string) (int, string) {
		var errOut strings.Builder
		code := run([]string{"serve", "--config", config}, strings.NewReader(""), io.Discard, &errOut)
		return code, errOut.String()
	}
	dir := t.TempDir()
	notADir := filepath.Join(dir, "home")
	os.WriteFile(notADir, nil, 0o600)
	t.Setenv("MCPTRAIL_HOME", notADir)
	for _, tc := range []struct {
		name, text string
		mode       os.FileMode
		want       string
	}{
		{"world-readable token", "listen: 127.0.0.1:0\nssh: 127.0.0.1:0\ntokens:\n  - agent: a\n    token: hunter2\n", 0o644, "chmod o-r"},
		{"group-writable", "listen: 127.0.0.1:0\nssh: 127.0.0.1:0\n", 0o664, "chmod go-w"},
	} {
		path := filepath.Join(dir, strings.ReplaceAll(tc.name, " ", "-")+".yaml")
		os.WriteFile(path, []byte(tc.text), 0o600)
		os.Chmod(path, tc.mode)
		code, errOut := serve(path)
		if code == 0 || !strings.Contains(errOut, tc.want) || !strings.Contains(errOut, path) {
			t.Errorf("%s: serve: exit %d: %s", tc.name, code, errOut)
		}
	}
	// The same file made private starts as far as the data directory.
	path := filepath.Join(dir, "ok.yaml")
	os.WriteFile(path, []byte("listen: 127.0.0.1:0\nssh: 127.0.0.1:0\ntokens:\n  - agent: a\n    token: hunter2\n"), 0o600)
	if code, errOut := serve(path); code == 0 || !strings.Contains(errOut, notADir) {
		t.Errorf("private config: serve: exit %d: %s", code, errOut)
	}
}

// `config check --help` prints the usage and exits 0; an unknown flag is
// a usage error (2), not a file named "--x" that does not exist.
func TestConfigCheckHelpAndFlags(t *testing.T) {
	var out, errOut strings.Builder
	if rc := run([]string{"config", "check", "--help"}, strings.NewReader(""), &out, &errOut); rc != 0 || !strings.Contains(out.String(), "usage: mcptrail config check [FILE]") {
		t.Fatalf("config check --help: exit %d, stdout %q, stderr %q", rc, out.String(), errOut.String())
	}
	out.Reset()
	errOut.Reset()
	if rc := run([]string{"config", "check", "--x"}, strings.NewReader(""), &out, &errOut); rc != 2 || !strings.Contains(errOut.String(), "unknown flag --x") {
		t.Fatalf("config check --x: exit %d, stderr %q", rc, errOut.String())
	}
}
