package rollback

import (
	"testing"
)

// FuzzExpression feeds the rules language's parser and evaluator what a
// rules file (written by the operator, but copied from anywhere) might
// hold: parsing never panics, and whatever parses evaluates without
// panicking, to the same value twice, against values shaped like a
// call's (a missing member, lists, numbers, views). Templates go through
// the same parser inside {{ }}. Seeds: testdata/fuzz/FuzzExpression and
// the shipped rules' own expressions below.
func FuzzExpression(f *testing.F) {
	for _, s := range []string{
		"current.file.exists and current.file.text == args.content",
		"not (args.role in prestate.user.structured.roles)",
		"len(result.structured.relations) > 0",
		"subset(r.addedObservations, find(current.nodes.structured.entities, 'name', r.entityName).observations)",
		"dir(join(default(args.path, args.source)))",
		"patch(lf(prestate.file.text), result.text)",
		"args.list[-1] == 'y' or [1, 2][0] >= 1",
		"{{vars.q}}/{{call.seq}}-{{base(args.path)}}",
	} {
		f.Add(s)
	}
	env := func() map[string]any {
		v, _ := decodeJSON([]byte(`{
			"args": {"path": "/r/a.txt", "n": 3, "list": ["x", "y"], "content": "c", "relations": [{"from": "A", "to": "B"}]},
			"prestate": {"file": {"exists": true, "ok": true, "text": "a\r\nb\n"}, "user": {"structured": {"roles": ["dev"]}}},
			"current": {"file": {"exists": false, "ok": false, "error": "ENOENT"}},
			"result": {"exists": true, "ok": true, "text": "@@ -1 +1 @@\n-a\n+b\n", "structured": {"results": []}},
			"r": {"entityName": "A", "addedObservations": ["o"]},
			"call": {"seq": 7}, "vars": {"q": "/q"}
		}`))
		return v.(map[string]any)
	}
	f.Fuzz(func(t *testing.T, src string) {
		if n, err := parseExpr(src); err == nil {
			a, errA := n.eval(env())
			b, errB := n.eval(env())
			if (errA == nil) != (errB == nil) || !equal(a, b) {
				t.Fatalf("%q evaluated to %v (%v), then %v (%v)", src, a, errA, b, errB)
			}
		}
		if tp, err := compileString(src); err == nil {
			_, _ = tp.render(env()) // an error is an answer; a panic is not
		}
	})
}
