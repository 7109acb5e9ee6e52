package soak

// TestSoak: sustained, bounded load through the built `mcptrail serve` with
// SIEM sinks on, a rollback midway, and the daemon's memory, descriptors
// and goroutines sampled throughout. It fails when
//
//   - the daemon's resources grow over the load (a leak: see checkFlat for
//     the bounds and why they catch one leaked FD, goroutine or buffer per
//     session or per call at this load);
//   - a call the clients made is not in the record as exactly one request
//     and exactly one outcome;
//   - `mcptrail verify` does not pass;
//   - an event of the record never reached the file sink or the HEC
//     receiver (duplicates are allowed: delivery is at least once);
//   - a gateway session outlives its client, or a request in the record
//     has no outcome;
//   - the rollback does not restore the files, or the daemon does not stop
//     cleanly.
//
// Short form by default (50 s of load); MCPTRAIL_LONG=1 for the long form
// (10 minutes, more sessions). See README.md.

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/mcptrail/mcptrail/internal/testkit"
	"github.com/mcptrail/mcptrail/siem/siemtest"
)

// params shape the load.
type params struct {
	load        time.Duration // how long the load runs
	warmup      time.Duration // samples before this are not judged
	sessions    int           // long-lived client sessions, calling in a loop
	rate        int           // calls per second the long-lived sessions aim at, all together
	churners    int           // goroutines that open a session, call a few times, close it, again
	churnRate   int           // churned sessions per second the churners aim at, all together
	churnCalls  int           // calls per churned session
	sampleEvery time.Duration // resource sampling period
}

func soakParams() params {
	if os.Getenv("MCPTRAIL_LONG") == "1" {
		return params{load: 10 * time.Minute, warmup: 60 * time.Second, sessions: 32, rate: 400,
			churners: 4, churnRate: 10, churnCalls: 3, sampleEvery: 2 * time.Second}
	}
	// Short form: runs in CI under -race on 2 cores, next to the rest of the
	// suite, so the load is modest; the rates are ceilings, and a loaded
	// machine gets less (checkFlat requires enough of it to judge).
	return params{load: 50 * time.Second, warmup: 10 * time.Second, sessions: 16, rate: 200,
		churners: 3, churnRate: 8, churnCalls: 2, sampleEvery: 500 * time.Millisecond}
}

const hecToken = "5oak5oak-1111-2222-3333-444455556666"

