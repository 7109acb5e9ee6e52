package daemon

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/mcptrail/mcptrail/collect"
	"github.com/mcptrail/mcptrail/internal/safefile"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/rpc"
	"os"
	"sort"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/mcptrail/mcptrail/approval"
	"github.com/mcptrail/mcptrail/config"
	"github.com/mcptrail/mcptrail/detect"
	"github.com/mcptrail/mcptrail/ingest"
	"github.com/mcptrail/mcptrail/ingest/redact"
	"github.com/mcptrail/mcptrail/siem"
	"github.com/mcptrail/mcptrail/store"
	"github.com/mcptrail/mcptrail/tracing"
)

// Options configure a daemon.
type Options struct {
	Config  *config.Config
	Home    string
	Version string
	Logger  *slog.Logger
	// Auto marks a daemon that `wrap` started in the background: it keeps
	// serving its socket even if the HTTP listen address is taken.
	Auto bool
	// Ready, when set, receives the gateway's URL once everything listens.
	Ready func(gatewayURL string)
	// Reload, when set, reads the configuration again on SIGHUP (reload.go).
	Reload func() (*config.Config, error)
}

// Daemon is the running `mcptrail serve`.
type Daemon struct {
	opts      Options
	paths     Paths
	log       *slog.Logger
	store     *store.Store
	hooks     ingest.Hooks
	gateway   *ingest.HTTPGateway
	httpSrv   *http.Server
	sock      net.Listener       // the control socket; close closes it itself, so its unlink is over when close returns
	console   *console           // SSH console; nil when off (console.go)
	detect    *detect.Engine     // detections; nil when off (siem.go)
	sinks     *siem.Manager      // SIEM forwarders; nil without sinks (siem.go)
	collector *collect.Collector // the fleet collector; nil unless collect.url is set (collect.go)
	rb        *Rollback          // capture, plans, apply (rollback.go)
	desk      *approval.Desk     // calls held for approval (approvals.go)
	ops       ops                // metrics and readiness (ops.go)
	rl        reloader           // SIGHUP reload (reload.go)
	listen    string
	started   time.Time

	tracer *tracing.Tracer // OpenTelemetry spans; nil when off (tracing.go)

	wrotePID bool // the pid file is ours to remove

	// sealMu and sealed close the record on the way out: once sealed (after
	// the gateway has closed its sessions), Record refuses, so that what the
	// store commits before the sinks drain is everything it will ever hold
	// — a wrap still connected to the socket cannot add events behind the
	// sinks' backs. Record holds sealMu for reading while it appends.
	sealMu sync.RWMutex
	sealed bool

	tails tailSet // wraps' segments being read (segment_tail.go)

	stopOnce sync.Once
	stop     chan struct{}
}

// Run opens the store, listens on the socket and the HTTP address, and
// serves until ctx ends or a client asks it to stop.
func Run(ctx context.Context, opts Options) error {
	d, err := start(opts)
	if err != nil {
		return err
	}
	select {
	case <-ctx.Done():
	case <-d.stop:
	}
	return d.close()
}

