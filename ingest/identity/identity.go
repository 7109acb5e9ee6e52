// Package identity works out who made a call, with what identity, and for
// which task: token fingerprints, JWT verification, the OS user of a stdio
// session, and the task context an agent passes in _meta (W3C trace
// context and baggage, and mcptrail's own keys).
//
// Everything read from _meta is a claim by the agent; only a verified
// token or the OS user is proof. Callers label them so.
package identity

import (
	"crypto/sha256"
	"encoding/hex"
	"os"
	"os/user"
	"strconv"
	"strings"

	"github.com/mcptrail/mcptrail/store"
)

// TokenFingerprint names a credential in the record without storing it.
// 64 bits of the hash tell tokens apart; they do not help guess one.
func TokenFingerprint(token string) string {
	sum := sha256.Sum256([]byte(token))
	return "sha256:" + hex.EncodeToString(sum[:8])
}

// BearerToken extracts the token of an "Authorization: Bearer" header.
func BearerToken(authHeader string) (string, bool) {
	scheme, token, ok := strings.Cut(strings.TrimSpace(authHeader), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	token = strings.TrimSpace(token)
	if token == "" || strings.ContainsAny(token, " \t") {
		return "", false
	}
	return token, true
}

// OSPrincipal is the user running this process: for a stdio server the
// agent runs as this user, and the kernel vouches for it.
func OSPrincipal() *store.Principal {
	name := strconv.Itoa(os.Getuid())
	if u, err := user.Current(); err == nil && u.Username != "" {
		name = u.Username
	}
	return &store.Principal{Subject: name, Kind: "os_user", Verified: true}
}
