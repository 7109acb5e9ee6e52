package ingest

import (
	"bytes"
	"errors"
	"io"
	"strconv"
)

// sseEvent is one dispatched server-sent event.
type sseEvent struct {
	ID        string // the event's id field, "" when it had none
	Name      string // the event field; "" means "message"
	Data      []byte // the data lines joined with '\n'
	Truncated bool   // Data was longer than the parser's bound and holds only its first bound+1 bytes
}

// sseParser reads a text/event-stream incrementally, as the WHATWG
// specification says: lines end with CRLF, LF or CR; a line starting with ':'
// is a comment; "field: value" loses one space after the colon; a blank line
// dispatches the event; an event without data is not dispatched; whatever
// is pending at the end of the stream is discarded. Memory is bounded: a
// line or an event's data longer than max is cut to max+1 bytes (so the
// receiver can tell) instead of growing.
type sseParser struct {
	max int

	line     []byte
	lineLong bool
	skipLF   bool // the previous byte was CR: a following LF belongs to it
	started  bool // the first line (which may carry a BOM) is behind us

	data    []byte
	hasData bool
	long    bool
	name    string
	id      string
	fields  bool // a field of the current event has been seen
	lineLen int  // bytes of the current line so far (including beyond the bound)
}

func newSSEParser(max int) *sseParser {
	if max <= 0 {
		max = DefaultMaxMessageBytes
	}
	return &sseParser{max: max}
}

// feed parses b. emit is called for each dispatched event with the offset in
// b just past the line ending that dispatched it; when emit returns false
// feed stops there and returns that offset and false. Otherwise it returns
// len(b) and true.
func (p *sseParser) feed(b []byte, emit func(ev sseEvent, end int) bool) (int, bool) {
	off := 0
	for off < len(b) {
		if p.skipLF {
			p.skipLF = false
			if b[off] == '\n' {
				off++
				continue
			}
		}
		i := bytes.IndexAny(b[off:], "\r\n")
		if i < 0 {
			p.appendLine(b[off:])
			return len(b), true
		}
		p.appendLine(b[off : off+i])
		if b[off+i] == '\r' {
			p.skipLF = true
		}
		off += i + 1
		if ev, ok := p.endLine(); ok && emit != nil && !emit(ev, off) {
			return off, false
		}
	}
	return len(b), true
}

func (p *sseParser) appendLine(b []byte) {
	p.lineLen += len(b)
	room := p.max + 64 - len(p.line) // room for "data: " and the like beyond max
	if len(b) > room {
		b = b[:max(room, 0)]
		p.lineLong = true
	}
	p.line = append(p.line, b...)
}

// pending reports whether the parser is inside an event or a line: bytes
// added now would join it.
func (p *sseParser) pending() bool {
	return p.lineLen > 0 || p.fields
}

func (p *sseParser) endLine() (sseEvent, bool) {
	line := p.line
	if !p.started {
		p.started = true
		line = bytes.TrimPrefix(line, []byte("\xEF\xBB\xBF"))
	}
	p.line = p.line[:0]
	long := p.lineLong
	p.lineLong = false
	p.lineLen = 0
	if len(line) == 0 {
		return p.dispatch()
	}
	if line[0] == ':' {
		return sseEvent{}, false
	}
	field, value := line, []byte(nil)
	if i := bytes.IndexByte(line, ':'); i >= 0 {
		field, value = line[:i], line[i+1:]
		if len(value) > 0 && value[0] == ' ' {
			value = value[1:]
		}
	}
	switch string(field) {
	case "data":
		p.fields = true
		if p.hasData {
			p.addData([]byte{'\n'})
		}
		p.hasData = true
		p.addData(value)
		if long {
			p.long = true
		}
	case "event":
		p.fields = true
		p.name = string(value)
	case "id":
		p.fields = true
		if bytes.IndexByte(value, 0) < 0 {
			p.id = string(value)
		}
	default: // retry and unknown fields: nothing to keep
		p.fields = true
	}
	return sseEvent{}, false
}

func (p *sseParser) addData(b []byte) {
	room := p.max + 1 - len(p.data)
	if len(b) > room {
		b = b[:max(room, 0)]
		p.long = true
	}
	p.data = append(p.data, b...)
}

