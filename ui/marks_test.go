package ui

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/charmbracelet/x/ansi"
)

// space toggles the selected call's mark and leaves the cursor on it: a
// second space unmarks the same call.
func TestSpaceMarksWithoutMoving(t *testing.T) {
	eachLook(t, func(t *testing.T, l look) {
		f := newFixture(t)
		in := demoRecord(f)
		h := startSized(t, l.options(f.st, RoleOperator), l.w, l.h)
		h.waitFor("nightly-ops-bot")
		h.openOps()
		h.keys("g", "jjjjj", "space")
		h.waitFor(fmt.Sprintf("marked call %d (write_file) · 1 queued", in.writeV2))
		h.waitFor("marks stay in this console") // a file console says so, once
		h.keys("space")
		h.waitFor(fmt.Sprintf("unmarked call %d (write_file) · 0 queued", in.writeV2))
		if strings.Contains(ansi.Strip(string(h.seen)), "marks stay") {
			t.Error("the file console's notice should show once")
		}
		h.keys("space", "k", "space")
		h.waitFor("2 queued")
		if got := h.app.c.Marks.List(); len(got) != 2 || got[1].Seq != in.writeV2 {
			t.Fatalf("marks %+v, want the second write and the call above it", got)
		}
	})
}

// V on a row, then V on another, marks every tool call in between (the
// session start in the span is not a call).
func TestRangeMark(t *testing.T) {
	eachLook(t, func(t *testing.T, l look) {
		f := newFixture(t)
		in := demoRecord(f)
		h := startSized(t, l.options(f.st, RoleOperator), l.w, l.h)
		h.waitFor("nightly-ops-bot")
		h.openOps()
		h.keys("g", "jjj", "V") // the first write_file
		h.waitFor("range from")
		h.keys("kkk", "V") // up to the session start
		h.waitFor("marked 3 calls")
		h.waitFor("3 queued")
		var seqs []uint64
		for _, m := range h.app.c.Marks.List() {
			seqs = append(seqs, m.Seq)
		}
		if len(seqs) != 3 || !slices.Contains(seqs, in.toolErr) || !slices.Contains(seqs, in.writeV1) {
			t.Fatalf("marked %v, want the three calls up to the first write (%d, %d among them)", seqs, in.toolErr, in.writeV1)
		}
	})
}
