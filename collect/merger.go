package collect

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"strings"
	"sync"

	"github.com/mcptrail/mcptrail/siem"
	"github.com/mcptrail/mcptrail/store"
	"golang.org/x/mod/sumdb/note"
)

// Alert rule ids the collector records (params.rule.id of its alerts).
const (
	RuleMalformed   = "collector.malformed"    // a record that does not decode, or whose parts disagree
	RuleGap         = "collector.gap"          // an event after a missing one
	RuleFork        = "collector.fork"         // prev_hash, or a redelivered hash, that is not the chain's
	RuleForged      = "collector.forged"       // content that does not match its hash
	RuleCheckpoint  = "collector.checkpoint"   // a checkpoint that is unsigned, badly signed, or contradicts the chain
	RuleFirstSeen   = "collector.origin_first" // an origin seen for the first time (its key pinned)
	RuleUnpinned    = "collector.unpinned"     // with pinned_only: an origin whose key the config does not pin
	maxAlertRecord  = 4096                     // bytes of the offending record kept in an alert
	alertRuleType   = "integrity"
	severityHigh    = "high"
	severityLow     = "low"
	checkpointNoteN = 8192 // a checkpoint note is a few hundred bytes
)

// Merger checks each origin's records and merges those that extend its
// chain into the central store, recording an alert instead for any that
// does not. It knows nothing of Kafka: the Collector feeds it, and tests
// and the fuzzer can too. One goroutine at a time.
type Merger struct {
	st      *store.Store
	keys    map[string]string // origin id → verifier key pinned in the config
	pinned  bool              // refuse origins not in keys
	log     *slog.Logger
	observe func(*store.Event)
	origins map[string]*origin
	rec     Record // the record being merged (one, reused: Merge is not concurrent)

	mu    sync.Mutex
	stats Stats
}

// Stats count what a merger has seen.
type Stats struct {
	Records     uint64 `json:"records"`     // Kafka records read
	Events      uint64 `json:"events"`      // events merged
	Checkpoints uint64 `json:"checkpoints"` // origin checkpoints merged
	Duplicates  uint64 `json:"duplicates"`  // redeliveries dropped
	Prestates   uint64 `json:"prestates"`   // pre-states stored (or noted as withheld)
	Alerts      uint64 `json:"alerts"`      // records refused, each with an alert
	Origins     int    `json:"origins"`
}

// NewMerger resumes from the central store's saved origin states, brought
// up to date from its latest events (the states are saved after the
// events they describe, so they may lag). keys pins origins' verifier keys;
// observe, if set, sees every event the merger appends (and must not keep
// it past the call: the merger reuses it).
func NewMerger(st *store.Store, keys map[string]string, log *slog.Logger, observe func(*store.Event)) (*Merger, error) {
	return newMerger(st, keys, false, log, observe)
}

func newMerger(st *store.Store, keys map[string]string, pinnedOnly bool, log *slog.Logger, observe func(*store.Event)) (*Merger, error) {
	if log == nil {
		log = slog.Default()
	}
	for id, k := range keys {
		if _, err := note.NewVerifier(k); err != nil {
			return nil, fmt.Errorf("collect: verifier key of origin %s: %v", id, err)
		}
	}
	m := &Merger{st: st, keys: keys, pinned: pinnedOnly, log: log, observe: observe, origins: map[string]*origin{}}
	states, through, err := st.Origins().Load()
	if err != nil {
		return nil, err
	}
	for id, s := range states {
		m.origins[id] = newOrigin(s)
	}
	if err := st.Flush(); err != nil {
		return nil, err
	}
	// Replay far enough back to know the hashes the next checkpoint of
	// each origin signs: from its last merged checkpoint on.
	from := uint64(1)
	if through > recentHashes {
		from = through - recentHashes
	}
	for _, o := range m.origins {
		if o.CheckpointAt > 0 && o.CheckpointAt < from {
			from = o.CheckpointAt
		}
	}
	for cur := from; cur != 0; {
		page, err := st.Query(store.Query{Cursor: cur, Limit: 5000})
		if err != nil {
			return nil, err
		}
		for i := range page.Events {
			m.replay(&page.Events[i])
		}
		cur = page.Next
	}
	m.stats.Origins = len(m.origins)
	return m, nil
}

