package store

// Scale benchmarks (BENCHMARKS.md "Store"). They build stores of realistic
// events once into a cache directory and measure ingest, size on disk,
// open, first pages and memory. Like every benchmark they run only with
// -bench; the sizes come from MCPTRAIL_BENCH_SIZES (default 1000000):
//
//	MCPTRAIL_BENCH_SIZES=1000000,10000000 go test ./store -run '^$' -bench 'Scale|Ingest' -benchtime 200x
//
// The cache is $MCPTRAIL_BENCH_CACHE, else <user cache dir>/mcptrail-bench.

import (
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/oklog/ulid/v2"
)

// gen makes a deterministic stream of gateway events as a busy gateway
// would record them: sessions of 10-60 tool calls (a request and an outcome
// each), 25 agents, 6 upstreams, 40 tools, JWT principals, trace context,
// params of 60-400 bytes and results of 100-1500 bytes.
type gen struct {
	rng   *rand.Rand
	t     time.Time
	open  []*genSession
	queue []*Event
	seq   uint64 // seq the store will give the next event (gen feeds one store)
}

type genSession struct {
	id, upstream string
	agent        *Agent
	prin         *Principal
	task         *Task
	left         int
}

var (
	genTools = func() []string {
		var t []string
		for i := range 40 {
			t = append(t, fmt.Sprintf("%s_%d", []string{"read_file", "write_file", "search", "list_directory", "query", "create_issue", "run_command", "fetch"}[i%8], i/8))
		}
		return t
	}()
	genUpstreams = []string{"filesystem", "github", "postgres", "search", "jira", "shell"}
)

type rngReader struct{ r *rand.Rand }

func (r rngReader) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = byte(r.r.Uint32())
	}
	return len(p), nil
}

func newGen(seed uint64) *gen {
	return &gen{rng: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)), t: time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC), seq: 1}
}

func (g *gen) hexs(n int) string {
	b := make([]byte, n/2)
	for i := range b {
		b[i] = byte(g.rng.Uint32())
	}
	return hex.EncodeToString(b)
}

func (g *gen) words(n int) string {
	const vocab = "the quick brown fox jumps over lazy dog file path config user id status ok error result value table row column commit branch issue merge deploy service request response token cache index query page"
	w := strings.Fields(vocab)
	var b strings.Builder
	for b.Len() < n {
		b.WriteString(w[g.rng.IntN(len(w))])
		b.WriteByte(' ')
	}
	return b.String()
}

func (g *gen) session() *genSession {
	if len(g.open) < 8 {
		a := g.rng.IntN(25)
		s := &genSession{
			id:       ulid.MustNew(ulid.Timestamp(g.t), rngReader{g.rng}).String(),
			upstream: genUpstreams[g.rng.IntN(len(genUpstreams))],
			agent:    &Agent{ID: fmt.Sprintf("agent-%02d", a), Name: fmt.Sprintf("agent-%02d", a), ClientName: "claude-code", ClientVersion: "2.1.3"},
			prin:     &Principal{Subject: fmt.Sprintf("svc-%02d@example.com", a), Issuer: "https://idp.example.com", CredentialID: g.hexs(16), Kind: "jwt", Verified: true},
			task:     &Task{ID: "task-" + g.hexs(8), TraceID: g.hexs(32), SpanID: g.hexs(16)},
			left:     10 + g.rng.IntN(51),
		}
		g.open = append(g.open, s)
		g.queue = append(g.queue, g.base(s, KindSessionStart))
	}
	return g.open[g.rng.IntN(len(g.open))]
}

func (g *gen) base(s *genSession, kind string) *Event {
	g.t = g.t.Add(time.Duration(2+g.rng.IntN(16)) * time.Millisecond)
	return &Event{Kind: kind, Time: g.t, Session: s.id, Upstream: s.upstream, Transport: "http", ProtocolVersion: "2025-11-25",
		Agent: s.agent, Principal: s.prin, Task: s.task}
}

