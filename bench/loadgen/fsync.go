package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"golang.org/x/sys/unix"
)

// fsyncMain is `loadgen fsync`: what one fdatasync of a 4 KB write costs
// on the file system under --dir, the unit of the strict targets. Like the
// store's write-ahead log, it writes 4 KB records in turn into a file
// allocated beforehand and syncs after each. It prints a Result labelled
// "fsync" whose latencies are the write and its sync together.
func fsyncMain(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("loadgen fsync", flag.ContinueOnError)
	fs.SetOutput(stderr)
	dir := fs.String("dir", os.TempDir(), "directory on the file system to measure")
	n := fs.Int("n", 200, "syncs to time")
	round := fs.Int("round", 0, "round number copied into the result (bench/run)")
	if err := fs.Parse(args); err != nil || *n < 1 {
		return 2
	}
	lat, err := fsyncTimes(*dir, *n)
	if err != nil {
		fmt.Fprintln(stderr, "loadgen fsync:", err)
		return 1
	}
	res := &Result{Label: "fsync", Target: "fdatasync of a 4 KB write in " + *dir, Sessions: 1, Round: *round}
	var wall time.Duration
	for _, d := range lat {
		wall += d
	}
	summarize(res, lat, wall)
	return printResult(stdout, res)
}

func fsyncTimes(dir string, n int) ([]time.Duration, error) {
	const record, slots = 4 << 10, 256
	f, err := os.CreateTemp(dir, "fsync-*")
	if err != nil {
		return nil, err
	}
	defer os.Remove(f.Name())
	defer f.Close()
	if _, err := f.WriteAt(make([]byte, record*slots), 0); err != nil {
		return nil, err
	}
	if err := f.Sync(); err != nil {
		return nil, err
	}
	buf := make([]byte, record)
	for i := range buf {
		buf[i] = byte(i)
	}
	lat := make([]time.Duration, 0, n)
	for i := range n {
		t0 := time.Now()
		if _, err := f.WriteAt(buf, int64(i%slots)*record); err != nil {
			return nil, err
		}
		if err := unix.Fdatasync(int(f.Fd())); err != nil {
			return nil, fmt.Errorf("fdatasync %s: %w", filepath.Base(f.Name()), err)
		}
		lat = append(lat, time.Since(t0))
	}
	return lat, nil
}
