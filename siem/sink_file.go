package siem

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/mcptrail/mcptrail/internal/safefile"
)

// fileSink appends one record per line to a file, rotating it by size:
// PATH → PATH.1 → PATH.2 …, keeping max_files old files. Events count as
// delivered once fsynced: the sink is a Settler that syncs at most every
// sync interval (default 1s), so that its fsyncs do not queue the store's
// own behind them on a shared disk journal.
type fileSink struct {
	path      string
	maxSize   int64 // 0: never rotate
	maxFiles  int
	syncEvery time.Duration
	f         *os.File
	size      int64
	written   uint64 // seq of the last event written
	synced    uint64 // seq of the last event fsynced
	syncedAt  time.Time
}

const defaultMaxFileSize = 100 << 20

// fileParams are a file sink's options besides the common ones.
var fileParams = []string{"max_size", "max_files", "sync"}

// parseFileURL reads file:///PATH?max_size=100MB&max_files=5&sync=1s.
func parseFileURL(s *SinkSpec) error {
	if err := s.parseCommon(fileParams, cmp.Or(s.query.Get("format"), "jsonl")); err != nil {
		return err
	}
	u := s.u
	if u.Host != "" && u.Host != "localhost" {
		return s.errorf("want file:///ABSOLUTE/PATH (three slashes)")
	}
	if u.Path == "" || !filepath.IsAbs(u.Path) {
		return s.errorf("want an absolute path, as in file:///var/log/mcptrail/events.jsonl")
	}
	if v := s.query.Get("max_size"); v != "" {
		if _, err := parseSize(v); err != nil {
			return s.errorf("max_size: %v", err)
		}
	}
	if v := s.query.Get("max_files"); v != "" {
		if n, err := strconv.Atoi(v); err != nil || n < 1 || n > 1000 {
			return s.errorf("max_files=%q: want 1 to 1000", v)
		}
	}
	if v := s.query.Get("sync"); v != "" {
		if d, err := time.ParseDuration(v); err != nil || d < 0 || d > time.Minute {
			return s.errorf("sync=%q: want a duration from 0s to 1m", v)
		}
	}
	return nil
}

func newFileSink(spec *SinkSpec) (*fileSink, error) {
	s := &fileSink{path: spec.u.Path, maxSize: defaultMaxFileSize, maxFiles: 5, syncEvery: time.Second}
	if v := spec.query.Get("sync"); v != "" {
		s.syncEvery, _ = time.ParseDuration(v)
	}
	if v := spec.query.Get("max_size"); v != "" {
		s.maxSize, _ = parseSize(v)
	}
	if v := spec.query.Get("max_files"); v != "" {
		s.maxFiles, _ = strconv.Atoi(v)
	}
	return s, nil
}

func (s *fileSink) open() error {
	if s.f != nil {
		return nil
	}
	if err := safefile.MkdirAll(filepath.Dir(s.path)); err != nil {
		return err
	}
	// Never through a link: a file sink often sits in a directory others
	// can reach, and the daemon may run as root.
	f, err := safefile.OpenFile(s.path, os.O_WRONLY|os.O_APPEND|os.O_CREATE)
	if err != nil {
		return err
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return err
	}
	s.f, s.size = f, fi.Size()
	return nil
}

func (s *fileSink) Send(_ context.Context, items []Item) error {
	if err := s.open(); err != nil {
		return err
	}
	var buf bytes.Buffer
	flush := func() error {
		if buf.Len() == 0 {
			return nil
		}
		n, err := s.f.Write(buf.Bytes())
		s.size += int64(n)
		buf.Reset()
		return err
	}
	for _, it := range items {
		line := int64(len(it.Body) + 1)
		if s.maxSize > 0 && s.size+int64(buf.Len())+line > s.maxSize && s.size+int64(buf.Len()) > 0 {
			if err := flush(); err != nil {
				return err
			}
			if err := s.rotate(); err != nil {
				return err
			}
		}
		buf.Write(it.Body)
		buf.WriteByte('\n')
	}
	if err := flush(); err != nil {
		return err
	}
	if len(items) > 0 {
		// max: a checkpoint (seq = its size) follows the events it covers.
		s.written = max(s.written, items[len(items)-1].Event.Seq)
	}
	return nil
}

// Settled implements Settler: it fsyncs what was written when the last
// sync is at least the sync interval old.
func (s *fileSink) Settled() (uint64, error) {
	if s.written == s.synced || s.f == nil || time.Since(s.syncedAt) < s.syncEvery {
		return s.synced, nil
	}
	if err := s.f.Sync(); err != nil {
		s.Reset()
		return 0, err
	}
	s.synced, s.syncedAt = s.written, time.Now()
	return s.synced, nil
}

// rotate closes the file and shifts the old ones along.
func (s *fileSink) rotate() error {
	if err := s.f.Sync(); err != nil {
		return err
	}
	if err := s.f.Close(); err != nil {
		return err
	}
	s.f = nil
	os.Remove(fmt.Sprintf("%s.%d", s.path, s.maxFiles))
	for i := s.maxFiles - 1; i >= 1; i-- {
		old := fmt.Sprintf("%s.%d", s.path, i)
		if _, err := os.Stat(old); err == nil {
			if err := os.Rename(old, fmt.Sprintf("%s.%d", s.path, i+1)); err != nil {
				return err
			}
		}
	}
	if err := os.Rename(s.path, s.path+".1"); err != nil {
		return err
	}
	return s.open()
}

func (s *fileSink) Reset() {
	if s.f != nil {
		s.f.Close()
		s.f = nil
	}
	s.written, s.synced = 0, 0
}

func (s *fileSink) Close() error {
	if s.f == nil {
		return nil
	}
	err := errors.Join(s.f.Sync(), s.f.Close())
	s.f = nil
	return err
}
