package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/mcptrail/mcptrail/config"
	"github.com/mcptrail/mcptrail/daemon"
)

// serveFlags are serve's flags: each set one overrides the config file's
// value (--upstream and --sink add to the file's).
type serveFlags struct {
	config, listen, durability, ssh, authKeys, metrics, collect string
	upstreams, sinks                                            []string
	auto                                                        bool
}

// newServeCmd is `mcptrail serve`: the daemon.
func newServeCmd() *cobra.Command {
	var f serveFlags
	cmd := command("serve", "run the daemon: HTTP gateway, store, console, SIEM", noArgs, func(cmd *cobra.Command, _ []string) error { return f.run(cmd) })
	cmd.Long = "The daemon: store owner, HTTP gateway at http://ADDR/mcp/NAME, SSH console, socket for wrap and\n" +
		"the read commands, SIEM forwarding, detections, rollback; with --collect, also a fleet's collector."
	fl := cmd.Flags()
	fl.StringVar(&f.config, "config", "", "config `FILE` (default $XDG_CONFIG_HOME/mcptrail/config.yaml)")
	fl.StringVar(&f.listen, "listen", "", "HTTP gateway address `ADDR` (default 127.0.0.1:7420)")
	fl.StringArrayVar(&f.upstreams, "upstream", nil, "`NAME=URL` or 'NAME=stdio:CMD ARG...' (repeatable)")
	fl.StringVar(&f.durability, "durability", "", "`MODE`: strict (a request is durable before it is forwarded) or batch")
	fl.BoolVar(&f.auto, "auto", false, "started in the background by wrap")
	fl.StringVar(&f.ssh, "ssh", "", "SSH console address `ADDR` (default 127.0.0.1:2222)")
	fl.StringVar(&f.authKeys, "authorized-keys", "", "authorized_keys `FILE` for the SSH console (default: authorized_keys in the data directory)")
	fl.StringArrayVar(&f.sinks, "sink", nil, "SIEM sink `URL` (repeatable)")
	fl.StringVar(&f.metrics, "metrics", "", "Prometheus metrics address `ADDR`, e.g. 127.0.0.1:9464 (default: metrics.listen in the config; off); a non-loopback one needs metrics.allow_remote: true")
	fl.StringVar(&f.collect, "collect", "", "collect a fleet's records into this instance's store from `URL` kafka://HOST:PORT[,...]/TOPIC?group=NAME (docs/fleet.md; default: collect.url in the config)")
	fl.MarkHidden("auto")
	cmd.MarkFlagFilename("config")
	cmd.MarkFlagFilename("authorized-keys")
	fixedValues(cmd, "durability", "strict", "batch")
	return cmd
}

// build is the config file with the flags over it: at start, and again on
// SIGHUP.
func (f *serveFlags) build() (*config.Config, error) {
	cfg, err := loadServeConfig(f.config)
	if err != nil {
		return nil, err
	}
	for _, o := range []struct {
		to   *string
		from string
	}{
		{&cfg.Listen, f.listen}, {&cfg.Durability, f.durability}, {&cfg.SSH, f.ssh},
		{&cfg.AuthorizedKeys, f.authKeys}, {&cfg.Metrics.Listen, f.metrics}, {&cfg.Collect.URL, f.collect},
	} {
		if o.from != "" {
			*o.to = o.from
		}
	}
	for _, u := range f.upstreams {
		if err := cfg.AddUpstream(u); err != nil {
			return nil, usagef("--upstream %s: %v", u, err)
		}
	}
	cfg.Sinks = append(cfg.Sinks, f.sinks...) // --sink adds to the config's sinks
	if err := cfg.Validate(); err != nil {
		return nil, usageError{oneLine(err)}
	}
	return cfg, nil
}

func (f *serveFlags) run(cmd *cobra.Command) error {
	cfg, err := f.build()
	if err != nil {
		return err
	}
	stderr := cmd.ErrOrStderr()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	err = daemon.Run(ctx, daemon.Options{
		Config: cfg, Home: home(), Version: buildVersion(), Logger: log, Auto: f.auto,
		Reload: f.build, // SIGHUP: tokens, JWT keys, sinks
		Ready: func(url string) {
			if url != "http://" {
				fmt.Fprintf(stderr, "mcptrail: gateway listening on %s\n", url)
			}
		},
	})
	if err != nil {
		return problemError{oneLine(err)}
	}
	return nil
}
