package daemon

import (
	"errors"
	"fmt"
	"os"

	"github.com/mcptrail/mcptrail/store"
	"github.com/mcptrail/mcptrail/ui"
)

// Reader is what the read commands need of a store, whether the daemon
// answers for it or the file is opened directly: the console's reads, and
// verification.
type Reader interface {
	ui.Source
	Verify() (store.VerifyResult, error)
	Close() error
}

// OpenReader finds the record: the file named by db (read-only), else the
// running daemon of home, else home's store file read-only.
func OpenReader(home, db string) (Reader, error) {
	if db != "" {
		return openFile(db)
	}
	c, err := Dial(home)
	if err == nil {
		return c, nil
	}
	if !errors.Is(err, ErrNotRunning) {
		return nil, err
	}
	path := PathsFor(home).DB
	if _, err := os.Stat(path); err != nil {
		return nil, fmt.Errorf("no record yet at %s (run `mcptrail serve` or `mcptrail wrap`, or name a file with --db)", path)
	}
	return openFile(path)
}

func openFile(path string) (Reader, error) {
	st, err := store.Open(path, store.Options{ReadOnly: true})
	if err != nil {
		return nil, err
	}
	return st, nil
}
