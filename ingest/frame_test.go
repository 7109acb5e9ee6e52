package ingest

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"testing"
)

func TestLineReader(t *testing.T) {
	in := "a\r\n\n  \nbb\n" + strings.Repeat("x", 20) + "\ncc"
	lr := NewLineReader(strings.NewReader(in), 10)
	var got []string
	for {
		l, err := lr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, string(l))
	}
	want := []string{"a", "bb", strings.Repeat("x", 11), "cc"}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("got %q, want %q", got, want)
	}
}

// FuzzLineReader: every line comes back whole or, when too long, as exactly
// max+1 bytes of its prefix; nothing else is invented or lost.
func FuzzLineReader(f *testing.F) {
	f.Add([]byte("{\"a\":1}\n{\"b\":2}\n"), 8)
	f.Add([]byte("\n\n\r\nxyz"), 2)
	f.Fuzz(func(t *testing.T, data []byte, max int) {
		if max < 1 || max > 1<<16 {
			return
		}
		checkLines(t, data, max)
	})
}

// checkLines reads data with a LineReader of limit max and compares what
// it returns with the rule: every line whole or, when too long, exactly
// max+1 bytes of its prefix.
func checkLines(t *testing.T, data []byte, max int) {
	t.Helper()
	var want [][]byte
	for _, l := range bytes.Split(data, []byte("\n")) {
		if len(l) > max {
			want = append(want, l[:max+1])
			continue
		}
		l = bytes.TrimRight(l, "\r\n")
		if len(bytes.TrimSpace(l)) > 0 {
			want = append(want, l)
		}
	}
	lr := NewLineReader(bytes.NewReader(data), max)
	for i := 0; ; i++ {
		l, err := lr.Next()
		if err != nil {
			if i != len(want) {
				t.Fatalf("got %d lines, want %d", i, len(want))
			}
			return
		}
		if i >= len(want) || !bytes.Equal(l, want[i]) {
			t.Fatalf("line %d = %.80q (%d bytes), want %.80q", i, l, len(l), want)
		}
	}
}

// Lines longer than the reader's buffer are gathered from several reads:
// whole when within the limit, cut to max+1 when over it, at every length
// around the limit and with or without a final newline.
func TestLineReaderLongLines(t *testing.T) {
	long := func(n int, c byte) []byte { return bytes.Repeat([]byte{c}, n) }
	for _, n := range []int{lineBuffer - 1, lineBuffer, lineBuffer + 1, 3*lineBuffer + 7} {
		for _, max := range []int{n - 1, n, n + 1, 10 * lineBuffer, lineBuffer / 2} {
			for _, data := range [][]byte{
				append(long(n, 'x'), '\n'),
				long(n, 'y'),
				slices.Concat([]byte("a\n"), long(n, 'z'), []byte("\r\nb\n"), long(n, ' '), []byte("\n{}")),
			} {
				t.Run(fmt.Sprintf("n=%d/max=%d/%d", n, max, len(data)), func(t *testing.T) { checkLines(t, data, max) })
			}
		}
	}
}
