package store

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"github.com/mcptrail/mcptrail/internal/safefile"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	bolt "go.etcd.io/bbolt"
	"golang.org/x/mod/sumdb/note"
)

// Checkpoint defaults: the unverified tail (events no signed checkpoint
// covers yet) is at most this many events or this old.
const (
	DefaultCheckpointEvery    = 1000
	DefaultCheckpointInterval = 5 * time.Second
)

// maxCheckpoints is the most checkpoints one Checkpoints call returns.
const maxCheckpoints = 1000

// Checkpoint is a signed statement that the store held Size events whose
// last one had hash Hash. It is a C2SP signed note (the tlog-checkpoint
// layout: origin, size, base64 hash, then extension lines), Ed25519-signed
// with golang.org/x/mod/sumdb/note:
//
//	mcptrail/<store id>
//	<size>
//	<base64 of the chain hash of event <size>>
//	prev <base64 of SHA-256 of the previous checkpoint's signed note, or 32 zero bytes>
//	time <RFC 3339 UTC>
//
//	— <key name> <base64 signature>
//
// The "hash" is the event hash chain's head, not a Merkle root. Checkpoints
// chain through "prev", so removing one breaks the chain as removing an
// event does; a copy kept off the box (the SIEM) survives an owner of the
// box who rewrites the file and the key.
type Checkpoint struct {
	Origin string    `json:"origin"`
	Size   uint64    `json:"size"` // it covers seq 1..Size
	Hash   string    `json:"hash"` // hex, as Event.Hash of seq Size
	Prev   string    `json:"prev"` // hex SHA-256 of the previous checkpoint's Note; zeros for the first
	Time   time.Time `json:"time"`
	Note   string    `json:"note"` // the signed note exactly as stored and signed
}

// NoteHash is the SHA-256 of the checkpoint's signed note: what the next
// checkpoint's Prev names.
func (c *Checkpoint) NoteHash() [32]byte { return sha256.Sum256([]byte(c.Note)) }

// checkpointText is the note text (before the signature block).
func checkpointText(origin string, size uint64, head, prev [32]byte, at time.Time) string {
	return fmt.Sprintf("%s\n%d\n%s\nprev %s\ntime %s\n", origin, size,
		base64.StdEncoding.EncodeToString(head[:]), base64.StdEncoding.EncodeToString(prev[:]),
		at.UTC().Format(time.RFC3339Nano))
}

// ErrMalformedCheckpoint means a checkpoint note does not parse.
var ErrMalformedCheckpoint = errors.New("malformed checkpoint")

// ParseCheckpoint reads a checkpoint note. With verifiers set it also checks
// the signatures and returns note's errors (*note.UnverifiedNoteError when
// no trusted key signed it, *note.InvalidSignatureError when a trusted key's
// signature is wrong); with nil it only parses.
func ParseCheckpoint(msg []byte, verifiers note.Verifiers) (*Checkpoint, error) {
	var text string
	if verifiers != nil {
		n, err := note.Open(msg, verifiers)
		if err != nil {
			return nil, err
		}
		text = n.Text
	} else {
		i := bytes.LastIndex(msg, []byte("\n\n"))
		if i < 0 {
			return nil, ErrMalformedCheckpoint
		}
		text = string(msg[:i+1])
	}
	lines := strings.Split(strings.TrimSuffix(text, "\n"), "\n")
	if len(lines) < 3 {
		return nil, ErrMalformedCheckpoint
	}
	c := &Checkpoint{Origin: lines[0], Note: string(msg)}
	size, err := strconv.ParseUint(lines[1], 10, 64)
	if err != nil {
		return nil, fmt.Errorf("%w: size %q", ErrMalformedCheckpoint, lines[1])
	}
	c.Size = size
	head, err := base64.StdEncoding.DecodeString(lines[2])
	if err != nil || len(head) != 32 {
		return nil, fmt.Errorf("%w: hash %q", ErrMalformedCheckpoint, lines[2])
	}
	c.Hash = hex.EncodeToString(head)
	c.Prev = strings.Repeat("0", 64)
	for _, l := range lines[3:] {
		switch k, v, _ := strings.Cut(l, " "); k {
		case "prev":
			p, err := base64.StdEncoding.DecodeString(v)
			if err != nil || len(p) != 32 {
				return nil, fmt.Errorf("%w: prev %q", ErrMalformedCheckpoint, v)
			}
			c.Prev = hex.EncodeToString(p)
		case "time":
			t, err := time.Parse(time.RFC3339Nano, v)
			if err != nil {
				return nil, fmt.Errorf("%w: time %q", ErrMalformedCheckpoint, v)
			}
			c.Time = t
		}
	}
	return c, nil
}

// GenerateKey makes an Ed25519 signing key for checkpoints, as note's
// signer and verifier key strings (PRIVATE+KEY+name+hash+key, name+hash+key).
func GenerateKey(name string) (skey, vkey string, err error) {
	return note.GenerateKey(rand.Reader, name)
}

// VerifierKey returns the verifier key (note format: name+hash+base64) of
// a signer key, the public half to pin in config or pass to verify --key.
func VerifierKey(skey string) (string, error) {
	if _, err := note.NewSigner(skey); err != nil {
		return "", fmt.Errorf("signing key: %w", err)
	}
	parts := strings.SplitN(skey, "+", 5) // PRIVATE KEY name hash key
	raw, _ := base64.StdEncoding.DecodeString(parts[4])
	pub := ed25519.NewKeyFromSeed(raw[1:]).Public().(ed25519.PublicKey)
	return note.NewEd25519VerifierKey(parts[2], pub)
}

