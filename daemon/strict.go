package daemon

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/mcptrail/mcptrail/config"
	"github.com/mcptrail/mcptrail/internal/safefile"
)

// checkFiles is the daemon's StrictModes, checked before anything is
// opened: the data directory (made 0700 if missing) and the files an
// attacker who could write them would use to get in or to forge the
// record — authorized_keys, the signing key, the console's host key —
// must be owned by the daemon's user or root and writable by nobody else
// (the keys readable by nobody else either). A refusal names the file and
// the command that fixes it. The keys are checked again, without
// following links, when they are read.
func checkFiles(paths Paths, cfg *config.Config) error {
	if err := safefile.Dir(paths.Home); err != nil {
		return refuse("data directory", err)
	}
	keys := cfg.AuthorizedKeys
	if keys == "" {
		keys = filepath.Join(paths.Home, AuthorizedKeysFile)
	}
	if err := safefile.CheckPath(keys, safefile.Public); err != nil && !errors.Is(err, os.ErrNotExist) {
		return refuse("authorized_keys", err)
	}
	for _, key := range []string{KeyPath(paths.Home), filepath.Join(paths.Home, HostKeyFile)} {
		fi, err := os.Lstat(key)
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return err
		}
		if fi.Mode()&os.ModeSymlink != 0 {
			return refuse("key", &safefile.Error{Path: key, Problem: "is a symbolic link; mcptrail reads its keys only from files in its data directory", Fix: "rm " + key + " (and check who planted it)"})
		}
		if err := safefile.Check(key, fi, safefile.Private); err != nil {
			return refuse("key", err)
		}
	}
	return nil
}

func refuse(what string, err error) error {
	return fmt.Errorf("refusing to start: %s %w", what, err)
}
