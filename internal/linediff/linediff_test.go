package linediff

import (
	"math/rand/v2"
	"strings"
	"testing"
)

func render(ops []Op) string {
	var b strings.Builder
	for _, op := range ops {
		b.WriteByte(" -+"[op.Kind])
		b.WriteString(op.Text)
		b.WriteByte('\n')
	}
	return b.String()
}

func TestLines(t *testing.T) {
	for _, tc := range []struct {
		name string
		a, b string
		want string
	}{
		{"equal", "a b c", "a b c", " a\n b\n c\n"},
		{"empty both", "", "", ""},
		{"all new", "", "x y", "+x\n+y\n"},
		{"all gone", "x y", "", "-x\n-y\n"},
		{"change middle", "a b c", "a X c", " a\n-b\n+X\n c\n"},
		{"insert", "a c", "a b c", " a\n+b\n c\n"},
		{"delete", "a b c", "a c", " a\n-b\n c\n"},
		{"classic", "a b c a b b a", "c b a b a c", ""}, // checked by replay below
	} {
		t.Run(tc.name, func(t *testing.T) {
			a, b := strings.Fields(tc.a), strings.Fields(tc.b)
			ops := Lines(a, b)
			checkReplay(t, a, b, ops)
			if tc.want != "" || (len(a) == 0 && len(b) == 0) {
				if got := render(ops); got != tc.want {
					t.Fatalf("got\n%s\nwant\n%s", got, tc.want)
				}
			}
		})
	}
}

// The classic example from Myers' paper has an edit distance of 5.
func TestMinimal(t *testing.T) {
	a, b := strings.Fields("a b c a b b a"), strings.Fields("c b a b a c")
	ins, del := Stats(Lines(a, b))
	if ins+del != 5 {
		t.Fatalf("edit distance %d, want 5", ins+del)
	}
}

// checkReplay rebuilds both sides from the script.
func checkReplay(t *testing.T, a, b []string, ops []Op) {
	t.Helper()
	var ra, rb []string
	for _, op := range ops {
		if op.Kind != Insert {
			if op.A != len(ra) {
				t.Fatalf("op %+v: A index %d, want %d", op, op.A, len(ra))
			}
			ra = append(ra, op.Text)
		}
		if op.Kind != Delete {
			if op.B != len(rb) {
				t.Fatalf("op %+v: B index %d, want %d", op, op.B, len(rb))
			}
			rb = append(rb, op.Text)
		}
	}
	if strings.Join(ra, "\n") != strings.Join(a, "\n") || strings.Join(rb, "\n") != strings.Join(b, "\n") {
		t.Fatalf("replay mismatch:\n%s", render(ops))
	}
}

func TestRandomReplay(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for i := 0; i < 300; i++ {
		gen := func() []string {
			n := r.IntN(30)
			out := make([]string, n)
			for j := range out {
				out[j] = string(rune('a' + r.IntN(4)))
			}
			return out
		}
		a, b := gen(), gen()
		checkReplay(t, a, b, Lines(a, b))
	}
}

func TestTooManyEditsIsAReplacement(t *testing.T) {
	a := make([]string, MaxEdits)
	b := make([]string, MaxEdits)
	for i := range a {
		a[i], b[i] = "a", "b"
	}
	ops := Lines(a, b)
	checkReplay(t, a, b, ops)
	if ins, del := Stats(ops); ins != MaxEdits || del != MaxEdits {
		t.Fatalf("ins %d del %d", ins, del)
	}
}

func TestSideBySide(t *testing.T) {
	ops := Lines(strings.Fields("a b c d"), strings.Fields("a X Y d"))
	pairs := SideBySide(ops)
	var got []string
	for _, p := range pairs {
		l, r := "_", "_"
		if p.Left != nil {
			l = p.Left.Text
		}
		if p.Right != nil {
			r = p.Right.Text
		}
		got = append(got, l+"|"+r)
	}
	if s := strings.Join(got, " "); s != "a|a b|X c|Y d|d" {
		t.Fatalf("got %s", s)
	}
}
