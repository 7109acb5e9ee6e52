package ingest

import (
	"bufio"
	"bytes"
	"errors"
	"io"
)

// LineReader reads newline-delimited messages (MCP's stdio framing) with a
// bound on the memory one message may take. The SDK's ioConn decodes and
// re-encodes every message; a gateway that must relay bytes unchanged needs
// the raw lines, hence this reader.
type LineReader struct {
	r   *bufio.Reader
	max int
	buf []byte
}

// NewLineReader reads lines of at most max bytes (without the newline).
func NewLineReader(r io.Reader, max int) *LineReader {
	if max <= 0 {
		max = DefaultMaxMessageBytes
	}
	return &LineReader{r: bufio.NewReaderSize(r, 64<<10), max: max}
}

// Next returns the next non-empty line, without its line ending. A line
// longer than the limit is returned cut to max+1 bytes (so the caller can tell
// it was too long) and the rest of it is discarded unread into memory. The
// returned slice is valid until the next call. At the end of input Next
// returns io.EOF; a final line without a newline is still returned first.
func (l *LineReader) Next() ([]byte, error) {
	for {
		l.buf = l.buf[:0]
		over := false
		for {
			chunk, err := l.r.ReadSlice('\n')
			if !over {
				if room := l.max + 1 - len(l.buf); len(chunk) > room {
					l.buf = append(l.buf, chunk[:room]...)
					over = true
				} else {
					l.buf = append(l.buf, chunk...)
				}
			}
			if errors.Is(err, bufio.ErrBufferFull) {
				continue
			}
			if err != nil && !(err == io.EOF && len(l.buf) > 0) {
				return nil, err
			}
			break
		}
		line := l.buf
		if !over {
			line = bytes.TrimRight(line, "\r\n")
		}
		if !over && len(bytes.TrimSpace(line)) == 0 {
			continue
		}
		return line, nil
	}
}
