package rollback

import (
	"encoding/json"

	"github.com/mcptrail/mcptrail/store"
)

// sessionCache finds what the planner needs of a session: how to reach its
// upstream, and the server's name.
type sessionCache struct {
	src  querier
	info map[string]*sessionInfo
}

type sessionInfo struct {
	target Target
	ok     bool
}

func newSessionCache(src querier) *sessionCache {
	return &sessionCache{src: src, info: map[string]*sessionInfo{}}
}

func (s *sessionCache) get(id string) *sessionInfo {
	if si := s.info[id]; si != nil {
		return si
	}
	si := &sessionInfo{}
	s.info[id] = si
	// The start, the handshake and the first roots/list are at the
	// session's beginning: its first events are enough, whatever its size.
	page, err := s.src.Query(store.Query{Session: id, Limit: 200})
	if err != nil {
		return si
	}
	var start, init, roots *store.Event
	for i := range page.Events {
		ev := &page.Events[i]
		switch {
		case ev.Kind == store.KindSessionStart && start == nil:
			start = ev
		case ev.Kind == store.KindCall && (ev.Method == "initialize" || ev.Method == "server/discover") && init == nil:
			init = ev
		case ev.Kind == store.KindCall && ev.Method == "roots/list" && roots == nil && ev.Outcome == store.OutcomeOK:
			roots = ev
		}
	}
	if start == nil {
		return si
	}
	si.ok = true
	t := Target{Upstream: start.Upstream, Transport: start.Transport}
	var sp StartParams
	if len(start.Params) > 0 && json.Unmarshal(start.Params, &sp) == nil && len(sp.Command) > 0 {
		t.Command, t.Dir, t.Env = sp.Command, sp.Dir, sp.Env
	}
	if init != nil {
		t.ServerName = reportedName(init.Result)
	}
	if roots != nil && len(roots.Result) > 0 {
		t.Roots = roots.Result
	}
	si.target = t
	return si
}

// reportedName is the name a server gave itself in a handshake's result:
// serverInfo of initialize, or, from a 2026-07-28 server, which has no
// initialize, the serverInfo in the _meta of server/discover's result.
func reportedName(result json.RawMessage) string {
	type impl struct {
		Name string `json:"name"`
	}
	var r struct {
		ServerInfo impl `json:"serverInfo"`
		Meta       struct {
			ServerInfo impl `json:"io.modelcontextprotocol/serverInfo"`
		} `json:"_meta"`
	}
	if json.Unmarshal(result, &r) != nil {
		return ""
	}
	if r.ServerInfo.Name != "" {
		return r.ServerInfo.Name
	}
	return r.Meta.ServerInfo.Name
}

func (s *sessionCache) target(id string) (Target, bool) {
	si := s.get(id)
	return si.target, si.ok
}

func (s *sessionCache) serverName(id string) string { return s.get(id).target.ServerName }
