package config

import (
	"fmt"
	"reflect"
	"strings"

	"go.yaml.in/yaml/v3"
)

var unmarshaler = reflect.TypeFor[yaml.Unmarshaler]()

// checkKeys rejects keys that no field takes, with their line: a misspelt
// "listn" would otherwise leave the gateway listening where the user did
// not mean it to. (yaml's KnownFields does this only on a Decoder, and its
// errors do not say where in the tree the key sits.)
func checkKeys(n *yaml.Node, t reflect.Type, where string) error {
	for n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if reflect.PointerTo(t).Implements(unmarshaler) {
		return nil
	}
	switch t.Kind() {
	case reflect.Struct:
		if n.Kind != yaml.MappingNode {
			return nil // Decode reports the type mismatch
		}
		fields := map[string]reflect.Type{}
		for _, f := range reflect.VisibleFields(t) {
			name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
			if name == "" {
				name = strings.ToLower(f.Name)
			}
			if name != "-" && f.IsExported() {
				fields[name] = f.Type
			}
		}
		for i := 0; i+1 < len(n.Content); i += 2 {
			k := n.Content[i]
			if k.Value == "<<" {
				continue // a merge key; its mapping is checked where it is defined
			}
			ft, ok := fields[k.Value]
			if !ok {
				if where != "" {
					return fmt.Errorf("%d: unknown key %q in %s", k.Line, k.Value, where)
				}
				return fmt.Errorf("%d: unknown key %q", k.Line, k.Value)
			}
			if err := checkKeys(n.Content[i+1], ft, join(where, k.Value)); err != nil {
				return err
			}
		}
	case reflect.Map:
		if n.Kind != yaml.MappingNode {
			return nil
		}
		for i := 0; i+1 < len(n.Content); i += 2 {
			if err := checkKeys(n.Content[i+1], t.Elem(), join(where, n.Content[i].Value)); err != nil {
				return err
			}
		}
	case reflect.Slice:
		if n.Kind != yaml.SequenceNode {
			return nil
		}
		for i, e := range n.Content {
			if err := checkKeys(e, t.Elem(), fmt.Sprintf("%s[%d]", where, i)); err != nil {
				return err
			}
		}
	}
	return nil
}

func join(where, key string) string {
	if where == "" {
		return key
	}
	return where + "." + key
}
