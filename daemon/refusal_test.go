package daemon

import (
	"bytes"
	"encoding/json"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mcptrail/mcptrail/config"
	"github.com/mcptrail/mcptrail/internal/testkit"
	"github.com/mcptrail/mcptrail/store"
)

// TestRefusalsThroughTheDaemon: through a real daemon, wrong credentials
// and a foreign Origin are refusal events with their reasons and the
// principal of a known token; the refusals reach a SIEM sink, a burst of
// them raises the default alert, and no refused credential is in the
// store's files, the sink or the daemon's log.
func TestRefusalsThroughTheDaemon(t *testing.T) {
	t.Setenv("AGENT_TOKEN", "tok-ci-agent-0123456789")
	t.Setenv("JWT_SECRET", "s3cret-for-tests")
	cfg := config.Default()
	cfg.Upstreams = map[string]config.Upstream{"echo": {Command: []string{echoServer(t)}}}
	cfg.Tokens = []config.Token{{TokenEnv: "AGENT_TOKEN", Agent: "ci-agent"}}
	cfg.JWT = &config.JWT{Issuer: "https://idp.test", HS256SecretEnv: "JWT_SECRET"}
	sinkFile := filepath.Join(t.TempDir(), "out.ocsf")
	cfg.Sinks = []string{"file://" + sinkFile + "?format=ocsf"}
	d, logs := startOpsDaemon(t, cfg)

	wrong := "wrong-SECRET-token-77f1c2"
	forged := testkit.HS256JWT("another-secret", map[string]any{"sub": "svc-42", "iss": "https://idp.test", "exp": time.Now().Add(time.Hour).Unix()})
	post := func(auth, origin string) int {
		req, _ := http.NewRequest(http.MethodPost, "http://"+d.listen+"/mcp/echo", strings.NewReader(`{"jsonrpc":"2.0","id":1,"method":"tools/list"}`))
		req.Header.Set("Content-Type", "application/json")
		if auth != "" {
			req.Header.Set("Authorization", "Bearer "+auth)
		}
		if origin != "" {
			req.Header.Set("Origin", origin)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if s := post(wrong, ""); s != 401 {
		t.Fatalf("wrong token: %d", s)
	}
	if s := post(forged, ""); s != 401 {
		t.Fatalf("forged JWT: %d", s)
	}
	if s := post("tok-ci-agent-0123456789", "https://evil.example"); s != 403 {
		t.Fatalf("foreign Origin: %d", s)
	}
	for range 9 { // 12 refusals from 127.0.0.1 in all; 11 of them for auth
		post(wrong, "")
	}

	if err := d.store.Flush(); err != nil {
		t.Fatal(err)
	}
	page, err := d.store.Query(store.Query{Kind: store.KindRefusal, Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	// The first 10 for auth and the one for origin: the 11th for auth is
	// held back for the summary (at the end of the minute, or at close).
	if len(page.Events) != 11 {
		t.Fatalf("%d refusal events, want 11", len(page.Events))
	}
	got := []string{}
	for _, ev := range page.Events[:3] {
		who := ""
		if ev.Principal != nil {
			who = ev.Principal.Subject
		}
		got = append(got, ev.Refusal.Reason+"/"+ev.Detail+"/"+who)
	}
	want := []string{"auth/unknown token/", "auth/invalid credential: jwt: bad signature/", "origin/Origin not allowed/ci-agent"}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("refusals %q, want %q", got, want)
	}
	var alert *store.Event
	deadline := time.Now().Add(10 * time.Second)
	for alert == nil && time.Now().Before(deadline) {
		d.store.Flush()
		p, _ := d.store.Query(store.Query{Kind: store.KindAlert, Limit: 10})
		for i, a := range p.Events {
			if bytes.Contains(a.Params, []byte("mcp-refusal-burst")) {
				alert = &p.Events[i]
			}
		}
		if alert == nil {
			time.Sleep(20 * time.Millisecond)
		}
	}
	if alert == nil || !strings.Contains(alert.Detail, `remote_addr "127.0.0.1"`) {
		t.Fatalf("no mcp-refusal-burst alert for 127.0.0.1: %+v", alert)
	}

	// The sink gets them as OCSF API Activity failures.
	var sink []byte
	for time.Now().Before(deadline.Add(10 * time.Second)) {
		sink, _ = os.ReadFile(sinkFile)
		if bytes.Count(sink, []byte(`"activity_name":"refusal"`)) >= 11 {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	n := 0
	for _, line := range bytes.Split(bytes.TrimSpace(sink), []byte("\n")) {
		var rec struct {
			ActivityName string `json:"activity_name"`
			Status       string `json:"status"`
		}
		if json.Unmarshal(line, &rec) == nil && rec.ActivityName == "refusal" && rec.Status == "Failure" {
			n++
		}
	}
	if n != 11 {
		t.Errorf("%d refusals in the OCSF sink, want 11", n)
	}

	d.close()
	var files []byte
	filepath.WalkDir(d.paths.Home, func(p string, e fs.DirEntry, err error) error {
		if err == nil && e.Type().IsRegular() {
			b, _ := os.ReadFile(p)
			files = append(files, b...)
		}
		return nil
	})
	sig := forged[strings.LastIndexByte(forged, '.')+1:]
	for _, secret := range []string{wrong, forged, sig, "tok-ci-agent-0123456789"} {
		for what, b := range map[string][]byte{"the data directory": files, "the sink": sink, "the daemon log": logs.Bytes()} {
			if bytes.Contains(b, []byte(secret)) {
				t.Errorf("%s holds the credential %.20s…", what, secret)
			}
		}
	}
	if !strings.Contains(logs.String(), "request refused") {
		t.Error("the daemon log does not mention the refusals")
	}
}