func (p *sseParser) dispatch() (sseEvent, bool) {
	ev := sseEvent{ID: p.id, Name: p.name, Data: p.data, Truncated: p.long || len(p.data) > p.max}
	ok := p.hasData
	p.data, p.hasData, p.long, p.name, p.id, p.fields = nil, false, false, "", "", false
	return ev, ok
}

// errEventRefused ends a tapped stream whose event the gateway would not
// deliver (its record could not be written).
var errEventRefused = errors.New("mcptrail: event refused")

// sseTap passes an event stream through unchanged and unbuffered while
// handing each event to onEvent as it completes. onEvent runs before Read
// returns the bytes that complete the event, so an event is recorded before
// the client can act on it; if onEvent returns false the tap withholds the
// line ending that would dispatch the event and ends the stream with
// errEventRefused. When the source ends (io.EOF or an error), onEnd says
// what to append — synthesized events, for example — before the tap reports
// io.EOF; it is told whether it may append (the stream is between events).
type sseTap struct {
	src     io.ReadCloser
	p       *sseParser
	onEvent func(sseEvent) bool
	onEnd   func(err error, atBoundary bool) []byte

	tail  []byte
	ended bool
	err   error
	sawID bool // some event carried an id: the client may resume the stream
}

func newSSETap(src io.ReadCloser, max int, onEvent func(sseEvent) bool, onEnd func(error, bool) []byte) *sseTap {
	return &sseTap{src: src, p: newSSEParser(max), onEvent: onEvent, onEnd: onEnd}
}

func (t *sseTap) Read(b []byte) (int, error) {
	if t.ended {
		if len(t.tail) > 0 {
			n := copy(b, t.tail)
			t.tail = t.tail[n:]
			return n, nil
		}
		return 0, t.err
	}
	n, err := t.src.Read(b)
	if n > 0 {
		m, ok := t.p.feed(b[:n], func(ev sseEvent, end int) bool {
			if ev.ID != "" {
				t.sawID = true
			}
			if t.onEvent == nil || t.onEvent(ev) {
				return true
			}
			return false
		})
		if !ok {
			// Withhold the line ending that dispatches the refused event:
			// without it the client never sees the event.
			t.finish(errEventRefused)
			t.err = errEventRefused
			return m - 1, nil
		}
	}
	if err != nil {
		t.finish(err)
		if n > 0 {
			return n, nil
		}
		return t.Read(b)
	}
	return n, nil
}

// finish ends the tap once: onEnd decides what to append.
func (t *sseTap) finish(err error) {
	if t.ended {
		return
	}
	t.ended = true
	t.err = io.EOF
	if t.onEnd != nil {
		t.tail = t.onEnd(err, !t.p.pending())
	}
}

// Close closes the source. A stream closed before its end (the client went
// away, the proxy gave up) still runs onEnd, with io.ErrUnexpectedEOF. Like
// any response body, a tap is read and closed by one goroutine.
func (t *sseTap) Close() error {
	if !t.ended {
		t.finish(io.ErrUnexpectedEOF)
	}
	return t.src.Close()
}

// appendSSEEvent encodes one message event. The data never contains a raw
// line break in practice (JSON-RPC messages from stdio are one line; ours are
// compact), but a multi-line payload is split into data lines all the same.
func appendSSEEvent(buf []byte, id string, data []byte) []byte {
	if id != "" {
		buf = append(buf, "id: "...)
		buf = append(buf, id...)
		buf = append(buf, '\n')
	}
	buf = append(buf, "event: message\n"...)
	for {
		i := bytes.IndexAny(data, "\r\n")
		if i < 0 {
			break
		}
		buf = append(buf, "data: "...)
		buf = append(buf, data[:i]...)
		buf = append(buf, '\n')
		if data[i] == '\r' && i+1 < len(data) && data[i+1] == '\n' {
			i++
		}
		data = data[i+1:]
	}
	buf = append(buf, "data: "...)
	buf = append(buf, data...)
	return append(buf, '\n', '\n')
}

// eventID formats the id of event idx of stream sid; parseEventID reverses it.
func eventID(sid string, idx int) string { return sid + "_" + strconv.Itoa(idx) }

func parseEventID(s string) (sid string, idx int, ok bool) {
	i := bytes.LastIndexByte([]byte(s), '_')
	if i <= 0 {
		return "", 0, false
	}
	n, err := strconv.Atoi(s[i+1:])
	if err != nil || n < 0 {
		return "", 0, false
	}
	return s[:i], n, true
}
