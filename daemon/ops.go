package daemon

// Operability: the Prometheus metrics listener (`serve --metrics ADDR` or
// metrics.listen in the config, off by default) and readiness (GET /readyz
// on the gateway listener, and Status.Ready for `mcptrail status`).
//
// Metrics are counted where every event passes, Daemon.Record (the HTTP
// gateway's sessions, wrap's sessions over the socket and rollback's
// inverse calls all record through it); the rest is read at scrape time.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/mcptrail/mcptrail/config"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync/atomic"
	"time"

	"github.com/mcptrail/mcptrail/metrics"
	"github.com/mcptrail/mcptrail/siem"
	"github.com/mcptrail/mcptrail/store"
)

// ops is the daemon's metrics and readiness state.
type ops struct {
	metrics    *metrics.Metrics // nil while metrics are off
	srv        *http.Server
	addr       string
	appendFail atomic.Pointer[string] // the last append's error, nil after a success
}

// Readiness is what GET /readyz and `mcptrail status` report.
type Readiness struct {
	Ready     bool              `json:"ready"`
	Store     string            `json:"store"`     // "ok" or the problem
	Upstreams map[string]string `json:"upstreams"` // name → "ok" or the problem
	Metrics   string            `json:"metrics,omitempty"`
}

// initMetrics builds the registry before any call can be recorded; the
// listener starts with startOps once everything else is up.
func (d *Daemon) initMetrics() {
	cfg := d.opts.Config
	if cfg.Metrics.Listen == "" {
		return
	}
	o := metrics.Options{
		Version:        d.opts.Version,
		ToolLabel:      cfg.Metrics.ToolLabel,
		StoreStats:     d.store.Stats,
		LastCheckpoint: d.store.Checkpoints().Last,
		Sinks:          func() []siem.SinkStatus { return d.sinkManager().Status() },
		ActiveSessions: func() int {
			if d.gateway == nil {
				return 0
			}
			return d.gateway.Sessions()
		},
	}
	if d.detect != nil {
		o.Alerts = d.detect.Alerts
	}
	if d.collector != nil {
		o.Collector = d.collectStatus
	}
	d.ops.metrics = metrics.New(o)
}

// startOps starts the metrics listener.
func (d *Daemon) startOps() error {
	m := d.ops.metrics
	if m == nil {
		return nil
	}
	addr := d.opts.Config.Metrics.Listen
	if err := d.opts.Config.Metrics.RemoteAllowed(); err != nil {
		return err
	}
	if !config.IsLoopback(addr) {
		d.log.Warn("metrics are served beyond loopback with no authentication (metrics.allow_remote: true); anyone who reaches this address can read them", "addr", addr)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("metrics: listening on %s: %w", addr, err)
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", m.Handler())
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprintln(w, "mcptrail metrics: GET /metrics")
	})
	d.ops.addr = ln.Addr().String()
	d.ops.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		if err := d.ops.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			d.log.Error("metrics listener stopped", "err", err)
		}
	}()
	d.log.Info("metrics listening", "url", "http://"+d.ops.addr+"/metrics")
	return nil
}

// MetricsAddr is the metrics listener's address, "" when off.
func (d *Daemon) MetricsAddr() string { return d.ops.addr }

func (d *Daemon) closeOps() {
	if d.ops.srv != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		d.ops.srv.Shutdown(ctx)
		cancel()
	}
}

// recorded is Record's note of one append, for metrics and readiness.
func (d *Daemon) recorded(ev *store.Event, began time.Time, durable bool, err error) {
	if err != nil {
		msg := err.Error()
		d.ops.appendFail.Store(&msg)
	} else if d.ops.appendFail.Load() != nil {
		d.ops.appendFail.Store(nil)
	}
	d.ops.metrics.Recorded(ev, began, durable, err)
}

// readinessTimeout bounds each upstream probe.
const readinessTimeout = 2 * time.Second

// Readiness checks that the store takes writes and that every upstream is
// reachable: an HTTP upstream's host accepts a TCP connection, a stdio
// upstream's program is found.
func (d *Daemon) Readiness(ctx context.Context) Readiness {
	r := Readiness{Ready: true, Store: d.storeProblem(), Upstreams: map[string]string{}}
	if r.Store != "ok" {
		r.Ready = false
	}
	type result struct{ name, state string }
	ups := d.opts.Config.Upstreams
	ch := make(chan result, len(ups))
	for name, u := range ups {
		go func() {
			var err error
			if u.URL != "" {
				err = dialURL(ctx, u.URL)
			} else {
				prog := u.Command[0]
				if u.Dir != "" && strings.Contains(prog, "/") && !filepath.IsAbs(prog) {
					prog = filepath.Join(u.Dir, prog) // the child starts in Dir
				}
				_, err = exec.LookPath(prog)
			}
			st := "ok"
			if err != nil {
				st = err.Error()
			}
			ch <- result{name, st}
		}()
	}
	for range ups {
		res := <-ch
		r.Upstreams[res.name] = res.state
		if res.state != "ok" {
			r.Ready = false
		}
	}
	if d.ops.addr != "" {
		r.Metrics = "http://" + d.ops.addr + "/metrics"
	}
	return r
}

// storeProblem is "ok" when the store is open for writing, its file can
// be opened for writing, and the last append did not fail.
func (d *Daemon) storeProblem() string {
	st := d.store.Stats()
	if st.Durability == "read-only" {
		return "store is open read-only"
	}
	f, err := os.OpenFile(d.paths.DB, os.O_WRONLY, 0)
	if err != nil {
		return "store file not writable: " + err.Error()
	}
	f.Close()
	if msg := d.ops.appendFail.Load(); msg != nil {
		return "last append failed: " + *msg
	}
	return "ok"
}

func dialURL(ctx context.Context, raw string) error {
	u, err := url.Parse(raw)
	if err != nil {
		return err
	}
	host := u.Host
	if u.Port() == "" {
		port := "80"
		if u.Scheme == "https" {
			port = "443"
		}
		host = net.JoinHostPort(u.Hostname(), port)
	}
	ctx, cancel := context.WithTimeout(ctx, readinessTimeout)
	defer cancel()
	c, err := (&net.Dialer{}).DialContext(ctx, "tcp", host)
	if err != nil {
		return fmt.Errorf("unreachable: %w", err)
	}
	return c.Close()
}

// serveReadyz is GET /readyz: 200 and the checks as JSON when ready, 503
// otherwise.
func (d *Daemon) serveReadyz(w http.ResponseWriter, r *http.Request) {
	rd := d.Readiness(r.Context())
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	if !rd.Ready {
		w.WriteHeader(http.StatusServiceUnavailable)
	}
	json.NewEncoder(w).Encode(rd)
}

// Lines formats Readiness for `mcptrail status`, upstreams sorted.
func (r *Readiness) Lines() []string {
	state := "ready"
	if !r.Ready {
		state = "NOT READY"
	}
	out := []string{fmt.Sprintf("readiness:  %s (store: %s)", state, r.Store)}
	names := make([]string, 0, len(r.Upstreams))
	for n := range r.Upstreams {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		out = append(out, fmt.Sprintf("  upstream %s: %s", n, r.Upstreams[n]))
	}
	if r.Metrics != "" {
		out = append(out, "metrics:    "+r.Metrics)
	}
	return out
}