// next returns the next event to append.
func (g *gen) next() *Event {
	for len(g.queue) == 0 {
		s := g.session()
		tool := genTools[g.rng.IntN(len(genTools))]
		req := g.base(s, KindRequest)
		req.From, req.Method, req.Tool = FromClient, "tools/call", tool
		req.JSONRPCID = json.RawMessage(strconv.Itoa(60 - s.left))
		req.Class = []string{"read", "write", "read", "read", "write", "delete"}[g.rng.IntN(6)]
		ro := req.Class == "read"
		req.Annotations = &Annotations{ReadOnly: &ro}
		req.Params, _ = json.Marshal(map[string]any{"name": tool, "arguments": map[string]any{
			"path": fmt.Sprintf("/srv/data/project-%d/%s.txt", g.rng.IntN(500), g.hexs(8)), "query": g.words(40 + g.rng.IntN(300)),
		}})
		req.Size = len(req.Params) + 60
		out := g.base(s, KindCall)
		out.From, out.Method, out.Tool, out.Class, out.Annotations, out.JSONRPCID = FromClient, req.Method, tool, req.Class, req.Annotations, req.JSONRPCID
		out.Call = g.seq + uint64(len(g.queue)) // the request's seq once appended
		out.Outcome = OutcomeOK
		if g.rng.IntN(20) == 0 {
			out.Outcome = OutcomeToolError
		}
		out.DurationNS = int64(g.rng.IntN(400)) * int64(time.Millisecond)
		out.Result, _ = json.Marshal(map[string]any{"content": []any{map[string]any{"type": "text", "text": g.words(100 + g.rng.IntN(1400))}}, "isError": out.Outcome != OutcomeOK})
		g.queue = append(g.queue, req, out)
		if s.left--; s.left == 0 {
			g.queue = append(g.queue, g.base(s, KindSessionEnd))
			for i, o := range g.open {
				if o == s {
					g.open = append(g.open[:i], g.open[i+1:]...)
					break
				}
			}
		}
	}
	ev := g.queue[0]
	g.queue = g.queue[1:]
	g.seq++
	return ev
}

func benchCacheDir(b *testing.B) string {
	dir := os.Getenv("MCPTRAIL_BENCH_CACHE")
	if dir == "" {
		c, err := os.UserCacheDir()
		if err != nil {
			b.Fatal(err)
		}
		dir = filepath.Join(c, "mcptrail-bench")
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		b.Fatal(err)
	}
	return dir
}

func benchSizes() []int {
	var out []int
	for _, f := range strings.Split(os.Getenv("MCPTRAIL_BENCH_SIZES"), ",") {
		if n, err := strconv.Atoi(strings.TrimSpace(f)); err == nil && n > 0 {
			out = append(out, n)
		}
	}
	if len(out) == 0 {
		out = []int{1_000_000}
	}
	return out
}

// benchKey is the cached stores' signing key (fixed, so a cached store
// verifies across runs).
const benchSKey = "PRIVATE+KEY+mcptrail-bench+a130427b+ASxTh/DslujihS1k5XcmzTnfTgGieeJkS5LVKOfHY4FW"

