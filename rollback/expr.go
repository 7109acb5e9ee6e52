package rollback

// The expression language of rules files: small, total and side-effect
// free, over JSON values (nil, bool, json.Number, string, []any,
// map[string]any).
//
//	expr    := or
//	or      := and { "or" and }
//	and     := not { "and" not }
//	not     := "not" not | cmp
//	cmp     := unary [ ("==" | "!=" | "<" | "<=" | ">" | ">=" | "in") unary ]
//	unary   := primary { "." name | "[" expr "]" }
//	primary := 'string' | "string" | number | true | false | null |
//	           "[" [ expr { "," expr } ] "]" |
//	           name "(" [ expr { "," expr } ] ")" | name | "(" expr ")"
//
// A missing member or index is null, so a condition on something the
// record lacks is false rather than an error. Functions are listed in
// funcs. Templates (tmpl, compileString) embed expressions in {{ }}.

import (
	"encoding/json"
	"fmt"
	"math"
	"path"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"unicode"
)

// node is a parsed expression.
type node interface {
	eval(env map[string]any) (any, error)
}

type (
	litNode  struct{ v any }
	nameNode struct{ name string }
	memNode  struct {
		x    node
		name string
	}
	idxNode  struct{ x, i node }
	notNode  struct{ x node }
	boolNode struct {
		and  bool
		l, r node
	}
	cmpNode struct {
		op   string
		l, r node
	}
	callNode struct {
		fn   string
		args []node
	}
	listNode []node
)

func (n listNode) eval(env map[string]any) (any, error) {
	return each(n, func(e node) (any, error) { return e.eval(env) })
}

