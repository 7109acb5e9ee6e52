package ui

import (
	"context"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/mcptrail/mcptrail/ingest"
	"github.com/mcptrail/mcptrail/rollback"
	"github.com/mcptrail/mcptrail/store"
)

// kvWorld is the rollback of a real MCP server (rollback's kvserver, a
// key-value store in a JSON file) as the daemon runs it: a real store,
// gateway sessions that capture pre-state as wrap's do, and the planner
// and executor behind the console's Rollback.
type kvWorld struct {
	t      *testing.T
	st     *store.Store
	rules  *rollback.RuleSet
	kvFile string
}

func newKVWorld(t *testing.T) *kvWorld {
	t.Helper()
	dir := t.TempDir()
	st, err := store.Open(filepath.Join(dir, "mcptrail.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	src, err := os.ReadFile("../rollback/testdata/kv.yaml")
	if err != nil {
		t.Fatal(err)
	}
	rules, err := rollback.Parse("kv.yaml", src)
	if err != nil {
		t.Fatal(err)
	}
	return &kvWorld{t: t, st: st, rules: rules, kvFile: filepath.Join(dir, "kv.json")}
}

func (w *kvWorld) setKV(m map[string]string) {
	w.t.Helper()
	data, _ := json.Marshal(m)
	if err := os.WriteFile(w.kvFile, data, 0o600); err != nil {
		w.t.Fatal(err)
	}
}

func (w *kvWorld) kv() map[string]string {
	m := map[string]string{}
	data, _ := os.ReadFile(w.kvFile)
	json.Unmarshal(data, &m)
	return m
}

// agent opens a gateway session to kvserver under upstream, as `wrap
// --name upstream` would, for an agent of that name.
func (w *kvWorld) agent(session, upstream, name string) *mcp.ClientSession {
	t := w.t
	t.Helper()
	capt := &rollback.Capturer{Rules: w.rules, Sink: w.st.Rollback()}
	start, _ := json.Marshal(rollback.StartParams{Command: []string{kvServer}, Env: map[string]string{"KV_FILE": w.kvFile}})
	sess := ingest.NewSession(ingest.SessionInfo{ID: session, Upstream: upstream, Transport: "stdio", Agent: store.Agent{ID: name, Name: name}, StartParams: start},
		w.st, ingest.Hooks{Capture: capt.Capture, Classify: capt.Classify}, ingest.Limits{}, nil)
	inR, inW := io.Pipe()
	outR, outW := io.Pipe()
	p := &ingest.Stdio{Session: sess, Child: ingest.ChildOptions{Command: []string{kvServer}, Env: []string{"KV_FILE=" + w.kvFile}, GracePeriod: time.Second}, In: inR, Out: outW}
	done := make(chan struct{})
	go func() {
		p.Run(context.Background())
		outW.Close()
		close(done)
	}()
	c := mcp.NewClient(&mcp.Implementation{Name: name, Version: "1"}, nil)
	cs, err := c.Connect(context.Background(), &mcp.IOTransport{Reader: io.NopCloser(outR), Writer: inW}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cs.Close(); inW.Close(); <-done })
	return cs
}

func (w *kvWorld) put(cs *mcp.ClientSession, key, value string) {
	w.t.Helper()
	res, err := cs.CallTool(context.Background(), &mcp.CallToolParams{Name: "put", Arguments: map[string]any{"key": key, "value": value}})
	if err != nil || res.IsError {
		w.t.Fatalf("put %s: %v %+v", key, err, res)
	}
}

// connect starts the server a session recorded, as the daemon does.
func (w *kvWorld) connect(ctx context.Context, t rollback.Target, rec *rollback.ApplyInfo) (rollback.Conn, error) {
	var env []string
	for k, v := range t.Env {
		env = append(env, k+"="+v)
	}
	opts := ingest.OriginOptions{
		Info:     ingest.SessionInfo{Upstream: t.Upstream, Agent: store.Agent{ID: "mcptrail-rollback", Name: "mcptrail-rollback"}},
		Upstream: ingest.Upstream{Command: t.Command, Env: env, Dir: t.Dir},
	}
	if rec != nil {
		opts.Recorder = w.st
		opts.Info.Principal = rec.Approver.Principal()
		opts.Info.Task = rollback.Task(rec.Plan)
	}
	return ingest.Originate(ctx, opts)
}

// service is the daemon's rollback service on this world (the console's
// Rollback; daemon.Rollback is the same over the daemon's store).
func (w *kvWorld) service() *kvRollback {
	return &kvRollback{w: w,
		planner: &rollback.Planner{Rules: w.rules, Source: w.st.Rollback(), Connect: w.connect},
		exec:    &rollback.Executor{Rules: w.rules, Store: w.st.Rollback(), Record: w.st.Append, Connect: w.connect},
	}
}

type kvRollback struct {
	w       *kvWorld
	planner *rollback.Planner
	exec    *rollback.Executor
	applyMu sync.Mutex
}

func (r *kvRollback) RollbackPlan(sel rollback.Selection, by string) (*rollback.Plan, error) {
	if err := r.w.st.Flush(); err != nil {
		return nil, err
	}
	p, err := r.planner.Build(context.Background(), sel, by)
	if err != nil {
		return nil, err
	}
	return p, rollback.SavePlan(r.w.st.Rollback(), p)
}

func (r *kvRollback) RollbackGet(id string) (*rollback.Plan, error) {
	return rollback.LoadPlan(r.w.st.Rollback(), id)
}

func (r *kvRollback) RollbackApply(id string, who rollback.Approver) (*rollback.Plan, error) {
	r.applyMu.Lock()
	defer r.applyMu.Unlock()
	return r.exec.Apply(context.Background(), id, who, nil)
}

func (r *kvRollback) RollbackPlans(limit int) ([]*rollback.Plan, error) {
	raw, err := r.w.st.Rollback().Plans(limit)
	var out []*rollback.Plan
	for _, b := range raw {
		var p rollback.Plan
		if json.Unmarshal(b, &p) == nil {
			out = append(out, &p)
		}
	}
	return out, err
}

func (r *kvRollback) RollbackHistory(call uint64) (*rollback.History, error) {
	if err := r.w.st.Flush(); err != nil {
		return nil, err
	}
	return r.planner.History(context.Background(), call, "")
}
