package e2e

// Security controls through the built binary (SECURITY.md): real token
// shapes never reach the store or any sink format, and the daemon's data
// files are private to its user.

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mcptrail/mcptrail/siem/siemtest"
	"github.com/mcptrail/mcptrail/store"
	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// fakeSecrets are real token shapes, built at run time so the source holds
// none of them literally (secret scanners read test files too). Each value
// is what must not appear anywhere in the record or a sink.
func fakeSecrets() map[string]string {
	alnum := func(n int, seed byte) string {
		const set = "A7b9C3d5E1f2G8h4J6k0LmNpQrStUvWxYz"
		b := make([]byte, n)
		for i := range b {
			b[i] = set[(int(seed)*7+i*13)%len(set)]
		}
		return string(b)
	}
	upper := func(n int) string {
		const set = "QZ7XW3RT5YUP2KM4NB6V"
		b := make([]byte, n)
		for i := range b {
			b[i] = set[(i*7)%len(set)]
		}
		return string(b)
	}
	return map[string]string{
		"github":    "ghp_" + alnum(36, 1),
		"aws":       "AKIA" + upper(16),
		"slack":     "xoxb-1234567890-" + alnum(24, 2),
		"openai":    "sk-proj-" + alnum(40, 3),
		"anthropic": "sk-ant-api03-" + alnum(40, 4),
		"google":    "AIza" + alnum(35, 5),
		"jwt":       "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9." + alnum(43, 6),
		"bearer":    alnum(32, 7), // sent as "Authorization: Bearer <it>" inside the text
		"pem":       alnum(64, 8), // the body of a PEM private key
	}
}

// secretText embeds every secret the way it leaks in practice: in a .env
// file, a curl command, a config blob.
func secretText(s map[string]string) string {
	return "GITHUB_TOKEN=" + s["github"] + "\n" +
		"AWS_ACCESS_KEY_ID=" + s["aws"] + "\n" +
		"SLACK_BOT_TOKEN=" + s["slack"] + "\n" +
		"OPENAI_API_KEY=" + s["openai"] + "\n" +
		"ANTHROPIC_API_KEY=" + s["anthropic"] + "\n" +
		"GOOGLE_API_KEY=" + s["google"] + "\n" +
		"ID_TOKEN=" + s["jwt"] + "\n" +
		"curl -H 'Authorization: Bearer " + s["bearer"] + "' https://api.example.com\n" +
		"-----BEGIN RSA PRIVATE KEY-----\n" + s["pem"] + "\n-----END RSA PRIVATE KEY-----\n"
}

// TestSecurityRedactionEverywhere: an agent writes a file full of real token
// shapes through `mcptrail serve` and reads it back, so the secrets cross
// the gateway in a request's arguments and in a response's result. None of
// them may appear in the store (export in every format) nor in any sink:
// the OCSF, ECS, CEF and JSONL file sinks and RFC 5424 syslog with JSON
// payloads to a real rsyslog. The calls themselves work: the upstream gets
// the real content (redaction is for the record, not the traffic).
func TestSecurityRedactionEverywhere(t *testing.T) {
	t.Parallel()
	ctx := scenarioContext(t)
	secrets := fakeSecrets()
	content := secretText(secrets)

	rs := siemtest.StartRsyslog(t)
	in := newInstance(t)
	workspace := filepath.Join(filepath.Dir(in.Home), "ws")
	if err := os.MkdirAll(workspace, 0o700); err != nil {
		t.Fatal(err)
	}
	sinkDir := filepath.Join(in.Home, "siem")
	sinks := map[string]string{}
	args := []string{"--upstream", "ops=stdio:" + binary(t, "mcptrail") + " demo-server " + workspace,
		"--sink", "syslog+tcp://" + rs.Addr() + "?format=json&bodies=1"}
	for _, f := range []string{"ocsf", "ecs", "cef", "jsonl"} {
		sinks[f] = filepath.Join(sinkDir, "events."+f)
		args = append(args, "--sink", "file://"+sinks[f]+"?format="+f+"&bodies=1")
	}
	d := in.Serve(t, args...)

	client := mcp.NewClient(&mcp.Implementation{Name: "leaky-agent", Version: "1.0.0"}, nil)
	cs := connect(t, ctx, client, &mcp.StreamableClientTransport{Endpoint: d.Endpoint("ops")}, nil)
	if res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "write_file", Arguments: map[string]any{"path": ".env", "content": content}}); err != nil || res.IsError {
		t.Fatalf("write_file: %v %+v", err, res)
	}
	res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "read_file", Arguments: map[string]any{"path": ".env"}})
	if err != nil || res.IsError || len(res.Content) == 0 {
		t.Fatalf("read_file: %v %+v", err, res)
	}
	if got := res.Content[0].(*mcp.TextContent).Text; got != content {
		t.Fatalf("the agent got %q back, want the file unchanged (redaction is for the record only)", got)
	}
	if b, err := os.ReadFile(filepath.Join(workspace, "files", ".env")); err != nil || string(b) != content {
		t.Fatalf("the upstream wrote %q (%v), want the real content", b, err)
	}
	cs.Close()

	// Both calls' outcomes are in the record, with their secrets redacted.
	in.WaitEvents(t, func(events []store.Event) error {
		if n := len(outcomesOf(events, "write_file")) + len(outcomesOf(events, "read_file")); n != 2 {
			return fmt.Errorf("%d outcomes for write_file and read_file, want 2", n)
		}
		return nil
	})
	waitSinksCaughtUp(t, in)
	// rsyslog writes what it got a moment later than the sink's ack.
	pollUntil(10*time.Second, func() bool { return len(rs.Messages()) > 0 })

	outputs := map[string]string{}
	for _, f := range []string{"jsonl", "ocsf", "ecs", "cef"} {
		outputs["export "+f] = in.MustRun(t, "export", "--format", f).Stdout
		b, err := os.ReadFile(sinks[f])
		if err != nil {
			t.Fatalf("%s sink: %v", f, err)
		}
		outputs["sink "+f] = string(b)
	}
	outputs["syslog json"] = strings.Join(rs.Messages(), "\n")

	for where, out := range outputs {
		if !strings.Contains(out, "write_file") || !strings.Contains(out, "read_file") {
			t.Errorf("%s: the calls are missing, so the test checks nothing:\n%.2000s", where, out)
			continue
		}
		// Sinks carry bodies (bodies=1), so the redacted text must be
		// there; CEF never carries params or results (siem/cef.go), so
		// there the test can only show the secrets are absent.
		if !strings.HasSuffix(where, " cef") && !strings.Contains(out, "REDACTED") {
			t.Errorf("%s: no redaction marker; the redacted text never reached it", where)
		}
		for kind, s := range secrets {
			if strings.Contains(out, s) {
				t.Errorf("%s: the %s secret is there in clear", where, kind)
			}
		}
	}
	// The store holds the request arguments and the result, redacted: the
	// markers name each shape.
	var params, result string
	for _, ev := range in.Export(t) {
		switch {
		case ev.Kind == store.KindRequest && ev.Tool == "write_file":
			params = string(ev.Params)
		case ev.Kind == store.KindCall && ev.Tool == "read_file":
			result = string(ev.Result)
		}
	}
	for _, blob := range []struct{ name, text string }{{"write_file params", params}, {"read_file result", result}} {
		for _, marker := range []string{"[REDACTED:github", "[REDACTED:aws", "[REDACTED:private_key"} {
			if !strings.Contains(blob.text, marker) {
				t.Errorf("%s has no %s…] marker: %s", blob.name, marker, blob.text)
			}
		}
	}
}

