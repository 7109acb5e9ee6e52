package redact

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
)

// Samples have real token shapes. Each is split at its prefix so secret
// scanners reading this file do not take the fixtures for leaks.
var (
	jwtSample    = "eyJ" + "hbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4gRG9lIiwiaWF0IjoxNTE2MjM5MDIyfQ.SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c"
	jwtNone      = "eyJ" + "hbGciOiJub25lIn0.eyJzdWIiOiJhZG1pbiJ9."
	awsKeyID     = "AKIA" + "IOSFODNN7EXAMPLE"
	awsSession   = "ASIA" + "Y34FZKBOKMUTVV7A"
	awsSecret    = "wJalrXUtnFEMI/K7MDENG/" + "bPxRfiCYEXAMPLEKEY"
	ghClassic    = "ghp_" + "1234567890abcdefghijklmnopqrstuvwxyz"
	ghOAuth      = "gho_" + "16C7e42F292c6912E7710c838347Ae178B4a"
	ghServer     = "ghs_" + "aBcDeFgHiJkLmNoPqRsTuVwXyZ0123456789"
	ghFine       = "github_pat_" + "11ABCDEFG0123456789abc_defghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456"
	slackBot     = "xoxb-" + "1234567890123-1234567890123-AbCdEfGhIjKlMnOpQrStUvWx"
	slackUser    = "xoxp-" + "1234567890-1234567890-1234567890-abcdef0123456789abcdef0123456789"
	openAIKey    = "sk-" + "proj-Ab12Cd34Ef56Gh78Ij90Kl12Mn34Op56Qr78St90Uv"
	openAILegacy = "sk-" + "T3BlbkFJ1234567890abcdefghijklmnopqrstuvwxABCD"
	anthropicKey = "sk-" + "ant-api03-Ab12Cd34Ef56Gh78Ij90Kl12Mn34Op56Qr78St90Uv_wx-yzAB12CD34EF56GH78IJ90KL12MN34OP56QR78ST90UVWXAA"
	googleKey    = "AIza" + "SyDaGmWKa4JsXZ-HjGw7ISLn_3namBGewQe"
	bearerTok    = "ya29.a0AfH6SMBx3kLmN0pQrStUvWxYz1234567890"
	pemRSA       = "-----BEGIN RSA " + "PRIVATE KEY-----\nMIIEowIBAAKCAQEA0Z3VS5JJcds3xfn/ygWyF8PbnGy0AHB7MhgwMbRvI0MBZhpF\nY2Vhb3dlIGlzIG5vdCBhIHJlYWwga2V5\n-----END RSA PRIVATE KEY-----"
	pemPKCS8     = "-----BEGIN " + "PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEIHc2VhbmRib3gga2V5IGZvciB0ZXN0cw==\n-----END PRIVATE KEY-----"
	pemOpenSSH   = "-----BEGIN OPENSSH " + "PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQAAAAAAAAABAAAAMwAAAAtzc2gtZW\n-----END OPENSSH PRIVATE KEY-----"
	pemCut       = "-----BEGIN EC " + "PRIVATE KEY-----\nMHcCAQEEIIrYSSNQFaA2Hwf1duRSxKtLYX5CB04fSeQ6tF1aY/PuoAoGCCqGSM49"
)

func mustNew(t testing.TB, r Rules) *Redactor {
	t.Helper()
	red, err := New(r)
	if err != nil {
		t.Fatal(err)
	}
	return red
}

