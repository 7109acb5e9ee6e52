package ui

import (
	"encoding/json"
	"fmt"
	"strings"

	"github.com/charmbracelet/bubbles/key"
	tea "github.com/charmbracelet/bubbletea"

	"github.com/mcptrail/mcptrail/internal/linediff"
	"github.com/mcptrail/mcptrail/store"
)

// diffScreen compares a call's arguments with the previous call to the
// same tool on the same key argument (the same path, id, name…). Until
// rollback captures pre-state, this is the before → after the record can
// show: what the agent asked for last time against what it asked for now.
// Both sides are canonical pretty-printed JSON (sorted keys, multi-line
// strings as blocks), diffed line by line with Myers' algorithm
// (ui/linediff).
type diffScreen struct {
	c             *Common
	sid           int
	seq           uint64
	res           *diffResult
	err           error
	split         bool
	pg            pager
	width, height int
}

type diffResult struct {
	to         int
	cur, prev  *store.Event
	key, value string // the key argument and its value; "" when the call has none
	fallback   bool   // prev is the previous call of the tool, not of the key
	scanned    int
	ops        []linediff.Op
	ins, del   int
	cut        bool
	err        error
}

func (m diffResult) target() int { return m.to }

func newDiff(c *Common, seq uint64) *diffScreen {
	return &diffScreen{c: c, sid: c.newID(), seq: seq}
}

func (s *diffScreen) id() int       { return s.sid }
func (s *diffScreen) Title() string { return fmt.Sprintf("diff %d", s.seq) }

func (s *diffScreen) SetSize(w, h int) {
	s.width, s.height = w, h
	s.pg.height = max(1, h-4)
	s.layout()
}

func (s *diffScreen) Init() tea.Cmd {
	src, seq, to := s.c.Src, s.seq, s.sid
	return func() tea.Msg {
		r := findPrevious(src, seq)
		r.to = to
		return r
	}
}

// How far back the diff looks for an earlier call: the tool index keeps
// this to the tool's own calls.
const diffScanLimit = 20000

func findPrevious(src Source, seq uint64) diffResult {
	var r diffResult
	cur, err := src.Get(seq)
	if err == nil && cur.Kind == store.KindCall && cur.Call != 0 {
		cur, err = src.Get(cur.Call)
	}
	if err != nil {
		r.err = err
		return r
	}
	r.cur = cur
	if cur.Tool == "" {
		r.err = fmt.Errorf("record %d is not a tool call; the diff compares tool arguments", seq)
		return r
	}
	args := argMap(cur)
	for _, k := range keyArgs {
		if v, ok := args[k]; ok {
			r.key, r.value = k, scalar(v)
			break
		}
	}
	var sameTool *store.Event
	if cur.Seq > 1 {
		q := store.Query{Tool: cur.Tool, Kind: store.KindRequest, Newest: true, Cursor: cur.Seq - 1, Limit: 500}
	scan:
		for r.scanned < diffScanLimit {
			page, err := src.Query(q)
			if err != nil {
				r.err = err
				return r
			}
			for i := range page.Events {
				e := &page.Events[i]
				if e.Method != "tools/call" {
					continue
				}
				r.scanned++
				if sameTool == nil {
					sameTool = e
				}
				if r.key == "" {
					break scan
				}
				if v, ok := argMap(e)[r.key]; ok && scalar(v) == r.value {
					r.prev = e
					break scan
				}
			}
			if page.Next == 0 {
				break
			}
			q.Cursor = page.Next
		}
	}
	if r.prev == nil && sameTool != nil {
		r.prev, r.fallback = sameTool, r.key != ""
	}
	var a []string
	if r.prev != nil {
		a, r.cut = prettyLines(arguments(r.prev), plainJSON(), true, 5000)
	}
	b, cut := prettyLines(arguments(cur), plainJSON(), true, 5000)
	r.cut = r.cut || cut
	r.ops = linediff.Lines(a, b)
	r.ins, r.del = linediff.Stats(r.ops)
	return r
}

func argMap(e *store.Event) map[string]json.RawMessage {
	var m map[string]json.RawMessage
	json.Unmarshal(arguments(e), &m)
	return m
}

// scalar is a JSON value as text: strings unquoted, others as written.
func scalar(v json.RawMessage) string {
	var s string
	if json.Unmarshal(v, &s) == nil {
		return s
	}
	return strings.TrimSpace(string(v))
}

func (s *diffScreen) Update(msg tea.Msg) (tea.Model, tea.Cmd) {
	k := s.c.Keys
	switch msg := msg.(type) {
	case diffResult:
		s.res, s.err = &msg, msg.err
		s.layout()
	case themeChangedMsg:
		s.layout()
	case tea.KeyMsg:
		switch {
		case key.Matches(msg, k.Split):
			s.split = !s.split
			s.layout()
		case s.pg.handle(k, msg):
		}
	}
	return s, nil
}

