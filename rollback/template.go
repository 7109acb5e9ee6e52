package rollback

import (
	"encoding/json"
	"fmt"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Templates are YAML values whose strings may embed expressions:
//
//   - "{{expr}}" alone is the expression's value, whatever its type (a list
//     of entities stays a list);
//   - text with expressions inside ("{{vars.q}}/{{call.seq}}") is a string,
//     each value rendered as text (strings as they are, others as JSON);
//   - a mapping {foreach: "{{list}}", as: name, where: expr, item: template}
//     is a list: item rendered for each element (bound to name) that
//     satisfies where;
//   - other mappings, sequences and scalars keep their shape.
type tmpl interface {
	render(env map[string]any) (any, error)
}

type (
	litTmpl  struct{ v any }
	wholeT   struct{ x node }
	mixedT   struct{ parts []any } // string or node
	listTmpl []tmpl
	mapTmpl  struct {
		keys []string
		vals []tmpl
	}
	foreachT struct {
		over  tmpl
		as    string
		where node
		item  tmpl
	}
)

func (t litTmpl) render(map[string]any) (any, error) { return t.v, nil }
func (t wholeT) render(env map[string]any) (any, error) {
	return t.x.eval(env)
}

func (t mixedT) render(env map[string]any) (any, error) {
	var b strings.Builder
	for _, p := range t.parts {
		switch p := p.(type) {
		case string:
			b.WriteString(p)
		case node:
			v, err := p.eval(env)
			if err != nil {
				return nil, err
			}
			b.WriteString(text(v))
		}
	}
	return b.String(), nil
}

func (t listTmpl) render(env map[string]any) (any, error) {
	return each(t, func(e tmpl) (any, error) { return e.render(env) })
}

func (t mapTmpl) render(env map[string]any) (any, error) {
	out := make(map[string]any, len(t.keys))
	for i, k := range t.keys {
		v, err := t.vals[i].render(env)
		if err != nil {
			return nil, err
		}
		out[k] = v
	}
	return out, nil
}

func (t foreachT) render(env map[string]any) (any, error) {
	over, err := t.over.render(env)
	if err != nil {
		return nil, err
	}
	list, _ := over.([]any)
	out := []any{}
	inner := make(map[string]any, len(env)+1)
	for k, v := range env {
		inner[k] = v
	}
	for _, e := range list {
		inner[t.as] = e
		if ok, err := holds(t.where, inner); err != nil {
			return nil, err
		} else if !ok {
			continue
		}
		v, err := t.item.render(inner)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, nil
}

// compileString compiles a string template.
func compileString(s string) (tmpl, error) {
	if !strings.Contains(s, "{{") {
		return litTmpl{s}, nil
	}
	var parts []any
	rest := s
	for {
		i := strings.Index(rest, "{{")
		if i < 0 {
			if rest != "" {
				parts = append(parts, rest)
			}
			break
		}
		j := strings.Index(rest[i:], "}}")
		if j < 0 {
			return nil, fmt.Errorf("template %q: {{ without }}", s)
		}
		if i > 0 {
			parts = append(parts, rest[:i])
		}
		x, err := parseExpr(strings.TrimSpace(rest[i+2 : i+j]))
		if err != nil {
			return nil, fmt.Errorf("template %q: %w", s, err)
		}
		parts = append(parts, x)
		rest = rest[i+j+2:]
	}
	if len(parts) == 1 {
		if x, ok := parts[0].(node); ok {
			return wholeT{x}, nil
		}
	}
	return mixedT{parts}, nil
}

// compileNode compiles a YAML value into a template; a zero node is nil.
func compileNode(n *yaml.Node) (tmpl, error) {
	if n == nil || n.Kind == 0 {
		return nil, nil
	}
	switch n.Kind {
	case yaml.DocumentNode:
		if len(n.Content) == 0 {
			return nil, nil
		}
		return compileNode(n.Content[0])
	case yaml.AliasNode:
		return compileNode(n.Alias)
	case yaml.ScalarNode:
		switch n.Tag {
		case "!!str", "":
			return compileString(n.Value)
		case "!!null":
			return litTmpl{nil}, nil
		case "!!bool":
			var b bool
			if err := n.Decode(&b); err != nil {
				return nil, err
			}
			return litTmpl{b}, nil
		case "!!int", "!!float":
			return litTmpl{json.Number(n.Value)}, nil
		}
		return compileString(n.Value)
	case yaml.SequenceNode:
		out := make(listTmpl, 0, len(n.Content))
		for _, c := range n.Content {
			t, err := compileNode(c)
			if err != nil {
				return nil, err
			}
			out = append(out, t)
		}
		return out, nil
	case yaml.MappingNode:
		m := mapTmpl{}
		var fe *foreachT
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i].Value, n.Content[i+1]
			if k == "foreach" {
				fe = &foreachT{}
			}
			t, err := compileNode(v)
			if err != nil {
				return nil, fmt.Errorf("line %d: %s: %w", v.Line, k, err)
			}
			m.keys = append(m.keys, k)
			m.vals = append(m.vals, t)
		}
		if fe == nil {
			return m, nil
		}
		for i, k := range m.keys {
			v := n.Content[2*i+1]
			switch k {
			case "foreach":
				fe.over = m.vals[i]
			case "as":
				fe.as = v.Value
			case "where":
				x, err := parseExpr(v.Value)
				if err != nil {
					return nil, fmt.Errorf("line %d: where: %w", v.Line, err)
				}
				fe.where = x
			case "item":
				fe.item = m.vals[i]
			default:
				return nil, fmt.Errorf("line %d: foreach takes as, where and item, not %q", v.Line, k)
			}
		}
		if fe.as == "" || fe.item == nil {
			return nil, fmt.Errorf("line %d: foreach needs as and item", n.Line)
		}
		return *fe, nil
	}
	return nil, fmt.Errorf("line %d: unsupported YAML value", n.Line)
}