func start(opts Options) (*Daemon, error) {
	cfg := opts.Config
	paths := PathsFor(opts.Home)
	log := opts.Logger
	if log == nil {
		log = slog.Default()
	}
	// StrictModes, as sshd: the data directory and what the operator put
	// in it must be the daemon user's (or root's) and writable by nobody
	// else, or the daemon does not start (strict.go).
	if err := checkFiles(paths, cfg); err != nil {
		return nil, err
	}
	if c, err := Dial(paths.Home); err == nil {
		c.Close()
		return nil, fmt.Errorf("a daemon is already running for %s", paths.Home)
	}
	st, err := openStore(paths, cfg, log) // store.go: signing key, checkpoints, retention
	if err != nil {
		return nil, err
	}
	d := &Daemon{opts: opts, paths: paths, log: log, store: st, started: time.Now(), stop: make(chan struct{})}

	red, err := redact.New(cfg.Redact)
	if err != nil {
		st.Close()
		return nil, err
	}
	d.hooks.Redact = func(raw json.RawMessage) json.RawMessage { out, _ := red.JSON(raw); return out }
	if err := d.startTracing(); err != nil { // tracing.go
		st.Close()
		return nil, err
	}
	// Detections and SIEM forwarders (siem.go), before any call can arrive.
	if err := d.startDetect(); err != nil {
		st.Close()
		return nil, err
	}
	if err := d.startSinks(); err != nil {
		st.Close()
		return nil, err
	}
	if err := d.startCollect(); err != nil { // collect.go
		d.closeSIEM()
		st.Close()
		return nil, err
	}
	d.initMetrics()                           // ops.go
	if err := d.startRollback(); err != nil { // rollback.go
		st.Close()
		return nil, err
	}
	if err := d.startApprovals(); err != nil { // approvals.go
		st.Close()
		return nil, err
	}

	// The socket: a stale socket from a crashed daemon is ours to replace
	// (the store lock above proves no other daemon owns this instance);
	// anything else at its path, such as a planted link, is refused.
	if err := safefile.RemoveSocket(paths.Socket); err != nil {
		st.Close()
		return nil, err
	}
	// Created 0600 from the start (the umask, not a chmod after the fact),
	// so there is no moment at which the socket is open to others.
	oldMask := syscall.Umask(0o177)
	ln, err := net.Listen("unix", paths.Socket)
	syscall.Umask(oldMask)
	if err != nil {
		st.Close()
		return nil, err
	}
	srv := rpc.NewServer()
	if err := srv.RegisterName("Daemon", &service{d: d}); err != nil {
		st.Close()
		return nil, err
	}
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			go d.serveConn(conn, srv) // segment_tail.go
		}
	}()
	d.sock = ln

	if err := d.startHTTP(); err != nil {
		if !opts.Auto {
			d.Shutdown()
			d.close()
			return nil, err
		}
		log.Warn("HTTP gateway not started; stdio wrappers still record through the socket", "err", err)
	}
	d.startConsole()
	if err := d.startOps(); err != nil { // ops.go: the metrics listener
		d.Shutdown()
		d.close()
		return nil, err
	}
	d.watchReload() // reload.go
	if err := safefile.WriteFile(paths.PID, []byte(strconv.Itoa(os.Getpid())+"\n"), safefile.FileMode); err != nil {
		d.Shutdown()
		d.close()
		return nil, fmt.Errorf("refusing to start: pid file %w", err)
	}
	d.wrotePID = true
	if opts.Ready != nil {
		opts.Ready("http://" + d.listen)
	}
	return d, nil
}

func (d *Daemon) startHTTP() error {
	cfg := d.opts.Config
	ups := make(map[string]ingest.Upstream, len(cfg.Upstreams))
	for name, u := range cfg.Upstreams {
		var env []string
		for k, v := range u.Env {
			env = append(env, k+"="+v)
		}
		env = append(env, d.childEnv()...)
		ups[name] = ingest.Upstream{URL: u.URL, Command: u.Command, Env: env, Dir: u.Dir, Headers: u.Headers}
	}
	auth, err := newAuthenticator(cfg)
	if err != nil {
		return err
	}
	d.rl.auth = auth // reload.go swaps its tokens
	d.gateway = ingest.NewHTTPGateway(ingest.HTTPOptions{
		Upstreams:      ups,
		Recorder:       d,
		Hooks:          d.hooks,
		Limits:         ingest.Limits{MaxMessageBytes: cfg.MaxMessageBytes, MaxDepth: cfg.MaxDepth, CallTimeout: time.Duration(cfg.CallTimeout)},
		Authenticate:   auth.authenticate,
		AllowedOrigins: cfg.AllowedOrigins,
		Logger:         d.log,
		ChildStderr:    logWriter{d.log},

		MaxSessions:             cfg.MaxSessions,
		MaxSessionsPerPrincipal: cfg.MaxSessionsPerPrincipal,
	})
	mux := http.NewServeMux()
	mux.Handle("/mcp/", d.gateway)
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "ok\n") })
	mux.HandleFunc("GET /readyz", d.serveReadyz) // ops.go
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return fmt.Errorf("listening on %s: %w", cfg.Listen, err)
	}
	d.listen = ln.Addr().String()
	d.httpSrv = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		if err := d.httpSrv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			d.log.Error("HTTP gateway stopped", "err", err)
		}
	}()
	return nil
}

