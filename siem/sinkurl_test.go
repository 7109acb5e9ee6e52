package siem

import (
	"errors"
	"strings"
	"testing"
)

// FuzzParseSinkURL gives the sink URL parsers (ParseSinkURL and
// ParseKafkaURL) any URL with a known secret put in its userinfo and in a
// token= parameter, and checks that they never panic, that every error is
// a *SinkError, and that no error, Redacted or cursor name shows the
// secret. Seeds: testdata/fuzz/FuzzParseSinkURL, one URL of every scheme
// and the faults each parser reports.
func FuzzParseSinkURL(f *testing.F) {
	const user, pass, token = "Us3rSECRETx", "Pa55SECRETx", "T0kSECRETx"
	f.Fuzz(func(t *testing.T, raw string) {
		if strings.Contains(strings.ToUpper(raw), "SECRET") {
			t.Skip("the input holds the marker itself")
		}
		// As given, nothing to leak; it must not panic.
		_, _ = ParseSinkURL(raw)
		// After "scheme://", or after the first colon of a URL that has no
		// "//" (an operator's typo), whatever the scheme, but not in a
		// query: a secret typed into a query value is not one the parser
		// can tell from an option.
		scheme, rest, ok := strings.Cut(raw, "://")
		sep := "://"
		if !ok {
			if scheme, rest, ok = strings.Cut(raw, ":"); !ok {
				return
			}
			sep = ":"
		}
		if strings.Contains(scheme, "?") {
			return
		}
		withSecret := scheme + sep + user + ":" + pass + "@" + rest
		if !strings.Contains(rest, "#") {
			sep := "?"
			if strings.Contains(rest, "?") {
				sep = "&"
			}
			withSecret += sep + "token=" + token
		}
		shows := func(s string) bool {
			return strings.Contains(s, user) || strings.Contains(s, pass) || strings.Contains(s, token)
		}
		check := func(what string, err error) {
			t.Helper()
			if err == nil {
				return
			}
			var se *SinkError
			if !errors.As(err, &se) {
				t.Errorf("%s(%q): error %T %v, want a *SinkError", what, withSecret, err, err)
			}
			if shows(err.Error()) {
				t.Errorf("%s(%q): error shows the secret: %v", what, withSecret, err)
			}
		}
		spec, err := ParseSinkURL(withSecret)
		check("ParseSinkURL", err)
		if err == nil && (shows(spec.Redacted) || shows(spec.Name)) {
			t.Errorf("ParseSinkURL(%q): Redacted %q or Name %q shows the secret", withSecret, spec.Redacted, spec.Name)
		}
		if shows(RedactURL(withSecret)) {
			t.Errorf("RedactURL(%q) = %q shows the secret", withSecret, RedactURL(withSecret))
		}
		conn, _, err := ParseKafkaURL(withSecret, "token")
		check("ParseKafkaURL", err)
		if err == nil && shows(conn.Redacted) {
			t.Errorf("ParseKafkaURL(%q): Redacted %q shows the secret", withSecret, conn.Redacted)
		}
	})
}

// TestRedactURLMasksWhatItCannotPlace: URLs with a slash or colon missing,
// whose secret url.Parse files elsewhere than the userinfo.
func TestRedactURLMasksWhatItCannotPlace(t *testing.T) {
	const secret = "s3cr3t-T0KEN"
	for _, raw := range []string{
		"hec+https//" + secret + "@splunk:8088",   // no colon: no scheme, all path
		"hec+https:" + secret + "@splunk:8088",    // no slashes: opaque
		"hec+https:///" + secret + "@splunk:8088", // a slash too many: no host, the path
		"hec+https://splunk:8088#" + secret,       // a fragment
	} {
		got := RedactURL(raw)
		if strings.Contains(got, secret) {
			t.Errorf("RedactURL(%q) = %q", raw, got)
		}
		if _, err := ParseSinkURL(raw); err == nil || strings.Contains(err.Error(), secret) {
			t.Errorf("ParseSinkURL(%q): %v", raw, err)
		}
	}
}
