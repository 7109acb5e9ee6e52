package demo

import (
	_ "embed"
	"os"
	"path/filepath"
)

// rules are the rollback rules of the demo server's tools.
//
//go:embed rules/acme-ops.yaml
var rules []byte

// WriteRules installs the demo server's rollback rules in dir, a rollback
// rules directory.
func WriteRules(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "acme-ops.yaml"), rules, 0o600)
}