// replay brings the state up to date with an event already merged.
func (m *Merger) replay(ev *store.Event) {
	og := ev.Origin
	if og == nil {
		return
	}
	o := m.origin(og.Store, og.Host)
	if ev.Kind == store.KindCheckpoint {
		if og.Seq > o.Checkpoint {
			sum := sha256.Sum256([]byte(ev.Detail))
			o.checkpointed(og.Seq, hex.EncodeToString(sum[:]), ev.Seq)
		}
		return
	}
	h, err := hash32(og.Hash)
	if err != nil {
		return
	}
	o.expectPrestate(ev)
	if og.Seq > o.Seq {
		o.advance(og.Seq, h, ev.Seq)
	} else if og.Seq+recentHashes > o.Seq {
		o.remember(og.Seq, h, ev.Seq) // not one so old its slot holds a newer event
	}
}

func (m *Merger) origin(id, host string) *origin {
	o := m.origins[id]
	if o == nil {
		o = newOrigin(store.OriginState{Store: id, Host: host})
		m.origins[id] = o
	}
	return o
}

// Stats returns the counters.
func (m *Merger) Stats() Stats {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.stats
}

func (m *Merger) count(f func(*Stats)) {
	m.mu.Lock()
	f(&m.stats)
	m.mu.Unlock()
}

// Merge checks one Kafka record and appends what it says to the central
// store (without waiting: Flush commits). The error is the store's: a
// record that is refused is an alert, not an error.
func (m *Merger) Merge(key, value []byte, headers map[string][]byte) error {
	h := headersOfMap(headers)
	return m.merge(key, value, &h)
}

func (m *Merger) merge(key, value []byte, h *headers) error {
	m.count(func(s *Stats) { s.Records++ })
	if string(h.v[hKind]) == siem.KindPrestate {
		return m.mergePrestate(key, value, h)
	}
	r := &m.rec
	if err := r.decode(key, value, h); err != nil {
		return m.alert(RuleMalformed, severityHigh, string(h.v[hOrigin]), nil, 0, "record refused: "+err.Error(), value)
	}
	if m.pinned && m.keys[r.Origin] == "" {
		return m.alert(RuleUnpinned, severityHigh, r.Origin, nil, r.Seq,
			fmt.Sprintf("origin %.128s (host %.64s): not in collect.keys, and pinned_only is set; not merged", r.Origin, r.Host), value)
	}
	if r.Kind == store.KindCheckpoint {
		return m.mergeCheckpoint(r, value)
	}
	return m.mergeEvent(r, value)
}

func (m *Merger) mergeEvent(r *Record, value []byte) error {
	o := m.origins[r.Origin]
	if o == nil {
		o = m.origin(r.Origin, r.Host)
		m.count(func(s *Stats) { s.Origins++ })
	}
	seen := o.Seq != 0
	switch {
	case seen && r.Seq <= o.Seq:
		// A redelivery (at-least-once: the producer retried, or offsets
		// were not yet committed) unless the chain had another hash there.
		if e, ok := o.known(r.Seq); ok && e.hash != r.hash {
			return m.alert(RuleFork, severityHigh, r.Origin, o, r.Seq,
				fmt.Sprintf("origin %s seq %d: hash %.16s… differs from the %.16x… already merged (a fork or an altered copy); not merged", r.Origin, r.Seq, r.Event.Hash, e.hash[:8]), value)
		}
		m.count(func(s *Stats) { s.Duplicates++ })
		return nil
	case seen && r.Seq > o.Seq+1:
		return m.alert(RuleGap, severityHigh, r.Origin, o, r.Seq,
			fmt.Sprintf("origin %s: seq %d follows %d: events %d to %d are missing (dropped, or not delivered yet); not merged", r.Origin, r.Seq, o.Seq, o.Seq+1, r.Seq-1), value)
	case seen && r.prev != o.head:
		return m.alert(RuleFork, severityHigh, r.Origin, o, r.Seq,
			fmt.Sprintf("origin %s seq %d: prev_hash names another event than seq %d (a fork or a replayed event); not merged", r.Origin, r.Seq, o.Seq), value)
	case !seen && r.Seq == 1 && r.prev != [32]byte{}:
		return m.alert(RuleFork, severityHigh, r.Origin, o, r.Seq, fmt.Sprintf("origin %s seq 1: prev_hash is not zero; not merged", r.Origin), value)
	}
	sum, err := store.ChainHash(r.prev, &r.Event) // over its copy of the event, without prev_hash and hash
	if err != nil || sum != r.hash {
		return m.alert(RuleForged, severityHigh, r.Origin, o, r.Seq,
			fmt.Sprintf("origin %s seq %d: the content does not match its hash (altered after it was recorded); not merged", r.Origin, r.Seq), value)
	}
	if !seen {
		detail := fmt.Sprintf("origin %s (host %s) seen for the first time, from seq %d", r.Origin, r.Host, r.Seq)
		if r.Seq > 1 {
			detail += fmt.Sprintf("; its events 1 to %d are not in this store", r.Seq-1)
		}
		if err := m.alert(RuleFirstSeen, severityLow, r.Origin, o, r.Seq, detail, nil); err != nil {
			return err
		}
	}
	// The central copy is made in the record itself (no 600-byte copy per
	// event): the store keeps its own, and the next record overwrites it.
	c := &r.Event
	c.Origin = &store.Origin{Store: r.Origin, Host: o.Host, Seq: r.Seq, Hash: c.Hash}
	c.Seq, c.PrevHash, c.Hash = 0, "", ""
	if err := m.append(c); err != nil {
		return err
	}
	o.advance(r.Seq, r.hash, c.Seq)
	o.expectPrestate(c)
	m.count(func(s *Stats) { s.Events++ })
	return nil
}

