package ui

import "testing"

// BenchmarkConsoleTextSearch: `/docs/499.md` in the 200,000-event session,
// read from the store to the end, chunk after chunk, every hit counted (as
// the status's `hit i/N` needs). Each chunk is a command of its own: keys
// never wait for it, and the first hit is selected after the first chunk.
func BenchmarkConsoleTextSearch(b *testing.B) {
	st := benchStore(b)
	_, tl := openBig(b, st)
	var hits int
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		hits = 0
		tl.text = textSearch{query: "docs/499.md", needle: []byte("docs/499.md")}
		for cursor := uint64(1); ; {
			m := tl.text.scan(tl, cursor)().(loaded[textHits])
			if m.err != nil {
				b.Fatal(m.err)
			}
			hits += len(m.val.hits)
			if m.val.next == 0 {
				break
			}
			cursor = m.val.next
		}
	}
	b.StopTimer()
	if hits == 0 {
		b.Fatal("no hits")
	}
	b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N)/1000, "ms/search")
	b.ReportMetric(float64(hits), "hits")
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(benchBigCalls*2), "ns/event")
}