func TestString(t *testing.T) {
	red := mustNew(t, Rules{})
	tests := []struct{ name, in, want string }{
		{"bearer", "Authorization: Bearer " + bearerTok, "Authorization: Bearer [REDACTED:bearer]"},
		{"bearer lower", "curl -H 'authorization: bearer " + bearerTok + "' x", "curl -H 'authorization: bearer [REDACTED:bearer]' x"},
		{"jwt", "token " + jwtSample + " end", "token [REDACTED:jwt] end"},
		{"jwt alg none", jwtNone, "[REDACTED:jwt]"},
		{"bearer jwt", "Bearer " + jwtSample, "Bearer [REDACTED:bearer]"},
		{"aws key id", "id=" + awsKeyID + ".", "id=[REDACTED:aws_key]."},
		{"aws session key id", awsSession, "[REDACTED:aws_key]"},
		{"aws secret env", "AWS_SECRET_ACCESS_KEY=" + awsSecret, "AWS_SECRET_ACCESS_KEY=[REDACTED:aws_secret]"},
		{"aws secret ini", "aws_secret_access_key = " + awsSecret + "\n", "aws_secret_access_key = [REDACTED:aws_secret]\n"},
		{"aws secret json text", `{"SecretAccessKey": "` + awsSecret + `"}`, `{"SecretAccessKey": "[REDACTED:aws_secret]"}`},
		{"github classic", "push with " + ghClassic, "push with [REDACTED:github_token]"},
		{"github oauth", ghOAuth, "[REDACTED:github_token]"},
		{"github server", ghServer, "[REDACTED:github_token]"},
		{"github fine-grained", "GH=" + ghFine, "GH=[REDACTED:github_token]"},
		{"slack bot", "slack " + slackBot, "slack [REDACTED:slack_token]"},
		{"slack user", slackUser, "[REDACTED:slack_token]"},
		{"openai project", "key " + openAIKey, "key [REDACTED:openai_key]"},
		{"openai legacy", openAILegacy, "[REDACTED:openai_key]"},
		{"anthropic", "ANTHROPIC_API_KEY: " + anthropicKey, "ANTHROPIC_API_KEY: [REDACTED:anthropic_key]"},
		{"google", "https://maps.example.com/api?key=" + googleKey + "&q=x", "https://maps.example.com/api?key=[REDACTED:google_api_key]&q=x"},
		{"pem rsa", "key:\n" + pemRSA + "\nend", "key:\n[REDACTED:private_key]\nend"},
		{"pem pkcs8", pemPKCS8, "[REDACTED:private_key]"},
		{"pem openssh", pemOpenSSH, "[REDACTED:private_key]"},
		{"pem truncated", pemCut, "[REDACTED:private_key]"},
		{"url password", "postgres://app:s3cr3t-pw@db.internal:5432/app", "postgres://app:[REDACTED:url_password]@db.internal:5432/app"},
		{"env password", "DB_PASSWORD=hunter2 ./run", "DB_PASSWORD=[REDACTED:key] ./run"},
		{"flag token", "deploy --token=abc123def", "deploy --token=[REDACTED:key]"},
		{"query token", "https://x.example/cb?access_token=abc123&state=1", "https://x.example/cb?access_token=[REDACTED:key]&state=1"},
		{"yaml password", "db:\n  password: correct-horse\n", "db:\n  password: [REDACTED:key]\n"},
		{"quoted password with spaces", `export PASSWORD="correct horse battery"`, `export PASSWORD="[REDACTED:key]"`},
		{"json text", `{"api_key": "abc def"}`, `{"api_key": "[REDACTED:key]"}`},
		{"basic auth", "curl -H 'Authorization: Basic dXNlcjpwYXNz' https://x.example", "curl -H 'Authorization: Basic [REDACTED:authorization]' https://x.example"},
		{"token auth", `Authorization: token abc123def456`, `Authorization: token [REDACTED:authorization]`},
		{"cookie", "curl -H 'Cookie: session=abc123; theme=dark' x", "curl -H 'Cookie: [REDACTED:cookie]' x"},
		{"set-cookie", "Set-Cookie: sid=31d4d96e407aad42; Path=/; Secure\r\nX: y", "Set-Cookie: [REDACTED:cookie]\r\nX: y"},
		{"two secrets", ghClassic + " and " + slackBot, "[REDACTED:github_token] and [REDACTED:slack_token]"},

		// Secrets assigned to names, in the notations people paste.
		{"aws configure set", "aws configure set aws_secret_access_key " + awsSecret + " --profile dev",
			"aws configure set aws_secret_access_key [REDACTED:aws_secret] --profile dev"},
		{"aws configure set short", "aws configure set aws_secret_access_key Hunter2-x9 --profile dev",
			"aws configure set aws_secret_access_key [REDACTED:key] --profile dev"},
		{"aws secret yaml", "AWS_SECRET_ACCESS_KEY: " + awsSecret, "AWS_SECRET_ACCESS_KEY: [REDACTED:aws_secret]"},
		{"aws secret key= not 40", "aws_secret_access_key=abc", "aws_secret_access_key=[REDACTED:key]"},
		{"password=", "login password=hunter2 now", "login password=[REDACTED:key] now"},
		{"passwd:", "passwd: x", "passwd: [REDACTED:key]"},
		{"flag with blank", "docker login --password hunter2 -u bob", "docker login --password [REDACTED:key] -u bob"},
		{"flag with =", "app --password=hunter2 --verbose", "app --password=[REDACTED:key] --verbose"},
		{"flag quoted", `app --token "two words" --x`, `app --token "[REDACTED:key]" --x`},
		{"mysql -p attached", "mysql -u root -pHunter2 shop", "mysql -u root -p[REDACTED:password_flag] shop"},
		{"mysql -p quoted", "mysqldump -u root -p'Hunter 2' shop > x.sql", "mysqldump -u root -p[REDACTED:password_flag] shop > x.sql"},
		{"sshpass", "sshpass -p hunter2 ssh bob@h", "sshpass -p [REDACTED:password_flag] ssh bob@h"},
		{"curl -u", "curl -u admin:hunter2 https://x.example", "curl -u admin:[REDACTED:password_flag] https://x.example"},
		{"openssl pass:", "openssl rsa -passin pass:hunter2 -in k.pem", "openssl rsa -passin pass:[REDACTED:key] -in k.pem"},
		{"mysql url", "mysql://root:hunter2@db:3306/shop", "mysql://root:[REDACTED:url_password]@db:3306/shop"},
		{"redis url no user", "redis://:hunter2@cache:6379/0", "redis://:[REDACTED:url_password]@cache:6379/0"},
		{"amqp url @ in password", "amqp://bob:p@ss@mq.internal/vhost", "amqp://bob:[REDACTED:url_password]@mq.internal/vhost"},
		{"any scheme", "git clone https://bob:tok3n@git.example/r.git", "git clone https://bob:[REDACTED:url_password]@git.example/r.git"},
		{"export token", "export FOO_TOKEN=abc123", "export FOO_TOKEN=[REDACTED:key]"},
		{"env file", "DB_HOST=db\nDB_PASS=xyz\nSMTP_PWD=q\n", "DB_HOST=db\nDB_PASS=[REDACTED:key]\nSMTP_PWD=[REDACTED:key]\n"},
		{"api_key query", "https://x.example/v1?api_key=abc&q=1", "https://x.example/v1?api_key=[REDACTED:key]&q=1"},
		{"secret env", "CLIENT_SECRET=s3", "CLIENT_SECRET=[REDACTED:key]"},
		{"connection string", "Server=db;User Id=sa;Password=hunter2;Database=shop", "Server=db;User Id=sa;Password=[REDACTED:key];Database=shop"},
		{"ruby hash", "{'secret' => 'x'}", "{'secret' => '[REDACTED:key]'}"},
		{"go :=", `password := "hunter2"`, `password := "[REDACTED:key]"`},
		{"npmrc", "//registry.npmjs.org/:_authToken=npm_abc", "//registry.npmjs.org/:_authToken=[REDACTED:key]"},
		{"pwd key", `PWD=/home/bob`, `PWD=[REDACTED:key]`},
		{"session cookie env", "SESSION_COOKIE=abc", "SESSION_COOKIE=[REDACTED:key]"},
		{"escaped quote inside value", `{"password":"hun\"ter2","n":1}`, `{"password":"[REDACTED:key]","n":1}`},
		{"value cut short", `{"password": "hunt`, `{"password": "[REDACTED:key]`},
		{"escaped key", `{"pass\u0077ord":"hunter2","n":1`, `{"pass\u0077ord":"[REDACTED:key]","n":1`},
		{"escaped key twice", `{\"pass\\u0077ord\":\"hunter2\",`, `{\"pass\\u0077ord\":\"[REDACTED:key]\",`},
		{"escaped separator", `"cmd":"export API_TOKEN\u003dabc def"`, `"cmd":"export API_TOKEN\u003d[REDACTED:key] def"`},
		{"escaped token", `"a":"\u0067hp_` + ghClassic[4:] + `"`, `"a":"[REDACTED:github_token]"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := red.String(tt.in); got != tt.want {
				t.Errorf("String(%q)\n got %q\nwant %q", tt.in, got, tt.want)
			}
		})
	}
}

func TestStringKeepsLookalikes(t *testing.T) {
	red := mustNew(t, Rules{})
	for _, s := range []string{
		"",
		"the bearer of bad news",
		"Bearer instruments", // prose: all letters
		"max_tokens=4096",
		"token_count: 12",
		"has_token: true",
		"sk-learn-compatible-estimators",
		"task-abcdefghijklmnopqrstuvwxyz0123",
		"disk-0123456789abcdefghijklmnop",
		"AKIA is a prefix",
		"ghp_short",
		"https://example.com/path?q=1",
		"postgres://db.internal:5432/app",
		"eyJ alone",
		"-----BEGIN PUBLIC KEY-----\nMCowBQYDK2VwAyEA\n-----END PUBLIC KEY-----",
		"password == other",
		`{"tokens": {"in": 5}}`,
		`{"authorization": {"reviewed": true}}`,
		"cookie policy",
		"[REDACTED:jwt]",
		"the password is wrong",
		"the api_key field",
		"pass: true",
		"tests pass=12 fail=0",
		"bypass: yes",
		"mysql -u root -p shop",
		"sshpass -f pw.txt ssh -p 22 h",
		"docker run -u 1000:1000 img",
		"echo x | docker login --password-stdin",
		"PASSWORD_FILE=/run/secrets/db",
		"token_url: https://idp.example/token",
		"psql --no-password -h db",
		"Token::new(x)",
		"access_key_id: AKIA-is-elsewhere",
		"https://localhost:3000/@user",
	} {
		if got := red.String(s); got != s {
			t.Errorf("String(%q) = %q, want it unchanged", s, got)
		}
	}
}

func TestJSON(t *testing.T) {
	red := mustNew(t, Rules{})
	tests := []struct{ name, in, want string }{
		{"password string", `{"user":"bob","password":"hunter2"}`, `{"user":"bob","password":"[REDACTED:key]"}`},
		{"exact key any type", `{"token":12345,"secret":{"a":1},"password":[1,2],"cookie":true}`,
			`{"token":"[REDACTED:key]","secret":"[REDACTED:key]","password":"[REDACTED:key]","cookie":"[REDACTED:key]"}`},
		{"substring key string", `{"api_token":"abc","X-Api-Key":"k","client_secret":"s","GITHUB_TOKEN":"t"}`,
			`{"api_token":"[REDACTED:key]","X-Api-Key":"[REDACTED:key]","client_secret":"[REDACTED:key]","GITHUB_TOKEN":"[REDACTED:key]"}`},
		{"substring key array", `{"api_keys":["k1","k2",3]}`, `{"api_keys":["[REDACTED:key]","[REDACTED:key]",3]}`},
		{"substring key object recurses", `{"credentials":{"user":"bob","password":"x","n":1}}`,
			`{"credentials":{"user":"bob","password":"[REDACTED:key]","n":1}}`},
		{"token counts kept then secret", `{"max_tokens":100,"api_token":"abc"}`, `{"max_tokens":100,"api_token":"[REDACTED:key]"}`},
		{"value pattern", `{"cmd":"curl -H 'Authorization: Bearer ` + bearerTok + `'"}`, `{"cmd":"curl -H 'Authorization: Bearer [REDACTED:bearer]'"}`},
		{"key order and whitespace", "{\n  \"z\": 1,\n  \"a\": \"" + ghClassic + "\",\n  \"m\": [true, null]\n}",
			"{\n  \"z\": 1,\n  \"a\": \"[REDACTED:github_token]\",\n  \"m\": [true, null]\n}"},
		{"nested", `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"fetch","arguments":{"headers":[{"name":"Authorization","value":"Bearer ` + bearerTok + `"}],"list":[[["` + awsKeyID + `"]]]}}}`,
			`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"fetch","arguments":{"headers":[{"name":"Authorization","value":"Bearer [REDACTED:bearer]"}],"list":[[["[REDACTED:aws_key]"]]]}}}`},
		{"escaped string", `{"a":"\u0067hp_` + ghClassic[4:] + `\n"}`, `{"a":"[REDACTED:github_token]\n"}`},
		{"pem in string", `{"content":` + mustJSON(pemRSA) + `}`, `{"content":"[REDACTED:private_key]"}`},
		{"secret as key", `{"` + ghClassic + `":1}`, `{"[REDACTED:github_token]":1}`},
		{"top-level string", `"` + jwtSample + `"`, `"[REDACTED:jwt]"`},
		{"html stays readable", `{"a":"<b>&` + awsKeyID + `"}`, `{"a":"<b>&[REDACTED:aws_key]"}`},
		{"invalid json redacted as text", `{"a": "Bearer ` + bearerTok, `{"a": "Bearer [REDACTED:bearer]`},
		{"invalid json keyed", `{"password": "hunter2", "x": `, `{"password": "[REDACTED:key]", "x": `},
		{"pwd field", `{"user":"bob","pwd":"hunter2"}`, `{"user":"bob","pwd":"[REDACTED:key]"}`},
		{"pwd number", `{"pwd":123456}`, `{"pwd":"[REDACTED:key]"}`},
		{"pass and last-word keys", `{"pass":"a","db_pass":"b","smtpPass":"c","MYSQL_PWD":"d","passphrase":"e"}`,
			`{"pass":"[REDACTED:key]","db_pass":"[REDACTED:key]","smtpPass":"[REDACTED:key]","MYSQL_PWD":"[REDACTED:key]","passphrase":"[REDACTED:key]"}`},
		{"secret kinds of key", `{"private_key":"a","signingKey":"b","secret_key":"c","encryption-key":"d","primary_key":"id7"}`,
			`{"private_key":"[REDACTED:key]","signingKey":"[REDACTED:key]","secret_key":"[REDACTED:key]","encryption-key":"[REDACTED:key]","primary_key":"id7"}`},
		{"escaped key", `{"pass\u0077ord":"hunter2","P\u0057D":"x"}`, `{"pass\u0077ord":"[REDACTED:key]","P\u0057D":"[REDACTED:key]"}`},
		{"aws configure in an argument", `{"name":"shell","arguments":{"cmd":"aws configure set aws_secret_access_key ` + awsSecret + `"}}`,
			`{"name":"shell","arguments":{"cmd":"aws configure set aws_secret_access_key [REDACTED:aws_secret]"}}`},
		{"json text in a string", `{"body":"{\"pass\\u0077ord\":\"hunter2\"}"}`, `{"body":"{\"pass\\u0077ord\":\"[REDACTED:key]\"}"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, changed := red.JSON(json.RawMessage(tt.in))
			if string(got) != tt.want {
				t.Errorf("JSON(%s)\n got %s\nwant %s", tt.in, got, tt.want)
			}
			if !changed {
				t.Error("changed = false")
			}
			if json.Valid([]byte(tt.in)) && !json.Valid(got) {
				t.Errorf("output is not valid JSON: %s", got)
			}
		})
	}
}

