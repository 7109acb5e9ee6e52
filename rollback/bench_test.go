package rollback

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/mcptrail/mcptrail/ingest"
	"github.com/mcptrail/mcptrail/store"
)

// BenchmarkCaptureWrite measures what pre-state capture adds to a write:
// the same put through the stdio gateway (wrap's pump, in process, to
// kvserver, recording into a strict store), with and without a capture
// rule. The difference is one read on the upstream connection plus one
// durable store commit of the pre-state.
//
//	go test ./rollback -run '^$' -bench CaptureWrite -benchtime 2000x
func BenchmarkCaptureWrite(b *testing.B) {
	for _, withCapture := range []bool{false, true} {
		name := "no-capture"
		if withCapture {
			name = "capture"
		}
		b.Run(name, func(b *testing.B) {
			dir := b.TempDir()
			st, err := store.Open(filepath.Join(dir, "bench.db"), store.Options{})
			if err != nil {
				b.Fatal(err)
			}
			defer st.Close()
			rules, err := Parse("kv.yaml", []byte(kvRules))
			if err != nil {
				b.Fatal(err)
			}
			capt := &Capturer{Rules: rules, Sink: st.Rollback()}
			hooks := ingest.Hooks{Classify: capt.Classify}
			if withCapture {
				hooks.Capture = capt.Capture
			}
			kvFile := filepath.Join(dir, "kv.json")
			inR, inW := io.Pipe()
			outR, outW := io.Pipe()
			sess := ingest.NewSession(ingest.SessionInfo{ID: "bench", Upstream: "kv", Transport: "stdio"}, st, hooks, ingest.Limits{}, nil)
			p := &ingest.Stdio{Session: sess, Child: ingest.ChildOptions{Command: []string{kvServer}, Env: []string{"KV_FILE=" + kvFile}, GracePeriod: time.Second}, In: inR, Out: outW}
			done := make(chan struct{})
			go func() { p.Run(context.Background()); outW.Close(); close(done) }()
			cs, err := mcp.NewClient(&mcp.Implementation{Name: "bench", Version: "1"}, nil).Connect(context.Background(), &mcp.IOTransport{Reader: io.NopCloser(outR), Writer: inW}, nil)
			if err != nil {
				b.Fatal(err)
			}
			ctx := context.Background()
			put := func(i int) {
				res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "put", Arguments: map[string]any{"key": fmt.Sprint("k", i%50), "value": fmt.Sprint(i)}})
				if err != nil || res.IsError {
					b.Fatalf("put: %v %v", err, res)
				}
			}
			for i := range 20 { // warm up: the server's first calls are slower
				put(i)
			}
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				put(i)
			}
			b.StopTimer()
			cs.Close()
			inW.Close()
			<-done
		})
	}
}

// BenchmarkPlan10k measures building the plan of one session of 10,000
// tool calls (writes to 1,000 keys, each with its captured pre-state):
// reading the session and its upstream's calls, keys, conflicts, pre-states
// and inverse calls and diffs for every step; "reread" also re-reads the
// current state of the 1,000 resources (the newest call on each) through
// a server started for the purpose.
//
// The store is built once (about a minute) and kept in
// $TMPDIR/mcptrail-rollback-bench-10k-v2.
//
//	go test ./rollback -run '^$' -bench Plan10k -benchtime 5x
func BenchmarkPlan10k(b *testing.B) {
	path, kvFile := planFixture(b)
	st, err := store.Open(path, store.Options{ReadOnly: true})
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	rules, err := Parse("kv.yaml", []byte(kvRules))
	if err != nil {
		b.Fatal(err)
	}
	connect := func(ctx context.Context, t Target, rec *ApplyInfo) (Conn, error) {
		return ingest.Originate(ctx, ingest.OriginOptions{Info: ingest.SessionInfo{Upstream: "kv"}, Upstream: ingest.Upstream{Command: []string{kvServer}, Env: []string{"KV_FILE=" + kvFile}}})
	}
	for _, reread := range []bool{false, true} {
		name := "no-reread"
		if reread {
			name = "reread"
		}
		b.Run(name, func(b *testing.B) {
			p := &Planner{Rules: rules, Source: st.Rollback()}
			if reread {
				p.Connect = connect
			}
			var plan *Plan
			for i := 0; i < b.N; i++ {
				plan, err = p.Build(context.Background(), Selection{Session: "bench-10k"}, "bench")
				if err != nil {
					b.Fatal(err)
				}
			}
			b.StopTimer()
			if len(plan.Steps) != 10000 || plan.Counts()[StatusReady] != 10000 {
				b.Fatalf("plan: %d steps %v (%s)", len(plan.Steps), plan.Counts(), plan.Note)
			}
			if reread && !plan.Checked {
				b.Fatalf("not re-read: %s", plan.Note)
			}
		})
	}
}

