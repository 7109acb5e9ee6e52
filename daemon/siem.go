package daemon

import (
	"encoding/json"
	"time"

	"github.com/mcptrail/mcptrail/config"
	"github.com/mcptrail/mcptrail/detect"
	"github.com/mcptrail/mcptrail/siem"
	"github.com/mcptrail/mcptrail/store"
)

// SIEM forwarding and detections, as the daemon runs them.
//
// Detections evaluate every event the daemon records, whichever way it
// came (HTTP sessions, wrap's over the socket, rollback's own calls): all
// pass through Daemon.Record. Their state is rebuilt from the store at
// start; events recorded meanwhile are evaluated once it is.
//
// Forwarders read the store on their own goroutines, one per sink, with
// cursors kept in the store; they never touch the call path.

// forwarderDrain is how long stopping forwarders may spend delivering
// what is left.
const forwarderDrain = 10 * time.Second

// startDetect builds the detection engine from the config, rebuilds its
// state and hooks it into the gateway.
func (d *Daemon) startDetect() error {
	rules, err := d.opts.Config.Detections.Load()
	if err != nil {
		return err
	}
	if len(rules) == 0 {
		return nil
	}
	eng, err := detect.New(rules, d.store, detect.Options{Logger: d.log})
	if err != nil {
		return err
	}
	// Rebuild the state in the background: calls are taken at once, and
	// the events they record wait in the engine (Hold) until the replay of
	// what came before them is done.
	eng.Hold()
	d.store.Flush()
	upTo := d.store.Last()
	go func() {
		start := time.Now()
		n, err := eng.Rebuild(d.store, upTo)
		if err != nil {
			d.log.Error("detections: rebuilding state from the record", "err", err)
		}
		eng.Release()
		d.log.Info("detections on", "rules", len(rules), "replayed", n, "in", time.Since(start).Round(time.Millisecond))
	}()
	d.detect = eng
	return nil
}

// observe runs the detections on a recorded event.
func (d *Daemon) observe(ev *store.Event) {
	if d.detect != nil {
		d.detect.Observe(ev)
	}
}

// startSinks starts a forwarder per configured sink.
func (d *Daemon) startSinks() error {
	m, err := d.newSinks(d.opts.Config)
	if err != nil {
		return err
	}
	d.sinks = m
	return nil
}

// newSinks starts a forwarder per sink of cfg (reload.go starts a new set
// on SIGHUP); nil without sinks.
func (d *Daemon) newSinks(cfg *config.Config) (*siem.Manager, error) {
	if len(cfg.Sinks) == 0 {
		return nil, nil
	}
	ups := make(map[string]string, len(cfg.Upstreams))
	for name, u := range cfg.Upstreams {
		if u.URL != "" {
			ups[name] = u.URL
		}
	}
	m, err := siem.StartForwarders(d.store, cfg.Sinks, siem.ForwarderOptions{
		Encoding:    siem.Options{Version: d.opts.Version, Upstreams: ups, Origin: d.store.ID(), OriginKey: d.store.VerifierKey(), Prestates: d.store.Rollback().Prestate},
		Logger:      d.log,
		Checkpoints: siem.StoreCheckpoints(d.store),
	})
	if err != nil {
		return nil, err
	}
	for _, s := range m.Status() {
		d.log.Info("forwarding to SIEM sink", "sink", s.URL, "format", s.Format, "cursor", s.Cursor)
	}
	return m, nil
}

// closeSIEM stops the forwarders (after the gateway, so that the last
// events are in the store) with a short drain.
func (d *Daemon) closeSIEM() {
	d.sinkManager().Stop(forwarderDrain)
}

// sinkStatus is Status.Sinks.
func (d *Daemon) sinkStatus() []map[string]any {
	out := []map[string]any{}
	for _, s := range d.sinkManager().Status() {
		var m map[string]any
		if b, err := json.Marshal(s); err == nil && json.Unmarshal(b, &m) == nil {
			out = append(out, m)
		}
	}
	return out
}
