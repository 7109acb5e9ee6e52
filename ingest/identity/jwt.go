package identity

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"os"
	"strings"
	"time"
)

// Claims are the parts of a verified JWT that the record uses.
type Claims struct {
	Subject  string
	Issuer   string
	Audience string // the required audience when one is set, else all of them, comma-separated
	// Actor is the RFC 8693 act chain, current actor first: a service
	// acting for a user that another service delegated to reads
	// "svc-b > svc-a".
	Actor     string
	ExpiresAt time.Time
	Raw       map[string]any
}

// KeySet holds the keys a token may be signed with.
type KeySet struct {
	HS256  [][]byte
	Public []crypto.PublicKey // *rsa.PublicKey, *ecdsa.PublicKey (P-256), ed25519.PublicKey
	// Required values, when set.
	Issuer, Audience string
}

// leeway absorbs clock skew between the issuer and the gateway.
const leeway = 60 * time.Second

// LoadPublicKeys reads PEM files of PKIX public keys ("PUBLIC KEY"),
// PKCS#1 RSA keys ("RSA PUBLIC KEY") or certificates.
func LoadPublicKeys(pemFiles []string) ([]crypto.PublicKey, error) {
	var keys []crypto.PublicKey
	for _, file := range pemFiles {
		data, err := os.ReadFile(file)
		if err != nil {
			return nil, err
		}
		n := 0
		for {
			var block *pem.Block
			block, data = pem.Decode(data)
			if block == nil {
				break
			}
			key, err := parsePublicKey(block)
			if err != nil {
				return nil, fmt.Errorf("%s: %s: %w", file, block.Type, err)
			}
			if key == nil {
				continue // some other block, such as parameters
			}
			keys = append(keys, key)
			n++
		}
		if n == 0 {
			return nil, fmt.Errorf("%s: no public key found", file)
		}
	}
	return keys, nil
}

func parsePublicKey(block *pem.Block) (crypto.PublicKey, error) {
	var key any
	var err error
	switch block.Type {
	case "PUBLIC KEY":
		key, err = x509.ParsePKIXPublicKey(block.Bytes)
	case "RSA PUBLIC KEY":
		key, err = x509.ParsePKCS1PublicKey(block.Bytes)
	case "CERTIFICATE":
		var cert *x509.Certificate
		if cert, err = x509.ParseCertificate(block.Bytes); err == nil {
			key = cert.PublicKey
		}
	case "PRIVATE KEY", "RSA PRIVATE KEY", "EC PRIVATE KEY", "OPENSSH PRIVATE KEY":
		// A private key in the gateway's config is a key leaked to the
		// gateway; refuse it rather than quietly deriving the public half.
		return nil, errors.New("want a public key, found a private key")
	default:
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	switch k := key.(type) {
	case *rsa.PublicKey, ed25519.PublicKey:
		return k, nil
	case *ecdsa.PublicKey:
		if k.Curve != elliptic.P256() {
			return nil, fmt.Errorf("ECDSA curve %s: only P-256 (ES256) is supported", k.Curve.Params().Name)
		}
		return k, nil
	}
	return nil, fmt.Errorf("unsupported key type %T", key)
}

// LooksLikeJWT tells a JWT from an opaque bearer token, so the gateway
// tries verification only on tokens that can be JWTs.
func LooksLikeJWT(token string) bool {
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return false
	}
	var h struct {
		Alg string `json:"alg"`
	}
	b, err := base64.RawURLEncoding.DecodeString(parts[0])
	return err == nil && json.Unmarshal(b, &h) == nil && h.Alg != ""
}

// VerifyJWT checks a compact JWS signed with HS256, RS256, ES256 or EdDSA
// against ks, and its exp, nbf, iss and aud claims at now.
func VerifyJWT(token string, ks KeySet, now time.Time) (*Claims, error) {
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return nil, errors.New("jwt: not a compact JWS")
	}
	var header struct {
		Alg  string   `json:"alg"`
		Crit []string `json:"crit"`
	}
	if err := decodePart(parts[0], &header); err != nil {
		return nil, fmt.Errorf("jwt: header: %w", err)
	}
	if len(header.Crit) > 0 {
		// RFC 7515 4.1.11: extensions we do not understand must fail.
		return nil, fmt.Errorf("jwt: unsupported critical headers %q", header.Crit)
	}
	sig, err := base64.RawURLEncoding.DecodeString(parts[2])
	if err != nil {
		return nil, errors.New("jwt: signature: bad base64url")
	}
	if err := verifySignature(header.Alg, parts[0]+"."+parts[1], sig, ks); err != nil {
		return nil, err
	}

	var raw map[string]any
	if err := decodePart(parts[1], &raw); err != nil {
		return nil, fmt.Errorf("jwt: payload: %w", err)
	}
	return checkClaims(raw, ks, now)
}

