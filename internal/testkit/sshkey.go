package testkit

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"testing"

	gossh "golang.org/x/crypto/ssh"
)

// SSHKey is a client key for tests that log in with OpenSSH's own client.
type SSHKey struct {
	Path        string // private key file, for ssh -i
	Authorized  string // its authorized_keys line, without options
	Fingerprint string // SHA256:…, as ssh-keygen -lf prints it
}

// NewSSHKey writes a new Ed25519 private key (0600, OpenSSH's format) named
// name into dir.
func NewSSHKey(t testing.TB, dir, name string) SSHKey {
	t.Helper()
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	block, err := gossh.MarshalPrivateKey(priv, name)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, pem.EncodeToMemory(block), 0o600); err != nil {
		t.Fatal(err)
	}
	sp, err := gossh.NewPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return SSHKey{Path: path, Authorized: strings.TrimSpace(string(gossh.MarshalAuthorizedKey(sp))), Fingerprint: gossh.FingerprintSHA256(sp)}
}
