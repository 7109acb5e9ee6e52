package redact

import (
	"slices"
	"sort"
	"strings"
)

// spanSet is the secrets found in one text by all the patterns, each span
// with the index of the pattern that found it. Gathering every pattern's
// spans first and replacing them in one pass costs one copy of the text,
// where replacing pattern by pattern cost a copy per pattern that matched.
type spanSet struct {
	spans [][2]int
	kinds []int32
}

func (f *spanSet) reset() {
	f.spans, f.kinds = f.spans[:0], f.kinds[:0]
}

// gather adds the spans of every pattern of ps in text, in order and with
// overlapping spans merged: the kind of a merged span is the first
// pattern's, as the more specific shapes come first.
func (f *spanSet) gather(ps []pattern, text string) {
	f.reset()
	for i := range ps {
		n := len(f.spans)
		f.spans = ps[i].appendSpans(f.spans, text)
		f.kinds = slices.Grow(f.kinds, len(f.spans)-n)
		for range len(f.spans) - n {
			f.kinds = append(f.kinds, int32(i))
		}
	}
	if !sort.IsSorted(f) {
		sort.Stable(f)
	}
	f.merge()
}

func (f *spanSet) Len() int           { return len(f.spans) }
func (f *spanSet) Less(i, j int) bool { return f.spans[i][0] < f.spans[j][0] }
func (f *spanSet) Swap(i, j int) {
	f.spans[i], f.spans[j] = f.spans[j], f.spans[i]
	f.kinds[i], f.kinds[j] = f.kinds[j], f.kinds[i]
}

// merge joins the spans, sorted by start, that overlap.
func (f *spanSet) merge() {
	n := 0
	for i, sp := range f.spans {
		if n > 0 && sp[0] < f.spans[n-1][1] {
			f.spans[n-1][1] = max(f.spans[n-1][1], sp[1])
			f.kinds[n-1] = min(f.kinds[n-1], f.kinds[i])
			continue
		}
		f.spans[n], f.kinds[n] = sp, f.kinds[i]
		n++
	}
	f.spans, f.kinds = f.spans[:n], f.kinds[:n]
}

// mapDown turns spans of src's decoding into spans of src.
func (f *spanSet) mapDown(src string) {
	m := newOffsetMapper(src)
	for i := range f.spans {
		f.spans[i][0] = m.at(f.spans[i][0], false)
		f.spans[i][1] = m.at(f.spans[i][1], true)
	}
	f.merge() // a span that ended inside an escape may now reach the next
}

// growth is how much longer replacing the spans makes the text (less than
// zero when shorter).
func (f *spanSet) growth(ps []pattern) int {
	n := 0
	for i, sp := range f.spans {
		n += len("[REDACTED:]") + len(ps[f.kinds[i]].kind) - (sp[1] - sp[0])
	}
	return n
}

// splice replaces the spans in s with the markers of their kinds.
func (f *spanSet) splice(ps []pattern, s string) string {
	if len(f.spans) == 0 {
		return s
	}
	var b strings.Builder
	b.Grow(len(s) + f.growth(ps))
	last := 0
	for i, sp := range f.spans {
		b.WriteString(s[last:sp[0]])
		b.WriteString("[REDACTED:")
		b.WriteString(ps[f.kinds[i]].kind)
		b.WriteByte(']')
		last = sp[1]
	}
	b.WriteString(s[last:])
	return b.String()
}

// appendSpan appends sp to spans, doubling their room when it runs out:
// the agent can make a message hold a secret every few bytes, and the
// runtime's growth of large slices by a quarter would allocate five times
// the final size on the way.
func appendSpan(spans [][2]int, sp [2]int) [][2]int {
	if len(spans) == cap(spans) {
		spans = append(make([][2]int, 0, 2*cap(spans)+8), spans...)
	}
	return append(spans, sp)
}
