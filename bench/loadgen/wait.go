package main

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"regexp"
	"syscall"
	"time"
)

// waitMain is `loadgen wait`: bench/run's readiness check. It polls until
// the log file has a line matching --match (printing the first group, else
// the match) and, with --tcp, until ADDR accepts a connection; it gives up
// when --pid has exited or after --timeout.
func waitMain(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("loadgen wait", flag.ContinueOnError)
	fs.SetOutput(stderr)
	logFile := fs.String("log", "", "file to watch")
	match := fs.String("match", "", "regular expression a line of --log must match")
	tcp := fs.String("tcp", "", "address that must accept a TCP connection")
	pid := fs.Int("pid", 0, "process that must stay alive while waiting")
	timeout := fs.Duration("timeout", 60*time.Second, "give up after this long")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	var re *regexp.Regexp
	if *match != "" {
		var err error
		if re, err = regexp.Compile(*match); err != nil {
			fmt.Fprintln(stderr, "loadgen wait:", err)
			return 2
		}
	}
	if (re == nil) != (*logFile == "") || (re == nil && *tcp == "") {
		fmt.Fprintln(stderr, "loadgen wait: need --log with --match, and/or --tcp")
		return 2
	}
	deadline := time.Now().Add(*timeout)
	found := re == nil
	for tick := time.NewTicker(5 * time.Millisecond); ; <-tick.C {
		if !found {
			if b, err := os.ReadFile(*logFile); err == nil {
				if m := re.FindSubmatch(b); m != nil {
					found = true
					out := m[0]
					if len(m) > 1 {
						out = m[1]
					}
					fmt.Fprintf(stdout, "%s\n", out)
				}
			}
		}
		if found {
			if *tcp == "" {
				return 0
			}
			if c, err := net.DialTimeout("tcp", *tcp, time.Second); err == nil {
				c.Close()
				return 0
			}
		}
		if *pid > 0 && !alive(*pid) {
			fmt.Fprintf(stderr, "loadgen wait: process %d exited before it was ready\n", *pid)
			return 1
		}
		if time.Now().After(deadline) {
			fmt.Fprintf(stderr, "loadgen wait: not ready after %v (log %q, tcp %q)\n", *timeout, *logFile, *tcp)
			return 1
		}
	}
}

func alive(pid int) bool {
	if err := syscall.Kill(pid, 0); err != nil && !errors.Is(err, syscall.EPERM) {
		return false
	}
	// An exited child its parent has not reaped yet is a zombie: not alive.
	if b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid)); err == nil {
		if i := bytes.LastIndexByte(b, ')'); i >= 0 && i+2 < len(b) && b[i+2] == 'Z' {
			return false
		}
	}
	return true
}
