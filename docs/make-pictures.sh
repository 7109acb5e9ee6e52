#!/usr/bin/env bash
# Makes the README's pictures of the console (docs/console-*.svg) from the
# real program: `mcptrail demo` in a detached tmux window, driven as a person
# would (the ops agent's session, r, the plan review, A, apply), each screen
# captured with its colours (tmux capture-pane -e -N, which keeps a row's trailing styled spaces) and rendered to SVG by
# charmbracelet/freeze. Run it again whenever the console changes:
#
#   docs/make-pictures.sh
#
# Needs Go and tmux; freeze is fetched by the go command (nothing here is
# needed to build or run mcptrail).
set -euo pipefail
cd "$(dirname "$0")/.."
command -v tmux >/dev/null || { echo "make-pictures: needs tmux (apt-get install tmux)" >&2; exit 1; }

tmp=$(mktemp -d /tmp/mt-pics-XXXXXX)
sock="$tmp/tmux.sock"
tm() { tmux -S "$sock" "$@"; }
cleanup() {
	tm kill-server 2>/dev/null || true
	for d in "$tmp"/mcptrail-demo-*; do
		[ -x "$d/bin/mcptrail" ] && MCPTRAIL_HOME="$d" "$d/bin/mcptrail" stop >/dev/null 2>&1 || true
	done
	rm -rf "$tmp"
}
trap cleanup EXIT

go build -o "$tmp/mcptrail" .
GOBIN="$tmp" go install github.com/charmbracelet/freeze@v0.2.2

# A fixed size, a fixed theme, no user configuration.
tm -f /dev/null new-session -d -s demo -x 110 -y 34 \
	"env -u NO_COLOR TMPDIR=$tmp TERM=xterm-256color $tmp/mcptrail demo; sleep 600"

# wait_for polls the screen until it shows text (30 s at most).
wait_for() {
	for _ in $(seq 1 300); do
		tm capture-pane -p -t demo | grep -qF -- "$1" && return 0
		sleep 0.1
	done
	echo "make-pictures: timed out waiting for \"$1\"; the screen:" >&2
	tm capture-pane -p -t demo >&2
	exit 1
}
keys() {
	for k in "$@"; do
		tm send-keys -t demo "$k"
		sleep 0.1 # a person's pace: the console reads a burst of keys as a paste
	done
}
typed() {
	tm send-keys -t demo -l -- "$1"
	sleep 0.1
}
shot() {
	tm capture-pane -e -N -p -t demo >"$tmp/$1.ansi"
	"$tmp/freeze" --font.family monospace --window --padding 10 --margin 0 \
		-o "docs/$1.svg" <"$tmp/$1.ansi" >/dev/null
	echo "wrote docs/$1.svg"
}

wait_for "session 1 of 2"
keys Enter
wait_for "session start"
shot console-timeline

keys f
typed "tool:list_tickets"
keys Enter
wait_for "tool:list_tickets ×"
keys g r
wait_for "11 ready, 1 irreversible"
keys j j j j
wait_for "step 5"
shot console-plan

keys A
wait_for "Type apply"
typed apply
keys Enter
wait_for "11 reverted"
shot console-applied

keys Escape
wait_for "r queue reversal"
keys f
typed "-tool"
keys Enter
wait_for "↺"
shot console-reverted
keys C-c