func TestSoak(t *testing.T) {
	p := soakParams()
	if testing.Short() {
		t.Skip("the soak test runs for a minute or more; not in -short mode")
	}
	if p.load > 5*time.Minute {
		commandTimeout = 10 * time.Minute // exporting and verifying a long soak's record
	}
	began := time.Now()
	buildAll(t)
	fsServer := nodeServer(t, "mcp-server-filesystem")
	in := newInstance(t)

	// The trees the rollback sessions work on (one for the warmup, one for
	// midway), and rules that put what they created into a quarantine
	// outside the trees (as e2e does), so that a tree comes back byte for
	// byte.
	world := t.TempDir()
	warmRoot, root, quarantine := filepath.Join(world, "warm"), filepath.Join(world, "tree"), filepath.Join(world, "quarantine")
	for _, d := range []string{warmRoot, root, quarantine} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for _, d := range []string{warmRoot, root} {
		for name, content := range map[string]string{"README.md": "# project\n\nfirst version\n", "notes.txt": "alpha\nbeta\n"} {
			if err := os.WriteFile(filepath.Join(d, name), []byte(content), 0o640); err != nil {
				t.Fatal(err)
			}
		}
	}
	rulesDir := filepath.Join(in.configHome, "mcptrail", "rollback")
	if err := os.MkdirAll(rulesDir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(rulesDir, "quarantine.yaml"), fmt.Appendf(nil, "server: filesystem\nvars:\n  quarantine: %q\n", quarantine), 0o600); err != nil {
		t.Fatal(err)
	}
	in.writeConfig(t, fmt.Sprintf(`listen: 127.0.0.1:0
ssh: 127.0.0.1:0
upstreams:
  filesystem:
    command: [%q, %q, %q, %q]
`, fsServer, warmRoot, root, quarantine))

	hec := startHEC(t, hecToken)
	sinkFile := filepath.Join(in.home, "siem", "events.jsonl")
	metricsAddr := testkit.FreeLoopbackAddr(t)
	httpUpstream := startHTTPEverything(t)
	d := in.serve(t,
		"--upstream", "conf=stdio:"+bin("everything-server"), // a child process per client session
		"--upstream", "confhttp="+httpUpstream, // one Streamable HTTP server behind the gateway
		// Small files, so that the soak rotates the file sink too.
		"--sink", "file://"+sinkFile+"?format=jsonl&max_size=8MB&max_files=1000",
		"--sink", hec.sinkURL("format=ocsf"),
		"--metrics", metricsAddr,
	)
	pid := d.pid()
	metricsURL := "http://" + metricsAddr + "/metrics"
	t.Logf("daemon pid %d at %s; %+v; startup took %v", pid, d.url, p, time.Since(began).Round(time.Millisecond))

	// --- The load. ---------------------------------------------------------
	ld := newLoad(d, p)
	loadStart := time.Now()
	smp := startSampler(t, pid, metricsURL, p.sampleEvery, loadStart)
	ld.start()
	t.Cleanup(ld.stop) // before the daemon's cleanup stops it, if the test ends early
	// Every path the judged samples cover is warmed up first, so that
	// one-time costs land in the warmup: the filesystem upstream's first
	// session (with its pre-state captures) leaves the daemon's heap ~5 MiB
	// larger for good, and the first plan and apply ~3 MiB of RSS more —
	// once, not per session or per rollback (measured: five such sessions
	// cost what one does; the rollback midway adds nothing after this one).
	rbWarm := runRollback(t, in, d, warmRoot, quarantine, "soak-fs-warmup")
	// The judged samples start after the warmup, and not before the warm-up
	// rollback's transients are over.
	judgeFrom := max(p.warmup, time.Since(loadStart)+2*time.Second)
	if judgeFrom > p.load/2 {
		t.Fatalf("the warmup took %v of a %v load: too slow a machine to judge anything", judgeFrom, p.load)
	}

	// The rollback, midway: at the start of the middle third of the judged
	// samples, so that its own transients stay out of the first and (mostly)
	// the last third, while the load goes on.
	select {
	case <-time.After(time.Until(loadStart.Add(judgeFrom + (p.load-judgeFrom)/3))):
	case <-d.Exited():
		t.Fatalf("the daemon exited during the load: %v", d.WaitErr())
	}
	rbAt := time.Since(loadStart)
	rb := runRollback(t, in, d, root, quarantine, "soak-fs-agent")
	// Its transients are not judged: a leak of its own would outlast it.
	skip := [2]time.Duration{rbAt, time.Since(loadStart) + 2*time.Second}

	select {
	case <-time.After(time.Until(loadStart.Add(p.load))):
	case <-d.Exited():
		t.Fatalf("the daemon exited during the load: %v", d.WaitErr())
	}
	ld.stop()
	loadTime := time.Since(loadStart)
	samples := smp.stop(t)

	calls, failed := ld.results()
	if len(failed) > 0 {
		t.Errorf("%d of %d calls failed at the client; first: %v", len(failed), len(calls)+len(failed), failed[:min(5, len(failed))])
	}
	if len(calls) == 0 {
		t.Fatal("no call succeeded")
	}
	flat := checkFlat(t, judgeFrom, skip, samples, ld)
	if path := os.Getenv("MCPTRAIL_SOAK_CSV"); path != "" {
		writeCSV(t, path, samples)
	}
	idle, last := samples[0], samples[len(samples)-1]
	var first sample // the first judged sample
	for _, s := range samples {
		if s.at >= judgeFrom {
			first = s
			break
		}
	}
	t.Logf("load: %v, %d sessions + %d churners (%d sessions churned), %d calls ok, %d failed, %.0f calls/s",
		loadTime.Round(time.Millisecond), p.sessions, p.churners, ld.churned.Load(), len(calls), len(failed), float64(len(calls))/loadTime.Seconds())
	t.Logf("daemon (idle → first judged sample at %v → last, of %d samples): VmRSS %s → %s → %s, RssAnon %s → %s → %s, FDs %d → %d → %d, goroutines %d → %d → %d, heap goal %s → %s → %s",
		first.at.Round(time.Millisecond), len(samples), mib(idle.vmRSS), mib(first.vmRSS), mib(last.vmRSS), mib(idle.rssAnon), mib(first.rssAnon), mib(last.rssAnon),
		idle.fds, first.fds, last.fds, idle.goroutines, first.goroutines, last.goroutines, mib(idle.heapGoal), mib(first.heapGoal), mib(last.heapGoal))
	t.Logf("flatness (medians of the first vs the last third of the judged samples): %s", flat)
	t.Logf("rollback under load: %d steps applied in %v (in the warmup: %d in %v)", rb.steps, rb.took.Round(time.Millisecond), rbWarm.steps, rbWarm.took.Round(time.Millisecond))

	// --- Every session ends. -------------------------------------------------
	var st daemonStatus
	if !pollUntil(60*time.Second, 200*time.Millisecond, func() bool { st = in.status(t); return st.Sessions == 0 }) {
		t.Errorf("%d HTTP sessions still open in the gateway 60s after every client closed its session", st.Sessions)
	}

	// --- The sinks catch up. ----------------------------------------------------
	// Load is over: the event count must stop moving and every sink's cursor
	// reach it.
	var total uint64
	stable := 0
	caughtUp := pollUntil(3*time.Minute, 250*time.Millisecond, func() bool {
		st = in.status(t)
		for _, s := range st.Sinks {
			if s.Lag != 0 || s.Cursor != st.Events {
				stable = 0
				return false
			}
		}
		if st.Events == total {
			stable++
		} else {
			total, stable = st.Events, 0
		}
		return stable >= 3 && len(st.Sinks) == 2
	})
	if !caughtUp {
		t.Fatalf("the sinks did not catch up within 3m: %d events, sinks %+v", st.Events, st.Sinks)
	}

	// --- The record. -------------------------------------------------------------
	rec := readRecord(t, in)
	if rec.n != total {
		t.Errorf("export has %d events, status says %d", rec.n, total)
	}
	checkCalls(t, rec, calls, failed)
	checkRollbackRecorded(t, rec, rbWarm, rb)
	if res := in.run(t, "verify"); res.Code != 0 {
		t.Errorf("mcptrail verify: exit %d\n%s%s", res.Code, res.Stdout, res.Stderr)
	}

	// --- The sinks. ----------------------------------------------------------------
	fileSeqs, fileCPs, files := readFileSink(t, sinkFile)
	siemtest.CheckAtLeastOnceInOrder(t, fileSeqs, total)
	hecSeqs, hecCPs, hecRequests, problems := hec.received()
	for _, pr := range problems {
		t.Errorf("HEC wire format: %s", pr)
	}
	siemtest.CheckAtLeastOnceInOrder(t, hecSeqs, total)
	if fileCPs == 0 || hecCPs == 0 {
		t.Errorf("signed checkpoints forwarded: %d to the file, %d to HEC; want some in each", fileCPs, hecCPs)
	}

	// --- A clean stop. ----------------------------------------------------------------
	in.mustRun(t, "stop")
	select {
	case <-d.Exited():
		if d.WaitErr() != nil {
			t.Errorf("the daemon exited with %v after `mcptrail stop`", d.WaitErr())
		}
	case <-time.After(stopTimeout):
		t.Errorf("the daemon still runs %v after `mcptrail stop`", stopTimeout)
	}

	// --- The summary (the load's is above). ---------------------------------------
	t.Logf("record: %d events (%d tool calls by the clients); file sink: %d event lines (+%d checkpoints) in %d files; HEC: %d events (+%d checkpoints) in %d requests",
		total, len(calls)+len(failed), len(fileSeqs), fileCPs, files, len(hecSeqs), hecCPs, hecRequests)
	t.Logf("total test time %v", time.Since(began).Round(time.Millisecond))
}