// LoadOrCreateKey reads the signing key at path, creating it (mode 0600,
// parent 0700) with the given key name when there is none. The verifier
// key is also written beside it as path + ".pub", for convenience only: a
// verifier should pin its own copy.
func LoadOrCreateKey(path, name string) (skey string, created bool, err error) {
	data, err := safefile.ReadOwn(path) // no link, ours, private
	if err == nil {
		skey = strings.TrimSpace(string(data))
		if _, err := note.NewSigner(skey); err != nil {
			return "", false, fmt.Errorf("signing key %s: %w", path, err)
		}
		return skey, false, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return "", false, err
	}
	skey, vkey, err := GenerateKey(name)
	if err != nil {
		return "", false, err
	}
	if err := safefile.MkdirAll(filepath.Dir(path)); err != nil {
		return "", false, err
	}
	// The verifier key first, so a link planted at its path stops the
	// start before a signing key exists whose .pub was never written.
	if err := safefile.WriteFile(path+".pub", []byte(vkey+"\n"), 0o644); err != nil {
		return "", false, err
	}
	f, err := safefile.CreateExcl(path)
	if errors.Is(err, fs.ErrExist) { // another process won the race
		return LoadOrCreateKey(path, name)
	}
	if err != nil {
		return "", false, err
	}
	_, err = f.WriteString(skey + "\n")
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(path)
		return "", false, err
	}
	return skey, true, nil
}

// KeyName makes a valid note key name from s (a host name, say): no
// spaces or '+', at most 64 bytes.
func KeyName(s string) string {
	var b strings.Builder
	for _, r := range s {
		if r > ' ' && r < 0x7f && r != '+' {
			b.WriteRune(r)
		}
	}
	n := b.String()
	if len(n) > 64 {
		n = n[:64]
	}
	if n == "" {
		n = "mcptrail"
	}
	return n
}

// checkpointer is the writer's checkpoint state. Only the writer goroutine
// touches it after Open.
type checkpointer struct {
	signer   note.Signer
	origin   string
	every    uint64
	interval time.Duration

	size uint64    // last checkpoint's size (0: none)
	hash [32]byte  // SHA-256 of its note
	at   time.Time // when it was written (zero: never, or unknown)

	retry time.Time // a checkpoint failed: none before this
}

// load resumes the checkpoint chain from the newest one.
func (c *checkpointer) load(tx *bolt.Tx) error {
	c.at = time.Now() // no checkpoint yet: the interval runs from Open
	k, v := lastOf(tx.Bucket(bCheckpoints))
	if k == nil {
		return nil
	}
	cp, err := ParseCheckpoint(v, nil)
	if err != nil {
		return fmt.Errorf("newest checkpoint: %w", err)
	}
	c.size, c.hash = cp.Size, cp.NoteHash()
	if cp.Time.Before(c.at) {
		c.at = cp.Time
	}
	return nil
}

// due says whether events up to seq need a checkpoint now, given that the
// last one was written at c.at; and if not yet, how long until they do.
func (c *checkpointer) due(seq uint64, now time.Time) (bool, time.Duration) {
	if c == nil || seq <= c.size {
		return false, 0
	}
	if wait := c.retry.Sub(now); wait > 0 {
		return false, wait
	}
	if seq-c.size >= c.every {
		return true, 0
	}
	wait := c.at.Add(c.interval).Sub(now)
	return wait <= 0, wait
}

// writeDue writes the checkpoints a commit of batch makes due: one each
// time the events since the last reach c.every (however many a commit
// holds), and one at the end when the interval has run out. It returns the
// state to adopt once tx commits, or nil when it wrote none.
func (c *checkpointer) writeDue(tx *bolt.Tx, batch []*pending, now time.Time) (*checkpointer, error) {
	if c == nil {
		return nil, nil
	}
	next := *c
	wrote := false
	last := lastEvent(batch)
	for _, p := range batch {
		if p.marker {
			continue
		}
		due, _ := next.due(p.ev.Seq, now)
		if !due || p != last && p.ev.Seq-next.size < next.every {
			continue // within a commit, only a full interval of events counts
		}
		var err error
		if next, err = next.write(tx, p.ev.Seq, p.hash, now); err != nil {
			return nil, err
		}
		wrote = true
	}
	if !wrote {
		return nil, nil
	}
	return &next, nil
}

// write signs and stores a checkpoint of (size, head) in tx and returns the
// new state, which the caller adopts once tx commits.
func (c *checkpointer) write(tx *bolt.Tx, size uint64, head [32]byte, now time.Time) (checkpointer, error) {
	text := checkpointText(c.origin, size, head, c.hash, now)
	msg, err := note.Sign(&note.Note{Text: text}, c.signer)
	if err != nil {
		return *c, err
	}
	if err := tx.Bucket(bCheckpoints).Put(u64(size), msg); err != nil {
		return *c, err
	}
	next := *c
	next.size, next.hash, next.at = size, sha256.Sum256(msg), now
	return next, nil
}

// checkpointNow writes a checkpoint of the committed head if it is not
// covered yet: the idle tick and the final checkpoint at Close.
func (s *Store) checkpointNow() {
	s.mu.Lock()
	seq, head := s.doneSeq, s.doneHash
	s.mu.Unlock()
	if s.ckpt == nil || seq <= s.ckpt.size {
		return
	}
	now := time.Now()
	var next checkpointer
	err := s.update(func(tx *bolt.Tx) error {
		var err error
		next, err = s.ckpt.write(tx, seq, head, now)
		return err
	})
	if err != nil {
		s.ckpt.retry = now.Add(applyRetry) // not in a loop
		s.noteFailure(0, err)
		return
	}
	*s.ckpt = next
	s.noteRecovery()
}
