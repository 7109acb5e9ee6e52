package store

import (
	"bytes"
	"cmp"
	"encoding/json"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Query selects events. Filters combine with AND.
type Query struct {
	Session, Agent, Tool, Upstream, Outcome, Kind, Class, Method string // exact match; "" = any; Agent matches AgentKey
	Origin                                                       string // a collected event's origin store id or host (Origin.Matches); "" = any; not indexed

	Since, Until time.Time // zero = unbounded; inclusive Since, exclusive Until
	Newest       bool      // newest first (default oldest first)
	Limit        int       // default 100, max 10000
	Cursor       uint64    // from Page.Next; 0 = start
}

// Page is one page of a query's answer, in seq order (descending when
// Newest). Next is the seq the next page starts at, 0 when there is none.
type Page struct {
	Events []Event `json:"events"`
	Next   uint64  `json:"next,omitempty"`
}

var decodeHook func() // tests: count the events a query reads

const (
	defaultLimit = 100
	maxLimit     = 10000
)

// The filter fields, indexed ones first and those most selective first: a
// query walks the first index it has a value for. Method is not indexed: an
// index entry costs a page write in every commit, and method alone is
// rarely what an investigator asks for.
const (
	numFields = 8
	numIndex  = 7
)

var indexFields = [numIndex]byte{'s', 't', 'a', 'u', 'o', 'c', 'k'}

func (q *Query) fields() [numFields]string {
	return [...]string{q.Session, q.Tool, q.Agent, q.Upstream, q.Outcome, q.Class, q.Kind, q.Method}
}

func (e *Event) fields() [numFields]string {
	return [...]string{e.Session, e.Tool, AgentKey(e.Agent), e.Upstream, e.Outcome, e.Class, e.Kind, e.Method}
}

// AgentKey is the value an agent is indexed and queried by: its configured
// id, else its name, else the client name it claims.
func AgentKey(a *Agent) string {
	if a == nil {
		return ""
	}
	return cmp.Or(a.ID, a.Name, a.ClientName)
}

// AgentLabel is the name a person knows an agent by, for every place that
// shows one (the CLI, the console, SIEM records, rollback histories): its
// configured name, else its id, else the client name it claims; "" when
// none is known. It is for showing; queries take AgentKey, which puts the id
// first because an id is configured to be unique and a name need not be.
func AgentLabel(a *Agent) string {
	if a == nil {
		return ""
	}
	return cmp.Or(a.Name, a.ID, a.ClientName)
}

// Get returns the event with seq, or an error wrapping ErrNotFound.
func (s *Store) Get(seq uint64) (*Event, error) {
	var ev *Event
	err := s.view(func(tx *bolt.Tx) error {
		var v []byte
		if b := tx.Bucket(bEvents); b != nil {
			v = b.Get(u64(seq))
		}
		if v == nil {
			return fmt.Errorf("event %d: %w", seq, ErrNotFound)
		}
		ev = new(Event)
		if err := decodeEvent(seq, v, ev); err != nil {
			return fmt.Errorf("event %d: %w", seq, err)
		}
		return nil
	})
	return ev, err
}

// Query returns one page of the events matching q. It reads the page (and
// the next match, to fill in Next) through the most selective index q
// names, checking the other filters on each event.
func (s *Store) Query(q Query) (Page, error) {
	limit := q.Limit
	if limit <= 0 {
		limit = defaultLimit
	}
	limit = min(limit, maxLimit)
	page := Page{Events: []Event{}}
	err := s.view(func(tx *bolt.Tx) error {
		events := tx.Bucket(bEvents)
		k, _ := lastOf(events)
		if k == nil {
			return nil
		}
		_, skew := readClock(tx.Bucket(bMeta))

		// Walk the seqs lo..hi.
		lo, hi := uint64(1), seqOf(k)
		if q.Cursor != 0 {
			if q.Newest {
				hi = min(hi, q.Cursor)
			} else {
				lo = max(lo, q.Cursor)
			}
		}
		if !q.Since.IsZero() {
			lo = max(lo, firstFrom(events.Cursor(), hi, q.Since, skew))
		}
		if !q.Until.IsZero() {
			hi = min(hi, lastBefore(events.Cursor(), hi, q.Until, skew))
		}
		if lo > hi {
			return nil
		}

		want := q.fields()
		next := walk(tx, events, want, lo, hi, q.Newest)
		for seq, data := next(); data != nil; seq, data = next() {
			if decodeHook != nil {
				decodeHook()
			}
			var ev Event
			bodies, err := decodeLean(seq, data, &ev)
			if err != nil {
				return fmt.Errorf("event %d: %w", seq, err)
			}
			if q.beyond(&ev, skew) {
				break
			}
			if !q.match(&ev, &want) {
				continue
			}
			if len(page.Events) == limit {
				page.Next = seq
				break
			}
			if err := decodeBodies(bodies, &ev); err != nil {
				return fmt.Errorf("event %d: %w", seq, err)
			}
			page.Events = append(page.Events, ev)
		}
		return nil
	})
	return page, err
}

func (q *Query) match(e *Event, want *[numFields]string) bool {
	got := e.fields()
	for i, v := range want {
		if v != "" && v != got[i] {
			return false
		}
	}
	if q.Origin != "" && !e.Origin.Matches(q.Origin) {
		return false
	}
	return (q.Since.IsZero() || !e.Time.Before(q.Since)) &&
		(q.Until.IsZero() || e.Time.Before(q.Until))
}

// beyond reports that no event further along the walk can be in the time
// range (the package documentation explains time_skew).
func (q *Query) beyond(e *Event, skew time.Duration) bool {
	if q.Newest {
		return !q.Since.IsZero() && e.Time.Add(skew).Before(q.Since)
	}
	return !q.Until.IsZero() && !e.Time.Before(q.Until.Add(skew))
}

// firstFrom returns a seq such that every event before it is older than
// since, by binary search on seqs 1..hi.
func firstFrom(c *bolt.Cursor, hi uint64, since time.Time, skew time.Duration) uint64 {
	// An event older than since - skew has only older ones before it.
	return split(c, hi, func(t time.Time, ok bool) bool { return ok && t.Add(skew).Before(since) })
}

// lastBefore returns a seq such that every event after it is at or after
// until, by binary search on seqs 1..hi.
func lastBefore(c *bolt.Cursor, hi uint64, until time.Time, skew time.Duration) uint64 {
	// An event at or after until + skew has only later ones after it.
	return split(c, hi, func(t time.Time, ok bool) bool { return !ok || t.Before(until.Add(skew)) }) - 1
}

// split returns the seq b in 1..hi+1 where, by binary search on seqs 1..hi,
// the events turn from early to not. Times are not ordered, so what that
// promises depends on early: if an early event has only early ones before
// it (firstFrom), every event before b is early; if a late one has only
// late ones after it (lastBefore), every event from b on is late. An event
// whose time cannot be read is given to whichever side keeps it in range.
func split(c *bolt.Cursor, hi uint64, early func(t time.Time, ok bool) bool) uint64 {
	lo, top := uint64(0), hi+1
	for top-lo > 1 {
		mid := lo + (top-lo)/2
		k, v := c.Seek(u64(mid))
		if k == nil || seqOf(k) >= top {
			top = mid
			continue
		}
		if early(eventTime(v)) {
			lo = seqOf(k)
		} else {
			top = mid // no events between mid and k
		}
	}
	return lo + 1
}

var timeField = []byte(`,"time":"`)

// eventTime reads the time of a stored event without decoding all of it:
// the top-level time is the first `,"time":"` (a quote inside a JSON string
// is escaped, and nested objects come after it).
func eventTime(data []byte) (time.Time, bool) {
	if st, err := parseStored(data); err == nil {
		data = st.json
	}
	if i := bytes.Index(data, timeField); i >= 0 {
		rest := data[i+len(timeField):]
		if j := bytes.IndexByte(rest, '"'); j >= 0 {
			if t, err := time.Parse(time.RFC3339Nano, string(rest[:j])); err == nil {
				return t, true
			}
		}
	}
	var e struct {
		Time time.Time `json:"time"`
	}
	if json.Unmarshal(data, &e) != nil {
		return time.Time{}, false
	}
	return e.Time, true
}

// walk returns an iterator over the stored events with seq in lo..hi, in
// seq order (descending when newest), through the first index want names,
// else through all events. It returns nil data at the end.
func walk(tx *bolt.Tx, events *bolt.Bucket, want [numFields]string, lo, hi uint64, newest bool) func() (uint64, []byte) {
	var prefixes [][]byte
	for i, v := range want[:numIndex] {
		if v != "" {
			prefixes = append(prefixes, indexPrefix(indexFields[i], v))
		}
	}
	if len(prefixes) == 0 {
		c, start := events.Cursor(), true
		return func() (uint64, []byte) {
			var k, v []byte
			switch {
			case start && newest:
				k, v = seekLE(c, u64(hi))
			case start:
				k, v = c.Seek(u64(lo))
			case newest:
				k, v = c.Prev()
			default:
				k, v = c.Next()
			}
			start = false
			if k == nil || seqOf(k) < lo || seqOf(k) > hi {
				return 0, nil
			}
			return seqOf(k), v
		}
	}
	idx := tx.Bucket(bIndex)
	if idx == nil {
		return func() (uint64, []byte) { return 0, nil }
	}
	return intersect(idx, events, prefixes, lo, hi, newest)
}

// intersect walks the seqs in lo..hi that are in every index prefix names
// (a leapfrog join: each cursor seeks to the furthest seq any of them is
// at), reading postings only, and the events of the matches. With one
// prefix it is a plain walk of that value's postings.
func intersect(idx, events *bolt.Bucket, prefixes [][]byte, lo, hi uint64, newest bool) func() (uint64, []byte) {
	curs := make([]*postingCursor, len(prefixes))
	for i := range curs {
		curs[i] = newPostingCursor(idx, prefixes[i])
	}
	target, done := lo, false
	if newest {
		target = hi
	}
	// at positions cursor i on its first seq at or after target (at or
	// before, when newest); ok is false when it has none in lo..hi.
	at := func(i int, target uint64) (uint64, bool) {
		var seq uint64
		var ok bool
		if newest {
			seq, ok = curs[i].seekLE(target)
		} else {
			seq, ok = curs[i].seekGE(target)
		}
		return seq, ok && seq >= lo && seq <= hi
	}
	return func() (uint64, []byte) {
		for !done {
			agree := true
			for i := range curs {
				seq, ok := at(i, target)
				if !ok {
					done = true
					return 0, nil
				}
				if seq != target {
					target, agree = seq, false
					break
				}
			}
			if !agree {
				continue
			}
			seq := target
			if newest {
				done = seq == lo
				target--
			} else {
				done = seq == hi
				target++
			}
			if v := events.Get(u64(seq)); v != nil {
				return seq, v
			}
		}
		return 0, nil
	}
}
