package collect

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/mcptrail/mcptrail/store"
)

// RulePrestate: a pre-state record refused (its bytes do not match its
// hash, no merged outcome names it, or it is malformed).
const RulePrestate = "collector.prestate"

// prestateRecord is a pre-state record decoded: the blob of the origin's
// call Seq, whose reference the call's outcome holds. Data is nil when the
// origin's sink withheld it as too large.
type prestateRecord struct {
	Origin string
	Seq    uint64
	Ref    string
	Size   int
	Data   []byte
}

// decodePrestate reads a record of kind prestate. It does not check the
// blob against its hash: that is the merger's, with the outcome's.
func decodePrestate(key, value []byte, h *headers) (*prestateRecord, error) {
	r := &prestateRecord{Origin: string(h.v[hOrigin]), Ref: string(h.v[hSHA256])}
	switch {
	case r.Origin == "" || len(r.Origin) > maxOriginID:
		return nil, fmt.Errorf("origin header of %d bytes: want 1 to %d", len(r.Origin), maxOriginID)
	case string(key) != r.Origin:
		return nil, fmt.Errorf("record key %.64q is not its origin header %q", key, r.Origin)
	}
	if _, err := hash32(strings.TrimPrefix(r.Ref, "sha256:")); err != nil || !strings.HasPrefix(r.Ref, "sha256:") {
		return nil, fmt.Errorf("sha256 header %.80q: want sha256: and 64 hex digits", r.Ref)
	}
	seq, err := strconv.ParseUint(string(h.v[hSeq]), 10, 64)
	if err != nil || seq == 0 {
		return nil, fmt.Errorf("seq header %.24q: want a positive integer", h.v[hSeq])
	}
	size, err := strconv.Atoi(string(h.v[hSize]))
	if err != nil || size < 0 || size > 1<<40 {
		return nil, fmt.Errorf("size header %.24q: want a byte count", h.v[hSize])
	}
	if len(value) > maxRecord {
		return nil, fmt.Errorf("pre-state of %d bytes", len(value))
	}
	if len(value) != 0 && len(value) != size {
		return nil, fmt.Errorf("pre-state of %d bytes, but its size header says %d", len(value), size)
	}
	r.Seq, r.Size = seq, size
	if len(value) != 0 {
		r.Data = value
	}
	return r, nil
}

// mergePrestate stores a shipped pre-state under the central seq of its
// call, if a merged outcome of that call names exactly these bytes; a
// withheld one leaves a note that says why it is missing. Anything else
// is an alert, and nothing is stored.
func (m *Merger) mergePrestate(key, value []byte, h *headers) error {
	r, err := decodePrestate(key, value, h)
	if err != nil {
		return m.alert(RulePrestate, severityHigh, string(h.v[hOrigin]), nil, 0, "pre-state record refused: "+err.Error(), value)
	}
	o := m.origins[r.Origin]
	refuse := func(why string) error {
		return m.alert(RulePrestate, severityHigh, r.Origin, o, r.Seq,
			fmt.Sprintf("origin %s: pre-state of call %d %s; not stored", r.Origin, r.Seq, why), value)
	}
	if o == nil {
		return refuse("from an origin none of whose events is merged")
	}
	if r.Data != nil && store.PrestateRef(r.Data) != r.Ref {
		return refuse("does not match its sha256 header (altered on the way)")
	}
	e, ok := o.known(r.Seq)
	if !ok || e.at == 0 {
		return refuse("names a call this collector does not know (not merged, or too old)")
	}
	want, pending := o.prestates[r.Seq]
	if !pending {
		// A redelivery of one already stored is a duplicate; anything else
		// names a call whose merged outcome holds no such pre-state.
		if have, err := m.st.Rollback().Prestate(e.at); err == nil && store.PrestateRef(have) == r.Ref {
			m.count(func(s *Stats) { s.Duplicates++ })
			return nil
		} else if err != nil && !errors.Is(err, store.ErrNotFound) {
			return err
		}
		if r.Data == nil {
			return nil // a withheld one redelivered (or never referenced): nothing to store
		}
		return refuse("is named by no merged outcome of that call")
	}
	if want != r.Ref {
		return refuse(fmt.Sprintf("is %.24s…, but the call's merged outcome names %.24s…", r.Ref, want))
	}
	if r.Data == nil {
		err = m.st.Rollback().WithholdPrestate(e.at, fmt.Sprintf("too large to ship from its origin (%d bytes; the sink's max_prestate is smaller)", r.Size))
	} else {
		_, err = m.st.Rollback().PutPrestate(e.at, r.Data)
	}
	if err != nil {
		return err
	}
	delete(o.prestates, r.Seq)
	m.count(func(s *Stats) { s.Prestates++ })
	return nil
}
