package rollback

import (
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strings"
)

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
