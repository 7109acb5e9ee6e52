package daemon

import "testing"

func TestProcs(t *testing.T) {
	for _, c := range []struct {
		collecting bool
		env        string
		def, want  int
	}{
		{false, "", 1, 1},
		{false, "", 2, 1},
		{false, "", 3, 1},
		{false, "", 8, 4},
		{false, "", 64, 32},
		{false, "2", 8, 0}, // the operator's GOMAXPROCS stands
		{true, "", 8, 0},   // a collector keeps every CPU
	} {
		if got := Procs(c.collecting, c.env, c.def); got != c.want {
			t.Errorf("Procs(%v, %q, %d) = %d, want %d", c.collecting, c.env, c.def, got, c.want)
		}
	}
}
