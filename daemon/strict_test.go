package daemon

import (
	"bytes"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mcptrail/mcptrail/config"
)

// StrictModes as sshd has them: the daemon does not start on a data
// directory or a file that someone other than its user (or root) could
// have written, and it never writes through a link planted in its data
// directory. Each refusal names the file and the fix.

func strictConfig() *config.Config {
	cfg := config.Default()
	cfg.Listen, cfg.SSH = "127.0.0.1:0", "127.0.0.1:0"
	return cfg
}

func startErr(t *testing.T, home string, cfg *config.Config) error {
	t.Helper()
	d, err := start(Options{Config: cfg, Home: home, Version: "test", Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err == nil {
		d.close()
	}
	return err
}

// readyHome is a data directory a daemon has started in once, so that
// its keys exist.
func readyHome(t *testing.T) string {
	t.Helper()
	home := filepath.Join(t.TempDir(), "home")
	if err := startErr(t, home, strictConfig()); err != nil {
		t.Fatal(err)
	}
	return home
}

func TestDaemonRefusesUnsafeFiles(t *testing.T) {
	for _, tc := range []struct {
		name string
		file string // relative to home
		mode os.FileMode
		fix  string // with the full path appended
	}{
		{"world-writable data directory", ".", 0o777, "chmod go-w "},
		{"group-writable data directory", ".", 0o770, "chmod go-w "},
		{"world-writable authorized_keys", AuthorizedKeysFile, 0o666, "chmod go-w "},
		{"group-writable authorized_keys", AuthorizedKeysFile, 0o620, "chmod go-w "},
		{"group-writable signing key", "signing.key", 0o660, "chmod go-w "},
		{"world-readable signing key", "signing.key", 0o644, "chmod 600 "},
		{"world-readable host key", HostKeyFile, 0o604, "chmod 600 "},
	} {
		t.Run(tc.name, func(t *testing.T) {
			home := readyHome(t)
			os.WriteFile(filepath.Join(home, AuthorizedKeysFile), nil, 0o600)
			path := filepath.Clean(filepath.Join(home, tc.file))
			if err := os.Chmod(path, tc.mode); err != nil {
				t.Fatal(err)
			}
			err := startErr(t, home, strictConfig())
			if err == nil {
				t.Fatalf("started with %s at mode %04o", path, tc.mode)
			}
			if !strings.Contains(err.Error(), path+":") || !strings.Contains(err.Error(), "fix: "+tc.fix+path) {
				t.Fatalf("the refusal does not name the file and its fix: %v", err)
			}
		})
	}
	// authorized_keys named in the config, outside the data directory.
	t.Run("configured authorized_keys", func(t *testing.T) {
		home := readyHome(t)
		keys := filepath.Join(t.TempDir(), "keys")
		os.WriteFile(keys, nil, 0o600)
		os.Chmod(keys, 0o666)
		cfg := strictConfig()
		cfg.AuthorizedKeys = keys
		if err := startErr(t, home, cfg); err == nil || !strings.Contains(err.Error(), "chmod go-w "+keys) {
			t.Fatalf("start: %v", err)
		}
	})
}

func TestDaemonRefusesADataDirectoryAnotherUserOwns(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skip("needs root to chown the directory to nobody")
	}
	for _, what := range []string{".", AuthorizedKeysFile, "signing.key"} {
		home := readyHome(t)
		os.WriteFile(filepath.Join(home, AuthorizedKeysFile), nil, 0o600)
		path := filepath.Clean(filepath.Join(home, what))
		if err := os.Chown(path, 65534, 65534); err != nil {
			t.Fatal(err)
		}
		err := startErr(t, home, strictConfig())
		if err == nil || !strings.Contains(err.Error(), path+": owned by uid 65534") || !strings.Contains(err.Error(), "fix: chown 0 "+path) {
			t.Fatalf("%s owned by nobody: %v", what, err)
		}
	}
}

func TestDataDirectoryCreated0700(t *testing.T) {
	home := filepath.Join(t.TempDir(), "a", "home")
	if err := startErr(t, home, strictConfig()); err != nil {
		t.Fatal(err)
	}
	for _, dir := range []string{home, filepath.Dir(home)} {
		if fi, err := os.Stat(dir); err != nil || fi.Mode().Perm() != 0o700 {
			t.Fatalf("%s: %v %v", dir, fi.Mode(), err)
		}
	}
}

// A link planted at the path of each file the daemon writes is refused,
// and what it points to is left as it was.
func TestDaemonRefusesPlantedLinks(t *testing.T) {
	for _, tc := range []struct {
		name  string
		fresh bool // plant in a new data directory (the file is created), else in one used before
	}{
		{"mcptrail.pid", false},
		{"mcptrail.sock", false},
		{"signing.key", false},
		{"signing.key.pub", true},
		{HostKeyFile, false},
		{HostKeyFile, true},
		{"mcptrail.db", true},
		{"mcptrail.db-wal", false},
		{"mcptrail.db-wal", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			home := filepath.Join(t.TempDir(), "home")
			if !tc.fresh {
				home = readyHome(t)
			} else if err := os.MkdirAll(home, 0o700); err != nil {
				t.Fatal(err)
			}
			target := filepath.Join(t.TempDir(), "precious")
			const content = "root:x:0:0:precious\n"
			os.WriteFile(target, []byte(content), 0o600)
			link := filepath.Join(home, tc.name)
			os.Remove(link)
			if err := os.Symlink(target, link); err != nil {
				t.Fatal(err)
			}
			err := startErr(t, home, strictConfig())
			if err == nil {
				t.Fatalf("started with %s planted as a link", tc.name)
			}
			if !strings.Contains(err.Error(), link) {
				t.Fatalf("the refusal does not name %s: %v", link, err)
			}
			if got, _ := os.ReadFile(target); string(got) != content {
				t.Fatalf("the link's target was written: %q", got)
			}
			if fi, err := os.Lstat(link); err != nil || fi.Mode()&os.ModeSymlink == 0 {
				t.Fatalf("the planted link was replaced, not refused: %v %v", fi, err)
			}
		})
	}
}