// writeCSV writes the samples to path, for plotting a long run.
func writeCSV(t *testing.T, path string, samples []sample) {
	t.Helper()
	var b strings.Builder
	b.WriteString("seconds,vm_rss,rss_anon,rss_file,fds,threads,goroutines,heap_inuse,heap_goal\n")
	for _, s := range samples {
		fmt.Fprintf(&b, "%.3f,%d,%d,%d,%d,%d,%d,%d,%d\n", s.at.Seconds(), s.vmRSS, s.rssAnon, s.rssFile, s.fds, s.threads, s.goroutines, s.heapInuse, s.heapGoal)
	}
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		t.Error(err)
	}
}

func mib(b int64) string { return fmt.Sprintf("%.1fMiB", float64(b)/(1<<20)) }

// ---------------------------------------------------------------------------
// Load.

// call is one tool call a client made.
type call struct {
	marker string
	err    error
}

type load struct {
	d        *daemon
	p        params
	tokens   chan struct{} // one per call of the long-lived sessions (pacing, not synchronization)
	churns   chan struct{} // one per churned session
	done     chan struct{}
	stopOnce sync.Once
	wg       sync.WaitGroup
	churned  atomic.Int64 // churned sessions closed

	mu     sync.Mutex
	calls  []call
	failed []call
}

func newLoad(d *daemon, p params) *load {
	return &load{d: d, p: p, tokens: make(chan struct{}, p.rate/10+1), churns: make(chan struct{}, 1), done: make(chan struct{})}
}

// pace puts perSecond tokens a second into ch, in ticks of 10ms, dropping
// those nobody takes: when the clients are behind, no backlog builds up.
func (l *load) pace(ch chan struct{}, perSecond int) {
	defer l.wg.Done()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	var owed float64
	for {
		select {
		case <-l.done:
			return
		case <-tick.C:
		}
		for owed += float64(perSecond) / 100; owed >= 1; owed-- {
			select {
			case ch <- struct{}{}:
			default:
			}
		}
	}
}

// The protocol eras a client may speak. A 2025-11-25 client opens an MCP
// session (initialize, Mcp-Session-Id, a standalone SSE stream, DELETE at
// the end): a gateway session of its own and, on a stdio upstream, a child
// process of its own. A 2026-07-28 client (the go-sdk's default) is
// sessionless: the gateway keeps one session per upstream and agent, and
// stdio upstreams share one child.
var (
	legacy = &mcp.ClientSessionOptions{ProtocolVersion: "2025-11-25"}
	modern = (*mcp.ClientSessionOptions)(nil)
)

