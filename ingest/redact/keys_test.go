package redact

import (
	"strings"
	"testing"
)

// defaultKeysEachWord is what defaultKeysIn replaced: each of defaultKeys
// looked for in turn. classifyName takes the first of them k holds.
func defaultKeysEachWord(k string) uint32 {
	var found uint32
	for i, d := range defaultKeys {
		if strings.Contains(k, d) {
			found |= 1 << i
		}
	}
	return found
}

// The one-pass lookup finds the default keys looking for each in turn
// finds, in any name.
func FuzzClassifyName(f *testing.F) {
	for _, s := range []string{"", "arguments", "content", "password", "db_password_file", "progressToken", "tokentype", "x-api-key",
		"AuthKey", "authorization_url", "secretaccesskey", "privatekeyid", "cookie", "SetCookie", "MasterKey2", "pagetoken",
		"pass", "pwd", "db_pass", "bypass", "credentials", "encryption.key", "signing-key", "tokentokensecret", "ttoken", "ppassword"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, key string) {
		k := normalize(key)
		if got, want := defaultKeysIn(k), defaultKeysEachWord(k); got != want {
			t.Fatalf("defaultKeysIn(%q) = %b, each word in turn finds %b", k, got, want)
		}
	})
}

// Every default key, and every name of the fuzz seeds, with each default
// key put at each offset: the lookup finds a word wherever it is.
func TestDefaultKeysAnywhere(t *testing.T) {
	for _, d := range defaultKeys {
		for _, pre := range []string{"", "x", "pa", "tok", "secre"} {
			for _, post := range []string{"", "s", "file", "2"} {
				k := pre + d + post
				if got, want := defaultKeysIn(k), defaultKeysEachWord(k); got != want || got == 0 {
					t.Errorf("defaultKeysIn(%q) = %b, want %b", k, got, want)
				}
			}
		}
	}
}

// The names of a write call's params and arguments, and a few secret
// ones, as the walker asks about each member.
func BenchmarkClassify(b *testing.B) {
	keys := []string{"name", "arguments", "content", "path", "text", "max_tokens", "api_key", "description"}
	for b.Loop() {
		for _, k := range keys {
			builtin.classify(k)
		}
	}
}
