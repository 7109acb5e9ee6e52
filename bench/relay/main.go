// Command relay is the floor of `mcptrail wrap`'s topology for bench/run: a
// process between a stdio MCP client and a stdio server that copies bytes
// both ways and does nothing else — no parsing, no recording.
//
//	relay -- CMD [ARG...]
//
// It starts CMD with its stdin and stdout on pipes, copies its own stdin to
// the child's and the child's stdout to its own, and exits with the child's
// status once the child has exited (after its own stdin closed, it closes
// the child's, as wrap does). Whatever mcptrail wrap adds beyond what relay
// adds is the cost of recording.
package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
)

func main() {
	args := os.Args[1:]
	if len(args) > 0 && args[0] == "--" {
		args = args[1:]
	}
	if len(args) == 0 {
		fmt.Fprintln(os.Stderr, "usage: relay -- CMD [ARG...]")
		os.Exit(2)
	}
	code, err := run(args, os.Stdin, os.Stdout, os.Stderr)
	if err != nil {
		fmt.Fprintln(os.Stderr, "relay:", err)
	}
	os.Exit(code)
}

// run relays in and out through the child argv and returns its exit status.
func run(argv []string, in io.Reader, out io.Writer, stderr io.Writer) (int, error) {
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stderr = stderr
	childIn, err := cmd.StdinPipe()
	if err != nil {
		return 1, err
	}
	childOut, err := cmd.StdoutPipe()
	if err != nil {
		return 1, err
	}
	if err := cmd.Start(); err != nil {
		return 1, err
	}
	go func() {
		// The client hung up (or the child stopped reading): close the
		// child's stdin so that it ends as it would without the relay.
		io.Copy(childIn, in)
		childIn.Close()
	}()
	// Everything the child writes, until it closes its stdout.
	io.Copy(out, childOut)
	err = cmd.Wait()
	var exit *exec.ExitError
	if errors.As(err, &exit) {
		return exit.ExitCode(), nil
	}
	if err != nil {
		return 1, err
	}
	return 0, nil
}