// scaleStore returns the cached store of n events, building it (batch
// durability, as fast as one appender goes) when it is missing. It reports
// the build's rate and the raw JSON size of the events.
func scaleStore(b *testing.B, n int) (path string, raw int64) {
	dir := benchCacheDir(b)
	path = filepath.Join(dir, fmt.Sprintf("store-%d-v%d.db", n, schemaVersion))
	meta := path + ".built"
	if data, err := os.ReadFile(meta); err == nil {
		raw, _ = strconv.ParseInt(strings.Fields(string(data))[0], 10, 64)
		return path, raw
	}
	os.Remove(path)
	s, err := Open(path, Options{Durability: DurabilityBatch, SigningKey: benchSKey, MaxBatch: 4096, BatchWindow: 20 * time.Millisecond})
	if err != nil {
		b.Fatal(err)
	}
	g := newGen(uint64(n))
	start := time.Now()
	for i := range n {
		ev := g.next()
		if _, err := s.AppendNoWait(ev); err != nil {
			b.Fatal(err)
		}
		data, _ := json.Marshal(ev) // what `export --format jsonl` prints, hashes included:
		raw += int64(len(data)) + 1
		if ev.Hash == "" { // a batch append does not wait for its hashes
			raw += int64(len(`,"prev_hash":"","hash":""`) + 2*64)
		}
		if i%1_000_000 == 999_999 {
			b.Logf("built %d events, %.0f events/s", i+1, float64(i+1)/time.Since(start).Seconds())
		}
	}
	if err := s.Close(); err != nil {
		b.Fatal(err)
	}
	elapsed := time.Since(start)
	b.Logf("built %d events in %v: %.0f events/s (batch, one appender, marshalling the raw JSON too)", n, elapsed.Round(time.Second), float64(n)/elapsed.Seconds())
	os.WriteFile(meta, []byte(fmt.Sprintf("%d raw-json-bytes\n%s build\n", raw, elapsed)), 0o600)
	return path, raw
}

// BenchmarkScale measures a cached store of each size: bytes on disk per
// event against the raw JSON, open (read-only and as the daemon opens it),
// first pages of common console queries, the session list, and heap.
func BenchmarkScale(b *testing.B) {
	for _, n := range benchSizes() {
		b.Run(fmt.Sprintf("%dM", n/1_000_000), func(b *testing.B) {
			path, raw := scaleStore(b, n)
			fi, err := os.Stat(path)
			if err != nil {
				b.Fatal(err)
			}
			b.Logf("%d events: file %d bytes = %.0f bytes/event; raw JSON %.0f bytes/event; ratio %.2f",
				n, fi.Size(), float64(fi.Size())/float64(n), float64(raw)/float64(n), float64(fi.Size())/float64(raw))

			b.Run("open-readonly", func(b *testing.B) {
				for b.Loop() {
					s, err := Open(path, Options{ReadOnly: true})
					if err != nil {
						b.Fatal(err)
					}
					s.Close()
				}
			})
			b.Run("open-daemon", func(b *testing.B) {
				for b.Loop() {
					s, err := Open(path, Options{SigningKey: benchSKey})
					if err != nil {
						b.Fatal(err)
					}
					b.StopTimer()
					s.Close()
					b.StartTimer()
				}
			})

			s, err := Open(path, Options{ReadOnly: true})
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			mid, err := s.Get(uint64(n / 2))
			if err != nil {
				b.Fatal(err)
			}
			for _, bc := range []struct {
				name string
				q    Query
			}{
				{"first-page/newest", Query{Newest: true}},
				{"first-page/session", Query{Session: mid.Session, Newest: true}},
				{"first-page/agent", Query{Agent: AgentKey(mid.Agent), Newest: true}},
				{"first-page/tool", Query{Tool: "write_file_1", Newest: true}},
				{"first-page/agent+tool", Query{Agent: "agent-07", Tool: "search_3", Newest: true}},
				{"first-page/errors", Query{Outcome: OutcomeToolError, Newest: true}},
				{"first-page/last-hour", Query{Since: mid.Time.Add(-time.Hour), Until: mid.Time, Newest: true}},
			} {
				b.Run(bc.name, func(b *testing.B) {
					for b.Loop() {
						p, err := s.Query(bc.q)
						if err != nil || len(p.Events) == 0 {
							b.Fatal(len(p.Events), err)
						}
					}
				})
			}
			b.Run("sessions", func(b *testing.B) {
				for b.Loop() {
					if l, err := s.Sessions(SessionQuery{Limit: 100}); err != nil || len(l) != 100 {
						b.Fatal(len(l), err)
					}
				}
			})
			b.Run("cold-open+first-page", func(b *testing.B) {
				// The page cache dropped before each round (root only):
				// the investigator's first query after a reboot.
				if os.WriteFile("/proc/sys/vm/drop_caches", []byte("3\n"), 0) != nil {
					b.Skip("cannot drop the page cache (not root)")
				}
				for b.Loop() {
					b.StopTimer()
					os.WriteFile("/proc/sys/vm/drop_caches", []byte("3\n"), 0)
					b.StartTimer()
					c, err := Open(path, Options{ReadOnly: true})
					if err != nil {
						b.Fatal(err)
					}
					if p, err := c.Query(Query{Session: mid.Session, Newest: true}); err != nil || len(p.Events) == 0 {
						b.Fatal(err)
					}
					c.Close()
				}
			})
			b.Run("memory", func(b *testing.B) {
				var before, opened, paged runtime.MemStats
				for b.Loop() {
					runtime.GC()
					runtime.ReadMemStats(&before)
					c, err := Open(path, Options{ReadOnly: true})
					if err != nil {
						b.Fatal(err)
					}
					runtime.GC()
					runtime.ReadMemStats(&opened)
					p, err := c.Query(Query{Agent: AgentKey(mid.Agent), Newest: true})
					if err != nil {
						b.Fatal(err)
					}
					runtime.GC()
					runtime.ReadMemStats(&paged)
					runtime.KeepAlive(p)
					c.Close()
				}
				b.ReportMetric(float64(opened.HeapAlloc)-float64(before.HeapAlloc), "heap-B-after-open")
				b.ReportMetric(float64(paged.HeapAlloc)-float64(before.HeapAlloc), "heap-B-after-page")
			})
		})
	}
}