// TestSecurityDataFilesArePrivate lets `mcptrail wrap` start the daemon in
// the background (as an agent's client does, so the daemon also writes its
// log file), makes a call, and checks every file in the data directory
// (store, signing key, SSH host key, socket, pid file, log, sink files under
// it) is readable by its user only, and every directory is 0700. The
// signing key's public half is the one file meant to be shared.
func TestSecurityDataFilesArePrivate(t *testing.T) {
	t.Parallel()
	ctx := scenarioContext(t)
	in := newInstance(t)
	in.WriteConfig(t, "sinks: [\"file://"+filepath.Join(in.Home, "siem", "events.jsonl")+"?format=jsonl\"]\n")
	transport, _ := in.Wrap(t, WrapOptions{Name: "conf"}, binary(t, "everything-server"))
	client := mcp.NewClient(&mcp.Implementation{Name: "perm-agent", Version: "1.0.0"}, nil)
	cs := connect(t, ctx, client, transport, nil)
	if _, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "test_simple_text"}); err != nil {
		t.Fatal(err)
	}
	waitSinksCaughtUp(t, in)

	seen := map[string]fs.FileMode{}
	err := filepath.WalkDir(in.Home, func(p string, e fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		info, err := os.Lstat(p)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(in.Home, p)
		mode := info.Mode()
		seen[rel] = mode
		switch {
		case mode.IsDir():
			if mode.Perm() != 0o700 {
				t.Errorf("directory %s has mode %v, want 0700", rel, mode.Perm())
			}
		case mode&fs.ModeSocket != 0:
			// A socket's own mode is advisory on some systems; the 0700
			// directory is the guard. Still, nobody else may connect.
			if mode.Perm()&0o077 != 0 {
				t.Errorf("socket %s has mode %v, want no group/other bits", rel, mode.Perm())
			}
		case strings.HasSuffix(rel, ".pub"):
			// A public key: world-readable is fine, writable by others is not.
			if mode.Perm()&0o022 != 0 {
				t.Errorf("%s has mode %v, want no group/other write", rel, mode.Perm())
			}
		default:
			if mode.Perm()&0o077 != 0 {
				t.Errorf("%s has mode %v, want 0600 (no group/other bits)", rel, mode.Perm())
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	// The files the threat model names must exist, or the test checks nothing.
	var names []string
	for rel := range seen {
		names = append(names, rel)
	}
	t.Logf("data directory: %v", seen)
	has := func(what string, match func(rel string, m fs.FileMode) bool) {
		for rel, m := range seen {
			if match(rel, m) {
				return
			}
		}
		t.Errorf("no %s in the data directory: %v", what, names)
	}
	has("store (mcptrail.db)", func(rel string, _ fs.FileMode) bool { return rel == "mcptrail.db" })
	has("socket", func(_ string, m fs.FileMode) bool { return m&fs.ModeSocket != 0 })
	has("pid file", func(rel string, _ fs.FileMode) bool { return strings.Contains(rel, "pid") })
	has("signing key", func(rel string, _ fs.FileMode) bool {
		return strings.Contains(rel, "sign") || strings.Contains(rel, "checkpoint")
	})
	has("SSH host key", func(rel string, _ fs.FileMode) bool { return strings.Contains(rel, "host") })
	has("daemon log", func(rel string, _ fs.FileMode) bool { return strings.HasSuffix(rel, ".log") })
	has("sink file", func(rel string, _ fs.FileMode) bool { return strings.HasSuffix(rel, "events.jsonl") })
}

func outcomesOf(events []store.Event, tool string) []store.Event {
	var out []store.Event
	for _, ev := range events {
		if ev.Kind == store.KindCall && ev.Tool == tool {
			out = append(out, ev)
		}
	}
	return out
}
