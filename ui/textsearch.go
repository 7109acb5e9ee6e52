package ui

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	tea "github.com/charmbracelet/bubbletea"

	"github.com/mcptrail/mcptrail/store"
)

// textSearch is the free-text search a screen embeds (`/`, then n/N; the
// timeline does): the calls whose arguments or result hold the text. It
// reads the stored bodies through the store, in chunks of a bounded number
// of events per command, so that a search over a million events neither
// blocks a key nor holds more than the hits' seqs. It is the screen's own,
// like its filter; the screen lends it what it needs (searchHost).
type textSearch struct {
	query   string   // as typed
	needle  []byte   // lower-case
	gen     int      // drops the chunks of an older search
	hits    []uint64 // anchors (request seqs) of the calls that hold it, in seq order
	done    bool     // the scan reached the end of the timeline
	capped  bool     // stopped at textHitsMax
	cur     int      // index in hits of the hit last jumped to; -1: none yet
	forward bool     // the jump waiting for a hit goes down (n), else up (N)
	from    uint64   // and starts after (n) or before (N) this anchor
	waiting bool     // a jump waits for the scan to find a hit
}

const (
	textChunk   = 20_000 // events read by one command
	textPage    = 1000   // events per store query
	textHitsMax = 10_000 // hits kept; the status says when it stopped there
)

// textLine is `/` on a screen with a text search: the text to look for.
type textLine struct{}

func (textLine) Update(*App, tea.KeyMsg) (tea.Cmd, bool) { return nil, false }

func (textLine) View(string) string {
	return "text in the calls' arguments and results (a path fragment: app.yaml); enter searches, n/N next/previous hit"
}

func (textLine) submit(a *App, value string) tea.Cmd {
	a.closeInput()
	if h, ok := a.top().(textSearcher); ok {
		return h.search().start(h, value)
	}
	return nil
}

// textHits is one chunk of a search's answer (loaded[textHits]).
type textHits struct {
	hits []uint64
	next uint64 // where the next chunk starts; 0: the end
}

// start begins a search for query from the selected row down.
func (s *textSearch) start(h searchHost, query string) tea.Cmd {
	s.gen++
	s.query, s.hits, s.done, s.capped, s.cur = query, nil, false, false, -1
	if query == "" {
		s.needle = nil
		return toast("search cleared")
	}
	s.needle = bytes.ToLower([]byte(query))
	s.waiting, s.forward, s.from = true, true, 0
	if a := h.searchFrom(); a > 0 {
		s.from = a - 1 // the selected call counts as the first hit
	}
	return s.scan(h, 1)
}

// scan reads one chunk of the screen's events from cursor on.
func (s *textSearch) scan(h searchHost, cursor uint64) tea.Cmd {
	src, to, q := h.searchScope()
	q.Cursor, q.Limit, q.Newest = cursor, textPage, false
	gen, needle := s.gen, s.needle
	return func() tea.Msg {
		m := loaded[textHits]{to: to, gen: gen}
		for read := 0; read < textChunk; {
			page, err := src.Query(q)
			if err != nil {
				m.err = err
				return m
			}
			for i := range page.Events {
				if a := textMatch(&page.Events[i], needle); a != 0 {
					m.val.hits = append(m.val.hits, a)
				}
			}
			read += len(page.Events)
			if m.val.next = page.Next; page.Next == 0 {
				return m
			}
			q.Cursor = page.Next
		}
		return m
	}
}

// textMatch is the anchor of the call e belongs to when its arguments (a
// request) or its result or error (an outcome) hold needle; 0 otherwise.
func textMatch(e *store.Event, needle []byte) uint64 {
	switch {
	case e.Kind == store.KindRequest && e.Method == "tools/call":
		if holds(arguments(e), needle) {
			return e.Seq
		}
	case e.Kind == store.KindCall && e.Call != 0:
		if holds(e.Result, needle) || holds(e.Error, needle) {
			return e.Call
		}
	}
	return 0
}

