package rollback

import (
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strings"

	"github.com/mcptrail/mcptrail/store"
)

// What templates see (docs/rollback.md lists it for rule writers):
//
//	args      the call's arguments
//	call      {seq, session, upstream, tool, id, time} of the call's request
//	result    the call's result (view below); absent at capture time
//	prestate  NAME → view of each capture read, as it was before the call
//	current   NAME → view of each check read, as it is now (plan and apply)
//	vars      the rules file's vars, evaluated in order for this call
//
// A view of a tool result: {exists, ok, text, structured, error}. exists is
// false only when the read failed with an error matching its `missing`
// pattern; ok is false when the tool reported an error; text joins the text
// blocks; structured is structuredContent, else the text parsed as JSON
// (null when it is not JSON).

// viewOf turns a tools/call result into a view. A tool error that does not
// match missing is an error (the read failed); one that does is a view
// with exists false.
func viewOf(result json.RawMessage, missing *regexp.Regexp) (map[string]any, error) {
	var r struct {
		Content []struct {
			Type string `json:"type"`
			Text string `json:"text"`
		} `json:"content"`
		Structured json.RawMessage `json:"structuredContent"`
		IsError    bool            `json:"isError"`
	}
	if len(result) == 0 {
		return nil, errors.New("no result")
	}
	if err := json.Unmarshal(result, &r); err != nil {
		return nil, fmt.Errorf("the result is not a tool result: %w", err)
	}
	var b strings.Builder
	for _, c := range r.Content {
		if c.Type == "text" {
			b.WriteString(c.Text)
		}
	}
	txt := b.String()
	if r.IsError {
		if missing != nil && missing.MatchString(txt) {
			return map[string]any{"exists": false, "ok": false, "error": txt}, nil
		}
		return nil, fmt.Errorf("the tool reported an error: %s", oneLine(txt, 200))
	}
	v := map[string]any{"exists": true, "ok": true, "text": txt}
	if len(r.Structured) > 0 && string(r.Structured) != "null" {
		if s, err := decodeJSON(r.Structured); err == nil {
			v["structured"] = s
		}
	} else if s, err := decodeJSON([]byte(txt)); err == nil {
		v["structured"] = s
	}
	return v, nil
}

// resultView is the view of a call's own result: a tool error is ok false,
// never an error.
func resultView(result json.RawMessage) any {
	v, err := viewOf(result, regexp.MustCompile(""))
	if err != nil {
		return nil
	}
	return v
}

func oneLine(s string, n int) string {
	s = strings.Join(strings.Fields(s), " ")
	if len([]rune(s)) > n {
		s = string([]rune(s)[:n]) + "…"
	}
	return s
}

// arguments decodes a tools/call request's arguments.
func arguments(params json.RawMessage) map[string]any {
	var p struct {
		Arguments json.RawMessage `json:"arguments"`
	}
	if json.Unmarshal(params, &p) == nil && len(p.Arguments) > 0 {
		if v, err := decodeJSON(p.Arguments); err == nil {
			if m, ok := v.(map[string]any); ok {
				return m
			}
		}
	}
	return map[string]any{}
}

// baseEnv is what every template of a call sees: args, call, result (when
// out is set) and vars.
func (r *ToolRule) baseEnv(req, out *store.Event) (map[string]any, error) {
	env := requestEnv(req) // condition.go
	env["prestate"], env["current"] = map[string]any{}, map[string]any{}
	if out != nil {
		env["result"] = resultView(out.Result)
	}
	vars := map[string]any{}
	env["vars"] = vars
	for _, v := range r.server.vars {
		val, err := v.t.render(env)
		if err != nil {
			return nil, fmt.Errorf("vars.%s: %w", v.name, err)
		}
		vars[v.name] = val
	}
	return env, nil
}

// keysOf renders the rule's keys: a string, or a (nested) list of them.
func (r *ToolRule) keysOf(env map[string]any) ([]string, error) {
	if r.keys == nil {
		return nil, nil
	}
	v, err := r.keys.render(env)
	if err != nil {
		return nil, err
	}
	var out []string
	var walk func(v any)
	walk = func(v any) {
		switch v := v.(type) {
		case []any:
			for _, e := range v {
				walk(e)
			}
		case nil:
		default:
			if s := text(v); s != "" {
				out = append(out, s)
			}
		}
	}
	walk(v)
	return out, nil
}

// readParams renders a read's tools/call params.
func readParams(rc readCall, env map[string]any) (map[string]any, error) {
	args := map[string]any{}
	if rc.args != nil {
		v, err := rc.args.render(env)
		if err != nil {
			return nil, err
		}
		m, ok := v.(map[string]any)
		if !ok {
			return nil, fmt.Errorf("read %s: args must be a mapping", rc.name)
		}
		args = m
	}
	return map[string]any{"name": rc.tool, "arguments": args}, nil
}

// keysOverlap: equal, or one is the other's ancestor ("file:/a" and
// "file:/a/b"; "entity:X" and "entity:X/observation/o").
func keysOverlap(a, b string) bool {
	if a == b {
		return true
	}
	if len(a) > len(b) {
		a, b = b, a
	}
	return strings.HasPrefix(b, a) && b[len(a)] == '/'
}
