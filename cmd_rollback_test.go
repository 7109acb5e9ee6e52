package main

import (
	"bytes"
	"strings"
	"testing"
)

func TestRollbackUsage(t *testing.T) {
	t.Setenv("MCPTRAIL_HOME", t.TempDir())
	for _, args := range [][]string{
		{"rollback"},
		{"rollback", "nope"},
		{"rollback", "plan"},
		{"rollback", "plan", "--session", "s", "--calls", "1"},
		{"rollback", "plan", "--calls", "1,x"},
		{"rollback", "plan", "extra", "--session", "s"},
		{"rollback", "apply"},
		{"rollback", "apply", "a", "b", "--yes"},
		{"rollback", "show"},
	} {
		var out, errb bytes.Buffer
		if code := run(args, strings.NewReader(""), &out, &errb); code != exitUsage {
			t.Errorf("%v: exit %d, want 2 (%s)", args, code, errb.String())
		}
		if !strings.HasPrefix(errb.String(), "mcptrail: ") || strings.Count(errb.String(), "\n") != 1 {
			t.Errorf("%v: want a one-line error, got %q", args, errb.String())
		}
	}
	// Flags may follow the PLAN_ID.
	cmd, pos := parsed(t, "rollback", "apply", "PLAN", "--yes", "--json")
	if len(pos) != 1 || pos[0] != "PLAN" || !cmd.Flags().Changed("yes") || !cmd.Flags().Changed("json") {
		t.Fatalf("rollback apply PLAN --yes --json: args %v", pos)
	}
}
