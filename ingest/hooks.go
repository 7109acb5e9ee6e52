package ingest

import (
	"encoding/json"

	"github.com/mcptrail/mcptrail/store"
)

// Recorder takes the gateway's events. In the daemon it appends to the store;
// in `mcptrail wrap` it sends them over the daemon's socket.
type Recorder interface {
	// Record appends ev and sets ev.Seq. With durable set, under strict
	// durability, it returns only once the event will outlive a crash: a
	// request synced to disk before it is forwarded; the outcome of an
	// answered call (KindCall) written to the store's log before the answer
	// is forwarded, which a crash of the daemon cannot undo (its sync rides
	// the next request's). Otherwise it may return as soon as the event has
	// its place in the sequence.
	Record(ev *store.Event, durable bool) (uint64, error)
}

// Hooks change what the gateway does with a call without touching the pumps.
// Every field may be nil.
type Hooks struct {
	// Redact removes secrets from params and results before they are recorded.
	Redact func(json.RawMessage) json.RawMessage
	// Classify names a tool call's class (read, write, delete, unknown) from
	// the upstream's name and the name the server reports (serverInfo), as
	// Capture looks its rule up. It wins over the server's annotations,
	// which are only hints.
	Classify func(upstream, serverName, tool string, ann *store.Annotations) string
	// Capture runs after a client's tools/call is recorded and before it is
	// forwarded, with the session's upstream connection (Conn) for
	// reads of the state the call will change. It may set ev.Prestate, which
	// the call's outcome event then carries. An error refuses the call: the
	// client gets a JSON-RPC error and the call's outcome is "denied".
	Capture func(ev *store.Event, up Conn) error
	// Approve runs after Capture, for a client's tools/call: nil lets the
	// call go on (no approval rule holds it, which must cost next to
	// nothing); a Hold keeps the call from the server until it is decided.
	// params are the call's params as sent (not redacted): what an
	// approval binds to. ev is the recorded request (seq set).
	Approve func(ev *store.Event, params json.RawMessage, serverName string) Hold
}

// Hold is a call an approval rule holds (Hooks.Approve).
type Hold interface {
	// Wait blocks until the call is decided: an authorization when it is
	// approved, else an error whose text the client reads ("denied by
	// SHA256:… at 03:12:00Z: reason").
	Wait() (*store.Authorization, error)
	// Cancel ends the hold because the session ended or the client
	// cancelled the call: it is refused and never forwarded; Wait returns.
	Cancel(reason string)
}
