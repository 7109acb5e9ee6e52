package daemon

import (
	"encoding/json"
	"time"

	"github.com/mcptrail/mcptrail/detect"
	"github.com/mcptrail/mcptrail/siem"
	"github.com/mcptrail/mcptrail/store"
)

// SIEM forwarding and detections, as the daemon runs them.
//
// Detections evaluate every event the daemon records, whichever way it
// came: the HTTP gateway's sessions through Hooks.AfterRecord, and wrap's
// sessions (which record through the socket) in service.Append. Their
// state is rebuilt from the store at start, before the socket or the
// gateway take a call.
//
// Forwarders read the store on their own goroutines, one per sink, with
// cursors kept in the store; they never touch the call path.

// forwarderDrain is how long stopping forwarders may spend delivering
// what is left.
const forwarderDrain = 2 * time.Second

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
	start := time.Now()
	n, err := eng.Rebuild(d.store)
	if err != nil {
		return err
	}
	d.log.Info("detections on", "rules", len(rules), "replayed", n, "in", time.Since(start).Round(time.Millisecond))
	d.detect = eng
	d.hooks.AfterRecord = eng.Observe
	return nil
}

// observe runs the detections on an event recorded through the socket.
func (d *Daemon) observe(ev *store.Event) {
	if d.detect != nil {
		d.detect.Observe(ev)
	}
}

// startSinks starts a forwarder per configured sink.
func (d *Daemon) startSinks() error {
	cfg := d.opts.Config
	if len(cfg.Sinks) == 0 {
		return nil
	}
	ups := make(map[string]string, len(cfg.Upstreams))
	for name, u := range cfg.Upstreams {
		if u.URL != "" {
			ups[name] = u.URL
		}
	}
	m, err := siem.StartForwarders(d.store, cfg.Sinks, siem.ForwarderOptions{
		Encoding:    siem.Options{Version: d.opts.Version, Upstreams: ups},
		Logger:      d.log,
		Checkpoints: siem.StoreCheckpoints(d.store),
	})
	if err != nil {
		return err
	}
	for _, s := range m.Status() {
		d.log.Info("forwarding to SIEM sink", "sink", s.URL, "format", s.Format, "cursor", s.Cursor)
	}
	d.sinks = m
	return nil
}

// closeSIEM stops the forwarders (after the gateway, so that the last
// events are in the store) with a short drain.
func (d *Daemon) closeSIEM() {
	d.sinks.Stop(forwarderDrain)
}

// sinkStatus is Status.Sinks.
func (d *Daemon) sinkStatus() []map[string]any {
	out := []map[string]any{}
	for _, s := range d.sinks.Status() {
		var m map[string]any
		if b, err := json.Marshal(s); err == nil && json.Unmarshal(b, &m) == nil {
			out = append(out, m)
		}
	}
	return out
}
