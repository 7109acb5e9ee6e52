package ingest

import (
	"encoding/json"
	"sync"

	"github.com/mcptrail/mcptrail/store"
)

// toolAnnotations are the hints a server gave its tools in its tools/list
// results, by tool name, until a notifications/tools/list_changed makes
// them stale.
type toolAnnotations struct {
	mu sync.Mutex
	m  map[string]*store.Annotations
}

// of returns tool's annotations; nil when the server listed no such tool.
func (t *toolAnnotations) of(tool string) *store.Annotations {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.m[tool]
}

// forget drops every tool's annotations: the client's next tools/list
// refreshes them.
func (t *toolAnnotations) forget() {
	t.mu.Lock()
	clear(t.m)
	t.mu.Unlock()
}

// learn remembers the annotations of the tools a tools/list result names.
func (t *toolAnnotations) learn(result json.RawMessage) {
	var r struct {
		Tools []struct {
			Name        string `json:"name"`
			Annotations *struct {
				ReadOnly    *bool `json:"readOnlyHint"`
				Destructive *bool `json:"destructiveHint"`
				Idempotent  *bool `json:"idempotentHint"`
				OpenWorld   *bool `json:"openWorldHint"`
			} `json:"annotations"`
		} `json:"tools"`
	}
	if json.Unmarshal(result, &r) != nil {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, tool := range r.Tools {
		if tool.Annotations == nil {
			t.m[tool.Name] = &store.Annotations{}
			continue
		}
		a := tool.Annotations
		t.m[tool.Name] = &store.Annotations{ReadOnly: a.ReadOnly, Destructive: a.Destructive, Idempotent: a.Idempotent, OpenWorld: a.OpenWorld}
	}
}

// describeToolCall fills a tools/call's tool name, annotations and class.
func (s *Session) describeToolCall(ev *store.Event, tool string) {
	ev.Tool = tool
	ev.Annotations = s.tools.of(tool)
	ev.Class, ev.ClassSource = s.classify(tool, ev.Annotations)
}

func (s *Session) classify(tool string, ann *store.Annotations) (class, source string) {
	if s.hooks.Classify != nil {
		if c := s.hooks.Classify(s.info.Upstream, s.ServerName(), tool, ann); c != "" {
			return c, store.ClassSourceRule
		}
	}
	return ClassFromAnnotations(ann)
}

// ClassFromAnnotations derives a class, and where it came from, from tool
// hints: read-only tools read, others write (destructive or not: without a
// rule we cannot tell a delete). A tool without a readOnlyHint is not
// read-only by the MCP specification's default, so it writes: an agent's
// server cannot keep its calls out of the write detections by saying
// nothing about them.
func ClassFromAnnotations(ann *store.Annotations) (class, source string) {
	if ann == nil || ann.ReadOnly == nil {
		return "write", store.ClassSourceSpecDefault
	}
	if *ann.ReadOnly {
		return "read", store.ClassSourceAnnotations
	}
	return "write", store.ClassSourceAnnotations
}
