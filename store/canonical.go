package store

import (
	"encoding/json"
	"strconv"
	"sync"
	"time"
)

// canonical is json.Marshal(e) for an event with compacted raw fields (see
// appendCanonical), in *buf, a buffer to give back with recycleCanonical
// once it has been compressed and hashed: it is needed for no longer. The
// pool's own pointer goes back: putting back a new one cost an allocation
// per buffer, two per event.
func canonical(e *Event) (buf *[]byte, err error) {
	buf = canonBufs.Get().(*[]byte)
	*buf, err = appendCanonical((*buf)[:0], e)
	return buf, err
}

var canonBufs = sync.Pool{New: func() any { return new([]byte) }}

// maxRecycled is the largest buffer kept for reuse: one large body must not
// hold its size in the pool.
const maxRecycled = 64 << 10

func recycleCanonical(buf *[]byte) {
	if cap(*buf) <= maxRecycled {
		canonBufs.Put(buf)
	}
}

// appendCanonical appends json.Marshal(e) to dst, byte for byte, for an
// event whose raw fields compactRaw has rewritten (they are then what
// Marshal would write, and are copied as they are). It is the writer's
// encoder: Marshal's reflection and its second pass over every body (it
// compacts a RawMessage each time it writes one) were about 40 % of the
// store's CPU per event. Verify still hashes json.Marshal's output, so a
// difference between the two could not go unnoticed; FuzzCanonical checks
// them against each other.
func appendCanonical(dst []byte, e *Event) ([]byte, error) {
	w := canonWriter{b: dst}
	w.b = strconv.AppendUint(append(w.b, `{"seq":`...), e.Seq, 10)
	w.str(`,"id":`, e.ID)
	w.time(`,"time":`, e.Time)
	w.int(`,"duration_ns":`, e.DurationNS)
	w.str(`,"kind":`, e.Kind)
	w.optStr(`,"session":`, e.Session)
	w.optStr(`,"upstream":`, e.Upstream)
	w.optStr(`,"transport":`, e.Transport)
	w.optStr(`,"protocol_version":`, e.ProtocolVersion)
	w.optStr(`,"from":`, e.From)
	w.optStr(`,"method":`, e.Method)
	w.optStr(`,"tool":`, e.Tool)
	w.raw(`,"jsonrpc_id":`, e.JSONRPCID)
	w.uint(`,"call":`, e.Call)
	w.uint(`,"logical_call":`, e.LogicalCall)
	if a := e.Agent; a != nil {
		w.open(`,"agent":`)
		w.optStr(`"id":`, a.ID)
		w.optStr(`"name":`, a.Name)
		w.optStr(`"client_name":`, a.ClientName)
		w.optStr(`"client_version":`, a.ClientVersion)
		w.close()
	}
	if p := e.Principal; p != nil {
		w.open(`,"principal":`)
		w.optStr(`"subject":`, p.Subject)
		w.optStr(`"issuer":`, p.Issuer)
		w.optStr(`"credential_id":`, p.CredentialID)
		w.optStr(`"kind":`, p.Kind)
		if p.Verified {
			w.field(`"verified":`)
			w.b = append(w.b, "true"...)
		}
		w.close()
	}
	w.optStr(`,"on_behalf_of":`, e.OnBehalfOf)
	if t := e.Task; t != nil {
		w.open(`,"task":`)
		w.optStr(`"id":`, t.ID)
		w.optStr(`"name":`, t.Name)
		w.optStr(`"workflow":`, t.Workflow)
		w.optStr(`"trace_id":`, t.TraceID)
		w.optStr(`"span_id":`, t.SpanID)
		w.close()
	}
	if a := e.Authorization; a != nil {
		w.b = strconv.AppendBool(append(w.b, `,"authorization":{"reviewed":`...), a.Reviewed)
		w.optStr(`,"approver":`, a.Approver)
		w.optStr(`,"method":`, a.Method)
		if !a.Time.IsZero() {
			w.time(`,"time":`, a.Time)
		}
		w.uint(`,"approval":`, a.Approval)
		w.b = append(w.b, '}')
	}
	w.raw(`,"params":`, e.Params)
	w.raw(`,"result":`, e.Result)
	w.raw(`,"error":`, e.Error)
	w.optStr(`,"outcome":`, e.Outcome)
	if a := e.Annotations; a != nil {
		w.open(`,"annotations":`)
		w.optBool(`"read_only":`, a.ReadOnly)
		w.optBool(`"destructive":`, a.Destructive)
		w.optBool(`"idempotent":`, a.Idempotent)
		w.optBool(`"open_world":`, a.OpenWorld)
		w.close()
	}
	w.optStr(`,"class":`, e.Class)
	w.optStr(`,"class_source":`, e.ClassSource)
	w.optStr(`,"prestate":`, e.Prestate)
	w.uint(`,"reverts":`, e.Reverts)
	w.optStr(`,"detail":`, e.Detail)
	w.int(`,"size":`, int64(e.Size))
	if f := e.Refusal; f != nil {
		w.b = appendJSONString(append(w.b, `,"refusal":{"reason":`...), f.Reason)
		w.b = strconv.AppendInt(append(w.b, `,"status":`...), int64(f.Status), 10)
		w.optStr(`,"remote_addr":`, f.RemoteAddr)
		w.optStr(`,"http_method":`, f.HTTPMethod)
		w.optStr(`,"path":`, f.Path)
		w.optStr(`,"origin":`, f.Origin)
		w.optStr(`,"host":`, f.Host)
		w.optStr(`,"session_id":`, f.SessionID)
		w.int(`,"suppressed":`, f.Suppressed)
		w.b = append(w.b, '}')
	}
	if o := e.Origin; o != nil {
		w.b = appendJSONString(append(w.b, `,"origin":{"store":`...), o.Store)
		w.optStr(`,"host":`, o.Host)
		w.b = strconv.AppendUint(append(w.b, `,"seq":`...), o.Seq, 10)
		w.optStr(`,"hash":`, o.Hash)
		w.b = append(w.b, '}')
	}
	if a := e.Approval; a != nil {
		w.b = appendJSONString(append(w.b, `,"approval":{"rule":`...), a.Rule)
		w.b = appendJSONString(append(w.b, `,"params_sha256":`...), a.ParamsSHA256)
		w.b = appendJSONString(append(w.b, `,"policy":`...), a.Policy)
		w.int(`,"required":`, int64(a.Required))
		w.strs(`,"approvers":`, a.Approvers)
		if !a.Deadline.IsZero() {
			w.time(`,"deadline":`, a.Deadline)
		}
		w.optStr(`,"reason":`, a.Reason)
		w.strs(`,"resource":`, a.Resource)
		w.b = append(w.b, '}')
	}
	w.optStr(`,"prev_hash":`, e.PrevHash)
	w.optStr(`,"hash":`, e.Hash)
	return append(w.b, '}'), w.err
}

