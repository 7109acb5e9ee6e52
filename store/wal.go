package store

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io/fs"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// The write-ahead log is how strict durability costs one synced write of
// the events instead of a bbolt commit (the pages of the events, their
// indices and session summaries, and two syncs). A strict Append returns
// once its event is in the log; the writer applies the log to the file in
// batches, and a writable Open applies what a crash left there. Readers
// wait for the log to be applied (Store.settle), so whatever an Append
// acknowledged, a query sees.
//
// The file is <store>-wal: records, each
//
//	length of value (4) | CRC-32C of seq and value (4) | seq (8) | stored value
//
// written from the start again whenever everything logged has been
// applied, so it stays small. A record is replayed only if it follows the
// file's head: the next seq, chained to the head's hash (the stored value
// carries prev_hash and hash). That rejects records from before the last
// rewind, torn records, and a log that belongs to another file.
type wal struct {
	f   *os.File
	off int64 // where the next record goes
	buf []byte
}

const (
	walHeader = 16
	// walPrealloc is written (as zeros) when the log is created: a synced
	// overwrite of written blocks needs no metadata, so fdatasync is one
	// flush; writing past the end (or into fallocate's unwritten extents)
	// would also commit the journal.
	walPrealloc = 1 << 20
	// walKeepBuf bounds the buffer the log keeps between writes.
	walKeepBuf = 1 << 20
)

var crc32c = crc32.MakeTable(crc32.Castagnoli)

func walPath(store string) string { return store + "-wal" }

// openWAL opens (creating, 0600) the log of the store at path.
func openWAL(path string) (*wal, error) {
	name := walPath(path)
	f, err := os.OpenFile(name, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, err
	}
	w := &wal{f: f}
	if err := w.prepare(); err != nil {
		f.Close()
		return nil, fmt.Errorf("write-ahead log %s: %w", name, err)
	}
	return w, nil
}

func (w *wal) prepare() error {
	// Like the store file: never readable by others, whoever made it.
	if err := w.f.Chmod(0o600); err != nil {
		return err
	}
	fi, err := w.f.Stat()
	if err != nil {
		return err
	}
	if fi.Size() >= walPrealloc {
		return nil
	}
	if _, err := w.f.WriteAt(make([]byte, walPrealloc-fi.Size()), fi.Size()); err != nil {
		return err
	}
	if err := w.f.Sync(); err != nil {
		return err
	}
	// The new file's name must survive a crash too.
	d, err := os.Open(filepath.Dir(w.f.Name()))
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// write logs batch's events at the start of the log when rewind
// (everything logged before is applied) or after the last record, synced
// when sync is set. A failed write leaves off where it was: the next one
// overwrites the remains. beforeSync is the tests' failure hook, where a
// real failure leaves the records written but not synced.
func (w *wal) write(batch []*pending, rewind, sync bool, beforeSync func() error) error {
	buf := w.buf[:0]
	for _, p := range batch {
		if !p.marker {
			buf = appendWALRecord(buf, p.ev.Seq, p.prep.value)
		}
	}
	if cap(buf) <= walKeepBuf {
		w.buf = buf
	} else {
		w.buf = nil
	}
	if len(buf) == 0 {
		return nil
	}
	off := w.off
	if rewind {
		off = 0
	}
	if _, err := w.f.WriteAt(buf, off); err != nil {
		return w.undo(off, err)
	}
	if err := beforeSync(); err != nil {
		return w.undo(off, err)
	}
	if sync {
		if err := fdatasync(w.f); err != nil {
			return w.undo(off, err)
		}
	}
	w.off = off + int64(len(buf))
	return nil
}

// undo follows a failed write, whose appenders are told their events are
// lost (the gateway does not forward those calls): zeros over its first
// record's header end the log before it, so that should the process die
// before the next write overwrites them, the next open does not replay
// records that reached the file anyway. Best effort: a disk that failed the
// write may fail this too, and the appenders' error stands either way.
func (w *wal) undo(off int64, err error) error {
	var zero [walHeader]byte
	if _, zerr := w.f.WriteAt(zero[:], off); zerr == nil {
		fdatasync(w.f)
	}
	return err
}

func (w *wal) close() error { return w.f.Close() }

func fdatasync(f *os.File) error {
	for {
		err := unix.Fdatasync(int(f.Fd()))
		if !errors.Is(err, unix.EINTR) {
			return err
		}
	}
}

func appendWALRecord(buf []byte, seq uint64, value []byte) []byte {
	var h [walHeader]byte
	binary.LittleEndian.PutUint32(h[0:4], uint32(len(value)))
	binary.LittleEndian.PutUint64(h[8:16], seq)
	crc := crc32.Update(crc32.Checksum(h[8:16], crc32c), crc32c, value)
	binary.LittleEndian.PutUint32(h[4:8], crc)
	return append(append(buf, h[:]...), value...)
}

// walRecords calls fn with each record of log that continues the chain
// from (head, headHash), in order, and stops at the first that does not.
// fn's value aliases log.
func walRecords(log []byte, head uint64, headHash [32]byte, fn func(seq uint64, value []byte) error) error {
	for off := 0; len(log)-off >= walHeader; {
		h := log[off : off+walHeader]
		n := int(binary.LittleEndian.Uint32(h[0:4]))
		if n < 65 || n > len(log)-off-walHeader {
			return nil // zeros, a torn record, or the end
		}
		value := log[off+walHeader : off+walHeader+n]
		if crc32.Update(crc32.Checksum(h[8:16], crc32c), crc32c, value) != binary.LittleEndian.Uint32(h[4:8]) {
			return nil
		}
		off += walHeader + n
		seq := binary.LittleEndian.Uint64(h[8:16])
		if seq <= head {
			continue // applied before the log was last rewound
		}
		if seq != head+1 || [32]byte(value[1:33]) != headHash {
			return nil
		}
		if err := fn(seq, value); err != nil {
			return err
		}
		head, headHash = seq, [32]byte(value[33:65])
	}
	return nil
}

// readWAL returns the log of the store at path; none is not an error.
func readWAL(path string) ([]byte, error) {
	b, err := os.ReadFile(walPath(path))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	return b, err
}
