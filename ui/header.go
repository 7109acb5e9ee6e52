package ui

import (
	"fmt"
	"strings"

	"github.com/charmbracelet/x/ansi"

	"github.com/mcptrail/mcptrail/themes"
)

// header is the frame's two top lines: where the investigator is and the
// console's state, then who is looking at what.
func (a *App) header(w int) (string, string) {
	var crumbs []string
	for _, s := range a.stack {
		crumbs = append(crumbs, show(s.Title()))
	}
	var right []string
	if a.c.Follow {
		if f, ok := a.top().(follower); ok {
			if paused, n := f.followState(); paused {
				right = append(right, fmt.Sprintf("paused · %d new", n))
			} else {
				right = append(right, "● FOLLOW")
			}
		} else {
			right = append(right, "● FOLLOW")
		}
	}
	if b := a.heldBadge(); b != "" {
		right = append(right, b)
	}
	if n := a.c.Marks.Len(); n > 0 {
		right = append(right, fmt.Sprintf("%s %d queued", themes.MarkGlyph, n))
	}
	right = append(right, a.c.Theme+" ")
	line1 := stateLine(crumbs, strings.Join(right, " · "), w)

	// Role first: it decides what the investigator may do; then the key
	// that authenticated, whole (a cut fingerprint proves nothing).
	id := a.c.Identity
	who := []string{string(id.Role)}
	if id.Fingerprint != "" {
		who = append(who, id.Fingerprint)
	}
	who = append(who, strings.TrimSpace(id.Via+" "+show(id.Name))) // the SSH user name is the client's choice
	line2 := identityLine(" "+strings.Join(who, " · "), show(a.c.SourceLabel)+" ", w)
	return line1, line2
}

// stateLine is the breadcrumb on the left and the state on the right,
// kept whole: the breadcrumb gives way, its earliest screens first (the
// screen on top is where the investigator is), with a space between.
func stateLine(crumbs []string, right string, w int) string {
	rw := ansi.StringWidth(right)
	room := w - rw - 1 // one space between the two
	left := " mcptrail › " + strings.Join(crumbs, " › ")
	for i := 0; ansi.StringWidth(left) > room && i < len(crumbs)-1; i++ {
		left = " … › " + strings.Join(crumbs[i+1:], " › ")
	}
	if room < 1 {
		return fit(right, w)
	}
	if ansi.StringWidth(left) > room {
		left = ansi.Truncate(left, room, "…")
	}
	return fit(left, w-rw) + right
}

// identityLine keeps who is at the console (left) whole and gives the
// source on the right what is left, cut at its beginning (a path's end is
// what tells files apart), or nothing when too little is left to read.
func identityLine(left, right string, w int) string {
	lw := ansi.StringWidth(left)
	if lw >= w {
		return fit(left, w)
	}
	room := w - lw - 1
	if rw := ansi.StringWidth(right); rw > room {
		if room < 8 {
			return fit(left, w)
		}
		r := []rune(right)
		right = "…" + string(r[len(r)-(room-1):])
	}
	return fit(left, w-ansi.StringWidth(right)) + right
}