// canonWriter writes JSON as encoding/json does. Inside a nested object
// the first field written has no comma before it: open, field and close
// keep track of that.
type canonWriter struct {
	b      []byte
	nested bool // inside a nested object
	first  bool // no field written yet in it
	err    error
}

// open writes key and the brace of a nested object.
func (w *canonWriter) open(key string) {
	w.b, w.nested, w.first = append(append(w.b, key...), '{'), true, true
}

func (w *canonWriter) close() { w.b, w.nested = append(w.b, '}'), false }

// field writes key, with the comma before it unless it is the first of a
// nested object (keys at the top level carry their comma).
func (w *canonWriter) field(key string) {
	if w.nested && !w.first {
		w.b = append(w.b, ',')
	}
	w.first = false
	w.b = append(w.b, key...)
}

func (w *canonWriter) str(key, v string) {
	w.field(key)
	w.b = appendJSONString(w.b, v)
}

func (w *canonWriter) optStr(key, v string) {
	if v != "" {
		w.str(key, v)
	}
}

func (w *canonWriter) optBool(key string, v *bool) {
	if v != nil {
		w.field(key)
		w.b = strconv.AppendBool(w.b, *v)
	}
}

func (w *canonWriter) int(key string, v int64) {
	if v != 0 {
		w.field(key)
		w.b = strconv.AppendInt(w.b, v, 10)
	}
}

func (w *canonWriter) uint(key string, v uint64) {
	if v != 0 {
		w.field(key)
		w.b = strconv.AppendUint(w.b, v, 10)
	}
}

// strs writes a list of strings, omitted when empty (omitempty).
func (w *canonWriter) strs(key string, v []string) {
	if len(v) == 0 {
		return
	}
	w.field(key)
	w.b = append(w.b, '[')
	for i, s := range v {
		if i > 0 {
			w.b = append(w.b, ',')
		}
		w.b = appendJSONString(w.b, s)
	}
	w.b = append(w.b, ']')
}

func (w *canonWriter) raw(key string, v json.RawMessage) {
	if len(v) > 0 {
		w.field(key)
		w.b = append(w.b, v...)
	}
}

// time writes t as Time.MarshalJSON does, failing as it does on a time
// RFC 3339 cannot express.
func (w *canonWriter) time(key string, t time.Time) {
	w.field(key)
	b, err := t.AppendText(append(w.b, '"'))
	if err != nil && w.err == nil {
		w.err = err
	}
	w.b = append(b, '"')
}

// appendJSONString appends s quoted as encoding/json quotes it (HTML
// characters escaped). Strings of plain ASCII, nearly all of them here
// (ids, names, kinds), are copied; any other goes through json.Marshal,
// whose rules for control characters, invalid UTF-8 and U+2028 are then
// followed exactly.
func appendJSONString(dst []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= 0x80 || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			q, _ := json.Marshal(s) // a string always marshals
			return append(dst, q...)
		}
	}
	dst = append(dst, '"')
	dst = append(dst, s...)
	return append(dst, '"')
}

// AppendJSON appends e's JSON to dst, as json.Marshal writes it: what a
// wrap hands the daemon, without Marshal's reflection on the call's path.
// e's raw fields must be valid JSON (ValidRaw); they are copied as they
// are, so the output is Marshal's byte for byte only once they are
// compact, and valid JSON either way.
func AppendJSON(dst []byte, e *Event) ([]byte, error) { return appendCanonical(dst, e) }
