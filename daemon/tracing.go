package daemon

// OpenTelemetry traces (tracing.otlp_endpoint in the config, off by
// default): Daemon.Record hands every recorded event to the tracer, which
// copies what a span needs onto a bounded channel without blocking; spans
// are made and exported on the tracer's own goroutines (tracing package).

import (
	"context"
	"time"

	"github.com/mcptrail/mcptrail/store"
	"github.com/mcptrail/mcptrail/tracing"
)

// startTracing starts the tracer when an endpoint is configured.
func (d *Daemon) startTracing() error {
	cfg := d.opts.Config.Tracing
	if cfg.OTLPEndpoint == "" {
		return nil
	}
	t, err := tracing.New(tracing.Options{
		Endpoint:      cfg.OTLPEndpoint,
		SampleRatio:   cfg.SampleRatio,
		IncludeBodies: cfg.IncludeBodies,
		Version:       d.opts.Version,
		Logger:        d.log,
	})
	if err != nil {
		return err
	}
	d.tracer = t
	d.log.Info("tracing", "otlp_endpoint", cfg.OTLPEndpoint, "sample_ratio", cfg.SampleRatio, "include_bodies", cfg.IncludeBodies)
	return nil
}

// traced is Record's note of one append for tracing; failed appends make
// no span.
func (d *Daemon) traced(ev *store.Event, err error) {
	if d.tracer != nil && err == nil {
		d.tracer.Observe(ev)
	}
}

// TraceDrops counts events the tracer dropped because its buffer was full.
func (d *Daemon) TraceDrops() uint64 { return d.tracer.Dropped() }

// closeTracing flushes the spans still queued, for at most 5s.
func (d *Daemon) closeTracing() {
	if d.tracer == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := d.tracer.Close(ctx); err != nil {
		d.log.Warn("tracing: flushing spans at shutdown", "err", err)
	}
}
