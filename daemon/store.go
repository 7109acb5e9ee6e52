package daemon

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/mcptrail/mcptrail/config"
	"github.com/mcptrail/mcptrail/internal/safefile"
	"github.com/mcptrail/mcptrail/store"
)

// KeyPath is the checkpoint signing key of the instance at home (mode 0600;
// its verifier key is beside it in KeyPath+".pub").
func KeyPath(home string) string { return filepath.Join(home, "signing.key") }

// signingKey loads the instance's checkpoint signing key, creating it on
// the first start.
func signingKey(home string, log *slog.Logger) (string, error) {
	host, _ := os.Hostname()
	skey, created, err := store.LoadOrCreateKey(KeyPath(home), store.KeyName("mcptrail-"+host))
	if err != nil {
		return "", fmt.Errorf("checkpoint signing key: %w", err)
	}
	if created {
		vkey, _ := store.VerifierKey(skey)
		log.Info("created the checkpoint signing key; pin its verifier key (verify_key in the config of the machine that verifies)",
			"file", KeyPath(home), "verify_key", vkey)
	}
	return skey, nil
}

// LocalVerifierKey is the verifier key of the instance's signing key, or
// an error wrapping os.ErrNotExist when no daemon has created one.
func LocalVerifierKey(home string) (string, error) {
	data, err := safefile.ReadOwn(KeyPath(home)) // as the daemon reads it: no link, private
	if err != nil {
		return "", err
	}
	return store.VerifierKey(string(trimSpace(data)))
}

func trimSpace(b []byte) []byte {
	for len(b) > 0 && (b[len(b)-1] == '\n' || b[len(b)-1] == '\r' || b[len(b)-1] == ' ') {
		b = b[:len(b)-1]
	}
	return b
}

// storeOptions are the store settings of a config.
func storeOptions(cfg *config.Config, skey string) store.Options {
	return store.Options{
		Durability:         cfg.Durability,
		BatchWindow:        time.Duration(cfg.BatchWindow),
		SigningKey:         skey,
		CheckpointEvery:    cfg.Checkpoint.Every,
		CheckpointInterval: time.Duration(cfg.Checkpoint.Interval),
		Retention: store.RetentionPolicy{
			MaxAge:   time.Duration(cfg.Retention.MaxAge),
			MaxBytes: int64(cfg.Retention.MaxBytes),
		},
	}
}

// openStore opens the instance's store with its signing key, and gives the
// calls a crash left without an outcome the outcome "unknown".
func openStore(paths Paths, cfg *config.Config, log *slog.Logger) (*store.Store, error) {
	skey, err := signingKey(paths.Home, log)
	if err != nil {
		return nil, err
	}
	st, err := store.Open(paths.DB, storeOptions(cfg, skey))
	if err != nil {
		return nil, err
	}
	n, err := st.RecordUnknown("no response was recorded before the gateway stopped (crash or kill)")
	if err != nil {
		log.Error("recording outcomes of calls interrupted by a crash", "err", err)
	} else if n > 0 {
		log.Warn("calls interrupted by the previous daemon's crash recorded as unknown", "calls", n)
	}
	return st, nil
}

// failOpen is Record's fail_open: when the store cannot record an
// event the gateway goes on as if it had (seq 0), so the call is forwarded
// unrecorded; the store counts the loss in the alert it records once it
// can write again.
func (d *Daemon) failOpen(ev *store.Event, seq uint64, err error) (uint64, error) {
	if err == nil || !d.opts.Config.FailOpen || errors.Is(err, store.ErrClosed) {
		return seq, err
	}
	d.log.Error("fail_open: forwarding a call the record could not take", "kind", ev.Kind, "method", ev.Method, "tool", ev.Tool, "err", err)
	return 0, nil
}
