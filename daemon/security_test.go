package daemon

import (
	"net/http/httptest"
	"testing"
	"time"

	"github.com/mcptrail/mcptrail/config"
	"github.com/mcptrail/mcptrail/internal/testkit"
)

// TestClaimsAreNotProof (SECURITY.md): what a client says about itself in
// headers is recorded as context, never as a verified principal, and never
// overrides what a verified credential says. On loopback, where no token is
// required, an unknown bearer token is still refused rather than recorded.
func TestClaimsAreNotProof(t *testing.T) {
	t.Setenv("AGENT_TOKEN", "tok-ci-agent-0123456789")
	t.Setenv("JWT_SECRET", "s3cret-for-tests")
	cfg := config.Default()
	cfg.Listen = "127.0.0.1:7420" // loopback: credentials optional
	cfg.Tokens = []config.Token{{TokenEnv: "AGENT_TOKEN", Agent: "ci-agent", OnBehalfOf: "release-workflow"}}
	cfg.JWT = &config.JWT{Issuer: "https://idp.test", HS256SecretEnv: "JWT_SECRET"}
	a, err := newAuthenticator(cfg)
	if err != nil {
		t.Fatal(err)
	}
	claim := map[string]string{"X-Mcptrail-On-Behalf-Of": "ceo@example.com", "X-Mcptrail-Task": "CLAIMED-1"}
	run := func(auth string) (verified bool, subject, obo string, err error) {
		r := httptest.NewRequest("POST", "/mcp/x", nil)
		for k, v := range claim {
			r.Header.Set(k, v)
		}
		if auth != "" {
			r.Header.Set("Authorization", auth)
		}
		ov, err := a.authenticate(r)
		if err != nil {
			return false, "", "", err
		}
		if ov.Principal != nil {
			verified, subject = ov.Principal.Verified, ov.Principal.Subject
		}
		return verified, subject, ov.OnBehalfOf, nil
	}

	// No credential: the claims are context, there is no principal at all.
	if v, sub, obo, err := run(""); err != nil || v || sub != "" || obo != "ceo@example.com" {
		t.Errorf("no token: verified=%v subject=%q obo=%q err=%v; want no principal and the claim as context", v, sub, obo, err)
	}
	// A configured token: proof; its on_behalf_of beats the header's claim.
	if v, sub, obo, err := run("Bearer tok-ci-agent-0123456789"); err != nil || !v || sub != "ci-agent" || obo != "release-workflow" {
		t.Errorf("token: verified=%v subject=%q obo=%q err=%v", v, sub, obo, err)
	}
	// A verified JWT: proof; its act claim beats the header.
	good := testkit.HS256JWT("s3cret-for-tests", map[string]any{"sub": "svc-42", "iss": "https://idp.test", "exp": time.Now().Add(time.Hour).Unix(), "act": map[string]any{"sub": "alice@example.com"}})
	if v, sub, obo, err := run("Bearer " + good); err != nil || !v || sub != "svc-42" || obo != "alice@example.com" {
		t.Errorf("jwt: verified=%v subject=%q obo=%q err=%v", v, sub, obo, err)
	}
	// Forged credentials are refused even where none is required: a wrong
	// token, a JWT signed with another key, an unsigned JWT.
	forged := testkit.HS256JWT("another-secret", map[string]any{"sub": "svc-42", "iss": "https://idp.test", "exp": time.Now().Add(time.Hour).Unix()})
	unsigned := "eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.eyJzdWIiOiJhZG1pbiIsImlzcyI6Imh0dHBzOi8vaWRwLnRlc3QifQ."
	for _, auth := range []string{"Bearer wrong-token-0000", "Bearer " + forged, "Bearer " + unsigned} {
		if v, sub, _, err := run(auth); err == nil {
			t.Errorf("%.30s…: accepted (verified=%v subject=%q), want refused", auth, v, sub)
		}
	}
}
