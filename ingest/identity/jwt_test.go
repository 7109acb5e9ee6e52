package identity

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

var b64 = base64.RawURLEncoding

type testKeys struct {
	hs    []byte
	rsa   *rsa.PrivateKey
	ec    *ecdsa.PrivateKey
	ed    ed25519.PrivateKey
	edPub ed25519.PublicKey
}

func newTestKeys(t *testing.T) *testKeys {
	t.Helper()
	k := &testKeys{hs: []byte("a-shared-secret-of-32-bytes-long!")}
	var err error
	if k.rsa, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
		t.Fatal(err)
	}
	if k.ec, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader); err != nil {
		t.Fatal(err)
	}
	if k.edPub, k.ed, err = ed25519.GenerateKey(rand.Reader); err != nil {
		t.Fatal(err)
	}
	return k
}

func (k *testKeys) keySet() KeySet {
	return KeySet{
		HS256:  [][]byte{k.hs},
		Public: []crypto.PublicKey{&k.rsa.PublicKey, &k.ec.PublicKey, k.edPub},
	}
}

// sign makes a compact JWS the way an identity provider would.
func (k *testKeys) sign(t *testing.T, alg string, claims map[string]any) string {
	t.Helper()
	h, _ := json.Marshal(map[string]string{"alg": alg, "typ": "JWT"})
	p, _ := json.Marshal(claims)
	signed := b64.EncodeToString(h) + "." + b64.EncodeToString(p)
	digest := sha256.Sum256([]byte(signed))
	var sig []byte
	switch alg {
	case "HS256":
		mac := hmac.New(sha256.New, k.hs)
		mac.Write([]byte(signed))
		sig = mac.Sum(nil)
	case "RS256":
		var err error
		if sig, err = rsa.SignPKCS1v15(rand.Reader, k.rsa, crypto.SHA256, digest[:]); err != nil {
			t.Fatal(err)
		}
	case "ES256":
		r, s, err := ecdsa.Sign(rand.Reader, k.ec, digest[:])
		if err != nil {
			t.Fatal(err)
		}
		sig = make([]byte, 64)
		r.FillBytes(sig[:32])
		s.FillBytes(sig[32:])
	case "EdDSA":
		sig = ed25519.Sign(k.ed, []byte(signed))
	case "none":
	default:
		t.Fatalf("sign: alg %s", alg)
	}
	return signed + "." + b64.EncodeToString(sig)
}

var now = time.Date(2026, 7, 28, 12, 0, 0, 0, time.UTC)

func claims() map[string]any {
	return map[string]any{
		"sub": "agent-42",
		"iss": "https://idp.example.com",
		"aud": []string{"mcptrail", "other"},
		"exp": now.Add(time.Hour).Unix(),
		"nbf": now.Add(-time.Minute).Unix(),
		"act": map[string]any{"sub": "ci-bot", "act": map[string]any{"sub": "alice@example.com"}},
	}
}

func TestVerifyJWTEachAlg(t *testing.T) {
	k := newTestKeys(t)
	ks := k.keySet()
	ks.Issuer, ks.Audience = "https://idp.example.com", "mcptrail"
	for _, alg := range []string{"HS256", "RS256", "ES256", "EdDSA"} {
		t.Run(alg, func(t *testing.T) {
			tok := k.sign(t, alg, claims())
			if !LooksLikeJWT(tok) {
				t.Error("LooksLikeJWT = false")
			}
			c, err := VerifyJWT(tok, ks, now)
			if err != nil {
				t.Fatal(err)
			}
			if c.Subject != "agent-42" || c.Issuer != "https://idp.example.com" || c.Audience != "mcptrail" {
				t.Errorf("claims = %+v", c)
			}
			if c.Actor != "ci-bot > alice@example.com" {
				t.Errorf("Actor = %q", c.Actor)
			}
			if !c.ExpiresAt.Equal(now.Add(time.Hour)) {
				t.Errorf("ExpiresAt = %v", c.ExpiresAt)
			}
			if c.Raw["sub"] != "agent-42" {
				t.Errorf("Raw = %v", c.Raw)
			}
		})
	}
}