func (l *load) start() {
	l.wg.Add(2)
	go l.pace(l.tokens, l.p.rate)
	go l.pace(l.churns, l.p.churnRate)
	// Long-lived sessions: both upstreams, both eras.
	for i := range l.p.sessions {
		upstream := []string{"conf", "confhttp"}[i%2]
		era := []*mcp.ClientSessionOptions{legacy, modern}[i/2%2]
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			l.session(fmt.Sprintf("s%d", i), fmt.Sprintf("soak-agent-%d", i%4), upstream, era, l.tokens, -1)
		}()
	}
	// Churn: legacy sessions, which is where per-session state lives (every
	// third churner speaks the sessionless era, churning connections only).
	for i := range l.p.churners {
		upstream := []string{"conf", "confhttp"}[i%2]
		era := legacy
		if i%3 == 2 {
			era = modern
		}
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			for n := 0; ; n++ {
				select {
				case <-l.done:
					return
				case <-l.churns:
				}
				l.session(fmt.Sprintf("c%d.%d", i, n), "soak-churn", upstream, era, nil, l.p.churnCalls)
				l.churned.Add(1)
			}
		}()
	}
}

func (l *load) stopped() bool {
	select {
	case <-l.done:
		return true
	default:
		return false
	}
}

// stop ends the load and waits for every client to close its session. It
// may be called more than once.
func (l *load) stop() {
	l.stopOnce.Do(func() { close(l.done) })
	l.wg.Wait()
}

func (l *load) results() (calls, failed []call) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.calls), slices.Clone(l.failed)
}

func (l *load) record(c call) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if c.err != nil {
		l.failed = append(l.failed, c)
	} else {
		l.calls = append(l.calls, c)
	}
}

// session connects a client speaking era to upstream and calls
// test_simple_text, with a unique marker in each call's arguments, n times
// (n < 0: until the load stops), each call after taking a token from tokens
// (nil: unpaced), then closes the session. After a failed call it
// reconnects.
func (l *load) session(id, agent, upstream string, era *mcp.ClientSessionOptions, tokens chan struct{}, n int) {
	transport := &http.Transport{MaxIdleConnsPerHost: 8}
	defer transport.CloseIdleConnections()
	var cs *mcp.ClientSession
	defer func() {
		if cs != nil {
			cs.Close()
		}
	}()
	for i := 0; n < 0 || i < n; i++ {
		if tokens != nil {
			select {
			case <-l.done:
				return
			case <-tokens:
			}
		} else if l.stopped() {
			return
		}
		marker := fmt.Sprintf("soak-%s-%d", id, i)
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		var err error
		if cs == nil {
			client := mcp.NewClient(&mcp.Implementation{Name: agent, Version: "1.0"}, nil)
			cs, err = client.Connect(ctx, &mcp.StreamableClientTransport{Endpoint: l.d.endpoint(upstream), HTTPClient: &http.Client{Transport: transport}}, era)
			if err != nil {
				cs = nil
				err = fmt.Errorf("connect: %w", err)
			}
		}
		if err == nil {
			var res *mcp.CallToolResult
			res, err = cs.CallTool(ctx, &mcp.CallToolParams{Name: "test_simple_text", Arguments: map[string]any{"marker": marker}})
			if err == nil && res.IsError {
				err = fmt.Errorf("tool error: %v", res.Content)
			}
			if err != nil {
				cs.Close()
				cs = nil
			}
		}
		cancel()
		if err != nil {
			err = fmt.Errorf("%s (%s on %s): %w", marker, agent, upstream, err)
		}
		l.record(call{marker: marker, err: err})
	}
}

// ---------------------------------------------------------------------------
// Sampling.

type sampler struct {
	mu      sync.Mutex
	samples []sample
	errs    []error
	done    chan struct{}
	exited  chan struct{}
}

// startSampler reads the daemon's figures every period, by the clock, from
// its own goroutine: sampling, not synchronization.
func startSampler(t *testing.T, pid int, metricsURL string, every time.Duration, t0 time.Time) *sampler {
	s := &sampler{done: make(chan struct{}), exited: make(chan struct{})}
	client := &http.Client{Timeout: 10 * time.Second}
	take := func() {
		at := time.Since(t0)
		sm, err := readProc(pid)
		if err == nil {
			err = scrapeGo(client, metricsURL, &sm)
		}
		sm.at = at
		s.mu.Lock()
		defer s.mu.Unlock()
		if err != nil {
			s.errs = append(s.errs, err)
			return
		}
		s.samples = append(s.samples, sm)
	}
	go func() {
		defer close(s.exited)
		tick := time.NewTicker(every)
		defer tick.Stop()
		take()
		for {
			select {
			case <-s.done:
				take()
				return
			case <-tick.C:
				take()
			}
		}
	}()
	t.Cleanup(func() {
		select {
		case <-s.exited:
		default:
			close(s.done)
			<-s.exited
		}
	})
	return s
}

func (s *sampler) stop(t *testing.T) []sample {
	t.Helper()
	close(s.done)
	<-s.exited
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.errs) > 0 {
		t.Errorf("sampling the daemon failed %d times: %v", len(s.errs), s.errs[0])
	}
	if len(s.samples) == 0 {
		t.Fatal("no sample of the daemon's resources")
	}
	return slices.Clone(s.samples)
}

// ---------------------------------------------------------------------------
// Flatness.