// planFixture makes (once) a store with a 10,000-call session on kvserver,
// and the kv file as the session left it.
func planFixture(b *testing.B) (dbPath, kvFile string) {
	dir := filepath.Join(os.TempDir(), "mcptrail-rollback-bench-10k-v2")
	dbPath, kvFile = filepath.Join(dir, "bench.db"), filepath.Join(dir, "kv.json")
	if _, err := os.Stat(filepath.Join(dir, "done")); err == nil {
		return dbPath, kvFile
	}
	os.RemoveAll(dir)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		b.Fatal(err)
	}
	start := time.Now()
	st, err := store.Open(dbPath, store.Options{Durability: store.DurabilityBatch})
	if err != nil {
		b.Fatal(err)
	}
	sp, _ := json.Marshal(StartParams{Command: []string{kvServer}, Env: map[string]string{"KV_FILE": kvFile}})
	base := store.Event{Session: "bench-10k", Upstream: "kv", Transport: "stdio", Agent: &store.Agent{Name: "bench"}}
	ev := base
	ev.Kind, ev.Params = store.KindSessionStart, sp
	if _, err := st.Append(&ev); err != nil {
		b.Fatal(err)
	}
	// The handshake, as a real session starts.
	init := base
	init.Kind, init.From, init.Method = store.KindRequest, store.FromClient, "initialize"
	if _, err := st.Append(&init); err != nil {
		b.Fatal(err)
	}
	initOut := init
	initOut.Kind, initOut.Call, initOut.Outcome = store.KindCall, init.Seq, store.OutcomeOK
	initOut.Result = json.RawMessage(`{"protocolVersion":"2025-06-18","serverInfo":{"name":"kv-server","version":"1"},"capabilities":{"tools":{}}}`)
	if _, err := st.Append(&initOut); err != nil {
		b.Fatal(err)
	}
	kv := map[string]string{}
	for i := range 10000 {
		key := fmt.Sprint("key-", i%1000)
		val := fmt.Sprint("value-", i)
		params, _ := json.Marshal(map[string]any{"name": "put", "arguments": map[string]any{"key": key, "value": val}})
		req := base
		req.Kind, req.From, req.Method, req.Tool, req.Params, req.Class = store.KindRequest, store.FromClient, "tools/call", "put", params, "write"
		seq, err := st.AppendNoWait(&req)
		if err != nil {
			b.Fatal(err)
		}
		old, existed := kv[key]
		var read json.RawMessage
		if existed {
			read, _ = json.Marshal(map[string]any{"content": []any{map[string]any{"type": "text", "text": old}}})
		} else {
			read, _ = json.Marshal(map[string]any{"content": []any{map[string]any{"type": "text", "text": "no such key: " + key}}, "isError": true})
		}
		data, _ := json.Marshal(Prestate{Version: 1, Call: seq, Upstream: "kv", Tool: "put", Reads: map[string]savedRead{"old": {Result: read, Missing: !existed}}})
		ref, err := st.Rollback().PutPrestate(seq, data)
		if err != nil {
			b.Fatal(err)
		}
		out := req
		out.Kind, out.Params, out.Call, out.Outcome, out.Prestate = store.KindCall, nil, seq, store.OutcomeOK, ref
		out.Result, _ = json.Marshal(map[string]any{"content": []any{map[string]any{"type": "text", "text": "stored " + key}}})
		if _, err := st.AppendNoWait(&out); err != nil {
			b.Fatal(err)
		}
		kv[key] = val
	}
	if err := st.Close(); err != nil {
		b.Fatal(err)
	}
	data, _ := json.Marshal(kv)
	if err := os.WriteFile(kvFile, data, 0o600); err != nil {
		b.Fatal(err)
	}
	os.WriteFile(filepath.Join(dir, "done"), nil, 0o600)
	b.Logf("built the 10k-call fixture in %v", time.Since(start).Round(time.Second))
	return dbPath, kvFile
}
