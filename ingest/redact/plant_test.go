package redact

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
)

// plantSecret is the secret the planting tests hide; "{S}" in a shape
// stands for it, and "{A}" for a 40-character AWS secret access key.
const plantSecret = "Zq7vKp2LwX9"

// plantShapes are the ways people paste a secret into text, one per
// notation the redactor covers.
var plantShapes = []string{
	"aws configure set aws_secret_access_key {A}",
	"AWS_SECRET_ACCESS_KEY={A}",
	"aws_secret_access_key: {A}",
	"aws configure set aws_secret_access_key {S}",
	"password={S}", "PASSWORD={S}", "passwd: {S}", "pwd: {S}", "passphrase = '{S}'",
	"--password {S}", "--password={S}", `--token "{S}"`, "mysql -u root -p'{S}' db",
	"mysql -u root -p{S} db", "sshpass -p {S} ssh h", "curl -u bob:{S} https://h",
	"postgres://user:{S}@host/db", "mysql://u:{S}@h:3306/d", "redis://:{S}@host:6379", "amqp://u:{S}@h/v", "https://u:{S}@h",
	"Authorization: Basic {S}", "authorization: token {S}", "Cookie: sid={S}",
	"export FOO_TOKEN={S}", "FOO_TOKEN={S}", "DB_PASS={S}", "SMTP_PWD={S}", "CLIENT_SECRET={S}", "api_key={S}",
	"?access_token={S}&x=1", "Password={S};Database=d", "'secret' => '{S}'", `secret := "{S}"`,
	`"password": "{S}"`, `"pwd":"{S}"`, `"pass\u0077ord":"{S}"`, `"p\u0061ss":"{S}"`, `{\"password\":\"{S}\"}`,
	`"private_key": "{S}"`, `"signing_key":"{S}"`, "Bearer {S}",
}

func plant(shape string) (text, secret string) {
	if strings.Contains(shape, "{A}") {
		return strings.ReplaceAll(shape, "{A}", awsSecret), awsSecret
	}
	return strings.ReplaceAll(shape, "{S}", plantSecret), plantSecret
}

// placements are where the text goes: as free text, inside a JSON string
// value, and as the body of a malformed message recorded as bad input
// (its excerpt held in a JSON string, as the Session stores it), raw or
// carried in a string member.
var placements = []func(red *Redactor, text string) string{
	func(red *Redactor, text string) string { return red.String(text) },
	func(red *Redactor, text string) string {
		out, _ := red.JSON(json.RawMessage(`{"a":` + mustJSON(text) + `}`))
		return string(out)
	},
	func(red *Redactor, text string) string { return badInput(red, text) },
	func(red *Redactor, text string) string {
		return badInput(red, `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"arguments":{"cmd":`+mustJSON(text))
	},
}

// badInput redacts raw as the Session records a malformed message: the
// first 512 bytes, as a JSON string.
func badInput(red *Redactor, raw string) string {
	b := []byte(raw)
	if len(b) > 512 {
		b = b[:512]
	}
	out, _ := red.JSON(json.RawMessage(mustJSON(string(bytes.ToValidUTF8(b, []byte("?"))))))
	return string(out)
}

// shown is the output as stored and as a reader decodes it.
func shown(out string) string {
	var s string
	if json.Unmarshal([]byte(out), &s) == nil {
		return out + "\n" + s
	}
	var v map[string]string
	if json.Unmarshal([]byte(out), &v) == nil {
		return out + "\n" + v["a"]
	}
	return out
}

func TestPlantedSecrets(t *testing.T) {
	red := mustNew(t, Rules{})
	for _, shape := range plantShapes {
		text, secret := plant(shape)
		for p, place := range placements {
			if got := shown(place(red, "run this:\n"+text+"\nthen go on")); strings.Contains(got, secret) {
				t.Errorf("placement %d: %q survived in %q", p, secret, got)
			}
		}
	}
}

// A planted secret, in any of its shapes and placements, between any
// text, never reaches the output.
func FuzzPlantedSecret(f *testing.F) {
	f.Add("", "", uint8(0), uint8(0))
	f.Add(`{"a":"`, `"}`, uint8(3), uint8(2))
	f.Add(`x\`, `\u00`, uint8(10), uint8(3))
	f.Add(`password="`, ``, uint8(5), uint8(1))
	f.Add(`[REDACTED:key]`, `"pass`, uint8(22), uint8(2))
	red := mustNew(f, Rules{})
	f.Fuzz(func(t *testing.T, before, after string, shape, place uint8) {
		if len(before) > 60 || len(after) > 60 {
			return // the excerpt of bad input keeps 512 bytes: all of the planted text stays in it
		}
		text, secret := plant(plantShapes[int(shape)%len(plantShapes)])
		if strings.Contains(before+after, secret[:4]) {
			return
		}
		got := shown(placements[int(place)%len(placements)](red, before+"\n"+text+"\n"+after))
		if strings.Contains(got, secret) {
			t.Fatalf("%q survived between %q and %q:\n%s", secret, before, after, got)
		}
	})
}

// A malformed message cut at 512 bytes anywhere in its secret leaves no
// part of it.
func TestBadInputCutAnywhere(t *testing.T) {
	red := mustNew(t, Rules{})
	for _, shape := range plantShapes {
		text, secret := plant(shape)
		raw := `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"arguments":{"cmd":` + mustJSON(text) + `}}`
		at := strings.Index(raw, secret)
		for cut := at + 3; cut < at+len(secret); cut++ {
			pad := strings.Repeat("y", 512-cut)
			body := raw[:len(`{"jsonrpc":"2.0","id":1,`)] + `"pad":"` + pad[:max(0, len(pad)-len(`"pad":"",`))] + `",` + raw[len(`{"jsonrpc":"2.0","id":1,`):]
			if len(pad) < len(`"pad":"",`) {
				continue
			}
			got := shown(badInput(red, body))
			if piece := secret[:cut-at]; strings.Contains(got, piece) {
				t.Errorf("%q: cut after %q, it survived:\n%s", shape, piece, got)
			}
		}
	}
}

// A token cut short at the end of a malformed message's excerpt is
// redacted too, once enough of it is left to be worth anything: six
// characters past its prefix (a JWT's header and claims are not secret;
// its signature is).
func TestBadInputCutToken(t *testing.T) {
	red := mustNew(t, Rules{})
	for _, tc := range []struct {
		tok  string
		from int // the shortest cut that must not survive
	}{
		{ghClassic, 4 + 6}, {ghFine, 11 + 6}, {slackBot, 5 + 6}, {anthropicKey, 7 + 6}, {openAIKey, 8 + 6},
		{googleKey, 4 + 6}, {awsKeyID, 4 + 6}, {jwtSample, strings.LastIndex(jwtSample, ".") + 2}, {pemRSA, 40},
	} {
		head := `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"arguments":{"pad":"`
		for cut := tc.from; cut < len(tc.tok); cut++ {
			lead := "push with "
			pad := strings.Repeat("y", 512-len(head)-len(`","cmd":"`)-len(lead)-len(mustJSON(tc.tok[:cut]))+2)
			raw := head + pad + `","cmd":"` + lead + mustJSON(tc.tok)[1:]
			if got := shown(badInput(red, raw)); strings.Contains(got, tc.tok[:cut]) || strings.Contains(got, mustJSON(tc.tok[:cut])[1:]) {
				t.Errorf("%.12s... cut after %d bytes survived:\n%s", tc.tok, cut, got[len(got)-80:])
				break
			}
		}
	}
}