// each is the list of f's values for xs, or f's first error: a list
// expression's and a list template's value.
func each[T any](xs []T, f func(T) (any, error)) (any, error) {
	out := make([]any, 0, len(xs))
	for _, x := range xs {
		v, err := f(x)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, nil
}

// holds says whether a condition holds in env (is truthy); no condition
// always does.
func holds(cond node, env map[string]any) (bool, error) {
	if cond == nil {
		return true, nil
	}
	v, err := cond.eval(env)
	if err != nil {
		return false, err
	}
	return truthy(v), nil
}

func (n litNode) eval(map[string]any) (any, error) { return n.v, nil }

func (n nameNode) eval(env map[string]any) (any, error) { return env[n.name], nil }

func (n memNode) eval(env map[string]any) (any, error) {
	x, err := n.x.eval(env)
	if err != nil {
		return nil, err
	}
	return member(x, n.name), nil
}

// evalBoth evaluates two operands, left first.
func evalBoth(l, r node, env map[string]any) (any, any, error) {
	a, err := l.eval(env)
	if err != nil {
		return nil, nil, err
	}
	b, err := r.eval(env)
	return a, b, err
}

func (n idxNode) eval(env map[string]any) (any, error) {
	x, i, err := evalBoth(n.x, n.i, env)
	if err != nil {
		return nil, err
	}
	switch x := x.(type) {
	case []any:
		f, ok := number(i)
		if !ok || f != math.Trunc(f) {
			return nil, nil
		}
		k := int(f)
		if k < 0 {
			k += len(x)
		}
		if k < 0 || k >= len(x) {
			return nil, nil
		}
		return x[k], nil
	case map[string]any:
		s, ok := i.(string)
		if !ok {
			return nil, nil
		}
		return x[s], nil
	}
	return nil, nil
}

func member(x any, name string) any {
	if m, ok := x.(map[string]any); ok {
		return m[name]
	}
	return nil
}

func (n notNode) eval(env map[string]any) (any, error) {
	x, err := n.x.eval(env)
	if err != nil {
		return nil, err
	}
	return !truthy(x), nil
}

func (n boolNode) eval(env map[string]any) (any, error) {
	l, err := n.l.eval(env)
	if err != nil {
		return nil, err
	}
	if truthy(l) != n.and { // short-circuit
		return truthy(l), nil
	}
	r, err := n.r.eval(env)
	if err != nil {
		return nil, err
	}
	return truthy(r), nil
}

func (n cmpNode) eval(env map[string]any) (any, error) {
	l, r, err := evalBoth(n.l, n.r, env)
	if err != nil {
		return nil, err
	}
	switch n.op {
	case "==":
		return equal(l, r), nil
	case "!=":
		return !equal(l, r), nil
	case "in":
		switch r := r.(type) {
		case []any:
			return contains(r, l), nil
		case string:
			s, ok := l.(string)
			return ok && strings.Contains(r, s), nil
		case map[string]any:
			s, ok := l.(string)
			_, has := r[s]
			return ok && has, nil
		}
		return false, nil
	}
	a, aok := number(l)
	b, bok := number(r)
	if !aok || !bok {
		as, aok := l.(string)
		bs, bok := r.(string)
		if !aok || !bok {
			return false, nil
		}
		a, b = float64(strings.Compare(as, bs)), 0
	}
	switch n.op {
	case "<":
		return a < b, nil
	case "<=":
		return a <= b, nil
	case ">":
		return a > b, nil
	}
	return a >= b, nil
}

func (n callNode) eval(env map[string]any) (any, error) {
	args := make([]any, len(n.args))
	for i, a := range n.args {
		v, err := a.eval(env)
		if err != nil {
			return nil, err
		}
		args[i] = v
	}
	return funcs[n.fn].fn(args)
}

// truthy: false, null, 0, "", [] and {} are false.
func truthy(v any) bool {
	switch v := v.(type) {
	case nil:
		return false
	case bool:
		return v
	case string:
		return v != ""
	case json.Number:
		f, _ := v.Float64()
		return f != 0
	case float64:
		return v != 0
	case int:
		return v != 0
	case []any:
		return len(v) > 0
	case map[string]any:
		return len(v) > 0
	}
	return true
}

func number(v any) (float64, bool) {
	switch v := v.(type) {
	case json.Number:
		f, err := v.Float64()
		return f, err == nil
	case float64:
		return v, true
	case int:
		return float64(v), true
	case uint64:
		return float64(v), true
	}
	return 0, false
}

// equal compares JSON values; numbers by value.
func equal(a, b any) bool {
	if x, ok := number(a); ok {
		y, ok := number(b)
		return ok && x == y
	}
	switch a := a.(type) {
	case []any:
		b, ok := b.([]any)
		if !ok || len(a) != len(b) {
			return false
		}
		for i := range a {
			if !equal(a[i], b[i]) {
				return false
			}
		}
		return true
	case map[string]any:
		b, ok := b.(map[string]any)
		if !ok || len(a) != len(b) {
			return false
		}
		for k, v := range a {
			w, ok := b[k]
			if !ok || !equal(v, w) {
				return false
			}
		}
		return true
	}
	return reflect.DeepEqual(a, b)
}

// text renders a value inside a larger string: strings as they are,
// anything else as compact JSON.
func text(v any) string {
	switch v := v.(type) {
	case nil:
		return ""
	case string:
		return v
	case json.Number:
		return v.String()
	}
	b, _ := json.Marshal(v)
	return string(b)
}

// --- functions ---

type function struct {
	min, max int // arity
	fn       func(args []any) (any, error)
	doc      string
}

// funcs is the function table: each entry a pure function of its
// arguments (none holds state), so the table is data, not behaviour.
var funcs = map[string]function{
	"len": {1, 1, func(a []any) (any, error) {
		switch v := a[0].(type) {
		case string:
			return json.Number(strconv.Itoa(len([]rune(v)))), nil
		case []any:
			return json.Number(strconv.Itoa(len(v))), nil
		case map[string]any:
			return json.Number(strconv.Itoa(len(v))), nil
		}
		return json.Number("0"), nil
	}, "length of a string (runes), list or object; 0 for anything else"},
	"dir":  {1, 1, strFn(path.Dir), "the directory part of a slash path"},
	"base": {1, 1, strFn(path.Base), "the last element of a slash path"},
	"join": {1, -1, func(a []any) (any, error) {
		parts := make([]string, len(a))
		for i, v := range a {
			parts[i] = text(v)
		}
		return path.Join(parts...), nil
	}, "joins path elements with / and cleans the result"},
	"lf": {1, 1, strFn(func(s string) string { return strings.ReplaceAll(s, "\r\n", "\n") }),
		"CRLF line endings as LF"},
	"json": {1, 1, func(a []any) (any, error) { return text(a[0]), nil }, "a value as compact JSON text"},
	"parse": {1, 1, func(a []any) (any, error) {
		s, ok := a[0].(string)
		if !ok {
			return nil, nil
		}
		v, err := decodeJSON([]byte(s))
		if err != nil {
			return nil, nil
		}
		return v, nil
	}, "JSON text as a value (null when it is not JSON)"},
	"default": {2, 2, func(a []any) (any, error) {
		if a[0] == nil {
			return a[1], nil
		}
		return a[0], nil
	}, "the first argument, or the second when the first is null"},
	"pluck": {2, 2, func(a []any) (any, error) {
		list, _ := a[0].([]any)
		name := text(a[1])
		out := make([]any, 0, len(list))
		for _, e := range list {
			out = append(out, member(e, name))
		}
		return out, nil
	}, "pluck(list, \"field\"): the field of every element"},
	"concat": {1, -1, func(a []any) (any, error) {
		if _, ok := a[0].([]any); ok {
			out := []any{}
			for _, v := range a {
				l, _ := v.([]any)
				out = append(out, l...)
			}
			return out, nil
		}
		var b strings.Builder
		for _, v := range a {
			b.WriteString(text(v))
		}
		return b.String(), nil
	}, "concatenates lists, or else strings"},
	"unfence": {1, 1, strFn(unfence), "the body of the first ``` fenced block of a text (the text itself if there is none)"},
	"patch": {2, 2, func(a []any) (any, error) {
		s, ok1 := a[0].(string)
		d, ok2 := a[1].(string)
		if !ok1 || !ok2 {
			return nil, nil
		}
		out, err := applyUnified(s, unfence(d))
		if err != nil {
			return nil, nil
		}
		return out, nil
	}, "patch(text, diff): text with a unified diff applied (null when it does not apply)"},
	"has": {2, 2, func(a []any) (any, error) {
		m, ok := a[0].(map[string]any)
		if !ok {
			return false, nil
		}
		_, has := m[text(a[1])]
		return has, nil
	}, "has(object, \"member\")"},
	"intersect": {2, 2, func(a []any) (any, error) {
		in, _ := split(a)
		return in, nil
	}, "intersect(a, b): the elements of list a that are also in list b, in a's order"},
	"subset": {2, 2, func(a []any) (any, error) {
		_, out := split(a)
		return len(out) == 0, nil
	}, "subset(a, b): every element of list a is in list b"},
	"disjoint": {2, 2, func(a []any) (any, error) {
		in, _ := split(a)
		return len(in) == 0, nil
	}, "disjoint(a, b): no element of list a is in list b"},
	"sameset": {2, 2, func(a []any) (any, error) {
		l, lok := a[0].([]any)
		r, rok := a[1].([]any)
		if !lok && a[0] != nil || !rok && a[1] != nil || len(l) != len(r) {
			return false, nil
		}
		used := make([]bool, len(r))
		for _, e := range l {
			found := false
			for j, f := range r {
				if !used[j] && equal(e, f) {
					used[j], found = true, true
					break
				}
			}
			if !found {
				return false, nil
			}
		}
		return true, nil
	}, "sameset(a, b): lists a and b hold the same elements, in any order"},
	"find": {3, 3, func(a []any) (any, error) {
		l, _ := a[0].([]any)
		name := text(a[1])
		for _, e := range l {
			if equal(member(e, name), a[2]) {
				return e, nil
			}
		}
		return nil, nil
	}, "find(list, \"field\", value): the first element whose field equals value, else null"},
	"all": {1, 1, func(a []any) (any, error) {
		l, _ := a[0].([]any)
		for _, e := range l {
			if !truthy(e) {
				return false, nil
			}
		}
		return true, nil
	}, "all(list): every element is true (an empty list is)"},
	"startswith": {2, 2, func(a []any) (any, error) {
		s, ok := a[0].(string)
		return ok && strings.HasPrefix(s, text(a[1])), nil
	}, "startswith(string, prefix)"},
}

// split parts list a[0] into the elements that are in list a[1] and those
// that are not, each in a[0]'s order (something else than a list is empty).
func split(a []any) (in, out []any) {
	l, _ := a[0].([]any)
	r, _ := a[1].([]any)
	in = []any{}
	for _, e := range l {
		if contains(r, e) {
			in = append(in, e)
		} else {
			out = append(out, e)
		}
	}
	return in, out
}

// contains: some element of l equals v.
func contains(l []any, v any) bool {
	return slices.ContainsFunc(l, func(e any) bool { return equal(e, v) })
}

func strFn(f func(string) string) func([]any) (any, error) {
	return func(a []any) (any, error) {
		s, ok := a[0].(string)
		if !ok {
			return nil, nil
		}
		return f(s), nil
	}
}

// --- parsing ---

type lexer struct {
	src  string
	pos  int
	toks []token
}

type token struct {
	kind string // name, num, str, op, eof
	val  string
	pos  int
}

func lex(src string) ([]token, error) {
	var toks []token
	i := 0
	for i < len(src) {
		c := rune(src[i])
		switch {
		case unicode.IsSpace(c):
			i++
		case c == '_' || unicode.IsLetter(c):
			j := i
			for j < len(src) && (src[j] == '_' || unicode.IsLetter(rune(src[j])) || unicode.IsDigit(rune(src[j]))) {
				j++
			}
			toks = append(toks, token{"name", src[i:j], i})
			i = j
		case unicode.IsDigit(c) || (c == '-' && i+1 < len(src) && unicode.IsDigit(rune(src[i+1])) && (len(toks) == 0 || toks[len(toks)-1].kind == "op" && toks[len(toks)-1].val != ")" && toks[len(toks)-1].val != "]")):
			j := i + 1
			for j < len(src) && (unicode.IsDigit(rune(src[j])) || src[j] == '.') {
				j++
			}
			toks = append(toks, token{"num", src[i:j], i})
			i = j
		case c == '\'' || c == '"':
			j := i + 1
			var b strings.Builder
			for ; j < len(src) && rune(src[j]) != c; j++ {
				if src[j] == '\\' && j+1 < len(src) {
					j++
					switch src[j] {
					case 'n':
						b.WriteByte('\n')
					case 't':
						b.WriteByte('\t')
					case 'r':
						b.WriteByte('\r')
					default:
						b.WriteByte(src[j])
					}
					continue
				}
				b.WriteByte(src[j])
			}
			if j >= len(src) {
				return nil, fmt.Errorf("unterminated string at %d", i)
			}
			toks = append(toks, token{"str", b.String(), i})
			i = j + 1
		default:
			two := ""
			if i+1 < len(src) {
				two = src[i : i+2]
			}
			switch two {
			case "==", "!=", "<=", ">=":
				toks = append(toks, token{"op", two, i})
				i += 2
				continue
			}
			if strings.ContainsRune(".,()[]<>", c) {
				toks = append(toks, token{"op", string(c), i})
				i++
				continue
			}
			return nil, fmt.Errorf("unexpected %q at %d", c, i)
		}
	}
	return append(toks, token{"eof", "", len(src)}), nil
}

type parser struct {
	toks []token
	i    int
	src  string
}

// parseExpr parses an expression.
func parseExpr(src string) (node, error) {
	toks, err := lex(src)
	if err != nil {
		return nil, fmt.Errorf("expression %q: %w", src, err)
	}
	p := &parser{toks: toks, src: src}
	n, err := p.or()
	if err == nil && p.peek().kind != "eof" {
		err = fmt.Errorf("unexpected %q at %d", p.peek().val, p.peek().pos)
	}
	if err != nil {
		return nil, fmt.Errorf("expression %q: %w", src, err)
	}
	return n, nil
}

func (p *parser) peek() token { return p.toks[p.i] }
func (p *parser) next() token { t := p.toks[p.i]; p.i++; return t }

func (p *parser) isName(v string) bool { t := p.peek(); return t.kind == "name" && t.val == v }
func (p *parser) isOp(v string) bool   { t := p.peek(); return t.kind == "op" && t.val == v }

func (p *parser) expect(op string) error {
	if !p.isOp(op) {
		return fmt.Errorf("want %q at %d, got %q", op, p.peek().pos, p.peek().val)
	}
	p.i++
	return nil
}

// list parses comma-separated expressions up to and including end: a
// call's arguments, a list's elements.
func (p *parser) list(end string) ([]node, error) {
	var xs []node
	for !p.isOp(end) {
		x, err := p.or()
		if err != nil {
			return nil, err
		}
		xs = append(xs, x)
		if !p.isOp(end) {
			if err := p.expect(","); err != nil {
				return nil, err
			}
		}
	}
	p.i++
	return xs, nil
}

func (p *parser) or() (node, error)  { return p.chain("or", p.and) }
func (p *parser) and() (node, error) { return p.chain("and", p.not) }

// chain parses operands joined by the word ("and" or "or"), left to right.
func (p *parser) chain(word string, operand func() (node, error)) (node, error) {
	l, err := operand()
	for err == nil && p.isName(word) {
		p.i++
		var r node
		if r, err = operand(); err == nil {
			l = boolNode{word == "and", l, r}
		}
	}
	return l, err
}

func (p *parser) not() (node, error) {
	if p.isName("not") {
		p.i++
		x, err := p.not()
		return notNode{x}, err
	}
	return p.cmp()
}

func (p *parser) cmp() (node, error) {
	l, err := p.unary()
	if err != nil {
		return nil, err
	}
	t := p.peek()
	if (t.kind == "op" && slices.Contains([]string{"==", "!=", "<", "<=", ">", ">="}, t.val)) || (t.kind == "name" && t.val == "in") {
		p.i++
		r, err := p.unary()
		if err != nil {
			return nil, err
		}
		return cmpNode{t.val, l, r}, nil
	}
	return l, nil
}

func (p *parser) unary() (node, error) {
	x, err := p.primary()
	for err == nil {
		switch {
		case p.isOp("."):
			p.i++
			t := p.next()
			if t.kind != "name" {
				return nil, fmt.Errorf("want a member name at %d", t.pos)
			}
			x = memNode{x, t.val}
		case p.isOp("["):
			p.i++
			var i node
			if i, err = p.or(); err != nil {
				return nil, err
			}
			if err = p.expect("]"); err != nil {
				return nil, err
			}
			x = idxNode{x, i}
		default:
			return x, nil
		}
	}
	return nil, err
}

func (p *parser) primary() (node, error) {
	t := p.next()
	switch t.kind {
	case "num":
		return litNode{json.Number(t.val)}, nil
	case "str":
		return litNode{t.val}, nil
	case "name":
		switch t.val {
		case "true":
			return litNode{true}, nil
		case "false":
			return litNode{false}, nil
		case "null":
			return litNode{nil}, nil
		case "and", "or", "not", "in":
			return nil, fmt.Errorf("unexpected %q at %d", t.val, t.pos)
		}
		if p.isOp("(") {
			p.i++
			f, ok := funcs[t.val]
			if !ok {
				return nil, fmt.Errorf("unknown function %s at %d", t.val, t.pos)
			}
			args, err := p.list(")")
			if err != nil {
				return nil, err
			}
			if len(args) < f.min || (f.max >= 0 && len(args) > f.max) {
				return nil, fmt.Errorf("%s takes %d to %d arguments, got %d", t.val, f.min, f.max, len(args))
			}
			return callNode{t.val, args}, nil
		}
		return nameNode{t.val}, nil
	case "op":
		switch t.val {
		case "(":
			x, err := p.or()
			if err != nil {
				return nil, err
			}
			return x, p.expect(")")
		case "[":
			elems, err := p.list("]")
			if err != nil {
				return nil, err
			}
			return listNode(elems), nil
		}
	}
	return nil, fmt.Errorf("unexpected %q at %d", t.val, t.pos)
}

// decodeJSON decodes JSON with numbers kept as json.Number.
func decodeJSON(b []byte) (any, error) {
	dec := json.NewDecoder(strings.NewReader(string(b)))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	if dec.More() {
		return nil, fmt.Errorf("trailing data after JSON value")
	}
	return v, nil
}

// unfence returns the body of the first ``` fenced block of s (any fence
// length, any info string), or s when it has none.
func unfence(s string) string {
	i := strings.Index(s, "```")
	if i < 0 {
		return s
	}
	j := i
	for j < len(s) && s[j] == '`' {
		j++
	}
	fence := s[i:j]
	nl := strings.IndexByte(s[j:], '\n')
	if nl < 0 {
		return s
	}
	body := s[j+nl+1:]
	end := strings.Index(body, "\n"+fence)
	if strings.HasPrefix(body, fence) {
		return ""
	}
	if end < 0 {
		return body
	}
	return body[:end+1]
}
