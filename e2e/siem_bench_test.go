package e2e

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// The gateway's call latency with SIEM sinks on and off: the real daemon
// (`mcptrail serve`, strict durability, default detections on in both)
// in front of the go-sdk everything-server over stdio, an MCP client over
// Streamable HTTP calling test_simple_text b.N times. "on" forwards every
// event to four sinks at once: an OCSF file, syslog over TCP (CEF) to a
// receiver that reads everything, Splunk HEC and a webhook (local HTTP
// receivers). "down" has three sinks that accept nothing (connection
// refused, HEC 503), retrying all along. Run without -race:
//
//	go test ./e2e -run '^$' -bench GatewaySinks -benchtime 2000x -count 3

func BenchmarkGatewaySinks(b *testing.B) {
	for _, mode := range []string{"off", "on", "down"} {
		b.Run(mode, func(b *testing.B) {
			in := newInstance(b)
			args := []string{"--upstream", "conf=stdio:" + binary(b, "everything-server")}
			switch mode {
			case "on":
				args = append(args, benchSinks(b, in)...)
			case "down":
				args = append(args, downSinks(b)...)
			}
			d := in.Serve(b, args...)
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
			defer cancel()
			cs, err := mcp.NewClient(&mcp.Implementation{Name: "bench", Version: "1"}, nil).Connect(ctx, &mcp.StreamableClientTransport{Endpoint: d.Endpoint("conf")}, nil)
			if err != nil {
				b.Fatal(err)
			}
			defer cs.Close()
			params := &mcp.CallToolParams{Name: "test_simple_text"}
			for i := 0; i < 50; i++ { // warm up
				if _, err := cs.CallTool(ctx, params); err != nil {
					b.Fatal(err)
				}
			}
			lat := make([]time.Duration, b.N)
			b.ResetTimer()
			start := time.Now()
			for i := range lat {
				t0 := time.Now()
				if _, err := cs.CallTool(ctx, params); err != nil {
					b.Fatal(err)
				}
				lat[i] = time.Since(t0)
			}
			elapsed := time.Since(start)
			b.StopTimer()
			slices.Sort(lat)
			b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
			b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-µs")
			b.ReportMetric(float64(b.N)/elapsed.Seconds(), "calls/s")
			if mode == "on" {
				// The sinks kept up: every event was accepted by all four.
				var events uint64
				ok := pollUntil(60*time.Second, func() bool {
					st := in.Status(b)
					events = uint64(st["events"].(float64))
					for _, s := range st["sinks"].([]any) {
						if uint64(s.(map[string]any)["cursor"].(float64)) < events {
							return false
						}
					}
					return true
				})
				if !ok {
					b.Fatalf("sinks did not catch up: %v", in.Status(b)["sinks"])
				}
			}
		})
	}
}

// downSinks are sinks that never accept anything: syslog and a webhook on
// a port nobody listens on, a HEC collector that answers 503. Their
// forwarders retry with backoff for the whole run.
func downSinks(b *testing.B) []string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	closed := ln.Addr().String()
	ln.Close()
	busy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.WriteHeader(http.StatusServiceUnavailable)
	}))
	b.Cleanup(busy.Close)
	return []string{
		"--sink", "syslog+tcp://" + closed + "?format=cef",
		"--sink", "hec+http://bench-token@" + strings.TrimPrefix(busy.URL, "http://") + "?format=ocsf",
		"--sink", "webhook+http://" + closed + "/hook?format=ecs",
	}
}

// benchSinks starts local receivers and returns the --sink flags.
func benchSinks(b *testing.B, in *Instance) []string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() { defer c.Close(); io.Copy(io.Discard, bufio.NewReader(c)) }()
		}
	}()
	discard := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		if strings.HasPrefix(r.URL.Path, "/services/collector") {
			io.WriteString(w, `{"text":"Success","code":0}`)
		}
	}))
	b.Cleanup(discard.Close)
	host := strings.TrimPrefix(discard.URL, "http://")
	return []string{
		"--sink", "file://" + filepath.Join(in.Home, "bench.ocsf.jsonl") + "?format=ocsf",
		"--sink", "syslog+tcp://" + ln.Addr().String() + "?format=cef",
		"--sink", "hec+http://bench-token@" + host + "?format=ocsf",
		"--sink", "webhook+http://" + host + "/hook?format=ecs",
	}
}
