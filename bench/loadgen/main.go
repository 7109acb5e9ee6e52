// Command loadgen drives MCP tools/call load through one target and prints
// one JSON object with the client-observed latencies and throughput.
//
//	loadgen --label L (--stdio 'CMD ARG...' | --url URL) [--sessions N]
//	        [--calls C] [--warmup W] [--writes FRAC] [--protocol VERSION]
//
// It opens N sessions at once (over stdio, one process per session started
// from CMD; over Streamable HTTP, N sessions on URL), makes W warm-up calls
// on each, then — all sessions together — C measured tools/call requests per
// session, one at a time per session: a fraction FRAC of them `write`
// (a 256-byte payload) and the rest `echo`. Latency is the CallTool round
// trip as the go-sdk client sees it.
//
//	loadgen report [flags] FILE...   # the Markdown table bench/run prints
//	loadgen freeport                 # prints a free TCP port on 127.0.0.1
//	loadgen wait [--log F --match RE] [--tcp ADDR] [--pid P]   # readiness
//	loadgen fsync [--dir D] [--n N]  # one fdatasync of a 4 KB write (strict's unit)
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"sync"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
)

func main() {
	if len(os.Args) > 1 {
		switch os.Args[1] {
		case "report":
			os.Exit(reportMain(os.Args[2:], os.Stdout, os.Stderr))
		case "wait":
			os.Exit(waitMain(os.Args[2:], os.Stdout, os.Stderr))
		case "fsync":
			os.Exit(fsyncMain(os.Args[2:], os.Stdout, os.Stderr))
		case "freeport":
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				fmt.Fprintln(os.Stderr, "loadgen:", err)
				os.Exit(1)
			}
			fmt.Println(ln.Addr().(*net.TCPAddr).Port)
			ln.Close()
			return
		}
	}
	os.Exit(runMain(os.Args[1:]))
}

type options struct {
	label, stdio, url, protocol string
	sessions, calls, warmup     int
	writes                      float64
	timeout                     time.Duration
	sse                         bool
	round                       int
}

func runMain(args []string) int {
	fs := flag.NewFlagSet("loadgen", flag.ContinueOnError)
	var o options
	fs.StringVar(&o.label, "label", "", "configuration label printed in the result")
	fs.StringVar(&o.stdio, "stdio", "", "command (split on spaces, no quoting) started once per session, spoken to over stdio")
	fs.StringVar(&o.url, "url", "", "Streamable HTTP endpoint")
	fs.IntVar(&o.sessions, "sessions", 1, "concurrent sessions")
	fs.IntVar(&o.calls, "calls", 1000, "measured tools/call requests per session")
	fs.IntVar(&o.warmup, "warmup", 50, "warm-up calls per session (not measured)")
	fs.Float64Var(&o.writes, "writes", 0.25, "fraction of calls that are `write` (the rest are `echo`)")
	fs.StringVar(&o.protocol, "protocol", "2025-11-25", "protocol version the client asks for")
	fs.DurationVar(&o.timeout, "timeout", 30*time.Second, "per-call (and per-connect) timeout")
	fs.BoolVar(&o.sse, "sse", true, "HTTP: open the standalone GET SSE stream, as the go-sdk client does by default")
	fs.IntVar(&o.round, "round", 0, "round number copied into the result (bench/run)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if (o.stdio == "") == (o.url == "") || o.sessions < 1 || o.calls < 1 || o.warmup < 0 || fs.NArg() > 0 {
		fmt.Fprintln(os.Stderr, "loadgen: need exactly one of --stdio or --url, --sessions ≥ 1, --calls ≥ 1")
		return 2
	}
	res, err := run(context.Background(), o)
	if err != nil {
		fmt.Fprintln(os.Stderr, "loadgen:", err)
		return 1
	}
	return printResult(os.Stdout, res)
}

func printResult(w io.Writer, res *Result) int {
	if err := json.NewEncoder(w).Encode(res); err != nil {
		return 1
	}
	return 0
}

// payload is the content of every write call (256 bytes).
var payload = strings.Repeat("0123456789abcdef", 16)

