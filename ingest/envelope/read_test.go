package envelope

import (
	"bytes"
	"reflect"
	"strings"
	"testing"
	"unsafe"
)

// within reports whether v is a view of the bytes of whole (or empty).
func within(v, whole []byte) bool {
	if len(v) == 0 {
		return true
	}
	start := uintptr(unsafe.Pointer(unsafe.SliceData(whole)))
	p := uintptr(unsafe.Pointer(unsafe.SliceData(v)))
	return p >= start && p+uintptr(len(v)) <= start+uintptr(len(whole))
}

// A reading owns exactly the bytes it was made of: Raw is a view of the
// caller's bytes (trimmed, not a copy that could drift from them), each
// element a view of Raw, and every raw value of the Message a view of its
// element. Nothing outside the package can set them (the fields are
// unexported), so a reading cannot be handed on with other bytes.
func TestReadOwnsItsBytes(t *testing.T) {
	for _, in := range []string{
		" \n{\"jsonrpc\":\"2.0\",\"id\":\"a\",\"method\":\"tools/call\",\"params\":{\"name\":\"x\",\"arguments\":{\"p\":1},\"_meta\":{\"progressToken\":7}}}\t",
		`[{"jsonrpc":"2.0","id":1,"method":"ping"},{"jsonrpc":"2.0","id":2,"result":{"ok":true}},{"jsonrpc":"2.0","method":"n","params":[1]}]`,
	} {
		raw := []byte(in)
		r := ReadMessage(raw, 0, 0)
		if !bytes.Equal(r.Raw(), bytes.TrimSpace(raw)) || !within(r.Raw(), raw) {
			t.Fatalf("Raw %q is not the trimmed input itself", r.Raw())
		}
		if !r.Valid() {
			t.Fatalf("%s: not valid", in)
		}
		for i, e := range r.Elements() {
			if !within(e.Raw(), r.Raw()) {
				t.Errorf("%s: element %d is not a view of the message", in, i)
			}
			m := e.Msg
			for name, v := range map[string][]byte{"id": m.ID, "params": m.Params, "result": m.Result, "meta": m.Meta, "token": m.MetaProgressToken} {
				if !within(v, e.Raw()) {
					t.Errorf("%s: element %d's %s %q is not a view of the element", in, i, name, v)
				}
			}
		}
	}
	for _, typ := range []reflect.Type{reflect.TypeFor[Read](), reflect.TypeFor[Element]()} {
		for f := range typ.Fields() {
			if f.IsExported() && f.Name != "Msg" && f.Name != "Err" {
				t.Errorf("%s.%s is exported: a caller could point a reading at other bytes", typ.Name(), f.Name)
			}
		}
	}
}

// ReadMessage is Check, Elements and Parse, nothing more and nothing less,
// and it does not read a message over its size bound.
func TestReadMessage(t *testing.T) {
	deep := strings.Repeat("[", 40) + strings.Repeat("]", 40)
	for _, tc := range []struct {
		in                     string
		depth, size            int
		tooBig, batch, valid   bool
		checkCode, elems, errs int
	}{
		{in: `{"jsonrpc":"2.0","id":1,"method":"ping"}`, valid: true, elems: 1},
		{in: `{"jsonrpc":"2.0","id":1,"method":"ping"}`, size: 10, tooBig: true},
		{in: "  ", elems: 0},
		{in: `{"jsonrpc":"2.0","id":1,"method":"ping","params":` + deep + `}`, depth: 32, checkCode: CodeInvalidRequest},
		{in: `{"jsonrpc":"2.0","id":1,"method":"ping","params":` + deep + `}`, depth: 64, valid: true, elems: 1},
		{in: `{"jsonrpc":"2.0","id":1,"method":"ping"`, checkCode: CodeParseError},
		{in: `[]`, batch: true, valid: true},
		{in: `[{"jsonrpc":"2.0","id":1,"method":"ping"},{"jsonrpc":"2.0","id":1,"method":"ping","ID":2}]`, batch: true, elems: 2, errs: 1},
		{in: `{"jsonrpc":"2.0","id":1,"Method":"ping","method":"x"}`, elems: 1, errs: 1},
		{in: `"x"`, elems: 1, errs: 1},
	} {
		r := ReadMessage([]byte(tc.in), tc.depth, tc.size)
		code := 0
		if r.Check() != nil {
			code = r.Check().Code
		}
		errs := 0
		for _, e := range r.Elements() {
			if e.Err != nil {
				errs++
			}
		}
		if r.TooBig() != tc.tooBig || r.Batch() != tc.batch || r.Valid() != tc.valid || code != tc.checkCode || len(r.Elements()) != tc.elems || errs != tc.errs {
			t.Errorf("%.60s: tooBig %v batch %v valid %v check %d elems %d errs %d; want %v %v %v %d %d %d", tc.in,
				r.TooBig(), r.Batch(), r.Valid(), code, len(r.Elements()), errs, tc.tooBig, tc.batch, tc.valid, tc.checkCode, tc.elems, tc.errs)
		}
		if !r.ReadWith(tc.depth, tc.size) || r.ReadWith(tc.depth+1000, tc.size) || r.ReadWith(tc.depth, tc.size+1) {
			t.Errorf("%.60s: ReadWith does not tell the bounds it was read with", tc.in)
		}
	}
}

// FuzzReadMessage holds ReadMessage to what the Session did before it
// existed: Check on the trimmed bytes, then Parse of the message or of each
// element of a batch, with the same verdicts and readings.
func FuzzReadMessage(f *testing.F) {
	for _, s := range []string{
		`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"x","arguments":{"a":1,"A":2}}}`,
		`[{"jsonrpc":"2.0","id":1,"method":"ping"},{"jsonrpc":"2.0","id":"\ud800","result":{}}]`,
		` {"jsonrpc":"2.0","id":1,"result":{},"res\u0075lt":{}} `,
		`[[[[[[[[[[]]]]]]]]]]`, "\xff", `[]`, `{"jsonrpc":"2.0","method":"notifications/progress","params":{"progressToken":1e3}}`,
	} {
		f.Add([]byte(s), 8)
	}
	f.Fuzz(func(t *testing.T, raw []byte, depth int) {
		depth = depth%64 + 1
		r := ReadMessage(raw, depth, 0)
		trimmed := bytes.TrimSpace(raw)
		if !bytes.Equal(r.Raw(), trimmed) {
			t.Fatalf("Raw %q, want %q", r.Raw(), trimmed)
		}
		if len(trimmed) == 0 {
			return
		}
		check := Check(trimmed, depth)
		if !reflect.DeepEqual(r.Check(), check) {
			t.Fatalf("Check %v, want %v", r.Check(), check)
		}
		if check != nil {
			if r.Elements() != nil || r.Valid() {
				t.Fatalf("a refused message has elements")
			}
			return
		}
		want := [][]byte{trimmed}
		if trimmed[0] == '[' {
			want = Elements(trimmed)
		}
		els := r.Elements()
		if len(els) != len(want) {
			t.Fatalf("%d elements, want %d", len(els), len(want))
		}
		for i, w := range want {
			m, err := Parse(w)
			if !bytes.Equal(els[i].Raw(), w) || !reflect.DeepEqual(els[i].Msg, m) || !reflect.DeepEqual(els[i].Err, err) {
				t.Fatalf("element %d read differently from Parse", i)
			}
		}
	})
}
