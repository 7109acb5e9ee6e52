package rollback

import (
	"context"
	"encoding/json"
	"fmt"
	"regexp"

	"github.com/mcptrail/mcptrail/store"
)

// ToolRule is what rollback knows about one tool.
type ToolRule struct {
	Tool             string
	Class            string
	OnCaptureFailure string
	Irreversible     string // set: the tool cannot be undone, and this says why

	server   *ServerRules
	keys     tmpl
	skipWhen node
	capture  []readCall
	check    []readCall
	expect   tmpl
	inverse  []inverseCall
	diffCur  tmpl
	diffRest tmpl
}

type readCall struct {
	name    string
	tool    string
	args    tmpl
	missing *regexp.Regexp
	when    node
}

type inverseCall struct {
	when node
	tool string
	args tmpl
}

// HasCapture reports whether the tool's pre-state is captured before it runs.
func (r *ToolRule) HasCapture() bool { return len(r.capture) > 0 }

// Server is the rules file the tool rule belongs to.
func (r *ToolRule) Server() *ServerRules { return r.server }

// Policy is the capture failure policy that applies to the tool.
func (r *ToolRule) Policy() string {
	if r.OnCaptureFailure != "" {
		return r.OnCaptureFailure
	}
	if r.server.OnCaptureFailure != "" {
		return r.server.OnCaptureFailure
	}
	return PolicyRecord
}

// --- loading ---

// baseEnv is what every template of a call sees: args, call, result (when
// out is set) and vars.
func (r *ToolRule) baseEnv(req, out *store.Event) (map[string]any, error) {
	env := requestEnv(req)
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
	args, err := renderArgs(rc.args, env, "read "+rc.name)
	if err != nil {
		return nil, err
	}
	return map[string]any{"name": rc.tool, "arguments": args}, nil
}

// renderArgs renders a call's arguments, which must be a mapping; what
// names the call in the error. No template: no arguments.
func renderArgs(t tmpl, env map[string]any, what string) (map[string]any, error) {
	if t == nil {
		return map[string]any{}, nil
	}
	v, err := t.render(env)
	if err != nil {
		return nil, err
	}
	m, ok := v.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("%s: args must be a mapping", what)
	}
	return m, nil
}

// skipped: the rule's skip_when holds for the call (one that cannot be
// evaluated does not).
func (r *ToolRule) skipped(env map[string]any) bool {
	if r.skipWhen == nil {
		return false
	}
	ok, err := holds(r.skipWhen, env)
	return err == nil && ok
}

// render renders the inverse calls whose conditions hold.
func (r *ToolRule) render(env map[string]any) ([]InverseCall, error) {
	var out []InverseCall
	for _, ic := range r.inverse {
		if ok, err := holds(ic.when, env); err != nil {
			return nil, err
		} else if !ok {
			continue
		}
		args, err := renderArgs(ic.args, env, ic.tool)
		if err != nil {
			return nil, err
		}
		raw, err := json.Marshal(args)
		if err != nil {
			return nil, err
		}
		out = append(out, InverseCall{Tool: ic.tool, Args: raw})
	}
	return out, nil
}

func (r *ToolRule) hasDiff() bool { return r.diffCur != nil && r.diffRest != nil }

// diffOf renders the rule's diff sides as text.
func (r *ToolRule) diffOf(env map[string]any) (cur, rest string) {
	side := func(t tmpl) string {
		if t == nil {
			return ""
		}
		v, err := t.render(env)
		if err != nil {
			return ""
		}
		if s, ok := v.(string); ok {
			return s
		}
		if v == nil {
			return ""
		}
		b, _ := json.MarshalIndent(v, "", "  ")
		return string(b) + "\n"
	}
	return side(r.diffCur), side(r.diffRest)
}

// verify runs a rule's check reads on conn and says whether the state is
// the one the call left (expect). It sets env's current views.
func verify(ctx context.Context, rule *ToolRule, env map[string]any, conn Conn) (bool, string, error) {
	cur := map[string]any{}
	env["current"] = cur
	for _, rc := range rule.check {
		if ok, err := holds(rc.when, env); err != nil {
			return false, "", err
		} else if !ok {
			continue
		}
		params, err := readParams(rc, env)
		if err != nil {
			return false, "", err
		}
		res, _, err := conn.Call(ctx, "tools/call", params, nil)
		if err != nil {
			return false, "", fmt.Errorf("%s: %w", rc.tool, err)
		}
		v, err := viewOf(res, rc.missing)
		if err != nil {
			return false, "", fmt.Errorf("%s: %w", rc.tool, err)
		}
		cur[rc.name] = v
	}
	v, err := rule.expect.render(env)
	if err != nil {
		return false, "", err
	}
	ok := truthy(v)
	if l, isList := v.([]any); isList {
		ok = true
		for _, e := range l {
			ok = ok && truthy(e)
		}
	}
	if !ok {
		return false, "it changed after the call (re-read now, it is not what the call left): not overwritten", nil
	}
	return true, "", nil
}
