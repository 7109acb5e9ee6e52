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

// lineBuffer is the reader's buffer: a line that fits is returned from it
// without a copy; a longer one is gathered in LineReader.buf. Each stdio
// session has two readers. At 64 KB they were 128 KB of every session's
// heap, which in the gateway benchmark (client, gateway and store in one
// heap of a few MB) brought the collector round 4–5 % more often; a
// megabyte message now takes 64 reads instead of 16.
const lineBuffer = 16 << 10

// NewLineReader reads lines of at most max bytes (without the newline).
func NewLineReader(r io.Reader, max int) *LineReader {
	if max <= 0 {
		max = DefaultMaxMessageBytes
	}
	return &LineReader{r: bufio.NewReaderSize(r, lineBuffer), max: max}
}

// Next returns the next non-empty line, without its line ending. A line
// longer than the limit is returned cut to max+1 bytes (so the caller can tell
// it was too long) and the rest of it is discarded unread into memory. The
// returned slice is valid until the next call. At the end of input Next
// returns io.EOF; a final line without a newline is still returned first.
func (l *LineReader) Next() ([]byte, error) {
	for {
		line, err := l.r.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) {
			line, err = l.gather(line)
		}
		if err != nil && !(err == io.EOF && len(line) > 0) {
			return nil, err
		}
		if len(bytes.TrimSuffix(line, []byte("\n"))) > l.max {
			return line[:l.max+1], nil
		}
		line = bytes.TrimRight(line, "\r\n")
		if len(bytes.TrimSpace(line)) == 0 {
			continue
		}
		return line, nil
	}
}

// gather reads the rest of a line longer than the buffer, of which first
// is the start, into l.buf, keeping at most max+1 bytes of it: a line cut
// there has no newline left, so it shows as over the limit.
func (l *LineReader) gather(first []byte) ([]byte, error) {
	keep := l.max + 1
	l.buf = append(l.buf[:0], first[:min(len(first), keep)]...)
	for {
		chunk, err := l.r.ReadSlice('\n')
		if room := keep - len(l.buf); room > 0 {
			l.buf = append(l.buf, chunk[:min(len(chunk), room)]...)
		}
		if !errors.Is(err, bufio.ErrBufferFull) {
			return l.buf, err
		}
	}
}
