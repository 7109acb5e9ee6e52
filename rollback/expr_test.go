package rollback

import (
	"encoding/json"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

func mustDecode(t *testing.T, s string) any {
	t.Helper()
	v, err := decodeJSON([]byte(s))
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func TestExpressions(t *testing.T) {
	env := mustDecode(t, `{
		"args": {"path": "/r/a.txt", "n": 3, "dryRun": false, "list": ["x", "y"]},
		"prestate": {"file": {"exists": true, "text": "hello"}},
		"ents": [{"name": "A", "obs": ["1"]}, {"name": "B", "obs": []}]
	}`).(map[string]any)
	cases := []struct {
		expr string
		want string
	}{
		{"prestate.file.exists", "true"},
		{"not prestate.file.exists", "false"},
		{"prestate.missing.exists", "null"},
		{"not prestate.missing.exists", "true"},
		{"args.n > 2 and args.n <= 3", "true"},
		{"args.n == 3.0", "true"},
		{"'x' in args.list", "true"},
		{"'z' in args.list or args.dryRun", "false"},
		{"dir(args.path)", `"/r"`},
		{"base(args.path)", `"a.txt"`},
		{"join('/r//b', '../c')", `"/r/c"`},
		{"len(args.list)", "2"},
		{"args.list[1]", `"y"`},
		{"args.list[-1]", `"y"`},
		{"args.list[5]", "null"},
		{"pluck(ents, 'name')", `["A","B"]`},
		{"find(ents, 'name', 'B').obs", `[]`},
		{"find(ents, 'name', 'C')", `null`},
		{"default(find(ents, 'name', 'C'), 'none')", `"none"`},
		{"intersect(['a','b','c'], ['c','a'])", `["a","c"]`},
		{"subset(['a'], ['c','a'])", "true"},
		{"disjoint(['a'], ['c','b'])", "true"},
		{"sameset(pluck(ents, 'name'), concat(['B'], ['A']))", "true"},
		{"concat('a', 1, 'b')", `"a1b"`},
		{"lf('a\\r\\nb')", `"a\nb"`},
		{"all([])", "true"},
		{"(1 == 1) and not (2 == 3)", "true"},
	}
	for _, c := range cases {
		x, err := parseExpr(c.expr)
		if err != nil {
			t.Errorf("%s: %v", c.expr, err)
			continue
		}
		v, err := x.eval(env)
		if err != nil {
			t.Errorf("%s: %v", c.expr, err)
			continue
		}
		got, _ := json.Marshal(v)
		if string(got) != c.want {
			t.Errorf("%s = %s, want %s", c.expr, got, c.want)
		}
	}
	for _, bad := range []string{"a ==", "nosuch(1)", "len(1, 2)", "'open", "a b", "[1", "a $ b"} {
		if _, err := parseExpr(bad); err == nil {
			t.Errorf("%q parsed", bad)
		}
	}
}

func TestTemplates(t *testing.T) {
	src := `
whole: "{{args.list}}"
mixed: "{{dir(args.path)}}/q/{{call.seq}}-{{base(args.path)}}"
plain: text
num: 3
each:
  foreach: "{{ents}}"
  as: e
  where: "len(e.obs) > 0"
  item: {entityName: "{{e.name}}", contents: "{{e.obs}}"}
`
	var n yaml.Node
	if err := yaml.Unmarshal([]byte(src), &n); err != nil {
		t.Fatal(err)
	}
	tm, err := compileNode(&n)
	if err != nil {
		t.Fatal(err)
	}
	env := mustDecode(t, `{"args": {"path": "/r/a.txt", "list": [1, "x"]}, "call": {"seq": 42},
		"ents": [{"name": "A", "obs": ["1"]}, {"name": "B", "obs": []}]}`).(map[string]any)
	v, err := tm.render(env)
	if err != nil {
		t.Fatal(err)
	}
	got, _ := json.Marshal(v)
	want := `{"each":[{"contents":["1"],"entityName":"A"}],"mixed":"/r/q/42-a.txt","num":3,"plain":"text","whole":[1,"x"]}`
	if string(got) != want {
		t.Fatalf("got  %s\nwant %s", got, want)
	}
	if _, err := compileString("{{unclosed"); err == nil {
		t.Fatal("an unclosed template compiled")
	}
}

func TestApplyUnified(t *testing.T) {
	before := "one\ntwo\nthree\nfour\nfive\nsix\nseven\neight\nnine\nten\n"
	diff := "```diff\nIndex: f\n===================================================================\n--- f\toriginal\n+++ f\tmodified\n" +
		"@@ -1,3 +1,3 @@\n one\n-two\n+TWO\n three\n@@ -8,3 +8,4 @@\n eight\n nine\n ten\n+eleven\n```\n\n"
	got, err := applyUnified(before, unfence(diff))
	if err != nil {
		t.Fatal(err)
	}
	if want := strings.Replace(before, "two", "TWO", 1) + "eleven\n"; got != want {
		t.Fatalf("got %q want %q", got, want)
	}
	// No newline at the end, on either side.
	got, err = applyUnified("a\nb", "@@ -1,2 +1,2 @@\n a\n-b\n\\ No newline at end of file\n+c\n\\ No newline at end of file\n")
	if err != nil || got != "a\nc" {
		t.Fatalf("%q %v", got, err)
	}
	got, err = applyUnified("a\nb", "@@ -1,2 +1,2 @@\n a\n-b\n\\ No newline at end of file\n+c\n")
	if err != nil || got != "a\nc\n" {
		t.Fatalf("%q %v", got, err)
	}
	if _, err := applyUnified("x\n", "@@ -1,1 +1,1 @@\n-y\n+z\n"); err == nil {
		t.Fatal("a diff that does not match applied")
	}
	// Into an empty text.
	got, err = applyUnified("", "@@ -0,0 +1,2 @@\n+a\n+b\n")
	if err != nil || got != "a\nb\n" {
		t.Fatalf("%q %v", got, err)
	}
}

func TestUnifiedDiff(t *testing.T) {
	d := unifiedDiff("a\nb\nc\n", "a\nB\nc\n")
	for _, want := range []string{"--- current", "+++ restored", "-b", "+B", " a", " c"} {
		if !strings.Contains(d, want) {
			t.Errorf("diff lacks %q:\n%s", want, d)
		}
	}
	if unifiedDiff("same", "same") != "" {
		t.Error("equal texts have a diff")
	}
}

func TestKeysOverlap(t *testing.T) {
	for _, c := range []struct {
		a, b string
		want bool
	}{
		{"file:/a", "file:/a", true},
		{"file:/a", "file:/a/b", true},
		{"file:/a/b", "file:/a", true},
		{"file:/a", "file:/ab", false},
		{"entity:X", "entity:X/observation/o", true},
		{"entity:X", "entity:XY", false},
	} {
		if got := keysOverlap(c.a, c.b); got != c.want {
			t.Errorf("keysOverlap(%q, %q) = %v", c.a, c.b, got)
		}
	}
}
