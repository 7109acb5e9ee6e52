package daemon

import (
	"fmt"
	"net/http"
	"strings"
	"sync/atomic"
	"time"

	"github.com/mcptrail/mcptrail/config"
	"github.com/mcptrail/mcptrail/ingest"
	"github.com/mcptrail/mcptrail/ingest/identity"
	"github.com/mcptrail/mcptrail/store"
)

// authenticator turns an HTTP request's credentials into the identity the
// record carries. Tokens and verified JWTs are proof; headers are claims and
// are recorded only as the task and on-behalf-of context.
type authenticator struct {
	creds    atomic.Pointer[credentials] // swapped whole on reload (reload.go)
	required bool
}

// credentials are the tokens and JWT keys requests are checked against.
type credentials struct {
	cfg  *config.Config
	keys *identity.KeySet
}

func newAuthenticator(cfg *config.Config) (*authenticator, error) {
	a := &authenticator{required: !config.IsLoopback(cfg.Listen)}
	return a, a.load(cfg)
}

// load makes cfg's tokens and JWT keys the ones requests are checked
// against from now on; on an error the previous ones stay.
func (a *authenticator) load(cfg *config.Config) error {
	c := &credentials{cfg: cfg}
	if cfg.JWT != nil {
		ks, err := cfg.JWT.KeySet()
		if err != nil {
			return err
		}
		c.keys = &ks
	}
	a.creds.Store(c)
	return nil
}

// The reasons a request is refused, as its refusal event names them
// (ingest records them; neither the record nor the log holds the token).
var (
	errNoToken      = fmt.Errorf("a valid bearer token is required: %w", ingest.ErrNoCredential)
	errUnknownToken = fmt.Errorf("a valid bearer token is required: %w", ingest.ErrUnknownCredential)
)

func (a *authenticator) authenticate(r *http.Request) (*ingest.Overrides, error) {
	ov := &ingest.Overrides{}
	if t := strings.TrimSpace(r.Header.Get("X-Mcptrail-Task")); t != "" {
		ov.Task = &store.Task{ID: t}
	}
	ov.OnBehalfOf = strings.TrimSpace(r.Header.Get("X-Mcptrail-On-Behalf-Of"))
	creds := a.creds.Load()
	tok, ok := identity.BearerToken(r.Header.Get("Authorization"))
	if !ok {
		if a.required {
			return nil, errNoToken
		}
		return ov, nil
	}
	if t, ok := creds.cfg.ResolveToken(tok); ok {
		subject := t.Subject
		if subject == "" {
			subject = t.Agent
		}
		ov.Principal = &store.Principal{Subject: subject, CredentialID: identity.TokenFingerprint(tok), Kind: "token", Verified: true}
		if t.Agent != "" {
			ov.Agent = &store.Agent{ID: t.Agent, Name: t.Agent}
		}
		if t.OnBehalfOf != "" {
			ov.OnBehalfOf = t.OnBehalfOf
		}
		return ov, nil
	}
	if creds.keys != nil && identity.LooksLikeJWT(tok) {
		c, err := identity.VerifyJWT(tok, *creds.keys, time.Now())
		if err != nil {
			return nil, err
		}
		ov.Principal = &store.Principal{Subject: c.Subject, Issuer: c.Issuer, CredentialID: identity.TokenFingerprint(tok), Kind: "jwt", Verified: true}
		if c.Actor != "" {
			ov.OnBehalfOf = c.Actor
		}
		return ov, nil
	}
	return nil, errUnknownToken
}
