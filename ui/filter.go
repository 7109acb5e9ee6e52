package ui

import (
	"fmt"
	"slices"
	"strings"
	"time"

	tea "github.com/charmbracelet/bubbletea"

	"github.com/mcptrail/mcptrail/internal/timerange"
	"github.com/mcptrail/mcptrail/rollback"
	"github.com/mcptrail/mcptrail/store"
)

// Filter is the structured filter (`f`), shown as removable chips. Fields
// combine with AND. Since is kept as typed ("3h", an RFC 3339 time) and
// resolved against the clock at each query, so a following console keeps a
// sliding window.
type Filter struct {
	Agent, Tool, Upstream, Outcome, Class, Task string
	Origin                                      string // a central store's origin: store id or host (store.Origin.Matches)
	Since                                       string
	// Path is a fragment of the resource a call acts on (its key
	// arguments: path, uri, …), matched in the console since the store
	// does not index arguments. `key:` is another name for it.
	Path string
}

// filterFields are the filter's fields in chip order, each with the
// Filter field it sets: the one place a key names a field.
var filterFields = []struct {
	key string
	at  func(*Filter) *string
}{
	{"agent", func(f *Filter) *string { return &f.Agent }},
	{"tool", func(f *Filter) *string { return &f.Tool }},
	{"upstream", func(f *Filter) *string { return &f.Upstream }},
	{"outcome", func(f *Filter) *string { return &f.Outcome }},
	{"class", func(f *Filter) *string { return &f.Class }},
	{"task", func(f *Filter) *string { return &f.Task }},
	{"origin", func(f *Filter) *string { return &f.Origin }},
	{"since", func(f *Filter) *string { return &f.Since }},
	{"path", func(f *Filter) *string { return &f.Path }},
}

// filterKeys are the filter's fields in chip order.
var filterKeys = func() []string {
	keys := make([]string, len(filterFields))
	for i, ff := range filterFields {
		keys[i] = ff.key
	}
	return keys
}()

var (
	outcomes = []string{store.OutcomeOK, store.OutcomeToolError, store.OutcomeRPCError, store.OutcomeDenied,
		store.OutcomeCancelled, store.OutcomeTimeout, store.OutcomeTransportError, store.OutcomeUnknown, store.OutcomeInputRequired}
	classes = []string{"read", "write", "delete", "unknown"}
)

// field is the field key names; `key:` is another name for path.
func (f *Filter) field(k string) *string {
	if k == "key" {
		k = "path"
	}
	for _, ff := range filterFields {
		if ff.key == k {
			return ff.at(f)
		}
	}
	return nil
}

// Get returns the value of field k.
func (f Filter) Get(k string) string {
	if p := f.field(k); p != nil {
		return *p
	}
	return ""
}

// With sets field k to v (after checking it); "" clears it.
func (f Filter) With(k, v string) (Filter, error) {
	p := f.field(k)
	if p == nil {
		return f, fmt.Errorf("unknown filter %q (use %s)", k, strings.Join(filterKeys, ", "))
	}
	switch {
	case v == "":
	case k == "outcome" && !slices.Contains(outcomes, v):
		return f, fmt.Errorf("outcome %q: want one of %s", v, strings.Join(outcomes, ", "))
	case k == "class" && !slices.Contains(classes, v):
		return f, fmt.Errorf("class %q: want one of %s", v, strings.Join(classes, ", "))
	case k == "since":
		if _, err := timerange.Since(v, time.Now()); err != nil {
			return f, err
		}
	}
	*p = v
	return f, nil
}

// Empty reports whether no field is set.
func (f Filter) Empty() bool { return f == Filter{} }

// Chip is one set field.
type Chip struct{ Key, Value string }

func (c Chip) String() string { return c.Key + ":" + c.Value }

// Chips lists the set fields in a fixed order.
func (f Filter) Chips() []Chip {
	var out []Chip
	for _, k := range filterKeys {
		if v := f.Get(k); v != "" {
			out = append(out, Chip{k, v})
		}
	}
	return out
}

// ParseFilter reads what the user typed at the `f` prompt into base:
// "agent:bot tool=write_file since 3h outcome:tool_error". A bare word that
// is an outcome or a class is taken as one ("tool_error", "write"); "-tool"
// clears a field.
func ParseFilter(s string, base Filter) (Filter, error) {
	f := base
	words := strings.Fields(s)
	for i := 0; i < len(words); i++ {
		w := words[i]
		if strings.HasPrefix(w, "-") && f.field(strings.TrimPrefix(w, "-")) != nil {
			*f.field(w[1:]) = ""
			continue
		}
		k, v, ok := strings.Cut(w, ":")
		if !ok {
			k, v, ok = strings.Cut(w, "=")
		}
		if !ok {
			switch {
			case (w == "since" || w == "last") && i+1 < len(words):
				k, v = "since", words[i+1]
				i++
			case slices.Contains(outcomes, w):
				k, v = "outcome", w
			case slices.Contains(classes, w):
				k, v = "class", w
			default:
				return base, fmt.Errorf("%q: write field:value, for example agent:bot tool:write_file outcome:tool_error class:write since:3h", w)
			}
		}
		k = strings.ToLower(k)
		if k == "last" {
			k = "since"
		}
		var err error
		if f, err = f.With(k, v); err != nil {
			return base, err
		}
	}
	return f, nil
}

