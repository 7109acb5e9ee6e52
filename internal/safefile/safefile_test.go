package safefile

import (
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestOpenFileRefusesLinksAndNonRegularFiles(t *testing.T) {
	dir := t.TempDir()
	target := filepath.Join(dir, "target")
	os.WriteFile(target, []byte("keep"), 0o600)
	link := filepath.Join(dir, "link")
	os.Symlink(target, link)
	var se *Error
	if _, err := OpenFile(link, os.O_WRONLY|os.O_CREATE|os.O_TRUNC); !errors.As(err, &se) || !strings.Contains(err.Error(), "symbolic link") {
		t.Fatalf("through a link: %v", err)
	}
	if got, _ := os.ReadFile(target); string(got) != "keep" {
		t.Fatalf("target written: %q", got)
	}
	if _, err := OpenFile(dir, os.O_RDONLY); err == nil || !strings.Contains(err.Error(), "not a regular file") {
		t.Fatalf("a directory: %v", err)
	}
	if err := WriteFile(link, []byte("x"), FileMode); err == nil {
		t.Fatal("WriteFile through a link")
	}
	if _, err := ReadOwn(link); err == nil {
		t.Fatal("ReadOwn through a link")
	}
}

func TestOpenFileCreates0600AndTightens(t *testing.T) {
	path := filepath.Join(t.TempDir(), "f")
	f, err := OpenFile(path, os.O_WRONLY|os.O_CREATE)
	if err != nil {
		t.Fatal(err)
	}
	f.Close()
	os.Chmod(path, 0o666)
	f, err = OpenFile(path, os.O_WRONLY|os.O_APPEND)
	if err != nil {
		t.Fatal(err)
	}
	f.Close()
	if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o600 {
		t.Fatalf("mode %v", fi.Mode().Perm())
	}
	// A key is refused, not tightened: someone may have read it.
	os.Chmod(path, 0o640)
	if _, err := ReadOwn(path); err == nil || !strings.Contains(err.Error(), "chmod 600 "+path) {
		t.Fatalf("ReadOwn of a 0640 key: %v", err)
	}
}

func TestRemoveSocket(t *testing.T) {
	dir := t.TempDir()
	sock := filepath.Join(dir, "s.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	ln.(*net.UnixListener).SetUnlinkOnClose(false)
	ln.Close()
	if err := RemoveSocket(sock); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(sock); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("stale socket left: %v", err)
	}
	if err := RemoveSocket(sock); err != nil {
		t.Fatalf("nothing there: %v", err)
	}
	plain := filepath.Join(dir, "plain")
	os.WriteFile(plain, nil, 0o600)
	if err := RemoveSocket(plain); err == nil {
		t.Fatal("a regular file at the socket path was removed")
	}
	if _, err := os.Stat(plain); err != nil {
		t.Fatal(err)
	}
}

func TestDirAndCheckPath(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "a", "b")
	if err := Dir(dir); err != nil {
		t.Fatal(err)
	}
	if fi, _ := os.Stat(dir); fi.Mode().Perm() != DirMode {
		t.Fatalf("mode %v", fi.Mode().Perm())
	}
	os.Chmod(dir, 0o770)
	if err := Dir(dir); err == nil || !strings.Contains(err.Error(), "chmod go-w "+dir) {
		t.Fatalf("group-writable dir: %v", err)
	}
	// A file in a sticky, world-writable directory (/tmp) is fine if the
	// file itself is.
	sticky := filepath.Join(t.TempDir(), "tmp")
	os.Mkdir(sticky, 0o700)
	os.Chmod(sticky, 0o777|os.ModeSticky)
	keys := filepath.Join(sticky, "keys")
	os.WriteFile(keys, nil, 0o644)
	if err := CheckPath(keys, Public); err != nil {
		t.Fatalf("in a sticky directory: %v", err)
	}
	os.Chmod(sticky, 0o777)
	if err := CheckPath(keys, Public); err == nil {
		t.Fatal("in a world-writable directory without the sticky bit")
	}
}
