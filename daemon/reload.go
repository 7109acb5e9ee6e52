package daemon

// Reloading the configuration on SIGHUP (`systemctl reload mcptrail`)
// without dropping sessions: bearer tokens and JWT keys are swapped for the
// next request, approval rules for the next call (calls already held keep
// theirs), and SIEM sinks are restarted from their persisted cursors
// (forwarders are off the call path, so no call waits on them). Everything
// else — listen addresses, upstreams, durability, store settings, metrics,
// detection rules — is read once at start: a change to it is logged as
// needing a restart and otherwise ignored.

import (
	"errors"
	"os"
	"os/signal"
	"reflect"
	"slices"
	"sync"
	"syscall"

	"github.com/mcptrail/mcptrail/config"
	"github.com/mcptrail/mcptrail/siem"
)

// reloader is the daemon's reload state.
type reloader struct {
	reloading sync.Mutex // one reload at a time
	mu        sync.Mutex // guards Daemon.sinks once the daemon runs
	auth      *authenticator
	sinkURLs  []string       // the sinks running now
	cfg       *config.Config // the configuration last applied
}

// sinkManager is the SIEM forwarders running now (nil without sinks).
func (d *Daemon) sinkManager() *siem.Manager {
	d.rl.mu.Lock()
	defer d.rl.mu.Unlock()
	return d.sinks
}

// watchReload reloads on SIGHUP while the daemon runs, when Options.Reload
// says how to read the configuration again.
func (d *Daemon) watchReload() {
	d.rl.cfg, d.rl.sinkURLs = d.opts.Config, d.opts.Config.Sinks
	if d.opts.Reload == nil {
		return
	}
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	go func() {
		defer signal.Stop(hup)
		for {
			select {
			case <-d.stop:
				return
			case <-hup:
				cfg, err := d.opts.Reload()
				if err == nil {
					err = d.Reload(cfg)
				}
				if err != nil {
					d.log.Error("reload: keeping the running configuration", "err", err)
				}
			}
		}
	}()
}

// Reload applies what can change while the daemon runs: tokens, JWT keys,
// console roles (ssh_roles), approval rules and sinks. On an error nothing has changed, except that sinks whose new
// set failed to start run with the previous set again.
func (d *Daemon) Reload(cfg *config.Config) error {
	if cfg == nil {
		return errors.New("no configuration")
	}
	if err := cfg.Validate(); err != nil {
		return err
	}
	d.rl.reloading.Lock()
	defer d.rl.reloading.Unlock()
	old := d.rl.cfg
	if d.rl.auth != nil {
		if err := d.rl.auth.load(cfg); err != nil {
			return err
		}
	}
	if !slices.Equal(cfg.Sinks, d.rl.sinkURLs) {
		if _, err := d.swapSinks(cfg.Sinks); err != nil {
			if d.rl.auth != nil {
				d.rl.auth.load(old) // all or nothing: the old tokens again
			}
			return err
		}
	}
	if d.console != nil {
		d.console.keys.setRoles(cfg.SSHRoles) // like authorized_keys, at the next connection
	}
	d.reloadApprovals(cfg) // approvals.go
	if fixed := restartOnly(old, cfg); len(fixed) > 0 {
		d.log.Warn("reload: these settings take effect only after a restart", "settings", fixed)
	}
	d.rl.cfg = cfg
	d.log.Info("configuration reloaded", "tokens", len(cfg.Tokens), "jwt", cfg.JWT != nil, "sinks", len(cfg.Sinks))
	return nil
}

// swapSinks stops the running forwarders (draining briefly) and starts
// urls'. Cursors live in the store, so a sink kept across the swap goes on
// where it was. If the new set fails to start, the old one is started again.
func (d *Daemon) swapSinks(urls []string) (*siem.Manager, error) {
	d.sinkManager().Stop(forwarderDrain)
	m, err := d.newSinks(&config.Config{Sinks: urls, Upstreams: d.opts.Config.Upstreams})
	if err != nil {
		back, berr := d.newSinks(&config.Config{Sinks: d.rl.sinkURLs, Upstreams: d.opts.Config.Upstreams})
		if berr != nil {
			d.log.Error("reload: restarting the previous sinks", "err", berr)
		}
		d.rl.mu.Lock()
		d.sinks = back
		d.rl.mu.Unlock()
		return nil, err
	}
	d.rl.mu.Lock()
	d.sinks = m
	d.rl.mu.Unlock()
	d.rl.sinkURLs = urls
	return m, nil
}

// restartOnly names the settings that differ between a and b and that a
// reload does not apply.
func restartOnly(a, b *config.Config) []string {
	var out []string
	for _, f := range []struct {
		name string
		a, b any
	}{
		{"listen", a.Listen, b.Listen}, {"ssh", a.SSH, b.SSH}, {"authorized_keys", a.AuthorizedKeys, b.AuthorizedKeys},
		{"durability", a.Durability, b.Durability}, {"batch_window", a.BatchWindow, b.BatchWindow},
		{"max_message_bytes", a.MaxMessageBytes, b.MaxMessageBytes}, {"max_depth", a.MaxDepth, b.MaxDepth},
		{"max_sessions", a.MaxSessions, b.MaxSessions}, {"max_sessions_per_principal", a.MaxSessionsPerPrincipal, b.MaxSessionsPerPrincipal},
		{"allowed_origins", a.AllowedOrigins, b.AllowedOrigins}, {"upstreams", a.Upstreams, b.Upstreams},
		{"redact", a.Redact, b.Redact}, {"detections", a.Detections, b.Detections},
		{"checkpoint", a.Checkpoint, b.Checkpoint}, {"retention", a.Retention, b.Retention},
		{"verify_key", a.VerifyKey, b.VerifyKey}, {"fail_open", a.FailOpen, b.FailOpen}, {"metrics", a.Metrics, b.Metrics}, {"tracing", a.Tracing, b.Tracing}, {"collect", a.Collect, b.Collect},
	} {
		if !reflect.DeepEqual(f.a, f.b) {
			out = append(out, f.name)
		}
	}
	return out
}