func run(ctx context.Context, o options) (*Result, error) {
	target := o.url
	if target == "" {
		target = "stdio:" + o.stdio
	}
	res := &Result{Label: o.label, Target: target, Sessions: o.sessions, Warmup: o.warmup, Round: o.round}

	newTransport := transportFactory(o)
	client := mcp.NewClient(&mcp.Implementation{Name: "mcptrail-bench-loadgen", Version: "1"}, nil)
	sessions := make([]*mcp.ClientSession, o.sessions)
	defer func() {
		var wg sync.WaitGroup
		for _, cs := range sessions {
			if cs != nil {
				wg.Go(func() { cs.Close() })
			}
		}
		wg.Wait()
	}()

	// Connect every session, concurrently (not measured).
	errs := make([]error, o.sessions)
	var wg sync.WaitGroup
	for i := range sessions {
		wg.Go(func() {
			cctx, cancel := context.WithTimeout(ctx, o.timeout)
			defer cancel()
			sessions[i], errs[i] = client.Connect(cctx, newTransport(), &mcp.ClientSessionOptions{ProtocolVersion: o.protocol})
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("connect: %w", err)
	}

	type sessionOut struct {
		lat      []time.Duration
		errors   int
		warmErrs int
		writes   int
		firstErr error
	}
	outs := make([]sessionOut, o.sessions)
	var ready sync.WaitGroup
	ready.Add(o.sessions)
	start := make(chan struct{})
	var began time.Time
	for i, cs := range sessions {
		wg.Go(func() {
			out := &outs[i]
			call := func(n int) (time.Duration, bool, error) {
				p := &mcp.CallToolParams{Name: "echo", Arguments: map[string]any{"text": fmt.Sprintf("session %d call %d", i, n)}}
				w := isWrite(n, o.writes)
				if w {
					p = &mcp.CallToolParams{Name: "write", Arguments: map[string]any{"name": fmt.Sprintf("s%d-%d", i, n%8), "content": payload}}
				}
				cctx, cancel := context.WithTimeout(ctx, o.timeout)
				defer cancel()
				t0 := time.Now()
				r, err := cs.CallTool(cctx, p)
				d := time.Since(t0)
				if err == nil && r.IsError {
					err = fmt.Errorf("%s: tool error: %s", p.Name, toolText(r))
				}
				return d, w, err
			}
			warmErr := error(nil)
			for n := 0; n < o.warmup; n++ {
				if _, _, err := call(n); err != nil {
					out.warmErrs++
					if warmErr == nil {
						warmErr = fmt.Errorf("warm-up: %w", err)
					}
				}
			}
			ready.Done()
			<-start
			out.lat = make([]time.Duration, 0, o.calls)
			out.firstErr = warmErr
			for n := 0; n < o.calls; n++ {
				d, w, err := call(o.warmup + n)
				if err != nil {
					out.errors++
					if out.firstErr == nil {
						out.firstErr = err
					}
					continue
				}
				if w {
					out.writes++
				}
				out.lat = append(out.lat, d)
			}
		})
	}
	ready.Wait()
	began = time.Now()
	close(start)
	wg.Wait()
	wall := time.Since(began)

	var lat []time.Duration
	for _, out := range outs {
		lat = append(lat, out.lat...)
		res.Errors += out.errors
		res.Writes += out.writes
		res.WarmupErrs += out.warmErrs
		if out.firstErr != nil && res.FirstError == "" {
			res.FirstError = out.firstErr.Error()
		}
	}
	summarize(res, lat, wall)
	return res, nil
}

// transportFactory returns a function making one session's transport.
func transportFactory(o options) func() mcp.Transport {
	if o.stdio != "" {
		argv := strings.Fields(o.stdio)
		return func() mcp.Transport {
			cmd := exec.Command(argv[0], argv[1:]...)
			cmd.Stderr = os.Stderr
			return &mcp.CommandTransport{Command: cmd, TerminateDuration: 2 * time.Second}
		}
	}
	hc := &http.Client{Transport: &http.Transport{
		Proxy:               nil, // everything is on loopback
		MaxIdleConns:        4 * o.sessions,
		MaxIdleConnsPerHost: 4 * o.sessions,
		IdleConnTimeout:     90 * time.Second,
		DisableCompression:  true,
	}}
	return func() mcp.Transport {
		return &mcp.StreamableClientTransport{Endpoint: o.url, HTTPClient: hc, DisableStandaloneSSE: !o.sse}
	}
}

func toolText(r *mcp.CallToolResult) string {
	var b strings.Builder
	for _, c := range r.Content {
		if t, ok := c.(*mcp.TextContent); ok {
			b.WriteString(t.Text)
		}
	}
	return b.String()
}