func median[T int | int64](xs []T) T {
	s := slices.Clone(xs)
	slices.Sort(s)
	return s[len(s)/2]
}

// checkFlat judges the samples taken from judgeFrom on (after the warmup),
// except those taken in skip (while the midway rollback ran): the median
// of their last third against the median of their first third. Medians, so
// that a GC cycle or a burst of connections in a few samples does not
// count.
//
// Between the two thirds' centres lie two thirds of the judged window: in
// the short form, a couple of hundred churned sessions (each a fresh MCP
// session in the gateway and, on `conf`, a child process) and thousands of
// calls — the check requires at least minChurn sessions, and logs how many
// of each there were. What a session or a call costs the daemon while it
// runs is constant, so without a leak the medians differ by noise, and by
// how much work is in flight: on a quiet 2-core machine FDs ±2,
// goroutines ±4, RssAnon and heap goal ±1 MiB; when other processes start
// competing for the CPU midway (as in CI), FDs +5, goroutines +5, RssAnon
// and heap goal up to +5.5 MiB (more calls and sink batches in flight).
// The bounds:
//
//   - file descriptors: +fdSlack. One descriptor leaked per session (a
//     child's pipe, a connection) or per call adds one per churned session
//     or call: ≥ minChurn = 4×fdSlack.
//   - goroutines: +goSlack. One goroutine left behind per session (a pump,
//     a stream reader, a goroutine holding a buffer) adds ≥ minChurn =
//     2×goSlack.
//   - anonymous RSS (heap, stacks, runtime; not VmRSS, whose file-backed
//     part grows legitimately as the bbolt store's mmap is read):
//     +rssSlack, or rssFrac of the first third's median if larger.
//   - heap goal (go_memstats_next_gc_bytes, twice the live heap after the
//     last GC: the least noisy view of what the heap retains): +goalSlack,
//     or goalFrac. A per-call leak shows twice over here.
//
// At the short form's rate on a quiet machine, about 1 KiB kept per call
// (a copy of a message, a buffer) exceeds both memory bounds: a build with
// 512 B retained per recorded event, 1 KiB per call, failed on both (as
// builds leaking one FD or one goroutine per session failed on those); the
// logged "catches" figure is each run's sensitivity. Smaller per-call
// leaks are the long form's to catch: twelve times the calls against the
// same bounds.
func checkFlat(t *testing.T, judgeFrom time.Duration, skip [2]time.Duration, samples []sample, l *load) string {
	t.Helper()
	const (
		fdSlack   = 16
		goSlack   = 32
		rssSlack  = 10 << 20
		rssFrac   = 0.50
		goalSlack = 10 << 20
		goalFrac  = 0.60
		minChurn  = 4 * fdSlack
	)
	var post []sample
	for _, s := range samples {
		if s.at >= judgeFrom && (s.at < skip[0] || s.at > skip[1]) {
			post = append(post, s)
		}
	}
	if len(post) < 9 {
		t.Errorf("only %d samples after the warmup: cannot judge flatness", len(post))
		return "no verdict"
	}
	third := len(post) / 3
	a, b := post[:third], post[len(post)-third:]
	pick := func(ss []sample, f func(sample) int64) int64 {
		var xs []int64
		for _, s := range ss {
			xs = append(xs, f(s))
		}
		return median(xs)
	}
	fdA, fdB := pick(a, func(s sample) int64 { return int64(s.fds) }), pick(b, func(s sample) int64 { return int64(s.fds) })
	goA, goB := pick(a, func(s sample) int64 { return int64(s.goroutines) }), pick(b, func(s sample) int64 { return int64(s.goroutines) })
	anA, anB := pick(a, func(s sample) int64 { return s.rssAnon }), pick(b, func(s sample) int64 { return s.rssAnon })
	hgA, hgB := pick(a, func(s sample) int64 { return s.heapGoal }), pick(b, func(s sample) int64 { return s.heapGoal })
	vmA, vmB := pick(a, func(s sample) int64 { return s.vmRSS }), pick(b, func(s sample) int64 { return s.vmRSS })

	// What happened between the thirds' centres, from the clients' count
	// (calls and churned sessions were spread evenly enough over the load).
	span := b[len(b)/2].at - a[len(a)/2].at
	frac := span.Seconds() / l.p.load.Seconds()
	calls, _ := l.results()
	callsIn := int64(float64(len(calls)) * frac)
	churnIn := int64(float64(l.churned.Load()) * frac)
	between := fmt.Sprintf("~%d sessions and ~%d calls in between", churnIn, callsIn)

	rssBound := max(int64(rssSlack), int64(rssFrac*float64(anA)))
	goalBound := max(int64(goalSlack), int64(goalFrac*float64(hgA)))
	if fdB-fdA > fdSlack {
		t.Errorf("file descriptors grew from %d to %d (medians of the first and the last third after the warmup; bound +%d; %s): a descriptor leak", fdA, fdB, fdSlack, between)
	}
	if goB-goA > goSlack {
		t.Errorf("goroutines grew from %d to %d (bound +%d; %s): a goroutine leak", goA, goB, goSlack, between)
	}
	if anB-anA > rssBound {
		t.Errorf("anonymous RSS grew from %s to %s (bound +%s; %s): a memory leak", mib(anA), mib(anB), mib(rssBound), between)
	}
	if hgB-hgA > goalBound {
		t.Errorf("the heap goal (twice the live heap) grew from %s to %s (bound +%s; %s): a memory leak", mib(hgA), mib(hgB), mib(goalBound), between)
	}
	if churnIn < minChurn {
		t.Errorf("only ~%d sessions churned between the thirds (want at least %d): too little load to tell a per-session leak", churnIn, minChurn)
	}
	// A leak of L live bytes per call raises the heap goal by 2L per call.
	catches := "n/a"
	if callsIn > 0 && churnIn > 0 {
		catches = fmt.Sprintf("a live-heap leak ≥%d B/call or ≥%d KiB/session", goalBound/(2*callsIn), goalBound/(2*churnIn)>>10)
	}
	return fmt.Sprintf("FDs %d→%d (bound +%d), goroutines %d→%d (bound +%d), RssAnon %s→%s (bound +%s), heap goal %s→%s (bound +%s: catches %s), VmRSS %s→%s (not judged); %d samples judged, %s",
		fdA, fdB, fdSlack, goA, goB, goSlack, mib(anA), mib(anB), mib(rssBound), mib(hgA), mib(hgB), mib(goalBound), catches, mib(vmA), mib(vmB), len(post), between)
}

