package daemon

import (
	"net/http/httptest"
	"testing"
	"time"

	"github.com/mcptrail/mcptrail/config"
	"github.com/mcptrail/mcptrail/internal/testkit"
)

func TestAuthenticator(t *testing.T) {
	t.Setenv("AGENT_TOKEN", "tok-ci-agent-0123456789")
	t.Setenv("JWT_SECRET", "s3cret-for-tests")
	cfg := config.Default()
	cfg.Listen = "0.0.0.0:7420" // off loopback: credentials required
	cfg.Tokens = []config.Token{{TokenEnv: "AGENT_TOKEN", Agent: "ci-agent", OnBehalfOf: "release-workflow"}}
	cfg.JWT = &config.JWT{Issuer: "https://idp.test", HS256SecretEnv: "JWT_SECRET"}
	a, err := newAuthenticator(cfg)
	if err != nil {
		t.Fatal(err)
	}
	call := func(auth string, hdr map[string]string) (subject, agent, obo, kind, task string, err error) {
		r := httptest.NewRequest("POST", "/mcp/x", nil)
		if auth != "" {
			r.Header.Set("Authorization", auth)
		}
		for k, v := range hdr {
			r.Header.Set(k, v)
		}
		ov, err := a.authenticate(r)
		if err != nil {
			return "", "", "", "", "", err
		}
		if ov.Principal != nil {
			subject, kind = ov.Principal.Subject, ov.Principal.Kind
		}
		if ov.Agent != nil {
			agent = ov.Agent.ID
		}
		if ov.Task != nil {
			task = ov.Task.ID
		}
		return subject, agent, ov.OnBehalfOf, kind, task, nil
	}

	if _, _, _, _, _, err := call("", nil); err == nil {
		t.Error("no credentials accepted off loopback")
	}
	if _, _, _, _, _, err := call("Bearer wrong-token-0000", nil); err == nil {
		t.Error("unknown token accepted")
	}
	sub, agent, obo, kind, task, err := call("Bearer tok-ci-agent-0123456789", map[string]string{"X-Mcptrail-Task": "JIRA-9"})
	if err != nil || sub != "ci-agent" || agent != "ci-agent" || obo != "release-workflow" || kind != "token" || task != "JIRA-9" {
		t.Errorf("token: %q %q %q %q %q %v", sub, agent, obo, kind, task, err)
	}
	good := testkit.HS256JWT("s3cret-for-tests", map[string]any{"sub": "svc-42", "iss": "https://idp.test", "exp": time.Now().Add(time.Hour).Unix(), "act": map[string]any{"sub": "alice@example.com"}})
	sub, _, obo, kind, _, err = call("Bearer "+good, nil)
	if err != nil || sub != "svc-42" || obo != "alice@example.com" || kind != "jwt" {
		t.Errorf("jwt: %q %q %q %v", sub, obo, kind, err)
	}
	forged := testkit.HS256JWT("another-secret", map[string]any{"sub": "svc-42", "iss": "https://idp.test"})
	if _, _, _, _, _, err := call("Bearer "+forged, nil); err == nil {
		t.Error("JWT signed with another key accepted")
	}

	cfg.Listen = "127.0.0.1:7420" // loopback: anonymous allowed, still labelled
	a, _ = newAuthenticator(cfg)
	if _, _, _, _, _, err := call("", nil); err != nil {
		t.Errorf("anonymous on loopback refused: %v", err)
	}
}
