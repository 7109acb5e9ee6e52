package rollback

import (
	"encoding/json"
	"fmt"

	"github.com/mcptrail/mcptrail/store"
)

// Condition is an expression of the rules language used outside a rules
// file: an approval rule's `when`. It sees what a rules file's templates
// see of a request at capture time — args and call — so a pattern written
// for one works in the other, and there is one language to learn.
type Condition struct {
	src string
	n   node
}

// ParseCondition compiles src.
func ParseCondition(src string) (*Condition, error) {
	n, err := parseExpr(src)
	if err != nil {
		return nil, err
	}
	return &Condition{src: src, n: n}, nil
}

// String is the condition as written.
func (c *Condition) String() string { return c.src }

// Holds evaluates the condition against a tools/call request: true when
// its value is truthy. An error (a function given the wrong kind of
// value) is returned, and the caller decides what it means.
func (c *Condition) Holds(req *store.Event) (bool, error) {
	v, err := c.n.eval(requestEnv(req))
	if err != nil {
		return false, fmt.Errorf("%s: %w", c.src, err)
	}
	return truthy(v), nil
}

// requestEnv is args and call of a request, as baseEnv gives them.
func requestEnv(req *store.Event) map[string]any {
	return map[string]any{
		"args": arguments(req.Params),
		"call": map[string]any{
			"seq":      json.Number(fmt.Sprint(req.Seq)),
			"session":  req.Session,
			"upstream": req.Upstream,
			"tool":     req.Tool,
			"id":       req.ID,
			"time":     req.Time.UTC().Format("2006-01-02T15:04:05.000000000Z"),
		},
	}
}