// layout renders the script for the current mode and width. It is linear
// in the diff's size (bounded by the 5000-line cap) and runs on a key
// press, not per frame.
func (s *diffScreen) layout() {
	if s.res == nil || s.res.err != nil {
		return
	}
	st := s.c.Styles
	w := max(20, s.width-2)
	var lines []string
	ops := s.res.ops
	// Long unchanged runs fold to one line so that the change is on screen.
	const ctx = 3
	fold := func(i int) (int, bool) {
		j := i
		for j < len(ops) && ops[j].Kind == linediff.Equal {
			j++
		}
		run := j - i
		if run > 2*ctx+1 && len(ops) > s.pg.height {
			return j, true
		}
		return j, false
	}
	if !s.split {
		for i := 0; i < len(ops); {
			if ops[i].Kind == linediff.Equal {
				j, folded := fold(i)
				if folded {
					for _, op := range ops[i : i+ctx*boolInt(i > 0)] {
						lines = append(lines, st.DiffCtx.Render(cell("  "+op.Text, w, false)))
					}
					hidden := j - i - ctx*boolInt(i > 0) - ctx*boolInt(j < len(ops))
					lines = append(lines, st.Muted.Render(fmt.Sprintf("  ⋯ %d unchanged lines", hidden)))
					if j < len(ops) {
						for _, op := range ops[j-ctx : j] {
							lines = append(lines, st.DiffCtx.Render(cell("  "+op.Text, w, false)))
						}
					}
					i = j
					continue
				}
			}
			op := ops[i]
			switch op.Kind {
			case linediff.Equal:
				lines = append(lines, st.DiffCtx.Render(cell("  "+op.Text, w, false)))
			case linediff.Delete:
				lines = append(lines, st.DiffDel.Render(cell("- "+op.Text, w, false)))
			case linediff.Insert:
				lines = append(lines, st.DiffAdd.Render(cell("+ "+op.Text, w, false)))
			}
			i++
		}
	} else {
		half := (w - 3) / 2
		side := func(op *linediff.Op, mark string) string {
			if op == nil {
				return cell("", half, false)
			}
			text := cell(mark+op.Text, half, false)
			switch {
			case op.Kind == linediff.Delete:
				return st.DiffDel.Render(text)
			case op.Kind == linediff.Insert:
				return st.DiffAdd.Render(text)
			}
			return st.DiffCtx.Render(text)
		}
		for _, p := range linediff.SideBySide(ops) {
			lm, rm := "  ", "  "
			if p.Left != nil && p.Left.Kind == linediff.Delete {
				lm = "- "
			}
			if p.Right != nil && p.Right.Kind == linediff.Insert {
				rm = "+ "
			}
			lines = append(lines, side(p.Left, lm)+st.Muted.Render(" │ ")+side(p.Right, rm))
		}
	}
	if s.res.cut {
		lines = append(lines, st.Muted.Render("  … arguments cut at 5000 lines"))
	}
	s.pg.set(lines, nil)
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

func (s *diffScreen) View() string {
	st := s.c.Styles
	switch {
	case s.err != nil:
		return block([]string{" " + st.Error.Render(show(s.err.Error()))}, s.height)
	case s.res == nil:
		return block([]string{" " + st.Muted.Render("loading… (looking for the previous call)")}, s.height)
	}
	r := s.res
	w := s.width - 1
	target := r.cur.Tool
	if r.key != "" {
		target += " " + r.key + "=" + r.value
	}
	mode := "unified"
	if s.split {
		mode = "side by side"
	}
	head := []string{" " + st.Bold.Render(cell("arguments of "+target, w-len(mode)-3, false)) + "  " + st.Muted.Render(mode)}
	switch {
	case r.prev == nil:
		head = append(head, " "+st.Banner.Render(cell(fmt.Sprintf("no earlier %s call in the record (searched %d) — every argument shows as added", r.cur.Tool, r.scanned), w, false)))
	case r.fallback:
		head = append(head, " "+st.Banner.Render(cell(fmt.Sprintf("no earlier call with %s=%s; comparing with the previous %s call", r.key, r.value, r.cur.Tool), w, false)))
	default:
		head = append(head, " "+st.Muted.Render(cell(fmt.Sprintf("previous call to %s on the same %s", r.cur.Tool, r.key), w, false)))
	}
	before := "--- (nothing)"
	if r.prev != nil {
		before = fmt.Sprintf("--- call %d  %s  %s  %s", r.prev.Seq, fmtTime(r.prev.Time, s.c.Loc, "01-02 15:04:05.000"), agentName(r.prev.Agent), argsSummary(arguments(r.prev)))
	}
	after := fmt.Sprintf("+++ call %d  %s  %s  %s", r.cur.Seq, fmtTime(r.cur.Time, s.c.Loc, "01-02 15:04:05.000"), agentName(r.cur.Agent), argsSummary(arguments(r.cur)))
	head = append(head, " "+st.DiffDel.Render(cell(before, w, false)), " "+st.DiffAdd.Render(cell(after, w, false)))
	body := s.pg.view()
	for i := range body {
		body[i] = " " + body[i]
	}
	if r.ins == 0 && r.del == 0 && r.prev != nil {
		body = append([]string{" " + st.Muted.Render("  (same arguments)")}, body...)
	}
	return block(append(head, body...), s.height)
}

func (s *diffScreen) Status() string {
	if s.res == nil || s.res.err != nil {
		return ""
	}
	return fmt.Sprintf("+%d −%d lines", s.res.ins, s.res.del)
}

func (s *diffScreen) yankSeqs() []uint64 {
	if s.res != nil && s.res.cur != nil {
		out := []uint64{s.res.cur.Seq}
		if s.res.prev != nil {
			out = append([]uint64{s.res.prev.Seq}, out...)
		}
		return out
	}
	return nil
}

func (s *diffScreen) ShortHelp() []key.Binding {
	k := s.c.Keys
	return []key.Binding{k.Split, k.Down, k.Up, k.Yank, k.Back, k.Help}
}

func (s *diffScreen) FullHelp() [][]key.Binding {
	k := s.c.Keys
	return [][]key.Binding{{k.Up, k.Down, k.PageUp, k.PageDown}, {k.Split, k.Back}, k.global()}
}