// BenchmarkIngest appends realistic events: events/s in each durability,
// one appender and 8 (gateway sessions waiting on their records).
func BenchmarkIngest(b *testing.B) {
	for _, bc := range []struct {
		name       string
		durability string
		parallel   int
	}{
		{"strict/1", DurabilityStrict, 1}, {"strict/8", DurabilityStrict, 8}, {"strict/64", DurabilityStrict, 64},
		{"batch/1", DurabilityBatch, 1}, {"batch/8", DurabilityBatch, 8},
	} {
		b.Run(bc.name, func(b *testing.B) {
			events := make([]*Event, 0, 4096)
			g := newGen(1)
			for range cap(events) {
				events = append(events, g.next())
			}
			s := tempStore(b, Options{Durability: bc.durability, SigningKey: benchSKey})
			start := time.Now()
			if bc.parallel == 1 {
				i := 0
				for b.Loop() {
					if _, err := s.Append(events[i%len(events)]); err != nil {
						b.Fatal(err)
					}
					i++
				}
			} else {
				b.SetParallelism(max(1, bc.parallel/runtime.GOMAXPROCS(0)))
				b.RunParallel(func(pb *testing.PB) {
					for i := 0; pb.Next(); i++ {
						ev := *events[i%len(events)]
						if _, err := s.Append(&ev); err != nil {
							b.Error(err)
							return
						}
					}
				})
			}
			if err := s.Flush(); err != nil {
				b.Fatal(err)
			}
			elapsed := time.Since(start)
			b.StopTimer()
			st := s.Stats()
			b.ReportMetric(float64(st.Events)/elapsed.Seconds(), "events/s")
			b.ReportMetric(float64(st.Events)/float64(max(st.Commits, 1)), "events/commit")
		})
	}
}

// BenchmarkScaleVerify runs Verify over each cached store once (use
// -benchtime 1x): all of it decoded, re-marshalled and hashed.
func BenchmarkScaleVerify(b *testing.B) {
	for _, n := range benchSizes() {
		b.Run(fmt.Sprintf("%dM", n/1_000_000), func(b *testing.B) {
			path, _ := scaleStore(b, n)
			vkey, _ := VerifierKey(benchSKey)
			for b.Loop() {
				start := time.Now()
				r, err := VerifyFile(path, VerifyOptions{Keys: []string{vkey}})
				if err != nil || !r.OK {
					b.Fatal(r, err)
				}
				b.ReportMetric(float64(r.Events)/time.Since(start).Seconds(), "events/s")
				b.ReportMetric(float64(r.Checkpoints), "checkpoints")
			}
		})
	}
}