// String is the filter as the prompt would accept it.
func (f Filter) String() string {
	var parts []string
	for _, c := range f.Chips() {
		parts = append(parts, c.String())
	}
	return strings.Join(parts, " ")
}

// SinceTime resolves Since against now; zero when unset or unreadable.
func (f Filter) SinceTime(now time.Time) time.Time {
	if f.Since == "" {
		return time.Time{}
	}
	t, _ := timerange.Since(f.Since, now)
	return t
}

// Apply narrows an event query by the filter. Task is not an indexed field
// of events; it narrows sessions only.
func (f Filter) Apply(q store.Query, now time.Time) store.Query {
	q.Agent, q.Tool, q.Upstream, q.Outcome, q.Class, q.Origin = f.Agent, f.Tool, f.Upstream, f.Outcome, f.Class, f.Origin
	if t := f.SinceTime(now); !t.IsZero() {
		q.Since = t
	}
	return q
}

// EventLevel reports whether the filter names fields only events have.
func (f Filter) EventLevel() bool {
	return f.Tool != "" || f.Outcome != "" || f.Class != "" || f.Path != ""
}

// MatchResource reports whether a request's resource holds the Path
// fragment (case-insensitive): "app.yaml", "/app.yaml" and "config/app"
// all find a call whose path is /tmp/…/config/app.yaml. The resource is
// what the rollback rules name (res, when the console has rules and one
// knows the tool: `kv:app` for a key-value server), else the key
// arguments.
func (f Filter) MatchResource(req *store.Event, res *rollback.Resources) bool {
	if f.Path == "" {
		return true
	}
	needle := strings.ToLower(f.Path)
	keys := res.Keys(req)
	if keys == nil {
		keys = resourceKeys(req)
	}
	for _, v := range keys {
		if strings.Contains(strings.ToLower(v), needle) {
			return true
		}
	}
	return false
}

// MatchSession reports whether a session passes the fields a session
// summary carries (agent and upstream are also passed to the store).
func (f Filter) MatchSession(s *store.SessionSummary, now time.Time) bool {
	if f.Agent != "" && store.AgentKey(s.Agent) != f.Agent {
		return false
	}
	if f.Upstream != "" && s.Upstream != f.Upstream {
		return false
	}
	if f.Task != "" && (s.Task == nil || (s.Task.ID != f.Task && s.Task.Name != f.Task)) {
		return false
	}
	if f.Origin != "" && !s.Origin.Matches(f.Origin) {
		return false
	}
	if t := f.SinceTime(now); !t.IsZero() && s.LastSeen.Before(t) && s.Started.Before(t) {
		return false
	}
	return true
}

// filterLine is the `f` line: the filter typed as ParseFilter reads it,
// prefilled with the chips; backspace on an empty line removes the last
// chip.
type filterLine struct{}

func (filterLine) Update(a *App, msg tea.KeyMsg) (tea.Cmd, bool) {
	if msg.Type != tea.KeyBackspace || a.input.Value() != "" || !dropLast(&a.c.Filter) {
		return nil, false
	}
	return filterChanged, true
}

func (filterLine) View(string) string {
	return "fields: " + strings.Join(filterKeys, " ") + " — e.g. tool:write_file since:3h path:app.yaml; -tool drops one"
}

// submit sets the filter; a line it cannot read stays open, saying why.
func (filterLine) submit(a *App, value string) tea.Cmd {
	f, err := ParseFilter(value, Filter{})
	if err != nil {
		return toastErr(err)
	}
	a.closeInput()
	if f == a.c.Filter {
		return nil
	}
	a.c.Filter = f
	return filterChanged
}

// Bounds of one resource-filtered read: events per store query, and
// events read before the page is returned short (the next read goes on
// from there), so that a rare path answers promptly on a huge record.
const (
	resourcePage = 1000
	resourceScan = 50_000
)

// queryResource answers q with only the calls whose key arguments hold
// f.Path: their requests and their outcomes. The store does not index
// arguments, so it reads pages of q and keeps the matching calls until it
// has q.Limit events or has read resourceScan; Next goes on after what was
// read. An outcome whose request was not on the same page is matched by
// reading that request.
func queryResource(src Source, q store.Query, f Filter, rules *rollback.RuleSet) (store.Page, error) {
	var res *rollback.Resources
	if rules != nil {
		res = rollback.NewResources(rules, src)
	}
	want := q.Limit
	q.Limit = resourcePage
	var out store.Page
	match := map[uint64]bool{} // request seq → its call matches
	for read := 0; ; {
		page, err := src.Query(q)
		if err != nil {
			return out, err
		}
		for i := range page.Events {
			if e := &page.Events[i]; e.Kind == store.KindRequest {
				match[e.Seq] = f.MatchResource(e, res)
			}
		}
		for i := range page.Events {
			e := &page.Events[i]
			switch {
			case e.Kind == store.KindRequest:
				if !match[e.Seq] {
					continue
				}
			case e.Kind == store.KindCall && e.Call != 0:
				ok, seen := match[e.Call]
				if !seen {
					req, err := src.Get(e.Call)
					ok = err == nil && f.MatchResource(req, res)
					match[e.Call] = ok
				}
				if !ok {
					continue
				}
			default:
				continue // not a call: it has no resource
			}
			out.Events = append(out.Events, *e)
		}
		read += len(page.Events)
		out.Next = page.Next
		if page.Next == 0 || len(out.Events) >= want || read >= resourceScan {
			return out, nil
		}
		q.Cursor = page.Next
	}
}
