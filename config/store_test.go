package config

import (
	"strings"
	"testing"
	"time"
)

func TestStoreSettings(t *testing.T) {
	c, err := parse("c.yaml", []byte(`
checkpoint: {every: 500, interval: 2s}
retention: {max_age: 90d, max_bytes: 10GB}
verify_key: "host+6f3a1b2c+AQ2bq0W7Ej4o5NvKc2c3qCkqH3Ct1gJ1x0QdWcC0L8oB"
fail_open: true
`))
	if err == nil {
		t.Fatal("a malformed verify_key was accepted")
	}
	if !strings.Contains(err.Error(), "c.yaml:4: verify_key") {
		t.Fatalf("error does not name the line: %v", err)
	}
	c, err = parse("c.yaml", []byte(`
checkpoint: {every: 500, interval: 2s}
retention: {max_age: 90d, max_bytes: 10GB}
fail_open: true
`))
	if err != nil {
		t.Fatal(err)
	}
	if c.Checkpoint.Every != 500 || time.Duration(c.Checkpoint.Interval) != 2*time.Second ||
		time.Duration(c.Retention.MaxAge) != 90*24*time.Hour || c.Retention.MaxBytes != 10<<30 || !c.FailOpen {
		t.Fatalf("parsed %+v %+v fail_open %v", c.Checkpoint, c.Retention, c.FailOpen)
	}
	for _, bad := range []string{
		"retention: {max_age: 10m}",
		"retention: {max_bytes: 1KB}",
		"retention: {max_bytes: lots}",
		"retention: {max_age: soon}",
		"checkpoint: {every: -1}",
		"retention: {max_count: 3}",
	} {
		if _, err := parse("c.yaml", []byte(bad)); err == nil {
			t.Errorf("%s: accepted", bad)
		}
	}
	for in, want := range map[string]int64{"1048576": 1 << 20, "512MB": 512 << 20, "10GiB": 10 << 30, "2 T": 2 << 40, "7B": 7} {
		if got, err := ParseBytes(in); err != nil || got != want {
			t.Errorf("ParseBytes(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
}