// ---------------------------------------------------------------------------
// Rollback under load.

type rollbackRun struct {
	session string
	planID  string
	steps   int
	reverts []uint64       // the calls its steps revert
	calls   map[uint64]int // call → the inverse calls its step makes
	took    time.Duration
}

// runRollback has one session write files through the filesystem upstream
// (npm server-filesystem, a stdio child of the daemon), then plans and
// applies the reversal of that session with the CLI, and checks the tree
// is back as it was.
func runRollback(t *testing.T, in *instance, d *daemon, root, quarantine, agent string) rollbackRun {
	t.Helper()
	start := time.Now()
	before, quarantined := testkit.Tree(t, root), len(testkit.Tree(t, quarantine))
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	client := mcp.NewClient(&mcp.Implementation{Name: agent, Version: "1.0"}, nil)
	cs, err := client.Connect(ctx, &mcp.StreamableClientTransport{Endpoint: d.endpoint("filesystem")}, nil)
	if err != nil {
		t.Fatalf("connect to the filesystem upstream: %v", err)
	}
	fsCall := func(tool string, args map[string]any) {
		t.Helper()
		res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: tool, Arguments: args})
		if err != nil || res.IsError {
			t.Fatalf("%s %v: %v %+v", tool, args, err, res)
		}
	}
	fsCall("write_file", map[string]any{"path": filepath.Join(root, "README.md"), "content": "# project\n\nrewritten under load\n"})
	fsCall("write_file", map[string]any{"path": filepath.Join(root, "notes.txt"), "content": "gone\n"})
	fsCall("create_directory", map[string]any{"path": filepath.Join(root, "build")})
	fsCall("write_file", map[string]any{"path": filepath.Join(root, "build", "out.txt"), "content": "artifact\n"})
	cs.Close()
	if testkit.DiffTrees(before, testkit.Tree(t, root)) == "" {
		t.Fatal("the filesystem session changed nothing")
	}

	res := in.mustRun(t, "sessions", "--json", "--agent", agent)
	var s struct{ Session string }
	line, _, _ := strings.Cut(res.Stdout, "\n")
	if err := json.Unmarshal([]byte(line), &s); err != nil || s.Session == "" {
		t.Fatalf("no session of %s: %q", agent, res.Stdout)
	}
	// Outcomes may be written just after the client got its answers: wait
	// until every request of the session has one.
	var unanswered []string
	if !pollUntil(60*time.Second, 100*time.Millisecond, func() bool {
		unanswered = unansweredIn(t, in, s.Session)
		return unanswered == nil
	}) {
		t.Fatalf("requests of session %s without an outcome: %v", s.Session, unanswered)
	}

	res = in.mustRun(t, "rollback", "plan", "--session", s.Session, "--json")
	var plan struct {
		Plan  string `json:"plan"`
		Steps []struct {
			Reverts uint64 `json:"reverts"`
			Tool    string `json:"tool"`
			Status  string `json:"status"`
			Reason  string `json:"reason"`
			Calls   []struct {
				Tool string `json:"tool"`
			} `json:"calls"`
		} `json:"steps"`
	}
	if err := json.Unmarshal([]byte(res.Stdout), &plan); err != nil || plan.Plan == "" {
		t.Fatalf("rollback plan --json: %v\n%s", err, res.Stdout)
	}
	rb := rollbackRun{session: s.Session, planID: plan.Plan, calls: map[uint64]int{}}
	var got []string
	for _, st := range plan.Steps {
		got = append(got, st.Tool+":"+st.Status)
		if st.Status != "ready" {
			t.Errorf("rollback step for call %d (%s) is %s: %s", st.Reverts, st.Tool, st.Status, st.Reason)
		}
		rb.reverts = append(rb.reverts, st.Reverts)
		rb.calls[st.Reverts] = len(st.Calls)
	}
	if want := "write_file:ready create_directory:ready write_file:ready write_file:ready"; strings.Join(got, " ") != want {
		t.Errorf("rollback plan: %s, want %s", strings.Join(got, " "), want)
	}
	rb.steps = len(plan.Steps)
	if res := in.run(t, "rollback", "apply", plan.Plan, "--yes"); res.Code != 0 {
		t.Fatalf("rollback apply %s: exit %d\n%s%s", plan.Plan, res.Code, res.Stdout, res.Stderr)
	}
	if diff := testkit.DiffTrees(before, testkit.Tree(t, root)); diff != "" {
		t.Fatalf("the tree is not restored by the rollback:\n%s", diff)
	}
	if q := testkit.Tree(t, quarantine); len(q) < quarantined+2 { // build/ and build/out.txt, under a new name
		t.Errorf("what the session created is not in the quarantine: %v", q)
	}
	rb.took = time.Since(start)
	return rb
}

