package config

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
	"golang.org/x/mod/sumdb/note"
)

// Store settings: checkpoints, retention, the pinned verifier key, and what
// the gateway does when the record cannot be written.
//
//	checkpoint: {every: 1000, interval: 5s}   # sign the chain head this often (defaults shown)
//	retention: {max_age: 90d, max_bytes: 10GB} # prune the oldest events (default: keep all)
//	verify_key: "mcptrail-host+1a2b3c4d+AQ…"   # `mcptrail verify` trusts only this key
//	fail_open: false                          # true: forward calls even when they cannot be recorded
//
// fail_open trades the guarantee that nothing happens unrecorded for
// availability: with the disk full, a fail-closed gateway (the default)
// refuses every call with a JSON-RPC error; a fail-open one forwards them,
// and the store records an alert counting the events it lost once it can
// write again.
type Checkpoint struct {
	Every    int      `yaml:"every"`    // events; 0 = 1000
	Interval Duration `yaml:"interval"` // 0 = 5s
}

// Retention bounds the record. Pruning cuts a prefix at a signed checkpoint,
// which summarizes it for verify, and never cuts what a SIEM forwarder has
// not delivered.
type Retention struct {
	MaxAge   Age   `yaml:"max_age"`   // e.g. 90d or 2160h; 0 = no limit
	MaxBytes Bytes `yaml:"max_bytes"` // e.g. 10GB; 0 = no limit
}

// Age is a duration that also takes days ("90d").
type Age time.Duration

func (a *Age) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode {
		return fmt.Errorf("line %d: want an age such as \"90d\" or \"720h\"", n.Line)
	}
	if days, ok := strings.CutSuffix(n.Value, "d"); ok {
		d, err := strconv.ParseUint(days, 10, 32)
		if err != nil {
			return fmt.Errorf("line %d: %q is not an age such as \"90d\"", n.Line, n.Value)
		}
		*a = Age(time.Duration(d) * 24 * time.Hour)
		return nil
	}
	var d Duration
	if err := d.UnmarshalYAML(n); err != nil {
		return err
	}
	*a = Age(d)
	return nil
}

// Bytes is a size that takes KB, MB, GB and TB (powers of 1024) or KiB….
type Bytes int64

func (b *Bytes) UnmarshalYAML(n *yaml.Node) error {
	v, err := ParseBytes(n.Value)
	if n.Kind != yaml.ScalarNode || err != nil {
		return fmt.Errorf("line %d: want a size such as \"10GB\" or 1048576", n.Line)
	}
	*b = Bytes(v)
	return nil
}

// ParseBytes reads "1048576", "512MB", "10GiB".
func ParseBytes(s string) (int64, error) {
	s = strings.TrimSpace(s)
	mult := int64(1)
	for i, u := range []string{"K", "M", "G", "T"} {
		for _, suf := range []string{u + "iB", u + "B", u} {
			if rest, ok := strings.CutSuffix(s, suf); ok {
				s, mult = strings.TrimSpace(rest), int64(1)<<(10*(i+1))
				goto num
			}
		}
	}
	s = strings.TrimSuffix(s, "B")
num:
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 0 || n > (1<<62)/mult {
		return 0, fmt.Errorf("%q is not a size", s)
	}
	return n * mult, nil
}

func (c *Config) validateStore() error {
	if c.Checkpoint.Every < 0 {
		return errAt("checkpoint.every: must not be negative", "checkpoint", "every")
	}
	if c.Checkpoint.Interval < 0 {
		return errAt("checkpoint.interval: must not be negative", "checkpoint", "interval")
	}
	if c.Retention.MaxAge < 0 {
		return errAt("retention.max_age: must not be negative", "retention", "max_age")
	}
	if c.Retention.MaxAge > 0 && time.Duration(c.Retention.MaxAge) < time.Hour {
		return errAt("retention.max_age: under an hour would prune what the console is still showing; want e.g. 90d", "retention", "max_age")
	}
	if c.Retention.MaxBytes > 0 && c.Retention.MaxBytes < 1<<20 {
		return errAt("retention.max_bytes: want at least 1MB", "retention", "max_bytes")
	}
	if c.VerifyKey != "" {
		if _, err := note.NewVerifier(c.VerifyKey); err != nil {
			return errAt(fmt.Sprintf("verify_key: %v (want the line `mcptrail verify --print-key` prints)", err), "verify_key")
		}
	}
	return nil
}
