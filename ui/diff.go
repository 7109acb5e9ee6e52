package ui

import (
	"encoding/json"
	"fmt"
	"strings"

	"github.com/charmbracelet/bubbles/key"
	tea "github.com/charmbracelet/bubbletea"

	"github.com/mcptrail/mcptrail/internal/linediff"
	"github.com/mcptrail/mcptrail/rollback"
	"github.com/mcptrail/mcptrail/store"
)

// diffScreen shows what a call changed: the resource it wrote as it was
// before → after the call (the rollback rules name the resource; its
// pre-state or its history give the two sides), and, when no rule or no
// pre-state can say, the call's arguments against the previous call on
// the same key argument (the same path, id, name…), saying which it shows.
// Arguments are canonical pretty-printed JSON (sorted keys, multi-line
// strings as blocks); both are diffed line by line with the one line diff
// (internal/linediff), in unified hunks or side by side.
type diffScreen struct {
	screenBase
	seq   uint64
	res   *diffResult
	err   error
	split bool
	pg    pager
}

// diffResult is what the diff found (loaded[diffResult]): the two sides
// and the line diff between them.
type diffResult struct {
	cur, prev  *store.Event
	key, value string // the key argument and its value; "" when the call has none
	fallback   bool   // prev is the previous call of the tool, not of the key
	scanned    int
	ops        []linediff.Op
	ins, del   int
	cut        bool

	// The resource's version this call made (resource diff), or why the
	// arguments are shown instead.
	resKey string
	res    *rollback.Version
	why    string
}

func newDiff(c *Common, seq uint64) *diffScreen {
	return &diffScreen{screenBase: newScreenBase(c), seq: seq}
}

func (s *diffScreen) Title() string { return fmt.Sprintf("diff %d", s.seq) }

func (s *diffScreen) SetSize(w, h int) {
	s.width, s.height = w, h
	s.pg.height = max(1, h-4)
	s.layout()
}

func (s *diffScreen) Init() tea.Cmd {
	src, rb, seq, to := s.c.Src, s.c.Rollback, s.seq, s.sid
	return func() tea.Msg {
		r, ok := resourceDiff(src, rb, seq)
		if ok {
			return loaded[diffResult]{to: to, val: r}
		}
		why := r.why
		r, err := findPrevious(src, seq)
		r.why = why
		return loaded[diffResult]{to: to, val: r, err: err}
	}
}

// resourceDiff is the before → after of the resource the call changed,
// from its history (rollback.History): ok false, with why, when there is
// none to show.
func resourceDiff(src Source, rb Rollback, seq uint64) (diffResult, bool) {
	var r diffResult
	if rb == nil {
		r.why = "this console reads a file, not the daemon, which knows the resources"
		return r, false
	}
	cur, err := src.Get(seq)
	if err == nil && cur.Kind == store.KindCall && cur.Call != 0 {
		cur, err = src.Get(cur.Call)
	}
	if err != nil {
		r.why = err.Error()
		return r, false
	}
	h, err := rb.RollbackHistory(cur.Seq)
	if err != nil {
		r.why = err.Error()
		return r, false
	}
	for i := range h.Versions {
		if v := &h.Versions[i]; v.Call == cur.Seq {
			if v.Note != "" && v.Before == "" {
				r.why = v.Note
				return r, false
			}
			r.cur, r.res, r.resKey = cur, v, h.Key
			r.ops = linediff.Lines(linediff.SplitLines(v.Before), linediff.SplitLines(v.After))
			r.ins, r.del = linediff.Stats(r.ops)
			return r, true
		}
	}
	r.why = "the call is not in its resource's history"
	return r, false
}

// How far back the diff looks for an earlier call: the tool index keeps
// this to the tool's own calls.
const diffScanLimit = 20000

