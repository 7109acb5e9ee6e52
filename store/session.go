package store

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"
)

// SessionQuery selects sessions, newest first.
type SessionQuery struct {
	Agent    string // AgentKey of the session's agent; "" = any
	Upstream string // "" = any
	Origin   string // a collected session's origin store id or host (Origin.Matches); "" = any
	Limit    int    // default 100, max 10000
	Cursor   string // the Session of the last summary of the previous page; "" = start
}

// SessionSummary is a gateway session as of its latest event, kept up to
// date as events are appended.
type SessionSummary struct {
	Session   string     `json:"session"`
	Upstream  string     `json:"upstream"`
	Transport string     `json:"transport,omitempty"`
	Agent     *Agent     `json:"agent"`
	Principal *Principal `json:"principal"`
	Task      *Task      `json:"task,omitempty"`
	Started   time.Time  `json:"started"`          // time of its first event
	Ended     time.Time  `json:"ended"`            // time of its session_end event; zero while open
	LastSeen  time.Time  `json:"last_seen"`        // time of its latest event
	Calls     int        `json:"calls"`            // requests from the client
	Writes    int        `json:"writes"`           // of those, class write or delete
	Errors    int        `json:"errors"`           // outcomes other than ok and input_required
	Alerts    int        `json:"alerts"`           // alert events naming the session
	Events    int        `json:"events"`           // all events of the session
	Origin    *Origin    `json:"origin,omitempty"` // a collected session's origin (store and host; no seq or hash)
}

// Session returns the summary of session id, or an error wrapping ErrNotFound.
func (s *Store) Session(id string) (*SessionSummary, error) {
	var sum *SessionSummary
	err := s.view(func(tx *bolt.Tx) error {
		var err error
		sum, err = getSession(tx.Bucket(bSessions), id)
		return err
	})
	return sum, err
}

// Sessions lists session summaries newest first (by Started). To page, pass
// the last summary's Session as the next query's Cursor.
func (s *Store) Sessions(q SessionQuery) ([]SessionSummary, error) {
	limit := q.Limit
	if limit <= 0 {
		limit = defaultLimit
	}
	limit = min(limit, maxLimit)
	out := []SessionSummary{}
	err := s.view(func(tx *bolt.Tx) error {
		sessions, byStart := tx.Bucket(bSessions), tx.Bucket(bByStart)
		if sessions == nil || byStart == nil {
			if q.Cursor != "" {
				return fmt.Errorf("session cursor %q: %w", q.Cursor, ErrNotFound)
			}
			return nil
		}
		c := byStart.Cursor()
		k, _ := c.First()
		if q.Cursor != "" {
			after, err := getSession(sessions, q.Cursor)
			if err != nil {
				return fmt.Errorf("session cursor: %w", err)
			}
			key := startKey(after.Started, after.Session)
			if k, _ = c.Seek(key); bytes.Equal(k, key) {
				k, _ = c.Next()
			}
		}
		for ; k != nil && len(out) < limit; k, _ = c.Next() {
			sum, err := getSession(sessions, string(k[8:]))
			if err != nil {
				return err
			}
			if (q.Agent == "" || q.Agent == AgentKey(sum.Agent)) && (q.Upstream == "" || q.Upstream == sum.Upstream) &&
				(q.Origin == "" || sum.Origin.Matches(q.Origin)) {
				out = append(out, *sum)
			}
		}
		return nil
	})
	return out, err
}

func getSession(b *bolt.Bucket, id string) (*SessionSummary, error) {
	var v []byte
	if b != nil {
		v = b.Get([]byte(id))
	}
	if v == nil {
		return nil, fmt.Errorf("session %q: %w", id, ErrNotFound)
	}
	sum := new(SessionSummary)
	if err := json.Unmarshal(v, sum); err != nil {
		return nil, fmt.Errorf("session %q: %w", id, err)
	}
	return sum, nil
}

// startKey orders sessions newest first, then by id. Flipping the sign bit
// makes the two's-complement Unix time sort as unsigned; inverting makes
// newer smaller.
func startKey(started time.Time, id string) []byte {
	k := binary.BigEndian.AppendUint64(nil, ^(uint64(started.UnixNano()) ^ 1<<63))
	return append(k, id...)
}

// loadSession returns e's session summary for update in this transaction,
// creating it (and its place in sessions_by_start) on the session's first
// event. Summaries changed in a batch are kept in sums and written once.
func loadSession(tx *bolt.Tx, sums map[string]*SessionSummary, e *Event) (*SessionSummary, error) {
	if sum := sums[e.Session]; sum != nil {
		return sum, nil
	}
	sum, err := getSession(tx.Bucket(bSessions), e.Session)
	if err == nil {
		sums[e.Session] = sum
		return sum, nil
	}
	sum = &SessionSummary{Session: e.Session, Started: e.Time}
	if err := tx.Bucket(bByStart).Put(startKey(sum.Started, sum.Session), []byte{}); err != nil {
		return nil, err
	}
	sums[e.Session] = sum
	return sum, nil
}

// add counts e into the summary of its session.
func (sum *SessionSummary) add(e *Event) {
	sum.Events++
	sum.LastSeen = e.Time
	switch {
	case e.Kind == KindRequest && e.From == FromClient:
		sum.Calls++
		if e.Class == "write" || e.Class == "delete" {
			sum.Writes++
		}
	case e.Kind == KindCall && e.Outcome != OutcomeOK && e.Outcome != OutcomeInputRequired:
		sum.Errors++
	case e.Kind == KindAlert:
		sum.Alerts++
	case e.Kind == KindSessionEnd:
		sum.Ended = e.Time
	}
	if sum.Origin == nil && e.Origin != nil {
		sum.Origin = &Origin{Store: e.Origin.Store, Host: e.Origin.Host}
	}
	if sum.Upstream == "" {
		sum.Upstream = e.Upstream
	}
	if sum.Transport == "" {
		sum.Transport = e.Transport
	}
	if a := e.Agent; a != nil && *a != (Agent{}) {
		if sum.Agent == nil {
			sum.Agent = &Agent{}
		}
		for _, f := range [...][2]*string{
			{&sum.Agent.ID, &a.ID}, {&sum.Agent.Name, &a.Name},
			{&sum.Agent.ClientName, &a.ClientName}, {&sum.Agent.ClientVersion, &a.ClientVersion},
		} {
			if *f[0] == "" {
				*f[0] = *f[1]
			}
		}
	}
	if sum.Principal == nil && e.Principal != nil && *e.Principal != (Principal{}) {
		sum.Principal = clone(e.Principal)
	}
	if sum.Task == nil && e.Task != nil && *e.Task != (Task{}) {
		sum.Task = clone(e.Task)
	}
}
