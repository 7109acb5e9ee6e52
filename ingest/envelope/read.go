package envelope

import "bytes"

// Read is one message (or JSON-RPC batch) as the gateway reads it, kept
// with the bytes it was read from: Check's verdict on the whole and
// Parse's reading of each element. A transport reads a message once, to
// route it, and hands the Read to the Session, which records and forwards
// the very bytes the reading was made of: a Read cannot be pointed at other
// bytes (its fields are unexported and only ReadMessage fills them), so the
// record can never describe a message other than the one that goes on.
type Read struct {
	raw      []byte
	maxDepth int
	maxBytes int
	tooBig   bool
	check    *Error
	batch    bool
	elems    []Element
	one      [1]Element // elems of a single message, without an allocation
}

// Element is one message of a Read: its bytes (a view of the Read's), and
// Parse's reading of them (Msg) or its refusal (Err).
type Element struct {
	raw []byte
	Msg Message
	Err *Error
}

// Raw is the element's bytes.
func (e *Element) Raw() []byte { return e.raw }

// ReadMessage reads raw (leading and trailing white space dropped) with
// Check's bounds: nesting deeper than maxDepth (<= 0: DefaultMaxDepth) is
// refused, and a message longer than maxBytes (<= 0: no bound) is not read
// at all — TooBig reports it, for the caller to refuse, so that no CPU is
// spent on a message refused for its size. The elements of a batch are read
// too, each with Parse.
func ReadMessage(raw []byte, maxDepth, maxBytes int) Read {
	if maxDepth <= 0 {
		maxDepth = DefaultMaxDepth
	}
	if maxBytes < 0 {
		maxBytes = 0
	}
	r := Read{raw: bytes.TrimSpace(raw), maxDepth: maxDepth, maxBytes: maxBytes}
	if len(r.raw) == 0 {
		return r
	}
	if maxBytes > 0 && len(r.raw) > maxBytes {
		r.tooBig = true
		return r
	}
	if r.check = Check(r.raw, maxDepth); r.check != nil {
		return r
	}
	if r.raw[0] != '[' {
		r.one[0] = element(r.raw)
		return r
	}
	r.batch = true
	for _, e := range Elements(r.raw) {
		r.elems = append(r.elems, element(e))
	}
	return r
}

func element(raw []byte) Element {
	m, err := Parse(raw)
	return Element{raw: raw, Msg: m, Err: err}
}

// Raw is the message's bytes, white space trimmed: what was read, and what
// is to be recorded and forwarded.
func (r *Read) Raw() []byte { return r.raw }

// ReadWith reports whether r was read with these bounds (as ReadMessage
// takes them): a reading made under other bounds must not stand in for
// one made under these.
func (r *Read) ReadWith(maxDepth, maxBytes int) bool {
	if maxDepth <= 0 {
		maxDepth = DefaultMaxDepth
	}
	return r.maxDepth == maxDepth && r.maxBytes == max(maxBytes, 0)
}

// TooBig reports a message that was not read for its size.
func (r *Read) TooBig() bool { return r.tooBig }

// Check is Check's refusal of the whole message, or nil.
func (r *Read) Check() *Error { return r.check }

// Batch reports whether the message is a JSON-RPC batch (an array Check
// accepted).
func (r *Read) Batch() bool { return r.batch }

// Elements are the messages read: the one message, or a batch's elements
// (none for an empty batch). nil when Check refused the message, or it was
// empty or too big.
func (r *Read) Elements() []Element {
	if r.batch {
		return r.elems
	}
	if len(r.raw) == 0 || r.tooBig || r.check != nil {
		return nil
	}
	return r.one[:]
}

// Valid reports whether Check accepted the message and every element
// parsed (an empty batch has none to fail): the message is one the Session
// takes as JSON-RPC, though it may still refuse it for what it asks.
func (r *Read) Valid() bool {
	els := r.Elements()
	if els == nil && !r.batch {
		return false
	}
	for i := range els {
		if els[i].Err != nil {
			return false
		}
	}
	return true
}
