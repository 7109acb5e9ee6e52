package rollback

import "github.com/mcptrail/mcptrail/internal/linediff"

// unifiedDiff is a unified diff of a → b (labels current and restored),
// "" when they are equal: the one line diff (internal/linediff) that the
// console lays out too.
func unifiedDiff(a, b string) string {
	return linediff.Unified(a, b, "current", "restored")
}