// holds reports whether a JSON body holds needle (lower-case), in its raw
// text or, when it escapes characters, in its decoded strings.
func holds(raw json.RawMessage, needle []byte) bool {
	if len(raw) == 0 {
		return false
	}
	if bytes.Contains(bytes.ToLower(raw), needle) {
		return true
	}
	if bytes.IndexByte(raw, '\\') < 0 {
		return false
	}
	var v any
	if json.Unmarshal(raw, &v) != nil {
		return false
	}
	var b strings.Builder
	var walk func(any)
	walk = func(v any) {
		switch v := v.(type) {
		case string:
			b.WriteString(v)
			b.WriteByte('\n')
		case []any:
			for _, e := range v {
				walk(e)
			}
		case map[string]any:
			for k, e := range v {
				b.WriteString(k)
				b.WriteByte('\n')
				walk(e)
			}
		}
	}
	walk(v)
	return strings.Contains(strings.ToLower(b.String()), string(needle))
}

// Update folds a chunk in and goes on with the next one.
func (s *textSearch) Update(h searchHost, m loaded[textHits]) tea.Cmd {
	if m.gen != s.gen {
		return nil
	}
	if m.err != nil {
		s.done = true
		return toastErr(fmt.Errorf("search: %w", m.err))
	}
	for _, a := range m.val.hits {
		if i, found := slices.BinarySearch(s.hits, a); !found && len(s.hits) < textHitsMax {
			s.hits = slices.Insert(s.hits, i, a)
		}
	}
	s.capped = len(s.hits) >= textHitsMax
	s.done = m.val.next == 0 || s.capped
	var cmds []tea.Cmd
	if s.waiting {
		if cmd, ok := s.jump(h); ok {
			cmds = append(cmds, cmd)
		} else if s.done {
			s.waiting = false
			if len(s.hits) == 0 {
				cmds = append(cmds, toast(fmt.Sprintf("no call's arguments or result hold %q", s.query)))
			} else {
				cmds = append(cmds, s.wrap(h))
			}
		}
	}
	if !s.done {
		cmds = append(cmds, s.scan(h, m.val.next))
	}
	return tea.Batch(cmds...)
}

// next is n (forward) and N: the hit after (before) the selected row,
// wrapping around at the ends once the scan is complete.
func (s *textSearch) next(h searchHost, forward bool) tea.Cmd {
	if s.query == "" {
		return toast("no search: / searches the calls' arguments and results")
	}
	s.forward, s.waiting = forward, true
	s.from = h.searchFrom()
	if cmd, ok := s.jump(h); ok {
		return cmd
	}
	if !s.done {
		return toast("searching…")
	}
	s.waiting = false
	if len(s.hits) == 0 {
		return toast(fmt.Sprintf("no call's arguments or result hold %q", s.query))
	}
	return s.wrap(h)
}

// wrap goes on from the other end, as less and vim do.
func (s *textSearch) wrap(h searchHost) tea.Cmd {
	if s.forward {
		s.cur = 0
	} else {
		s.cur = len(s.hits) - 1
	}
	return tea.Batch(h.gotoSeq(s.hits[s.cur]), toast("search wrapped around"))
}

// jump moves to the first known hit past s.from in the search's
// direction; it reports false when none is known yet.
func (s *textSearch) jump(h searchHost) (tea.Cmd, bool) {
	i, found := slices.BinarySearch(s.hits, s.from)
	if s.forward {
		if found {
			i++
		}
		if i >= len(s.hits) {
			return nil, false
		}
	} else {
		i--
		if i < 0 {
			return nil, false
		}
	}
	s.cur, s.waiting = i, false
	return h.gotoSeq(s.hits[i]), true
}

// isHit reports whether the row's call holds the searched text.
func (s *textSearch) isHit(anchor uint64) bool {
	if len(s.hits) == 0 {
		return false
	}
	_, found := slices.BinarySearch(s.hits, anchor)
	return found
}

// View is "hit i/N" for the position line; "" without a search.
func (s *textSearch) View(selected uint64) string {
	if s.query == "" {
		return ""
	}
	more := ""
	switch {
	case s.capped:
		more = "+ (stopped counting)"
	case !s.done:
		more = "+ (searching)"
	}
	if i, found := slices.BinarySearch(s.hits, selected); found {
		return fmt.Sprintf("hit %d/%d%s %q", i+1, len(s.hits), more, s.query)
	}
	return fmt.Sprintf("%d %s%s %q", len(s.hits), plural(len(s.hits), "hit", "hits"), more, s.query)
}

// The timeline lends its search what it needs.

func (t *timelineScreen) search() *textSearch { return &t.text }

func (t *timelineScreen) searchScope() (Source, int, store.Query) { return t.c.Src, t.sid, t.base() }

func (t *timelineScreen) searchFrom() uint64 {
	if r := t.selected(); r != nil {
		return r.anchor
	}
	return 0
}
