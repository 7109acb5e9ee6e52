package store

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"runtime"
	"sync"

	bolt "go.etcd.io/bbolt"
)

// precheck is the part of checking an event that does not depend on the
// events before it, done in parallel: decode, and the canonical JSON.
type precheck struct {
	problem string
	canon   []byte // the canonical JSON; with fast, written with seq 0
	fast    bool
	legacy  bool
	prev    []byte // stored prev hash: raw, or hex (legacy)
	hash    string // stored hash, hex
	seq     uint64 // legacy: the seq in the JSON
}

func prepareCheck(seq uint64, data []byte) precheck {
	st, err := parseStored(data)
	if err != nil {
		return precheck{problem: ProblemEdited}
	}
	if !st.legacy && len(st.bodies) == 0 {
		// The stored JSON is the canonical JSON with seq 0, as the store
		// wrote it (json.Marshal): hash it as it is, with the seq spliced
		// in. Any changed byte changes the hash; no need to decode.
		if !bytes.HasPrefix(st.json, []byte(seqZero)) {
			return precheck{problem: ProblemEdited}
		}
		return precheck{canon: st.json, fast: true, prev: st.prev, hash: hex.EncodeToString(st.hash), seq: seq}
	}
	var ev Event
	if json.Unmarshal(st.json, &ev) != nil || decodeBodies(st.bodies, &ev) != nil {
		return precheck{problem: ProblemEdited}
	}
	p := precheck{legacy: st.legacy}
	if st.legacy {
		p.prev, p.hash, p.seq = []byte(ev.PrevHash), ev.Hash, ev.Seq
	} else {
		if ev.Seq != 0 {
			return precheck{problem: ProblemEdited}
		}
		p.prev, p.hash, p.seq = st.prev, hex.EncodeToString(st.hash), seq
	}
	ev.Seq, ev.PrevHash, ev.Hash = seq, "", ""
	if p.canon, err = json.Marshal(&ev); err != nil {
		return precheck{problem: ProblemEdited}
	}
	return p
}

// finish checks a prechecked event under seq against the hash of the
// event before it, and returns its own hash.
func (p *precheck) finish(seq uint64, prev [32]byte) ([32]byte, string) {
	if p.problem != "" {
		return prev, p.problem
	}
	if p.legacy && (p.seq != seq || string(p.prev) != hex.EncodeToString(prev[:])) ||
		!p.legacy && !bytes.Equal(p.prev, prev[:]) {
		return prev, ProblemReordered
	}
	var sum [32]byte
	if p.fast {
		sum = canonicalHash(prev, seq, p.canon)
	} else {
		sum = chainHash(prev, p.canon)
	}
	if hex.EncodeToString(sum[:]) != p.hash {
		return prev, ProblemEdited
	}
	return sum, ""
}

// prechecks prechecks the events in key order on every CPU and hands
// them out in order. The values stay valid while the read transaction is
// open, which outlives the iteration.
type prechecks struct {
	ordered chan *precheckJob // in key order, each done once its done is closed
	quit    chan struct{}
	workers sync.WaitGroup
	once    sync.Once
	cur     *precheckJob // the batch next hands out from
	i       int          // the next in cur
}

// precheckJob is a batch of events to precheck.
type precheckJob struct {
	keys, vals [][]byte
	out        []precheck
	done       chan struct{}
}

const precheckBatch = 256

func startPrechecks(events *bolt.Bucket) *prechecks {
	p := &prechecks{ordered: make(chan *precheckJob, 2*runtime.GOMAXPROCS(0)), quit: make(chan struct{})}
	jobs := make(chan *precheckJob)
	for range runtime.GOMAXPROCS(0) {
		p.workers.Go(func() {
			for j := range jobs {
				for i, v := range j.vals {
					if len(j.keys[i]) == 8 {
						j.out[i] = prepareCheck(seqOf(j.keys[i]), v)
					}
				}
				close(j.done)
			}
		})
	}
	go p.feed(events, jobs)
	return p
}

// feed reads the events into batches, queueing each in order and for a
// worker.
func (p *prechecks) feed(events *bolt.Bucket, jobs chan<- *precheckJob) {
	defer close(p.ordered)
	defer close(jobs)
	c := events.Cursor()
	k, v := c.First()
	for k != nil {
		j := &precheckJob{done: make(chan struct{})}
		for ; k != nil && len(j.keys) < precheckBatch; k, v = c.Next() {
			j.keys, j.vals = append(j.keys, k), append(j.vals, v)
		}
		j.out = make([]precheck, len(j.keys))
		select {
		case p.ordered <- j:
		case <-p.quit:
			return
		}
		select {
		case jobs <- j:
		case <-p.quit:
			return
		}
	}
}

// next returns the next event's key and precheck; false after the last.
func (p *prechecks) next() ([]byte, *precheck, bool) {
	if p.cur == nil || p.i == len(p.cur.keys) {
		var ok bool
		if p.cur, ok = <-p.ordered; !ok {
			return nil, nil, false
		}
		<-p.cur.done
		p.i = 0
	}
	p.i++
	return p.cur.keys[p.i-1], &p.cur.out[p.i-1], true
}

// stop ends the feeder and the workers early (or after the last event);
// it may be called more than once.
func (p *prechecks) stop() {
	p.once.Do(func() {
		close(p.quit)
		for range p.ordered { // let the feeder finish and the workers drain
		}
		p.workers.Wait()
	})
}
