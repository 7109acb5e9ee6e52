package ui

import (
	"strings"

	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/x/ansi"
	"github.com/sahilm/fuzzy"

	"github.com/mcptrail/mcptrail/internal/termsafe"
	"github.com/mcptrail/mcptrail/store"
)

// candidate is something `/` can find: an agent, a tool, an upstream, a
// task or a session.
type candidate struct {
	kind  string // agent, tool, upstream, task, session
	value string
	text  string // what the pattern is matched against
	sess  *store.SessionSummary
}

// vocab collects candidates from everything the console has read, so
// search costs no store reads of its own (besides one sample at start).
// It only grows, and only in Update; a search command reads a snapshot
// (the slice header), whose elements are never written again.
type vocab struct {
	seen map[string]bool
	list []candidate
}

func newVocab() *vocab { return &vocab{seen: map[string]bool{}} }

// Bound on remembered sessions, so a long-running console stays small.
const vocabMax = 50000

func (v *vocab) add(kind, value, text string, sess *store.SessionSummary) {
	if value == "" || value == "-" || len(v.list) >= vocabMax {
		return
	}
	k := kind + "\x00" + value
	if v.seen[k] {
		return
	}
	v.seen[k] = true
	if text == "" {
		text = value
	}
	v.list = append(v.list, candidate{kind: kind, value: value, text: text, sess: sess})
}

func (v *vocab) addSession(s *store.SessionSummary) {
	cp := *s
	v.add("agent", store.AgentKey(s.Agent), "", nil)
	v.add("upstream", s.Upstream, "", nil)
	if s.Task != nil {
		v.add("task", s.Task.ID, strings.TrimSpace(s.Task.ID+" "+s.Task.Name), nil)
	}
	v.add("session", s.Session, s.Session+" "+agentName(s.Agent)+" "+taskName(s.Task), &cp)
}

func (v *vocab) addEvent(e *store.Event) {
	v.add("agent", store.AgentKey(e.Agent), "", nil)
	v.add("tool", e.Tool, "", nil)
	v.add("upstream", e.Upstream, "", nil)
	if e.Task != nil {
		v.add("task", e.Task.ID, strings.TrimSpace(e.Task.ID+" "+e.Task.Name), nil)
	}
}

type candidates []candidate

func (c candidates) String(i int) string { return c[i].kind + " " + c[i].text }
func (c candidates) Len() int            { return len(c) }

// searchResults answers one keystroke's search; seq drops stale answers.
type searchResults struct {
	seq     int
	matches []candidate
}

// runSearch matches pattern against a snapshot, in a command: glow's
// lesson, fuzzy matching thousands of strings is not for Update.
func runSearch(seq int, pattern string, snap []candidate, limit int) tea.Cmd {
	return func() tea.Msg {
		res := searchResults{seq: seq}
		if strings.TrimSpace(pattern) == "" {
			// Most useful first: agents and tools, then the rest.
			for _, kind := range []string{"agent", "tool", "task", "upstream", "session"} {
				for _, c := range snap {
					if c.kind == kind && len(res.matches) < limit {
						res.matches = append(res.matches, c)
					}
				}
			}
			return res
		}
		for _, m := range fuzzy.FindFrom(pattern, candidates(snap)) {
			if len(res.matches) >= limit {
				break
			}
			res.matches = append(res.matches, snap[m.Index])
		}
		return res
	}
}

// sampleVocab reads the newest tool calls once at start, so that `/` knows
// tools before the investigator opens a timeline.
type vocabSample struct{ events []store.Event }

func sampleVocab(src Source) tea.Cmd {
	return func() tea.Msg {
		page, err := src.Query(store.Query{Kind: store.KindRequest, Method: "tools/call", Newest: true, Limit: 2000})
		if err != nil {
			return nil
		}
		return vocabSample{page.Events}
	}
}

func wrapLines(render func(...string) string, text string, w, indent int) []string {
	var out []string
	if !termsafe.Safe(text) {
		lines := strings.Split(text, "\n")
		for i, l := range lines {
			lines[i] = showLine(l)
		}
		text = strings.Join(lines, "\n")
	}
	for _, l := range strings.Split(ansi.Wordwrap(text, max(10, w-indent), " "), "\n") {
		out = append(out, strings.Repeat(" ", indent)+render(l))
	}
	return out
}
