// Command crashappend appends to a store under load until it is killed, for
// the store's crash test: each strict append it prints as "seq id" on
// stdout only after Append has returned, so every line is an acknowledged,
// durable record. Usage: crashappend FILE (signing key in $MCPTRAIL_TEST_KEY).
package main

import (
	"encoding/json"
	"fmt"
	"os"
	"sync"

	"github.com/mcptrail/mcptrail/store"
)

func main() {
	s, err := store.Open(os.Args[1], store.Options{
		SigningKey:      os.Getenv("MCPTRAIL_TEST_KEY"),
		CheckpointEvery: 50,
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	var out sync.Mutex
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			for i := 0; ; i++ {
				req := &store.Event{
					Kind: store.KindRequest, From: store.FromClient, Session: fmt.Sprintf("g%d", g),
					Method: "tools/call", Tool: "write_file", Class: "write",
					Params: json.RawMessage(fmt.Sprintf(`{"name":"write_file","arguments":{"i":%d}}`, i)),
				}
				if i%7 == 0 { // now and then a large body
					req.Params = json.RawMessage(fmt.Sprintf(`{"name":"write_file","arguments":{"i":%d,"content":"%0*d"}}`, i, 20000, i))
				}
				seq, err := s.Append(req)
				if err != nil {
					fmt.Fprintln(os.Stderr, err)
					os.Exit(3)
				}
				out.Lock()
				// One write per line: once it returns the line is in the pipe,
				// and a SIGKILL after it cannot take it back.
				os.Stdout.WriteString(fmt.Sprintf("%d %s\n", seq, req.ID))
				out.Unlock()
				outcome := &store.Event{Kind: store.KindCall, Session: req.Session, Method: req.Method, Tool: req.Tool, Call: seq, Outcome: store.OutcomeOK}
				if _, err := s.AppendNoWait(outcome); err != nil {
					fmt.Fprintln(os.Stderr, err)
					os.Exit(3)
				}
			}
		})
	}
	wg.Wait()
}