// childEnv lets servers the daemon starts find their instance (tests, and
// tools that want to read the record).
func (d *Daemon) childEnv() []string {
	env := []string{"MCPTRAIL_HOME=" + d.paths.Home}
	if exe, err := os.Executable(); err == nil {
		env = append(env, "MCPTRAIL_BIN="+exe)
	}
	return env
}

// Record appends an event to the store; the daemon is the gateway's Recorder.
func (d *Daemon) Record(ev *store.Event, durable bool) (uint64, error) {
	d.sealMu.RLock()
	defer d.sealMu.RUnlock()
	if d.sealed {
		return 0, errSealed
	}
	began := time.Now()
	seq, err := d.store.Record(ev, durable)
	d.recorded(ev, began, durable, err) // ops.go: metrics, readiness
	d.traced(ev, err)                   // tracing.go: spans, off the call path
	if err == nil {
		d.observe(ev) // siem.go: detections
	}
	return d.failOpen(ev, seq, err) // store.go
}

// AnswersFirst lets the gateway forward an answer before it records the
// call's outcome under batch durability, where an outcome never holds up
// its answer (ingest.AnswerFirstRecorder).
func (d *Daemon) AnswersFirst() bool { return d.store.Batch() }

// errSealed refuses a Record once the daemon is stopping (it wraps
// store.ErrClosed, so fail_open does not forward the call unrecorded).
var errSealed = fmt.Errorf("the daemon is stopping: %w", store.ErrClosed)

// Status reports the daemon's state.
func (d *Daemon) Status() Status {
	st := d.store.Stats()
	var ups []string
	for name := range d.opts.Config.Upstreams {
		ups = append(ups, name)
	}
	sort.Strings(ups)
	s := Status{
		PID: os.Getpid(), Version: d.opts.Version, Started: d.started,
		Socket: d.paths.Socket, DB: d.paths.DB, StoreID: d.store.ID(), Durability: st.Durability,
		Events: st.Events, FileBytes: st.FileBytes, Upstreams: ups, Store: st,
		Sinks: d.sinkStatus(), Collector: d.collectStatus(),
	}
	rd := d.Readiness(context.Background()) // ops.go
	s.Ready = &rd
	if d.listen != "" {
		s.Listen = "http://" + d.listen
	}
	if d.gateway != nil {
		s.Sessions = d.gateway.Sessions()
	}
	return s
}

// Shutdown asks the daemon to stop; Run returns once it has.
func (d *Daemon) Shutdown() { d.stopOnce.Do(func() { close(d.stop) }) }

func (d *Daemon) close() error {
	d.Shutdown()
	if d.sock != nil {
		d.sock.Close()
	}
	// The gateway first: it cuts proxied streams that would otherwise hold
	// the HTTP server's graceful shutdown open.
	if d.gateway != nil {
		d.gateway.Close()
	}
	if d.httpSrv != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		d.httpSrv.Shutdown(ctx)
		cancel()
	}
	d.desk.Close() // what the gateway's sessions did not refuse (wraps' holds)
	d.closeConsole()
	d.closeOps()     // ops.go
	d.closeCollect() // collect.go: what it merged is in the store before the sinks drain
	// Everything the gateway appended (outcomes of the calls it just
	// closed included) committed before the forwarders drain: they deliver
	// what the store has committed, and stop returns only after they have.
	d.tails.drainAll() // what wraps wrote to their segments before the stop
	d.sealMu.Lock()
	d.sealed = true
	d.sealMu.Unlock()
	if err := d.store.Flush(); err != nil && !errors.Is(err, store.ErrClosed) {
		d.log.Error("committing the last events before the sinks drain", "err", err)
	}
	d.closeSIEM()
	d.closeTracing() // tracing.go
	err := d.store.Close()
	os.Remove(d.paths.Socket)
	if d.wrotePID { // not a file someone else put there
		os.Remove(d.paths.PID)
	}
	return err
}

// logWriter sends children's stderr lines to the daemon log.
type logWriter struct{ log *slog.Logger }

func (w logWriter) Write(p []byte) (int, error) {
	w.log.Info("upstream stderr", "text", string(p))
	return len(p), nil
}
