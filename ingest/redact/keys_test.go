package redact

import (
	"strings"
	"testing"
)

// classifyNameEachWord is classifyName as it was before defaultKeysIn:
// each of defaultKeys looked for in turn. FuzzClassifyName holds the
// one-pass lookup to its answers.
func (r *Redactor) classifyNameEachWord(k, key string) keyClass {
	if len(r.keys) > 0 && r.keys[k] {
		return secretAny
	}
	digitless := k
	for len(digitless) > 0 && '0' <= digitless[len(digitless)-1] && digitless[len(digitless)-1] <= '9' {
		digitless = digitless[:len(digitless)-1]
	}
	for _, s := range shortKeys {
		w := s.word
		if k == w {
			return s.class
		}
		if len(digitless) > len(w) && strings.HasSuffix(digitless, w) {
			if last := lastWord(key); len(last) == len(w) && equalFold(last, w) {
				return secretString
			}
		}
	}
	if len(k) < minDefaultKey {
		return plain
	}
	for _, d := range defaultKeys {
		if k == d {
			if notSecret[k] {
				return plain
			}
			return secretAny
		}
		if strings.Contains(k, d) {
			if notSecret[k] || hasNotSecretSuffix(k) {
				return plain
			}
			return secretString
		}
	}
	return plain
}

func FuzzClassifyName(f *testing.F) {
	for _, s := range []string{"", "arguments", "content", "password", "db_password_file", "progressToken", "tokentype", "x-api-key",
		"AuthKey", "authorization_url", "secretaccesskey", "privatekeyid", "cookie", "SetCookie", "MasterKey2", "pagetoken",
		"pass", "pwd", "db_pass", "bypass", "credentials", "encryption.key", "signing-key", "tokentokensecret", "ttoken", "ppassword"} {
		f.Add(s)
	}
	custom := mustNew(f, Rules{Keys: []string{"Custom-Key", "tokenish"}})
	f.Fuzz(func(t *testing.T, key string) {
		for _, r := range []*Redactor{builtin, custom} {
			k := normalize(key)
			if got, want := r.classifyName(k, key), r.classifyNameEachWord(k, key); got != want {
				t.Fatalf("classifyName(%q) = %v, each word in turn says %v", key, got, want)
			}
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
				if got, want := builtin.classifyName(k, k), builtin.classifyNameEachWord(k, k); got != want {
					t.Errorf("classifyName(%q) = %v, want %v", k, got, want)
				}
				if defaultKeysIn(k) == 0 {
					t.Errorf("defaultKeysIn(%q) found nothing", k)
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