func (m *Merger) mergeCheckpoint(r *Record, value []byte) error {
	o := m.origins[r.Origin]
	if o == nil || o.Seq == 0 {
		return m.alert(RuleCheckpoint, severityHigh, r.Origin, o, r.Seq,
			fmt.Sprintf("origin %s: checkpoint of size %d before any of its events; not merged", r.Origin, r.Seq), value)
	}
	msg := []byte(r.Event.Detail)
	if len(msg) > checkpointNoteN {
		return m.alert(RuleCheckpoint, severityHigh, r.Origin, o, r.Seq, "checkpoint note too long; not merged", value)
	}
	key, source := m.keys[r.Origin], "the config"
	if key == "" {
		key, source = o.Key, "pinned on first sight"
	}
	pin := false
	if key == "" {
		if _, err := note.NewVerifier(r.Key); err != nil {
			return m.alert(RuleCheckpoint, severityHigh, r.Origin, o, r.Seq,
				fmt.Sprintf("origin %s: checkpoint without a usable verifier key, and none is pinned; not merged", r.Origin), value)
		}
		key, pin = r.Key, true
	}
	v, err := note.NewVerifier(key)
	if err != nil {
		return fmt.Errorf("collect: origin %s: verifier key: %w", r.Origin, err)
	}
	cp, err := store.ParseCheckpoint(msg, note.VerifierList(v))
	if err != nil {
		return m.alert(RuleCheckpoint, severityHigh, r.Origin, o, r.Seq,
			fmt.Sprintf("origin %s checkpoint %d: not signed by its key (%s): %v; not merged", r.Origin, r.Seq, source, oneLine(err)), value)
	}
	sum := sha256.Sum256(msg)
	noteHash := hex.EncodeToString(sum[:])
	var bad string
	switch {
	case cp.Origin != "mcptrail/"+r.Origin:
		bad = fmt.Sprintf("names origin %.80q", cp.Origin)
	case cp.Size != r.Seq || cp.Hash != r.Event.Hash:
		bad = "its note and its record disagree"
	case cp.Size <= o.Checkpoint:
		if cp.Size == o.Checkpoint && noteHash != o.NoteHash {
			bad = "differs from the checkpoint of that size already merged"
			break
		}
		m.count(func(s *Stats) { s.Duplicates++ })
		return nil
	case cp.Size > o.Seq:
		bad = fmt.Sprintf("covers events up to %d, but only %d are merged", cp.Size, o.Seq)
	case o.NoteHash != "" && cp.Prev != o.NoteHash:
		bad = fmt.Sprintf("does not follow the checkpoint of size %d (one was removed or replaced)", o.Checkpoint)
	default:
		if h, ok := o.hashAt(cp.Size); ok && h != cp.Hash {
			bad = fmt.Sprintf("signs hash %.16s… for seq %d, not the %.16s… merged", cp.Hash, cp.Size, h)
		} else if !ok && cp.Size >= o.First {
			bad = fmt.Sprintf("covers seq %d, too old to check here", cp.Size)
		}
	}
	if bad != "" {
		return m.alert(RuleCheckpoint, severityHigh, r.Origin, o, r.Seq,
			fmt.Sprintf("origin %s checkpoint %d %s; not merged", r.Origin, r.Seq, bad), value)
	}
	if pin {
		if err := m.alert(RuleFirstSeen, severityLow, r.Origin, o, r.Seq,
			fmt.Sprintf("origin %s: pinned its checkpoint key %s on first sight (pin it in collect.keys to be sure it is the origin's)", r.Origin, key), nil); err != nil {
			return err
		}
		o.Key, o.dirty = key, true
	}
	c := store.Event{Kind: store.KindCheckpoint, Time: cp.Time, Detail: cp.Note,
		Origin: &store.Origin{Store: r.Origin, Host: o.Host, Seq: cp.Size, Hash: cp.Hash}}
	if err := m.append(&c); err != nil {
		return err
	}
	o.checkpointed(cp.Size, noteHash, c.Seq)
	m.count(func(s *Stats) { s.Checkpoints++ })
	return nil
}

