// Package linediff computes a line diff with Myers' O(ND) algorithm
// ("An O(ND) Difference Algorithm and Its Variations", 1986).
//
// It is the one line diff of the program: the console lays out its edit
// script (unified hunks, side by side) for tool arguments and resources,
// and rollback writes a plan's and a history's before → after as unified
// text (Unified).
package linediff

// Op is one line of an edit script.
type Op struct {
	Kind Kind
	A, B int // line indices in a and b; -1 when the line is not on that side
	Text string
}

// Kind says whether a line is shared, only in a (deleted) or only in b (inserted).
type Kind int8

const (
	Equal Kind = iota
	Delete
	Insert
)

// MaxEdits bounds the search: past this many differing lines the inputs
// are reported as a wholesale replacement. Myers' trace costs O(D²) memory
// (16 MB at this bound), and a diff with thousands of edits is no help to a reader anyway.
const MaxEdits = 2000

// Lines diffs a against b. The script lists every line of both sides in
// order, deletions before insertions within a change.
func Lines(a, b []string) []Op {
	// Shared prefix and suffix are the common case (a changed field in a
	// large object) and cost nothing to peel off.
	pre := 0
	for pre < len(a) && pre < len(b) && a[pre] == b[pre] {
		pre++
	}
	suf := 0
	for suf < len(a)-pre && suf < len(b)-pre && a[len(a)-1-suf] == b[len(b)-1-suf] {
		suf++
	}
	ops := make([]Op, 0, len(a)+len(b))
	for i := 0; i < pre; i++ {
		ops = append(ops, Op{Equal, i, i, a[i]})
	}
	ops = append(ops, middle(a[pre:len(a)-suf], b[pre:len(b)-suf], pre, pre)...)
	for i := 0; i < suf; i++ {
		ia, ib := len(a)-suf+i, len(b)-suf+i
		ops = append(ops, Op{Equal, ia, ib, a[ia]})
	}
	return ops
}

// middle runs Myers on the differing core; offA/offB map indices back.
func middle(a, b []string, offA, offB int) []Op {
	n, m := len(a), len(b)
	if n == 0 && m == 0 {
		return nil
	}
	limit := min(n+m, MaxEdits)
	// v[k+off] is the furthest x on diagonal k. After each step d, trace[d]
	// keeps v for k in -d..d only (2d+1 values), so the trace costs O(D²)
	// int32s rather than O(D·(N+M)).
	off := limit + 1
	v := make([]int, 2*limit+3)
	var trace [][]int32
	found := -1
	for d := 0; d <= limit && found < 0; d++ {
		for k := -d; k <= d; k += 2 {
			var x int
			if k == -d || (k != d && v[k-1+off] < v[k+1+off]) {
				x = v[k+1+off] // down: an insertion
			} else {
				x = v[k-1+off] + 1 // right: a deletion
			}
			y := x - k
			for x < n && y < m && a[x] == b[y] {
				x, y = x+1, y+1
			}
			v[k+off] = x
			if x >= n && y >= m {
				found = d
			}
		}
		snap := make([]int32, 2*d+1)
		for k := -d; k <= d; k++ {
			snap[k+d] = int32(v[k+off])
		}
		trace = append(trace, snap)
	}
	if found < 0 {
		return replace(a, b, offA, offB)
	}
	at := func(d, k int) int { return int(trace[d][k+d]) }

	// Walk the trace back from (n, m) to (0, 0), collecting ops in reverse.
	var rev []Op
	x, y := n, m
	for d := found; d > 0; d-- {
		k := x - y
		var prevK int
		if k == -d || (k != d && at(d-1, k-1) < at(d-1, k+1)) {
			prevK = k + 1
		} else {
			prevK = k - 1
		}
		prevX := at(d-1, prevK)
		prevY := prevX - prevK
		for x > prevX && y > prevY {
			x, y = x-1, y-1
			rev = append(rev, Op{Equal, x + offA, y + offB, a[x]})
		}
		if x == prevX {
			y--
			rev = append(rev, Op{Insert, -1, y + offB, b[y]})
		} else {
			x--
			rev = append(rev, Op{Delete, x + offA, -1, a[x]})
		}
	}
	for x > 0 && y > 0 {
		x, y = x-1, y-1
		rev = append(rev, Op{Equal, x + offA, y + offB, a[x]})
	}
	ops := make([]Op, 0, len(rev))
	for i := len(rev) - 1; i >= 0; i-- {
		ops = append(ops, rev[i])
	}
	return groupChanges(ops)
}

// groupChanges orders each run of changes as all deletions, then all
// insertions, the way unified diffs read.
func groupChanges(ops []Op) []Op {
	out := make([]Op, 0, len(ops))
	for i := 0; i < len(ops); {
		if ops[i].Kind == Equal {
			out = append(out, ops[i])
			i++
			continue
		}
		j := i
		for j < len(ops) && ops[j].Kind != Equal {
			j++
		}
		for _, op := range ops[i:j] {
			if op.Kind == Delete {
				out = append(out, op)
			}
		}
		for _, op := range ops[i:j] {
			if op.Kind == Insert {
				out = append(out, op)
			}
		}
		i = j
	}
	return out
}

func replace(a, b []string, offA, offB int) []Op {
	ops := make([]Op, 0, len(a)+len(b))
	for i, s := range a {
		ops = append(ops, Op{Delete, i + offA, -1, s})
	}
	for i, s := range b {
		ops = append(ops, Op{Insert, -1, i + offB, s})
	}
	return ops
}

// Stats counts inserted and deleted lines.
func Stats(ops []Op) (ins, del int) {
	for _, op := range ops {
		switch op.Kind {
		case Insert:
			ins++
		case Delete:
			del++
		}
	}
	return ins, del
}

// Pair is one row of a side-by-side view: a line of a, of b, or both.
type Pair struct {
	Left, Right *Op
}

// SideBySide lines a script up in two columns: equal lines face each other,
// and within a change the i-th deletion faces the i-th insertion.
func SideBySide(ops []Op) []Pair {
	var out []Pair
	for i := 0; i < len(ops); {
		if ops[i].Kind == Equal {
			out = append(out, Pair{&ops[i], &ops[i]})
			i++
			continue
		}
		var dels, ins []*Op
		for ; i < len(ops) && ops[i].Kind != Equal; i++ {
			if ops[i].Kind == Delete {
				dels = append(dels, &ops[i])
			} else {
				ins = append(ins, &ops[i])
			}
		}
		for j := 0; j < max(len(dels), len(ins)); j++ {
			var p Pair
			if j < len(dels) {
				p.Left = dels[j]
			}
			if j < len(ins) {
				p.Right = ins[j]
			}
			out = append(out, p)
		}
	}
	return out
}
