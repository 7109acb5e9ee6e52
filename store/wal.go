package store

import (
	"encoding/binary"
	"errors"
	"fmt"
	"github.com/mcptrail/mcptrail/internal/safefile"
	"hash/crc32"
	"io"
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
//
// In batch mode, where nothing waits for the log's sync, the first
// walPrealloc bytes are mapped (MAP_SHARED) and records that fit there are
// stored into the mapping rather than written with pwrite. The logger writes
// every batch window under load, and in the gateway benchmark each pwrite
// took about 40 µs of kernel CPU (most of it in ext4_block_write_begin),
// 2–6 µs per call (BENCHMARKS.md). Stores into the mapping land in the
// same page cache, so a crash of the process cannot undo them either.
// Strict mode keeps pwrite: an fdatasync after stores through the mapping
// made a strict append take 2.3 times as long (BenchmarkAppendStrict, 330
// against 140 µs).
//
// A value logged into the mapping then aliases it until its commit (write
// sets p.prep.value to the record's bytes), so the heap does not hold a
// second copy of each event that waits for its commit. The log only rewinds
// once everything it holds is committed, so those bytes stay put meanwhile.
type wal struct {
	f   *os.File
	m   []byte // the mapping of [0, walPrealloc); nil in strict mode or if mmap failed
	off int64  // where the next record goes
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

// openWAL opens (creating, 0600) the log of the store at path, mapped
// when mapped is set.
func openWAL(path string, mapped bool) (*wal, error) {
	name := walPath(path)
	f, err := safefile.OpenFile(name, os.O_RDWR|os.O_CREATE)
	if err != nil {
		return nil, err
	}
	w := &wal{f: f}
	if err := w.prepare(); err != nil {
		f.Close()
		return nil, fmt.Errorf("write-ahead log %s: %w", name, err)
	}
	// Without the mapping every record is written with pwrite, as records
	// past its end are.
	if !mapped {
		return w, nil
	}
	if m, err := unix.Mmap(int(f.Fd()), 0, walPrealloc, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED); err == nil {
		w.m = m
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
//
// Once written, the value of each event logged into the mapping is that
// record's bytes in the mapping. They stay put until the log rewinds, which
// only happens once every event logged is committed.
func (w *wal) write(batch []*pending, rewind, sync bool, beforeSync func() error) error {
	off := w.off
	if rewind {
		off = 0
	}
	size := 0
	for _, p := range batch {
		if !p.marker {
			size += walHeader + len(p.prep.value)
		}
	}
	if size == 0 {
		return nil
	}
	// Records that fit in the mapping are appended in place; the capacity
	// ends where the mapping does, and they fit, so append never moves them.
	mapped := off+int64(size) <= int64(len(w.m))
	buf := w.buf[:0]
	if mapped {
		buf = w.m[off:off:len(w.m)]
	}
	for _, p := range batch {
		if !p.marker {
			buf = appendWALRecord(buf, p.ev.Seq, p.prep.value)
		}
	}
	if !mapped {
		if cap(buf) <= walKeepBuf {
			w.buf = buf
		} else {
			w.buf = nil
		}
		if _, err := w.f.WriteAt(buf, off); err != nil {
			return w.undo(off, err)
		}
	}
	if err := beforeSync(); err != nil {
		return w.undo(off, err)
	}
	if sync {
		if err := fdatasync(w.f); err != nil {
			return w.undo(off, err)
		}
	}
	if mapped {
		at := off
		for _, p := range batch {
			if !p.marker {
				n := int64(len(p.prep.value))
				p.prep.value = w.m[at+walHeader : at+walHeader+n : at+walHeader+n]
				at += walHeader + n
			}
		}
	}
	w.off = off + int64(size)
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
	if off+walHeader <= int64(len(w.m)) {
		copy(w.m[off:], zero[:])
		fdatasync(w.f)
	} else if _, zerr := w.f.WriteAt(zero[:], off); zerr == nil {
		fdatasync(w.f)
	}
	return err
}

// close unmaps and closes the log. The writer has stopped by then: no
// logged value aliases the mapping any more.
func (w *wal) close() error {
	var err error
	if w.m != nil {
		err = unix.Munmap(w.m)
		w.m = nil
	}
	return errors.Join(err, w.f.Close())
}

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
	// Not through a link: what the log holds is applied to the record.
	f, err := safefile.OpenFile(walPath(path), os.O_RDONLY)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return io.ReadAll(f)
}