func mustJSON(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

func TestJSONUnchangedIsSameSlice(t *testing.T) {
	red := mustNew(t, Rules{})
	for _, in := range []string{
		`{"max_tokens":100,"input_tokens":5,"tokens_used":7,"token_count":3,"output_tokens":1.5}`,
		`{"password":"","secret":null}`, // nothing to hide, and an empty password is worth seeing
		`{"password":"[REDACTED:key]","jwt":"[REDACTED:jwt]"}`,
		`{"_meta":{"progressToken":"abc-123"},"cursor":"eyJwYWdlIjoy"}`,
		`{ "b" : [ 1 , 2 , { } , [ ] ] , "a" : "x" }`,
		`[]`, `null`, `"plain"`, `12`,
		`not json at all`,
		``,
	} {
		raw := json.RawMessage(in)
		out, changed := red.JSON(raw)
		if changed || string(out) != in {
			t.Errorf("JSON(%s) = %s, %v; want it unchanged", in, out, changed)
		}
		if len(in) > 0 && &out[0] != &raw[0] {
			t.Errorf("JSON(%s) copied an unchanged input", in)
		}
	}
}

// The key rule, as JSON keys and free-text names both use it.
func TestKeyRule(t *testing.T) {
	red := mustNew(t, Rules{})
	for key, want := range map[string]keyClass{
		"password": secretAny, "PASSWORD": secretAny, "pass.word": secretAny, "pwd": secretAny, "PWD": secretAny,
		"passwd": secretAny, "passphrase": secretAny, "token": secretAny, "api-key": secretAny, "privateKey": secretAny,
		"pass": secretString, "db_pass": secretString, "smtpPass": secretString, "MYSQL_PWD": secretString, "db_pass2": secretString,
		"aws_secret_access_key": secretString, "client_secret": secretString, "GITHUB_TOKEN": secretString,
		"signing_key": secretAny, "masterKey": secretAny, "x-auth-key": secretString,
		"bypass": plain, "compass": plain, "passed": plain, "OLDPWD": plain, "pass_rate": plain,
		"key": plain, "primary_key": plain, "sort_key": plain, "public_key": plain,
		"progressToken": plain, "token_type": plain, "access_key_id": plain, "password_file": plain,
		"token_url": plain, "password-stdin": plain, "tokenEndpoint": plain,
	} {
		if got := red.classify(key); got != want {
			t.Errorf("classify(%q) = %v, want %v", key, got, want)
		}
	}
}

// Every name the key rule knows is looked for in free text: each holds
// one of the scanner's words.
func TestAssignWordsCoverKeyRule(t *testing.T) {
	names := append([]string(nil), defaultKeys...)
	for _, s := range shortKeys {
		names = append(names, s.word)
	}
	for _, n := range names {
		if n == "authorization" {
			continue // its own pattern reads the auth scheme before the secret
		}
		found := false
		for _, w := range assignWords {
			found = found || strings.Contains(n, w)
		}
		if !found {
			t.Errorf("no scanner word in %q", n)
		}
	}
}

func TestRules(t *testing.T) {
	red := mustNew(t, Rules{
		Keys:     []string{"SSN", "x-internal-id"},
		Patterns: []string{`\bcust-[0-9]{6}\b`, `pin (?P<secret>[0-9]{4})`},
	})
	in := `{"ssn":123456789,"X_Internal_ID":{"a":1},"note":"customer cust-123456, pin 1234"}`
	want := `{"ssn":"[REDACTED:key]","X_Internal_ID":"[REDACTED:key]","note":"customer [REDACTED:pattern], pin [REDACTED:pattern]"}`
	if got, _ := red.JSON(json.RawMessage(in)); string(got) != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
	// Extra rules add to the built-ins, never replace them.
	if got := red.String(ghClassic); got != "[REDACTED:github_token]" {
		t.Errorf("built-in lost: %q", got)
	}
}

func TestDisable(t *testing.T) {
	red := mustNew(t, Rules{Disable: true})
	in := `{"password":"hunter2"}`
	if got, changed := red.JSON(json.RawMessage(in)); changed || string(got) != in {
		t.Errorf("disabled redactor changed %s to %s", in, got)
	}
	if got := red.String(ghClassic); got != ghClassic {
		t.Errorf("disabled redactor changed %q", got)
	}
}

func TestNilRedactorUsesBuiltins(t *testing.T) {
	var red *Redactor
	if got, _ := red.JSON(json.RawMessage(`{"password":"x"}`)); string(got) != `{"password":"[REDACTED:key]"}` {
		t.Errorf("nil redactor: %s", got)
	}
}

func TestNewErrors(t *testing.T) {
	for _, r := range []Rules{
		{Patterns: []string{`ok`, `(unclosed`}},
		{Patterns: []string{``}},
		{Keys: []string{"-_"}},
	} {
		_, err := New(r)
		if err == nil {
			t.Errorf("New(%+v) succeeded", r)
			continue
		}
		bad := strings.Join(append(r.Patterns[min(1, len(r.Patterns)):], r.Keys...), "")
		if !strings.Contains(err.Error(), `"`+bad+`"`) {
			t.Errorf("error %q does not name %q", err, bad)
		}
	}
}

// builtinMatch reports whether any built-in shape survives in s.
func builtinMatch(s string) (string, bool) {
	for i := range builtins {
		if len(builtins[i].appendSpans(nil, s)) > 0 {
			return builtins[i].kind, true
		}
	}
	return "", false
}

func FuzzRedactJSON(f *testing.F) {
	for _, s := range []string{
		`{"password":"hunter2","n":[1,{"token":2}],"max_tokens":9}`,
		`{"a":"Bearer ` + bearerTok + `","b":"` + jwtSample + `"}`,
		`["` + awsKeyID + `","aws_secret_access_key=` + awsSecret + `"]`,
		`{"k":"` + ghClassic + ` ` + ghFine + ` ` + slackBot + `"}`,
		`{"k":` + mustJSON(pemRSA+pemCut) + `}`,
		`{"` + openAIKey + `":"` + anthropicKey + " " + googleKey + `"}`,
		`{"u":"postgres://a:b@c/d","e":"API_KEY='x y'"}`,
		`{"a":"\u0041KIA` + awsKeyID[4:] + `"}`,
		`{"password": "unterminated`,
	} {
		f.Add([]byte(s))
	}
	red := mustNew(f, Rules{})
	f.Fuzz(func(t *testing.T, in []byte) {
		out, changed := red.JSON(in)
		if !changed && !bytes.Equal(out, in) {
			t.Fatalf("unchanged but different: %q -> %q", in, out)
		}
		if !json.Valid(in) {
			return
		}
		if !json.Valid(out) {
			t.Fatalf("valid input gave invalid output: %q -> %q", in, out)
		}
		// A second pass finds nothing: every secret was replaced, and a
		// replacement never forms a new one.
		if again, changed := red.JSON(out); changed {
			t.Fatalf("second pass changed output:\n in %q\nout %q\nagain %q", in, out, again)
		}
		dec := json.NewDecoder(bytes.NewReader(out))
		for {
			tok, err := dec.Token()
			if err != nil {
				break
			}
			if s, ok := tok.(string); ok {
				if kind, found := builtinMatch(s); found {
					t.Fatalf("%s survived in %q (output %q)", kind, s, out)
				}
			}
		}
	})
}

// A typical tools/call request: a few KiB of arguments and no secret.
func BenchmarkJSONNoSecret(b *testing.B) {
	var sb strings.Builder
	sb.WriteString(`{"_meta":{"progressToken":17,"traceparent":"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"},"name":"write_file","arguments":{"path":"/home/dev/project/src/main.go","mode":"0644","lines":[`)
	for i := 0; sb.Len() < 4000; i++ {
		if i > 0 {
			sb.WriteByte(',')
		}
		sb.WriteString(`{"n":` + strings.Repeat("7", 3) + `,"text":"func handler(w http.ResponseWriter, r *http.Request) { log.Printf(\"served %s\", r.URL.Path) }","max_tokens":512}`)
	}
	sb.WriteString(`]}}`)
	body := json.RawMessage(sb.String())
	red := mustNew(b, Rules{})
	if _, changed := red.JSON(body); changed {
		b.Fatal("benchmark body has a secret")
	}
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		red.JSON(body)
	}
}

