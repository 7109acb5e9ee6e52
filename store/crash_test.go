package store

import (
	"bufio"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mcptrail/mcptrail/internal/testkit"
)

// TestKillNine kills a process appending under load (strict, four
// goroutines, checkpoints every 50 events, some large bodies) with SIGKILL at
// random moments, many rounds on one file. After each: the file verifies,
// every acknowledged seq is there with its id, a reopen continues the
// sequence, and the calls the kill interrupted get the outcome unknown.
func TestKillNine(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and kills a helper process; skipped with -short")
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "crashappend")
	if err := testkit.GoBuild(".", bin, "./testdata/crashappend"); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "mcptrail.db")
	rounds := 20
	if d, ok := t.Deadline(); ok && time.Until(d) < 2*time.Minute {
		rounds = 8
	}
	budget := time.Now().Add(90 * time.Second)
	acked := map[uint64]string{}
	for round := range rounds {
		if time.Now().After(budget) {
			t.Logf("time budget spent after %d rounds", round)
			break
		}
		cmd := exec.Command(bin, path)
		cmd.Env = append(os.Environ(), "MCPTRAIL_TEST_KEY="+testSKey)
		stdout, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		var stderr strings.Builder
		cmd.Stderr = &stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		lines := make(chan string, 1<<16)
		go func() {
			sc := bufio.NewScanner(stdout)
			for sc.Scan() {
				lines <- sc.Text()
			}
			close(lines)
		}()
		// Wait for the first ack (under load from then on), then a random
		// while: between commits, inside one, between a commit and its ack.
		first, ok := <-lines
		if !ok {
			cmd.Wait()
			t.Fatalf("round %d: helper exited before its first append: %s", round, stderr.String())
		}
		time.Sleep(time.Duration(rand.IntN(150)) * time.Millisecond)
		cmd.Process.Signal(syscall.SIGKILL)
		n := 0
		for _, l := range append([]string{first}, drain(lines)...) {
			var seq uint64
			var id string
			if _, err := fmt.Sscan(l, &seq, &id); err != nil {
				t.Fatalf("round %d: helper printed %q", round, l)
			}
			acked[seq] = id
			n++
		}
		cmd.Wait()

		r, err := VerifyFile(path, VerifyOptions{Keys: []string{testVKey}})
		if err != nil || !r.OK {
			t.Fatalf("round %d: Verify = %+v, %v", round, r, err)
		}
		s, err := Open(path, signed(Options{}))
		if err != nil {
			t.Fatalf("round %d: reopen: %v", round, err)
		}
		last := s.Last()
		for seq, id := range acked {
			ev, err := s.Get(seq)
			if err != nil || ev.ID != id {
				t.Fatalf("round %d: acknowledged seq %d (id %s) lost: %+v, %v", round, seq, id, ev, err)
			}
		}
		open, err := s.OpenCalls()
		if err != nil {
			t.Fatal(err)
		}
		recorded, err := s.RecordUnknown("killed")
		if err != nil || recorded != len(open) {
			t.Fatalf("round %d: RecordUnknown = %d, %v; %d open calls", round, recorded, err, len(open))
		}
		if open, _ := s.OpenCalls(); len(open) != 0 {
			t.Fatalf("round %d: %d calls still open after RecordUnknown", round, len(open))
		}
		ev := &Event{Kind: KindNotification, Method: "round"}
		if seq := mustAppend(t, s, ev); seq != last+uint64(recorded)+1 {
			t.Fatalf("round %d: reopened store appended seq %d after %d (+%d unknown outcomes)", round, seq, last, recorded)
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		t.Logf("round %d: %d acks this round, %d in total, head %d, %d interrupted calls", round, n, len(acked), last, recorded)
	}
	r, err := VerifyFile(path, VerifyOptions{Keys: []string{testVKey}})
	if err != nil || !r.OK || r.Covered != r.Events {
		t.Fatalf("final Verify = %+v, %v", r, err)
	}
}

// drain returns what is left in lines once the writer has closed it.
func drain(lines chan string) []string {
	var out []string
	for l := range lines {
		out = append(out, l)
	}
	return out
}