func decodePart(part string, v any) error {
	b, err := base64.RawURLEncoding.DecodeString(part)
	if err != nil {
		return errors.New("bad base64url")
	}
	if err := json.Unmarshal(b, v); err != nil {
		return errors.New("not a JSON object")
	}
	return nil
}

// verifySignature picks keys by the algorithm's key type only: an RS256
// token is never checked against an HMAC secret, which is how "alg
// confusion" attacks turn a public key into a forging key.
func verifySignature(alg, signed string, sig []byte, ks KeySet) error {
	digest := sha256.Sum256([]byte(signed))
	tried := false
	switch alg {
	case "HS256":
		for _, secret := range ks.HS256 {
			tried = true
			mac := hmac.New(sha256.New, secret)
			mac.Write([]byte(signed))
			if hmac.Equal(mac.Sum(nil), sig) {
				return nil
			}
		}
	case "RS256":
		for _, k := range ks.Public {
			if k, ok := k.(*rsa.PublicKey); ok {
				tried = true
				if rsa.VerifyPKCS1v15(k, crypto.SHA256, digest[:], sig) == nil {
					return nil
				}
			}
		}
	case "ES256":
		for _, k := range ks.Public {
			if k, ok := k.(*ecdsa.PublicKey); ok && k.Curve == elliptic.P256() {
				tried = true
				// JWS carries r||s, not the ASN.1 form ecdsa.VerifyASN1 wants.
				if len(sig) == 64 && ecdsa.Verify(k, digest[:],
					new(big.Int).SetBytes(sig[:32]), new(big.Int).SetBytes(sig[32:])) {
					return nil
				}
			}
		}
	case "EdDSA", "Ed25519":
		for _, k := range ks.Public {
			if k, ok := k.(ed25519.PublicKey); ok {
				tried = true
				if ed25519.Verify(k, []byte(signed), sig) {
					return nil
				}
			}
		}
	case "none", "":
		return errors.New("jwt: unsigned token (alg none) refused")
	default:
		return fmt.Errorf("jwt: unsupported alg %q", alg)
	}
	if !tried {
		return fmt.Errorf("jwt: no key configured for alg %s", alg)
	}
	return errors.New("jwt: bad signature")
}

func checkClaims(raw map[string]any, ks KeySet, now time.Time) (*Claims, error) {
	c := &Claims{Raw: raw}
	c.Subject, _ = raw["sub"].(string)
	c.Issuer, _ = raw["iss"].(string)

	if exp, ok, err := numericDate(raw, "exp"); err != nil {
		return nil, err
	} else if ok {
		c.ExpiresAt = exp
		if now.After(exp.Add(leeway)) {
			return nil, fmt.Errorf("jwt: expired at %s", exp.UTC().Format(time.RFC3339))
		}
	}
	if nbf, ok, err := numericDate(raw, "nbf"); err != nil {
		return nil, err
	} else if ok && now.Before(nbf.Add(-leeway)) {
		return nil, fmt.Errorf("jwt: not valid before %s", nbf.UTC().Format(time.RFC3339))
	}

	if ks.Issuer != "" && c.Issuer != ks.Issuer {
		return nil, fmt.Errorf("jwt: issuer %q, want %q", c.Issuer, ks.Issuer)
	}
	auds, err := audiences(raw["aud"])
	if err != nil {
		return nil, err
	}
	c.Audience = strings.Join(auds, ",")
	if ks.Audience != "" {
		found := false
		for _, a := range auds {
			found = found || a == ks.Audience
		}
		if !found {
			return nil, fmt.Errorf("jwt: audience %q, want %q", c.Audience, ks.Audience)
		}
		c.Audience = ks.Audience
	}

	c.Actor = actorChain(raw["act"])
	return c, nil
}

func numericDate(raw map[string]any, name string) (time.Time, bool, error) {
	v, ok := raw[name]
	if !ok {
		return time.Time{}, false, nil
	}
	f, ok := v.(float64)
	if !ok {
		return time.Time{}, false, fmt.Errorf("jwt: %s is not a number", name)
	}
	sec := int64(f)
	return time.Unix(sec, int64((f-float64(sec))*1e9)), true, nil
}

// audiences reads aud, which RFC 7519 allows as a string or an array.
func audiences(v any) ([]string, error) {
	switch v := v.(type) {
	case nil:
		return nil, nil
	case string:
		return []string{v}, nil
	case []any:
		out := make([]string, 0, len(v))
		for _, a := range v {
			s, ok := a.(string)
			if !ok {
				return nil, errors.New("jwt: aud has a non-string member")
			}
			out = append(out, s)
		}
		return out, nil
	}
	return nil, errors.New("jwt: aud is neither a string nor an array")
}

func actorChain(v any) string {
	var chain []string
	for depth := 0; depth < 32; depth++ { // a bound on hostile nesting
		act, ok := v.(map[string]any)
		if !ok {
			break
		}
		if sub, ok := act["sub"].(string); ok && sub != "" {
			chain = append(chain, sub)
		}
		v = act["act"]
	}
	return strings.Join(chain, " > ")
}
