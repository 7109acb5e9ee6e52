package authkeys

import (
	"strings"
	"testing"
	"time"
)

func TestFromAllows(t *testing.T) {
	for _, tc := range []struct {
		patterns, addr string
		want           bool
	}{
		{"127.0.0.1", "127.0.0.1", true},
		{"10.9.9.9", "127.0.0.1", false},
		{"127.0.0.0/8", "127.0.0.1", true},
		{"10.0.0.0/8", "127.0.0.1", false},
		{"127.0.0.*", "127.0.0.1", true},
		{"127.0.0.?", "127.0.0.1", true},
		{"127.0.0.?", "127.0.0.10", false},
		{"*,!127.0.0.1", "127.0.0.1", false},
		{"!127.0.0.1,*", "127.0.0.1", false},
		{"*,!10.0.0.0/8", "127.0.0.1", true},
		{"!10.0.0.1", "127.0.0.1", false},   // a negation alone allows nobody
		{"127.0.0.1/8", "127.0.0.1", false}, // host bits set: an error refuses
		{"127.0.0.1,", "127.0.0.1", false},  // an empty entry: an error refuses
		{"::1", "::1", true},
		{"::1/128", "::ffff:127.0.0.1", false},
		{"127.0.0.1", "::ffff:127.0.0.1", true},
		{"127.0.0.1", "not-an-ip", false},
		{"localhost", "127.0.0.1", false}, // no DNS: names never match an address
	} {
		if got := FromAllows(tc.patterns, tc.addr); got != tc.want {
			t.Errorf("from=%q addr %s: %v, want %v", tc.patterns, tc.addr, got, tc.want)
		}
	}
}

func TestParse(t *testing.T) {
	r, err := Parse([]string{`restrict`, `pty`, `from="127.0.0.1,::1"`, `environment="MCPTRAIL_ROLE=operator"`, `expiry-time="20300101Z"`, `No-Port-Forwarding`, `permitopen="host:22"`}, time.UTC)
	if err != nil {
		t.Fatal(err)
	}
	if !r.PTY || r.From != "127.0.0.1,::1" || r.Role != "operator" || !r.Expiry.Equal(time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)) {
		t.Fatalf("%+v", r)
	}
	for _, opts := range [][]string{{"restrict"}, {"no-pty"}, {"pty", "no-pty"}} {
		if r, err := Parse(opts, time.UTC); err != nil || r.PTY {
			t.Errorf("%v: pty allowed (%v)", opts, err)
		}
	}
	for opts, want := range map[string]string{
		`command="/bin/true"`:    "command= is not supported",
		`cert-authority`:         `"cert-authority"`,
		`verify-required`:        `"verify-required"`,
		`principals="alice"`:     `"principals="`,
		`frobnicate`:             `"frobnicate"`,
		`from=""`:                "empty",
		`expiry-time="2020"`:     "YYYYMMDD",
		`environment="novalue"`:  "NAME=value",
		`from="10.0.0.1`:         "unterminated",
		`expiry-time="20201301"`: "month out of range",
	} {
		if _, err := Parse([]string{opts}, time.UTC); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v, want an error with %q", opts, err, want)
		}
	}
	if _, err := Parse([]string{`environment="MCPTRAIL_ROLE=viewer"`, `environment="MCPTRAIL_ROLE=operator"`}, time.UTC); err == nil {
		t.Error("two different roles accepted")
	}
}

func TestExpiry(t *testing.T) {
	berlin := time.FixedZone("x", 2*3600)
	for v, want := range map[string]time.Time{
		"20200101":        time.Date(2020, 1, 1, 0, 0, 0, 0, berlin),
		"202001021530":    time.Date(2020, 1, 2, 15, 30, 0, 0, berlin),
		"20200102153045":  time.Date(2020, 1, 2, 15, 30, 45, 0, berlin),
		"20200102153045Z": time.Date(2020, 1, 2, 15, 30, 45, 0, time.UTC),
	} {
		got, err := ParseExpiry(v, berlin)
		if err != nil || !got.Equal(want) {
			t.Errorf("%s: %v %v, want %v", v, got, err, want)
		}
	}
	r := Rules{Expiry: time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)}
	if !r.Expired(time.Date(2020, 1, 1, 0, 0, 1, 0, time.UTC)) || r.Expired(time.Date(2019, 12, 31, 0, 0, 0, 0, time.UTC)) || (Rules{}).Expired(time.Now()) {
		t.Error("Expired")
	}
}

func FuzzFromAllows(f *testing.F) {
	f.Add("127.0.0.0/8,!127.0.0.2", "127.0.0.1")
	f.Add("*", "::1")
	f.Add("1?*.*.0.*,!::/0", "10.0.0.1")
	f.Fuzz(func(t *testing.T, patterns, addr string) {
		got := FromAllows(patterns, addr)
		// A list whose every entry is negated allows nobody.
		allNeg := true
		for _, e := range strings.Split(patterns, ",") {
			allNeg = allNeg && strings.HasPrefix(e, "!")
		}
		if got && allNeg {
			t.Fatalf("%q allowed %q with only negations", patterns, addr)
		}
		// Adding a negation of the address itself always refuses.
		if FromAllows(patterns+",!"+addr, addr) {
			t.Fatalf("%q plus its own negation allowed %q", patterns, addr)
		}
	})
}

func FuzzParse(f *testing.F) {
	f.Add("restrict\x00pty\x00from=\"10.0.0.0/8\"")
	f.Add("expiry-time=\"20250101Z\"\x00environment=\"MCPTRAIL_ROLE=operator\"")
	f.Add("command=\"ls\"")
	f.Fuzz(func(t *testing.T, joined string) {
		opts := strings.Split(joined, "\x00")
		r, err := Parse(opts, time.UTC)
		if err != nil {
			return
		}
		for _, o := range opts {
			if strings.HasPrefix(strings.ToLower(o), "command=") {
				t.Fatalf("command= accepted: %q", opts)
			}
		}
		_ = r.Expired(time.Now())
	})
}
