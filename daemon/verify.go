package daemon

import (
	"errors"
	"fmt"
	"os"

	"github.com/mcptrail/mcptrail/collect"
	"github.com/mcptrail/mcptrail/store"
)

// VerifyWith checks the store's chain and checkpoints in the daemon.
func (c *Client) VerifyWith(opts store.VerifyOptions) (store.VerifyResult, error) {
	var r store.VerifyResult
	return r, c.rpc.Call("Daemon.VerifyWith", opts, &r)
}

func (s *service) VerifyWith(opts store.VerifyOptions, r *store.VerifyResult) error {
	var err error
	*r, err = s.d.store.VerifyWith(opts)
	return err
}

// Verify checks a record as OpenReader finds it: the file db (read-only),
// else the running daemon's store, else home's store file read-only.
func Verify(home, db string, opts store.VerifyOptions) (store.VerifyResult, error) {
	if db != "" {
		return store.VerifyFile(db, opts)
	}
	c, err := Dial(home)
	if err == nil {
		defer c.Close()
		return c.VerifyWith(opts)
	}
	if !errors.Is(err, ErrNotRunning) {
		return store.VerifyResult{}, err
	}
	path := PathsFor(home).DB
	if _, err := os.Stat(path); err != nil {
		return store.VerifyResult{}, fmt.Errorf("no record yet at %s (run `mcptrail serve` or `mcptrail wrap`, or name a file with --db)", path)
	}
	return store.VerifyFile(path, opts)
}

// VerifyOriginsArgs are the arguments of Daemon.VerifyOrigins.
type VerifyOriginsArgs struct {
	Keys map[string]string
}

func (s *service) VerifyOrigins(args VerifyOriginsArgs, r *[]collect.OriginResult) error {
	var err error
	*r, err = collect.VerifyOrigins(s.d.store, args.Keys)
	return err
}

// VerifyOrigins checks every origin's chain in a central store (one a
// collector fills), found as Verify finds it; keys pins origins' verifier
// keys (collect.keys). None for a store without collected events.
func VerifyOrigins(home, db string, keys map[string]string) ([]collect.OriginResult, error) {
	open := func(path string) ([]collect.OriginResult, error) {
		s, err := store.Open(path, store.Options{ReadOnly: true})
		if err != nil {
			return nil, err
		}
		defer s.Close()
		return collect.VerifyOrigins(s, keys)
	}
	if db != "" {
		return open(db)
	}
	c, err := Dial(home)
	if err == nil {
		defer c.Close()
		var r []collect.OriginResult
		return r, c.rpc.Call("Daemon.VerifyOrigins", VerifyOriginsArgs{Keys: keys}, &r)
	}
	if !errors.Is(err, ErrNotRunning) {
		return nil, err
	}
	return open(PathsFor(home).DB)
}