func TestVerifyJWTRejects(t *testing.T) {
	k := newTestKeys(t)
	ks := k.keySet()
	ks.Issuer, ks.Audience = "https://idp.example.com", "mcptrail"
	with := func(key string, v any) map[string]any {
		c := claims()
		if v == nil {
			delete(c, key)
		} else {
			c[key] = v
		}
		return c
	}
	good := k.sign(t, "ES256", claims())
	parts := strings.Split(good, ".")
	tamperedPayload, _ := json.Marshal(with("sub", "admin"))

	other := newTestKeys(t)
	tests := []struct {
		name, token string
		ks          KeySet
		want        string
	}{
		{"expired", k.sign(t, "HS256", with("exp", now.Add(-2*time.Minute).Unix())), ks, "expired"},
		{"not yet valid", k.sign(t, "HS256", with("nbf", now.Add(2*time.Minute).Unix())), ks, "not valid before"},
		{"wrong issuer", k.sign(t, "RS256", with("iss", "https://evil.example.com")), ks, "issuer"},
		{"missing issuer", k.sign(t, "RS256", with("iss", nil)), ks, "issuer"},
		{"wrong audience", k.sign(t, "EdDSA", with("aud", "someone-else")), ks, "audience"},
		{"missing audience", k.sign(t, "EdDSA", with("aud", nil)), ks, "audience"},
		{"alg none", k.sign(t, "none", claims()), ks, "alg none"},
		{"tampered payload", parts[0] + "." + b64.EncodeToString(tamperedPayload) + "." + parts[2], ks, "bad signature"},
		{"tampered signature", good[:len(good)-2] + "AA", ks, "bad signature"},
		{"unknown key", other.sign(t, "RS256", claims()), ks, "bad signature"},
		{"no key for alg", k.sign(t, "EdDSA", claims()), KeySet{HS256: ks.HS256}, "no key configured for alg EdDSA"},
		{"unsupported alg", forge(`{"alg":"HS512"}`, `{}`, "x"), ks, "unsupported alg"},
		{"crit header", forge(`{"alg":"HS256","crit":["b64"]}`, `{}`, "x"), ks, "critical"},
		{"not a jws", "abc.def", ks, "not a compact JWS"},
		{"bad base64", "!!!.e30.", ks, "header"},
		{"exp not a number", k.sign(t, "HS256", with("exp", "tomorrow")), ks, "exp is not a number"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := VerifyJWT(tt.token, tt.ks, now)
			if err == nil {
				t.Fatalf("accepted: %+v", c)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q, want it to mention %q", err, tt.want)
			}
		})
	}
}

func forge(header, payload, sig string) string {
	return b64.EncodeToString([]byte(header)) + "." + b64.EncodeToString([]byte(payload)) + "." + b64.EncodeToString([]byte(sig))
}

// An attacker who knows the RSA public key signs HS256 with its bytes as
// the secret; a verifier that takes the key type from the header would
// accept it.
func TestVerifyJWTAlgConfusion(t *testing.T) {
	k := newTestKeys(t)
	pub, err := x509.MarshalPKIXPublicKey(&k.rsa.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	attacker := &testKeys{hs: pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pub})}
	tok := attacker.sign(t, "HS256", claims())
	_, err = VerifyJWT(tok, KeySet{Public: []crypto.PublicKey{&k.rsa.PublicKey}}, now)
	if err == nil || !strings.Contains(err.Error(), "no key configured for alg HS256") {
		t.Errorf("err = %v", err)
	}
	// And an RS256 signature is not checked against an Ed25519 key.
	tok = k.sign(t, "RS256", claims())
	if _, err := VerifyJWT(tok, KeySet{Public: []crypto.PublicKey{k.edPub}}, now); err == nil {
		t.Error("RS256 accepted with only an Ed25519 key")
	}
}

