// Package safefile is the one way mcptrail opens the files it trusts or
// writes: the data directory, its keys, its store, its log, its socket and
// its sinks, and the files the operator writes for it (config,
// authorized_keys).
//
// It applies the rules sshd calls StrictModes. A file mcptrail trusts must
// be owned by the daemon's user or by root and must not be writable by
// group or others (a private key not readable by them either); a directory
// it keeps files in likewise. A file mcptrail writes is opened with
// O_NOFOLLOW, so a symbolic link planted at its path is refused instead of
// written through, and checked after opening (fstat on the descriptor, so
// nothing can be swapped between the check and the use) to be a regular
// file owned by the daemon's user. Errors name the file and the command
// that fixes it.
package safefile

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
)

// DirMode is the mode of every directory mcptrail creates.
const DirMode = 0o700

// FileMode is the mode of every file mcptrail creates.
const FileMode = 0o600

// Error is a refusal: the file, what is wrong with it, and the fix.
type Error struct {
	Path    string
	Problem string
	Fix     string
}

func (e *Error) Error() string {
	if e.Fix == "" {
		return fmt.Sprintf("%s: %s", e.Path, e.Problem)
	}
	return fmt.Sprintf("%s: %s; fix: %s", e.Path, e.Problem, e.Fix)
}

// Kind says how strictly a file is checked.
type Kind int

const (
	// Public may be read by anyone (a .pub key); nobody else may write it.
	Public Kind = iota
	// Private (keys, tokens in a config) may be read by nobody else either.
	Private
)

// Check applies the ownership and mode rules to what fi describes.
func Check(path string, fi fs.FileInfo, kind Kind) error {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return nil // not a Unix file system: nothing to compare against
	}
	uid := uint32(os.Geteuid())
	if st.Uid != uid && st.Uid != 0 {
		return &Error{Path: path, Problem: fmt.Sprintf("owned by uid %d, not by the daemon's user (uid %d) or root", st.Uid, uid),
			Fix: fmt.Sprintf("chown %d %s", uid, path)}
	}
	mode := fi.Mode().Perm()
	if mode&0o022 != 0 {
		return &Error{Path: path, Problem: fmt.Sprintf("writable by group or others (mode %04o)", mode), Fix: "chmod go-w " + path}
	}
	if kind == Private && !fi.IsDir() && mode&0o044 != 0 {
		return &Error{Path: path, Problem: fmt.Sprintf("a private file readable by group or others (mode %04o)", mode), Fix: "chmod 600 " + path}
	}
	return nil
}

// CheckPath applies the rules to the file at path (following a link the
// operator made there, as sshd does for authorized_keys), and to the
// directory holding it.
func CheckPath(path string, kind Kind) error {
	fi, err := os.Stat(path)
	if err != nil {
		return err
	}
	if err := Check(path, fi, kind); err != nil {
		return err
	}
	dir := filepath.Dir(path)
	di, err := os.Stat(dir)
	if err != nil {
		return err
	}
	return checkDir(dir, di)
}

func checkDir(dir string, di fs.FileInfo) error {
	if err := Check(dir, di, Public); err != nil {
		// A sticky directory such as /tmp may be world-writable: others
		// can add files there but not replace ours.
		if di.Mode()&fs.ModeSticky != 0 && di.Mode().Perm()&0o022 != 0 {
			st, ok := di.Sys().(*syscall.Stat_t)
			if ok && (st.Uid == 0 || st.Uid == uint32(os.Geteuid())) {
				return nil
			}
		}
		return err
	}
	return nil
}

// Dir makes the data directory (0700) if it is missing and checks it: a
// directory, owned by the daemon's user or root, writable by nobody else.
func Dir(path string) error {
	if err := os.MkdirAll(path, DirMode); err != nil {
		return err
	}
	fi, err := os.Lstat(path)
	if err != nil {
		return err
	}
	if fi.Mode()&fs.ModeSymlink != 0 {
		// An operator may point the data directory elsewhere with a link;
		// what matters is the directory it leads to.
		if fi, err = os.Stat(path); err != nil {
			return err
		}
	}
	if !fi.IsDir() {
		return &Error{Path: path, Problem: "not a directory"}
	}
	return checkDir(path, fi)
}

