package rollback

import "github.com/mcptrail/mcptrail/store"

// querier is the part of the record a session lookup reads.
type querier interface {
	Query(store.Query) (store.Page, error)
}

// ruleFor is the rule of a recorded tool call: by its upstream name, or,
// when no rules name that upstream, by the name the server reported in its
// session's handshake (a `wrap --name fs` around server-filesystem). The
// planner and Resources share it, so a filter names the resources a plan
// would.
func ruleFor(rules *RuleSet, sessions *sessionCache, req *store.Event) *ToolRule {
	if r := rules.Lookup(req.Upstream, "", req.Tool); r != nil || rules.ServerFor(req.Upstream, "") != nil {
		return r
	}
	return rules.Lookup(req.Upstream, sessions.serverName(req.Session), req.Tool)
}

// Resources names the resources recorded calls act on: their rule's keys,
// rendered as a plan renders them (`kv:a`, a file's path). It remembers
// each session's server, so a filter over many calls reads each session's
// start once. It is not safe for concurrent use: make one per query.
type Resources struct {
	rules    *RuleSet
	sessions *sessionCache
}

// NewResources reads sessions from src.
func NewResources(rules *RuleSet, src querier) *Resources {
	return &Resources{rules: rules, sessions: newSessionCache(src)}
}

// Keys are the resource keys of a recorded tools/call request; nil when no
// rule knows its tool, or its rule names no keys.
func (r *Resources) Keys(req *store.Event) []string {
	if r == nil || r.rules == nil || req.Tool == "" {
		return nil
	}
	return ruleFor(r.rules, r.sessions, req).resources(req)
}

// Resources are the keys the tool's rule names for a request — what the
// call would change (file:/path, …) — or nil when no rule has keys for
// it. serverName is the name the server reported, when known.
func (rs *RuleSet) Resources(req *store.Event, serverName string) []string {
	return rs.Lookup(req.Upstream, serverName, req.Tool).resources(req)
}

// resources renders the rule's keys for a request; nil for no rule.
func (r *ToolRule) resources(req *store.Event) []string {
	if r == nil || r.keys == nil {
		return nil
	}
	env, err := r.baseEnv(req, nil)
	if err != nil {
		return nil
	}
	keys, _ := r.keysOf(env)
	return keys
}