func TestVerifyJWTLeeway(t *testing.T) {
	k := newTestKeys(t)
	c := claims()
	c["exp"] = now.Add(-30 * time.Second).Unix() // skewed clocks
	c["nbf"] = now.Add(30 * time.Second).Unix()
	if _, err := VerifyJWT(k.sign(t, "HS256", c), k.keySet(), now); err != nil {
		t.Errorf("within leeway: %v", err)
	}
}

func TestVerifyJWTOptionalClaims(t *testing.T) {
	k := newTestKeys(t)
	c, err := VerifyJWT(k.sign(t, "HS256", map[string]any{"sub": "s", "aud": "a"}), k.keySet(), now)
	if err != nil {
		t.Fatal(err)
	}
	if !c.ExpiresAt.IsZero() || c.Actor != "" || c.Audience != "a" {
		t.Errorf("claims = %+v", c)
	}
}

func TestLooksLikeJWT(t *testing.T) {
	for tok, want := range map[string]bool{
		forge(`{"alg":"RS256"}`, `{}`, "s"): true,
		forge(`{"typ":"JWT"}`, `{}`, "s"):   false, // no alg
		"opaque-token-0123456789":           false,
		"a.b.c":                             false,
		"":                                  false,
	} {
		if got := LooksLikeJWT(tok); got != want {
			t.Errorf("LooksLikeJWT(%q) = %v", tok, got)
		}
	}
}

func TestLoadPublicKeys(t *testing.T) {
	k := newTestKeys(t)
	dir := t.TempDir()
	write := func(name string, blocks ...*pem.Block) string {
		var b []byte
		for _, bl := range blocks {
			b = append(b, pem.EncodeToMemory(bl)...)
		}
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	pkix := func(pub any) *pem.Block {
		der, err := x509.MarshalPKIXPublicKey(pub)
		if err != nil {
			t.Fatal(err)
		}
		return &pem.Block{Type: "PUBLIC KEY", Bytes: der}
	}
	both := write("both.pem", pkix(&k.rsa.PublicKey), pkix(&k.ec.PublicKey))
	ed := write("ed.pem", pkix(k.edPub))
	pkcs1 := write("pkcs1.pem", &pem.Block{Type: "RSA PUBLIC KEY", Bytes: x509.MarshalPKCS1PublicKey(&k.rsa.PublicKey)})

	keys, err := LoadPublicKeys([]string{both, ed, pkcs1})
	if err != nil {
		t.Fatal(err)
	}
	if len(keys) != 4 {
		t.Fatalf("loaded %d keys, want 4", len(keys))
	}
	ks := KeySet{Public: keys}
	for _, alg := range []string{"RS256", "ES256", "EdDSA"} {
		if _, err := VerifyJWT(k.sign(t, alg, claims()), ks, now); err != nil {
			t.Errorf("%s with loaded keys: %v", alg, err)
		}
	}

	p384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	der, _ := x509.MarshalPKCS8PrivateKey(k.ed)
	for name, path := range map[string]string{
		"missing": filepath.Join(dir, "nope.pem"),
		"empty":   write("empty.pem"),
		"private": write("private.pem", &pem.Block{Type: "PRIVATE KEY", Bytes: der}),
		"p384":    write("p384.pem", pkix(&p384.PublicKey)),
		"garbage": write("garbage.pem", &pem.Block{Type: "PUBLIC KEY", Bytes: []byte("nope")}),
	} {
		if _, err := LoadPublicKeys([]string{path}); err == nil {
			t.Errorf("%s: loaded", name)
		} else if !strings.Contains(err.Error(), filepath.Base(path)) {
			t.Errorf("%s: error %q does not name the file", name, err)
		}
	}
}
