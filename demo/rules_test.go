package demo

import (
	"testing"

	"github.com/mcptrail/mcptrail/rollback"
)

func TestRulesLoad(t *testing.T) {
	dir := t.TempDir()
	if err := WriteRules(dir); err != nil {
		t.Fatal(err)
	}
	rs, err := rollback.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	if r := rs.Lookup("acme-ops", "", "delete_user"); r == nil || r.Class != "delete" {
		t.Fatalf("%+v", r)
	}
}
