package envelope

import (
	"testing"

	"github.com/mcptrail/mcptrail/internal/rawjson"
)

// twoWalkArguments is checkArguments as it was before the two checks
// shared one walk and their visitor was pooled: a walk refusing
// duplicates at any depth, then one over the top-level members refusing
// case variants. FuzzCheckArguments holds the one walk to its answers.
func twoWalkArguments(v []byte) *Error {
	var d struct{ twoWalkDuplicates }
	if !rawjson.WalkKeys(v, &d) {
		return d.err
	}
	if len(v) == 0 || v[0] != '{' {
		return nil
	}
	var err *Error
	var folded names
	rawjson.Members(v, func(k []byte, esc bool, _ []byte) bool {
		key := k
		if esc {
			key = []byte(rawjson.Key(k, true))
		}
		if !folded.insert(foldKey(key)) {
			err = refuse("member %q in arguments differs from another only in case, which servers read differently", key)
			return false
		}
		return true
	})
	return err
}

type twoWalkDuplicates struct {
	open []names
	err  *Error
}

func (d *twoWalkDuplicates) Open()  { d.open = append(d.open, names{}) }
func (d *twoWalkDuplicates) Close() { d.open = d.open[:len(d.open)-1] }

func (d *twoWalkDuplicates) Key(k []byte, escaped bool) bool {
	key := k
	if escaped {
		key = []byte(rawjson.Key(k, true))
	}
	if !d.open[len(d.open)-1].insert(key) {
		d.err = refuse("duplicate member %q in arguments", key)
		return false
	}
	return true
}

// checkArguments refuses what the two walks refused, with the same reason,
// and nothing else: the pooled visitor carries nothing from one message to
// the next.
func FuzzCheckArguments(f *testing.F) {
	for _, s := range []string{
		`{"a":1}`, `{"a":1,"a":2}`, `{"path":"/a","Path":"/etc/passwd"}`, `{"x":{"a":1,"a":2},"X":1}`, `{"X":1,"x":{"a":1,"a":2}}`,
		`[{"a":1,"A":2}]`, `{"\u0061":1,"a":2}`, "{\"\u212a\":1,\"k\":2}", `{"a":{"b":{"c":1,"c":2}}}`, `{"a":[{"b":1},{"b":1}]}`,
		`{"1":1,"2":2,"3":3,"4":4,"5":5,"6":6,"7":7,"8":8,"9":9,"10":10,"1":0}`, `{"1":1,"2":2,"3":3,"4":4,"5":5,"6":6,"7":7,"8":8,"9":9,"A":1,"a":2}`,
		`"text"`, `[]`, `{}`, `null`, `{"a":{},"b":{"a":1},"c":{"a":1}}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, v []byte) {
		if Check(v, 0) != nil {
			return
		}
		// Twice: the second call gets a visitor the first one used.
		for range 2 {
			got, want := checkArguments(v), twoWalkArguments(v)
			if (got == nil) != (want == nil) || got != nil && got.Reason != want.Reason {
				t.Fatalf("%s: one walk %v, two walks %v", v, got, want)
			}
		}
	})
}