// findPrevious diffs the call's arguments against the previous call on the
// same key argument. On an error it returns what it found before it.
func findPrevious(src Source, seq uint64) (diffResult, error) {
	var r diffResult
	cur, err := src.Get(seq)
	if err == nil && cur.Kind == store.KindCall && cur.Call != 0 {
		cur, err = src.Get(cur.Call)
	}
	if err != nil {
		return r, err
	}
	r.cur = cur
	if cur.Tool == "" {
		return r, fmt.Errorf("record %d is not a tool call; the diff compares tool arguments", seq)
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
				return r, err
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
	if r.prev == nil && sameTool != nil && r.key == "" {
		// No key argument to match on: the previous call of the tool is
		// the only comparison there is. With one, a call on another
		// resource would be a misleading "before".
		r.prev, r.fallback = sameTool, true
	}
	var a []string
	if r.prev != nil {
		a, r.cut = prettyLines(arguments(r.prev), plainJSON(), true, 5000)
	}
	b, cut := prettyLines(arguments(cur), plainJSON(), true, 5000)
	r.cut = r.cut || cut
	r.ops = linediff.Lines(a, b)
	r.ins, r.del = linediff.Stats(r.ops)
	return r, nil
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
	case loaded[diffResult]:
		s.res, s.err = &msg.val, msg.err
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
	if s.res == nil || s.err != nil {
		return
	}
	st := s.c.Styles
	w := max(20, s.width-2)
	var lines []string
	ops := s.res.ops
	if !s.split {
		// Unified hunks, as diff -u: three lines of context, each hunk
		// headed by where it is on each side.
		for _, hk := range linediff.Hunks(ops, 3) {
			lines = append(lines, st.Muted.Render(cell(hk.Header(), w, false)))
			for _, op := range hk.Ops {
				switch op.Kind {
				case linediff.Equal:
					lines = append(lines, st.DiffCtx.Render(cell("  "+op.Text, w, false)))
				case linediff.Delete:
					lines = append(lines, st.DiffDel.Render(cell("- "+op.Text, w, false)))
				case linediff.Insert:
					lines = append(lines, st.DiffAdd.Render(cell("+ "+op.Text, w, false)))
				}
			}
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
	mode := "unified"
	if s.split {
		mode = "side by side"
	}
	if r.res != nil {
		v := r.res
		at := fmtTime(v.Time, s.c.Loc, "01-02 15:04:05.000")
		head := []string{
			" " + st.Bold.Render(cell(show("resource "+r.resKey), w-len(mode)-3, false)) + "  " + st.Muted.Render(mode),
			" " + st.Muted.Render(cell(fmt.Sprintf("before → after call %d (%s by %s on %s): the resource, from its pre-state and history", v.Call, show(v.Tool), show(v.Agent), show(v.Upstream)), w, false)),
			" " + st.DiffDel.Render(cell(fmt.Sprintf("--- before call %d", v.Call), w, false)),
			" " + st.DiffAdd.Render(cell(fmt.Sprintf("+++ after call %d  %s", v.Call, at), w, false)),
		}
		body := s.pg.view()
		for i := range body {
			body[i] = " " + body[i]
		}
		if r.ins == 0 && r.del == 0 {
			body = append([]string{" " + st.Muted.Render("  (the call left it as it was)")}, body...)
		}
		return block(append(head, body...), s.height)
	}
	target := r.cur.Tool
	if r.key != "" {
		target += " " + r.key + "=" + r.value
	}
	head := []string{" " + st.Bold.Render(cell("arguments of "+target, w-len(mode)-3, false)) + "  " + st.Muted.Render(mode)}
	if r.why != "" {
		head = append(head, " "+st.Banner.Render(cell(show("arguments, not the resource: "+r.why), w, false)))
	}
	switch {
	case r.prev == nil && r.key != "":
		head = append(head, " "+st.Banner.Render(cell(fmt.Sprintf("no earlier call with %s=%s in the record (searched %d) — every argument shows as added", r.key, show(r.value), r.scanned), w, false)))
	case r.prev == nil:
		head = append(head, " "+st.Banner.Render(cell(fmt.Sprintf("no earlier %s call in the record (searched %d) — every argument shows as added", r.cur.Tool, r.scanned), w, false)))
	case r.fallback:
		head = append(head, " "+st.Banner.Render(cell(fmt.Sprintf("the call has no key argument; comparing with the previous %s call", r.cur.Tool), w, false)))
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
	if s.res == nil || s.err != nil {
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
