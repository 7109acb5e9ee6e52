package config

import (
	"os"
	"reflect"
	"regexp"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

// The reference in docs/config.md must name every key the config takes,
// and its complete example must use only keys the config takes.
func TestDocsConfigReference(t *testing.T) {
	data, err := os.ReadFile("../docs/config.md")
	if err != nil {
		t.Fatal(err)
	}
	doc := string(data)
	var walk func(t reflect.Type, path string)
	seen := map[reflect.Type]bool{}
	walk = func(ty reflect.Type, path string) {
		for ty.Kind() == reflect.Pointer || ty.Kind() == reflect.Slice || ty.Kind() == reflect.Map {
			ty = ty.Elem()
		}
		if ty.Kind() != reflect.Struct || seen[ty] {
			return
		}
		seen[ty] = true
		for _, f := range reflect.VisibleFields(ty) {
			name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
			if name == "" || name == "-" || !f.IsExported() {
				continue
			}
			if !strings.Contains(doc, "`"+name+"`") {
				t.Errorf("docs/config.md does not document %s%s", path, name)
			}
			walk(f.Type, path+name+".")
		}
	}
	walk(reflect.TypeFor[Config](), "")

	m := regexp.MustCompile("(?s)## A complete example\n\n```yaml\n(.*?)```").FindStringSubmatch(doc)
	if m == nil {
		t.Fatal("docs/config.md: no complete example")
	}
	var n yaml.Node
	if err := yaml.Unmarshal([]byte(m[1]), &n); err != nil {
		t.Fatalf("the example is not YAML: %v", err)
	}
	if err := checkKeys(n.Content[0], reflect.TypeFor[Config](), ""); err != nil {
		t.Errorf("the example: line %v", err)
	}
	var c Config
	if err := n.Content[0].Decode(&c); err != nil {
		t.Errorf("the example does not decode: %v", err)
	}
	if c.Metrics.Listen == "" || len(c.Upstreams) != 2 || len(c.Sinks) != 2 {
		t.Errorf("the example decoded to %+v", c)
	}
}