// MkdirAll makes a directory mcptrail keeps files in, 0700.
func MkdirAll(path string) error { return os.MkdirAll(path, DirMode) }

// OpenFile opens a file mcptrail writes (or reads back): never through a
// symbolic link, and only a regular file owned by the daemon's user or
// root. Files it creates are 0600; a file whose mode someone loosened is
// tightened back to 0600 on the descriptor (it holds the record, and the
// daemon owns it).
func OpenFile(path string, flag int) (*os.File, error) {
	f, fi, err := openNoFollow(path, flag)
	if err != nil {
		return nil, err
	}
	if fi.Mode().Perm()&0o077 != 0 && flag&(os.O_WRONLY|os.O_RDWR) != 0 {
		if err := f.Chmod(FileMode); err != nil {
			f.Close()
			return nil, err
		}
	}
	return f, nil
}

func openNoFollow(path string, flag int) (*os.File, fs.FileInfo, error) {
	f, err := os.OpenFile(path, flag|syscall.O_NOFOLLOW|syscall.O_CLOEXEC, FileMode)
	if err != nil {
		if errors.Is(err, syscall.ELOOP) {
			return nil, nil, &Error{Path: path, Problem: "is a symbolic link; mcptrail does not write through links in its data directory",
				Fix: "rm " + path + " (and check who planted it)"}
		}
		return nil, nil, err
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, nil, err
	}
	if !fi.Mode().IsRegular() {
		f.Close()
		return nil, nil, &Error{Path: path, Problem: "not a regular file (" + fi.Mode().Type().String() + ")", Fix: "rm " + path}
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if uid := uint32(os.Geteuid()); ok && st.Uid != uid && st.Uid != 0 {
		f.Close()
		return nil, nil, &Error{Path: path, Problem: fmt.Sprintf("owned by uid %d, not by the daemon's user (uid %d) or root", st.Uid, uid),
			Fix: fmt.Sprintf("chown %d %s", uid, path)}
	}
	return f, fi, nil
}

// Open opens a file mcptrail reads and trusts (a key, a config): the
// ownership and mode rules apply, links are followed (the operator may
// have made them), and the descriptor is checked, not the path.
func Open(path string, kind Kind) (*os.File, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	fi, err := f.Stat()
	if err == nil {
		err = Check(path, fi, kind)
	}
	if err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

// ReadFile reads a file mcptrail trusts, after Open's checks.
func ReadFile(path string, kind Kind) ([]byte, error) {
	f, err := Open(path, kind)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return io.ReadAll(f)
}

// WriteFile replaces the contents of a file mcptrail writes, with
// OpenFile's rules; a new file is 0600 (perm may widen it for a public
// file such as a .pub key).
func WriteFile(path string, data []byte, perm os.FileMode) error {
	f, err := OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if perm != FileMode {
		if err := f.Chmod(perm); err != nil {
			f.Close()
			return err
		}
	}
	return f.Close()
}

// CreateExcl creates a new file (O_EXCL: never an existing one, never
// through a link), 0600.
func CreateExcl(path string) (*os.File, error) {
	return OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL)
}

// RemoveSocket clears the path a Unix socket is about to be bound to: a
// stale socket is removed; anything else there (a planted link, a file)
// is refused and left alone.
func RemoveSocket(path string) error {
	fi, err := os.Lstat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	if fi.Mode().Type() != fs.ModeSocket {
		return &Error{Path: path, Problem: "exists and is not a socket (" + fi.Mode().Type().String() + "); refusing to replace it",
			Fix: "rm " + path + " (and check who put it there)"}
	}
	if err := Check(path, fi, Public); err != nil {
		return err
	}
	return os.Remove(path)
}

// ReadOwn reads a file mcptrail keeps in its data directory (a key):
// never through a link, a regular file owned by the daemon's user or
// root, readable by nobody else.
func ReadOwn(path string) ([]byte, error) {
	f, fi, err := openNoFollow(path, os.O_RDONLY)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if err := Check(path, fi, Private); err != nil {
		return nil, err
	}
	return io.ReadAll(f)
}

// BoltOpenFile is OpenFile in the shape bbolt's Options.OpenFile takes,
// so the store's file is opened by the same rules.
func BoltOpenFile(path string, flag int, _ os.FileMode) (*os.File, error) {
	return OpenFile(path, flag)
}
