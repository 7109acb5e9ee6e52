package redact

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// The hint scan of a tools/call's params as bench/loadgen's write call
// sends them (a 256-byte payload), which no hint matches: the common case,
// where every byte is looked at.
func BenchmarkHintScan(b *testing.B) {
	params := `{"name":"write","arguments":{"content":"` + strings.Repeat("0123456789abcdef", 16) + `","name":"s0-3"}}`
	x := builtinHints()
	b.SetBytes(int64(len(params)))
	for b.Loop() {
		if x.scan(params) != 0 {
			b.Fatal("a hint matched")
		}
	}
}

// The index answers as each pattern's hint does over every fuzz corpus
// of the gateway's message readers (and every suffix of each entry, so
// that each word is met at every offset): it replaced a table by the
// folded pair with two tables by byte, and FuzzHintIndex holds it to the
// hints on inputs of its own.
func TestHintIndexOverCorpora(t *testing.T) {
	var inputs []string
	for _, dir := range []string{"testdata/fuzz", "../envelope/testdata/fuzz", "../testdata/fuzz"} {
		files, err := filepath.Glob(filepath.Join(dir, "*", "*"))
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range files {
			b, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			for _, line := range strings.Split(string(b), "\n")[1:] {
				open := strings.IndexByte(line, '(')
				if open < 0 || !strings.HasSuffix(line, ")") {
					continue
				}
				if s, err := strconv.Unquote(line[open+1 : len(line)-1]); err == nil {
					inputs = append(inputs, s)
				}
			}
		}
	}
	if len(inputs) < 10 {
		t.Fatalf("only %d corpus entries found", len(inputs))
	}
	inputs = append(inputs, "sk-ant-api03 ghp_ AKIA eyJ Bearer x -----BEGIN RSA PRIVATE KEY----- mysql -pX curl -u a:b cookie: x token=y")
	x := builtinHints()
	for _, in := range inputs {
		for i := range len(in) {
			s := in[i:]
			checkHintIndex(t, x, s)
		}
	}
}

// checkHintIndex fails t unless x's scan of s sets exactly the bits of the
// builtin patterns whose own hint finds something in s.
func checkHintIndex(t *testing.T, x *hintIndex, s string) {
	t.Helper()
	got := x.scan(s)
	for k := range builtins {
		h := builtins[k].hint
		if h == nil {
			continue
		}
		if want := h.in(s); want != (got&(1<<k) != 0) {
			t.Fatalf("%q: pattern %s: index says %v, hint says %v", s, builtins[k].kind, !want, want)
		}
	}
}