func (m *Merger) append(ev *store.Event) error {
	if _, err := m.st.AppendNoWait(ev); err != nil {
		return err
	}
	if m.observe != nil {
		m.observe(ev)
	}
	return nil
}

// alert records a refused record. o may be nil.
func (m *Merger) alert(rule, severity, originID string, o *origin, seq uint64, detail string, record []byte) error {
	var info struct {
		siem.AlertInfo
		Origin string `json:"origin,omitempty"`
		Host   string `json:"host,omitempty"`
		Seq    uint64 `json:"origin_seq,omitempty"`
		Record string `json:"record,omitempty"` // the start of the offending record's value
	}
	info.Rule.ID, info.Rule.Title, info.Rule.Type, info.Rule.Severity = rule, ruleTitles[rule], alertRuleType, severity
	info.Rule.Description = detail
	info.Origin, info.Seq = originID, seq
	if len(info.Origin) > maxOriginID {
		info.Origin = info.Origin[:maxOriginID]
	}
	if o != nil {
		info.Host = o.Host
	}
	info.Group = map[string]string{"origin": info.Origin}
	if len(record) > maxAlertRecord {
		record = record[:maxAlertRecord]
	}
	info.Record = strings.ToValidUTF8(string(record), "\uFFFD")
	params, err := json.Marshal(info)
	if err != nil {
		return err
	}
	if rule != RuleFirstSeen {
		m.count(func(s *Stats) { s.Alerts++ })
		m.log.Warn("collector: record refused", "rule", rule, "detail", detail)
	}
	return m.append(&store.Event{Kind: store.KindAlert, Detail: detail, Params: params})
}

var ruleTitles = map[string]string{
	RuleMalformed:  "Collected record malformed",
	RuleGap:        "Gap in an origin's record",
	RuleFork:       "Fork in an origin's record",
	RuleForged:     "Forged record from an origin",
	RuleCheckpoint: "Origin checkpoint refused",
	RuleFirstSeen:  "New origin",
	RuleUnpinned:   "Records from an origin not pinned",
	RulePrestate:   "Collected pre-state refused",
}

// Commit waits for what Merge appended to be committed, then saves the
// origins' states. Only after it returns may the Kafka offsets of the
// merged records be committed.
func (m *Merger) Commit() error {
	if err := m.st.Flush(); err != nil {
		return err
	}
	var dirty []store.OriginState
	for _, o := range m.origins {
		if o.dirty {
			dirty = append(dirty, o.state())
		}
	}
	if len(dirty) == 0 {
		return nil
	}
	sort.Slice(dirty, func(i, j int) bool { return dirty[i].Store < dirty[j].Store })
	if err := m.st.Origins().Save(dirty, m.st.Stats().Events); err != nil {
		if errors.Is(err, store.ErrClosed) {
			return err
		}
		return fmt.Errorf("collect: saving origin states: %w", err)
	}
	for _, o := range m.origins {
		o.dirty = false
	}
	return nil
}

// Origins lists the origins' states, by id.
func (m *Merger) Origins() []store.OriginState {
	out := make([]store.OriginState, 0, len(m.origins))
	for _, o := range m.origins {
		out = append(out, o.state())
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Store < out[j].Store })
	return out
}

func oneLine(err error) string {
	return strings.ReplaceAll(err.Error(), "\n", " ")
}