// The daemon's log, opened by the wrap that starts it in the background.
func TestEnsureRefusesAPlantedLogLink(t *testing.T) {
	home := filepath.Join(t.TempDir(), "home")
	os.MkdirAll(home, 0o700)
	target := filepath.Join(t.TempDir(), "precious")
	os.WriteFile(target, []byte("keep"), 0o600)
	os.Symlink(target, PathsFor(home).Log)
	_, err := Ensure(home, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "symbolic link") {
		t.Fatalf("Ensure: %v", err)
	}
	if got, _ := os.ReadFile(target); !bytes.Equal(got, []byte("keep")) {
		t.Fatalf("the target was written: %q", got)
	}
}

// Metrics beyond loopback only when the config says so, with a warning.
func TestMetricsListenerStaysOnLoopbackUnlessAllowed(t *testing.T) {
	cfg := strictConfig()
	cfg.Metrics.Listen = "0.0.0.0:0"
	err := startErr(t, t.TempDir(), cfg)
	if err == nil || !strings.Contains(err.Error(), "metrics.allow_remote: true") {
		t.Fatalf("start with metrics on 0.0.0.0: %v", err)
	}
	cfg.Metrics.AllowRemote = true
	var logs bytes.Buffer
	d, err := start(Options{Config: cfg, Home: t.TempDir(), Version: "test", Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	d.close()
	if !strings.Contains(logs.String(), "metrics are served beyond loopback with no authentication") {
		t.Fatalf("no warning in the log:\n%s", logs.String())
	}
	if err := config.Default().Metrics.RemoteAllowed(); err != nil {
		t.Fatal(err)
	}
}