// unansweredIn lists the requests of a session that have no outcome yet.
func unansweredIn(t *testing.T, in *instance, session string) []string {
	t.Helper()
	var reqs []ev
	answered := map[uint64]bool{}
	exportEach(t, in, func(e *ev) {
		if e.Kind == "request" {
			reqs = append(reqs, *e)
		} else if e.Kind == "call" && e.Call != 0 {
			answered[e.Call] = true
		}
	}, "--session", session)
	var out []string
	for _, r := range reqs {
		if !answered[r.Seq] {
			out = append(out, fmt.Sprintf("%d %s %s", r.Seq, r.Method, r.Tool))
		}
	}
	if len(reqs) == 0 {
		out = append(out, "no request recorded yet")
	}
	return out
}

// ---------------------------------------------------------------------------
// The record.

// ev is the part of an exported event the soak looks at.
type ev struct {
	Seq     uint64          `json:"seq"`
	Kind    string          `json:"kind"`
	Session string          `json:"session"`
	From    string          `json:"from"`
	Method  string          `json:"method"`
	Tool    string          `json:"tool"`
	Call    uint64          `json:"call"`
	Outcome string          `json:"outcome"`
	Reverts uint64          `json:"reverts"`
	Params  json.RawMessage `json:"params"`
}

// exportEach streams `mcptrail export --format jsonl ARGS...` into fn.
func exportEach(t *testing.T, in *instance, fn func(*ev), args ...string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), commandTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin("mcptrail"), append([]string{"export", "--format", "jsonl"}, args...)...)
	cmd.Env = in.env()
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	stderr := &testkit.LogBuf{}
	cmd.Stderr = stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(stdout)
	sc.Buffer(make([]byte, 0, 1<<20), 64<<20)
	line := 0
	var decodeErr error
	for sc.Scan() {
		line++
		var e ev
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			decodeErr = fmt.Errorf("line %d is not an event: %v: %.200q", line, err, sc.Bytes())
			break
		}
		fn(&e)
	}
	if decodeErr == nil {
		decodeErr = sc.Err()
	}
	io.Copy(io.Discard, stdout)
	if err := cmd.Wait(); err != nil {
		t.Fatalf("mcptrail export %v: %v\n%s", args, err, stderr.String())
	}
	testkit.CheckNoRace(t, "mcptrail export", stderr.String())
	if decodeErr != nil {
		t.Fatalf("mcptrail export %v: %v", args, decodeErr)
	}
}

// record is what the soak keeps of the whole export.
type record struct {
	n        uint64
	requests map[string][]uint64 // marker → seqs of its request events
	allReqs  []ev                // every request event (without params)
	outcomes map[uint64][]ev     // request seq → its outcome events
	steps    map[uint64]ev       // rollback_step events by seq
}

func readRecord(t *testing.T, in *instance) *record {
	t.Helper()
	r := &record{requests: map[string][]uint64{}, outcomes: map[uint64][]ev{}, steps: map[uint64]ev{}}
	exportEach(t, in, func(e *ev) {
		r.n++
		if e.Seq != r.n {
			t.Fatalf("export: event %d where %d was due: the seqs are not gap-free", e.Seq, r.n)
		}
		switch e.Kind {
		case "request":
			r.allReqs = append(r.allReqs, ev{Seq: e.Seq, Kind: e.Kind, Session: e.Session, From: e.From, Method: e.Method, Tool: e.Tool})
			if e.Method == "tools/call" {
				var p struct {
					Arguments struct {
						Marker string `json:"marker"`
					} `json:"arguments"`
				}
				json.Unmarshal(e.Params, &p)
				if p.Arguments.Marker != "" {
					r.requests[p.Arguments.Marker] = append(r.requests[p.Arguments.Marker], e.Seq)
				}
			}
		case "call":
			if e.Call != 0 {
				out := *e
				out.Params = nil
				r.outcomes[e.Call] = append(r.outcomes[e.Call], out)
			}
		case "rollback_step":
			r.steps[e.Seq] = ev{Seq: e.Seq, Kind: e.Kind, Tool: e.Tool, Reverts: e.Reverts}
		}
	})
	return r
}