// The one-pass index answers as each pattern's hint does.
func FuzzHintIndex(f *testing.F) {
	for _, s := range []string{
		"", "a", "xo", "xox", `{"Password": 1}`, "PASSWORD", "password", "sk-", "Sk-ant-", "AKIA", "akia",
		"eyJhbGci", "EYJ", "://", "Authorization", "bearer BEARER", "-----BEGIN PRIVATE KEY", "private key",
		"ghp_", "GHP_", "github_pat_", "xapp-", "AIza", "COOKIE:", "token=", "tok", "secret", "SeCrEt",
		`{"text":"benchmark payload of a typical small size"}`,
	} {
		f.Add(s)
	}
	x := builtinHints()
	f.Fuzz(func(t *testing.T, s string) {
		checkHintIndex(t, x, s)
	})
}

// A small tools/call's params and result, with no secret: what redaction
// costs every call.
func BenchmarkJSONSmall(b *testing.B) {
	red := mustNew(b, Rules{})
	params := json.RawMessage(`{"name":"echo","arguments":{"text":"benchmark payload of a typical small size"}}`)
	result := json.RawMessage(`{"content":[{"type":"text","text":"benchmark payload of a typical small size"}]}`)
	b.ReportAllocs()
	for b.Loop() {
		red.JSON(params)
		red.JSON(result)
	}
}

// classify normalizes short ASCII keys on the stack; it must answer as
// normalizing with strings.Map does, for any key.
func FuzzClassify(f *testing.F) {
	for _, s := range []string{"", "_", "X-Api-Key", "client_secret", "GITHUB_TOKEN", "progressToken", "pass.word", "é_token", "\xff\xfesecret",
		"Password", strings.Repeat("-", 80), strings.Repeat("a", 63) + "TOKEN", "max_tokens", "custom.Key"} {
		f.Add(s)
	}
	red := mustNew(f, Rules{Keys: []string{"Custom-Key", "é key"}})
	f.Fuzz(func(t *testing.T, key string) {
		if got, want := red.classify(key), red.classifyName(normalize(key), key); got != want {
			t.Fatalf("classify(%q) = %v, want %v", key, got, want)
		}
	})
}
