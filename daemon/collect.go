package daemon

import (
	"github.com/mcptrail/mcptrail/collect"
)

// The fleet collector (collect.Collector), when the config has collect.url:
// it merges every origin's records into this daemon's store, so that the
// console, the CLI, detections and this daemon's own sinks see the fleet.
// It is not reloaded on SIGHUP (its consumer group membership and its
// origins' state belong to one run).

// startCollect starts the collector when the config asks for one.
func (d *Daemon) startCollect() error {
	cc := d.opts.Config.Collect
	if cc.URL == "" {
		return nil
	}
	spec, err := collect.ParseURL(cc.URL)
	if err != nil {
		return err
	}
	c, err := collect.Start(d.store, spec, collect.Options{Keys: cc.Keys, PinnedOnly: cc.PinnedOnly, Logger: d.log, Observe: d.observe})
	if err != nil {
		return err
	}
	d.collector = c
	d.log.Info("collecting the fleet's records", "url", spec.Conn.Redacted, "group", spec.Group, "pinned_origins", len(cc.Keys))
	return nil
}

// closeCollect stops the collector: what it merged is committed (offsets
// of the rest are not, so the next start consumes it again).
func (d *Daemon) closeCollect() {
	if d.collector != nil {
		d.collector.Stop()
	}
}

// collectStatus is Status.Collector.
func (d *Daemon) collectStatus() *collect.Status {
	if d.collector == nil {
		return nil
	}
	s := d.collector.Status()
	return &s
}