// checkCalls: each call the clients made is one request and one outcome in
// the record (for a call that failed at the client: at most one request,
// and an outcome if there is a request); the record has no marker the
// clients did not send; and every request in the record has one outcome.
func checkCalls(t *testing.T, r *record, calls, failed []call) {
	t.Helper()
	problems := 0
	report := func(format string, a ...any) {
		problems++
		if problems <= 10 {
			t.Errorf(format, a...)
		}
	}
	sent := map[string]bool{}
	check := func(c call, ok bool) {
		sent[c.marker] = true
		reqs := r.requests[c.marker]
		switch {
		case len(reqs) == 0 && ok:
			report("call %s: no request event in the record", c.marker)
			return
		case len(reqs) > 1:
			report("call %s: %d request events (seqs %v), want 1", c.marker, len(reqs), reqs)
		}
		for _, seq := range reqs {
			outs := r.outcomes[seq]
			if len(outs) != 1 {
				report("call %s: request %d has %d outcome events, want 1", c.marker, seq, len(outs))
				continue
			}
			if ok && outs[0].Outcome != "ok" {
				report("call %s: outcome %q, but the client got a result", c.marker, outs[0].Outcome)
			}
			if outs[0].Tool != "test_simple_text" || outs[0].Method != "tools/call" {
				report("call %s: outcome %d does not repeat its request's method and tool: %+v", c.marker, outs[0].Seq, outs[0])
			}
		}
	}
	for _, c := range calls {
		check(c, true)
	}
	for _, c := range failed {
		check(c, false)
	}
	for m := range r.requests {
		if !sent[m] {
			report("the record has a call with marker %s, which no client sent", m)
		}
	}
	// And every request in the record (the gateway's own, the servers'
	// requests to the clients) has exactly one outcome.
	for _, req := range r.allReqs {
		if n := len(r.outcomes[req.Seq]); n != 1 {
			report("request %d (%s %s %s, session %s) has %d outcome events, want 1", req.Seq, req.From, req.Method, req.Tool, req.Session, n)
		}
	}
	if problems > 10 {
		t.Errorf("… %d problems with the record of the calls in all", problems)
	}
}

// checkRollbackRecorded: the apply's inverse calls are in the record, each
// a rollback_step naming a call of the plan, answered ok.
func checkRollbackRecorded(t *testing.T, r *record, rbs ...rollbackRun) {
	t.Helper()
	var reverts []uint64
	for _, rb := range rbs {
		reverts = append(reverts, rb.reverts...)
	}
	seen := map[uint64]int{}
	for seq, st := range r.steps {
		if !slices.Contains(reverts, st.Reverts) {
			t.Errorf("rollback_step %d reverts %d, not a call of the plans applied", seq, st.Reverts)
			continue
		}
		seen[st.Reverts]++
		if outs := r.outcomes[seq]; len(outs) != 1 || outs[0].Outcome != "ok" {
			t.Errorf("rollback_step %d (%s): outcomes %+v, want one ok", seq, st.Tool, outs)
		}
	}
	for _, rb := range rbs {
		for _, c := range rb.reverts {
			if seen[c] != rb.calls[c] || seen[c] == 0 {
				t.Errorf("call %d of plan %s has %d rollback_step events in the record, want %d (one per inverse call of its step)", c, rb.planID, seen[c], rb.calls[c])
			}
		}
	}
}

// readFileSink reads the file sink's files, oldest first (PATH.N … PATH.1,
// PATH), and returns the seqs of the event lines in order, and the number
// of checkpoint lines and of files.
func readFileSink(t *testing.T, path string) (seqs []uint64, checkpoints, files int) {
	t.Helper()
	var paths []string
	for i := 1; ; i++ {
		p := fmt.Sprintf("%s.%d", path, i)
		if _, err := os.Stat(p); err != nil {
			break
		}
		paths = append(paths, p)
	}
	slices.Reverse(paths)
	paths = append(paths, path)
	for _, p := range paths {
		f, err := os.Open(p)
		if err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(f)
		sc.Buffer(make([]byte, 0, 1<<20), 64<<20)
		for n := 1; sc.Scan(); n++ {
			var e struct {
				Seq  uint64 `json:"seq"`
				Kind string `json:"kind"`
			}
			if err := json.Unmarshal(sc.Bytes(), &e); err != nil || e.Seq == 0 {
				f.Close()
				t.Fatalf("%s:%d: not a JSON record with a seq: %v: %.200q", p, n, err, sc.Bytes())
			}
			if e.Kind == "checkpoint" {
				checkpoints++
				continue
			}
			seqs = append(seqs, e.Seq)
		}
		err = sc.Err()
		f.Close()
		if err != nil {
			t.Fatalf("%s: %v", p, err)
		}
	}
	return seqs, checkpoints, len(paths)
}
