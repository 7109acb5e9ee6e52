package store

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// outageScenario: a store that cannot write (full, or failing) refuses
// strict appends with an error, and once it can write again records one
// alert that counts what was lost and when.
func outageScenario(t *testing.T, path string, opts Options, fill func(s *Store) int, free func(s *Store), during func() *Event) {
	s := openStore(t, path, opts)
	for range 3 {
		mustAppend(t, s, call("s1", "before"))
	}
	failed := fill(s) // appends until they fail; returns how many failed
	if failed == 0 {
		t.Fatal("no append failed")
	}
	last := s.Last()
	for range 4 {
		if _, err := s.Append(during()); err == nil {
			t.Fatal("a strict append succeeded on a store that cannot write")
		}
		failed++
	}
	if p, _ := s.Query(Query{Kind: KindAlert}); len(p.Events) != 0 {
		t.Fatalf("alert before recovery: %+v", p.Events)
	}
	free(s)

	ev := call("s1", "after")
	seq := mustAppend(t, s, ev)
	// The alert comes right after the outage: before this append when the
	// store saw the disk free on its own (it retries applying its
	// write-ahead log), else right after it.
	alertSeq := seq + 1
	if seq == last+2 {
		alertSeq = last + 1
	} else if seq != last+1 {
		t.Fatalf("first append after the outage: seq %d, want %d (or %d after the alert)", seq, last+1, last+2)
	}
	if err := s.Flush(); err == nil { // it reports the failed commits once
		t.Fatal("Flush did not report the failed commits")
	}
	if err := s.Flush(); err != nil {
		t.Fatal(err)
	}
	p, err := s.Query(Query{Kind: KindAlert})
	if err != nil || len(p.Events) != 1 {
		t.Fatalf("alerts after recovery: %+v, %v", p.Events, err)
	}
	a := p.Events[0]
	if a.Seq != alertSeq || !strings.Contains(a.Detail, fmt.Sprintf("events not recorded: %d,", failed)) {
		t.Fatalf("alert seq %d (want %d), detail %q (want %d events)", a.Seq, alertSeq, a.Detail, failed)
	}
	var info struct {
		FailedEvents int    `json:"failed_events"`
		Error        string `json:"error"`
	}
	if json.Unmarshal(a.Params, &info) != nil || info.FailedEvents != failed || info.Error == "" {
		t.Fatalf("alert params %s", a.Params)
	}
	t.Logf("alert: %s", a.Detail)
	mustAppend(t, s, call("s1", "later"))
	if p, _ := s.Query(Query{Kind: KindAlert}); len(p.Events) != 1 {
		t.Fatalf("%d alerts for one outage", len(p.Events))
	}
	r, err := s.Verify()
	if err != nil || !r.OK {
		t.Fatalf("Verify after the outage: %+v, %v", r, err)
	}
}

func TestOutageInjected(t *testing.T) {
	boom := errors.New("no space left on device (injected)")
	outageScenario(t, filepath.Join(t.TempDir(), "mcptrail.db"), signed(Options{CheckpointEvery: 2}),
		func(s *Store) int { failCommits(s, boom); return appendUntilFail(t, s) },
		func(s *Store) { failCommits(s, nil) },
		func() *Event { return call("s1", "during") },
	)
}

// TestOutageFullDisk fills a small tmpfs for real. Where mounting is not
// permitted it says so and runs the same scenario with an injected error.
func TestOutageFullDisk(t *testing.T) {
	dir := t.TempDir()
	mnt := filepath.Join(dir, "mnt")
	os.Mkdir(mnt, 0o700)
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", mnt).CombinedOutput(); err != nil {
		t.Logf("cannot mount a tmpfs (%v: %s): running the full-disk scenario with an injected write error instead", err, strings.TrimSpace(string(out)))
		TestOutageInjected(t)
		return
	}
	t.Cleanup(func() { syscall.Unmount(mnt, syscall.MNT_DETACH) })
	filler := filepath.Join(mnt, "filler")
	outageScenario(t, filepath.Join(mnt, "mcptrail.db"), signed(Options{LargeBody: -1}),
		func(s *Store) int {
			// Fill the disk but a little, then append big events until it is full.
			f, err := os.Create(filler)
			if err != nil {
				t.Fatal(err)
			}
			chunk := make([]byte, 64<<10)
			for {
				if _, err := f.Write(chunk); err != nil {
					break
				}
			}
			f.Close()
			return appendUntilFail(t, s)
		},
		func(*Store) {
			if err := os.Remove(filler); err != nil {
				t.Fatal(err)
			}
		},
		bigEvent, // a small one may still fit in pages the file has
	)
}

// appendUntilFail appends events with 32 KiB bodies until one fails, and
// returns 1 (the failed one).
func appendUntilFail(t *testing.T, s *Store) int {
	t.Helper()
	for i := range 10000 {
		if _, err := s.Append(bigEvent()); err != nil {
			t.Logf("append %d failed: %v", i, err)
			return 1
		}
	}
	t.Fatal("10000 appends of 32 KiB and the disk is not full")
	return 0
}

// bigEvent has 32 KiB of incompressible params.
func bigEvent() *Event {
	buf := make([]byte, 16<<10)
	rand.Read(buf)
	ev := call("s1", "fill")
	ev.Params = json.RawMessage(`"` + hex.EncodeToString(buf) + `"`)
	return ev
}
