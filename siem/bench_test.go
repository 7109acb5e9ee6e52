package siem

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mcptrail/mcptrail/siem/siemtest"
	"github.com/mcptrail/mcptrail/store"
)

// Forwarding rate per sink: b.N events (half requests, half outcomes, the
// shape the gateway records) already in the store, one forwarder, timed
// from its start until the sink has accepted the last one. Reported as
// events/s. Run with a fixed count, e.g.
//
//	go test ./siem -run '^$' -bench Forward -benchtime 20000x

func benchStore(b *testing.B) *store.Store {
	b.Helper()
	st := openStore(b, "batch")
	appendCalls(b, st, (b.N+1)/2)
	return st
}

func benchForward(b *testing.B, raw string, delivered func() uint64) {
	st := benchStore(b)
	total := st.Stats().Events
	spec, err := ParseSinkURL(raw)
	if err != nil {
		b.Fatal(err)
	}
	f, err := NewForwarder(st, spec, ForwarderOptions{Poll: time.Millisecond})
	if err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	start := time.Now()
	if err := f.Start(); err != nil {
		b.Fatal(err)
	}
	for {
		n := f.Status().Cursor
		if delivered != nil {
			n = delivered()
		}
		if n >= total {
			break
		}
		time.Sleep(time.Millisecond)
	}
	elapsed := time.Since(start)
	b.StopTimer()
	f.Stop(0)
	if s := f.Status(); s.Failures > 0 {
		b.Fatalf("sink failed: %s", s.LastError)
	}
	b.ReportMetric(float64(total)/elapsed.Seconds(), "events/s")
	b.ReportMetric(0, "ns/op")
}

func BenchmarkForwardFile(b *testing.B) {
	for _, f := range []string{"jsonl", "ocsf", "ecs", "cef"} {
		b.Run(f, func(b *testing.B) {
			// sync=0s: fsync every batch, so that the cursor reaching the
			// end measures the rate, not the 1 s sync cadence.
			benchForward(b, "file://"+filepath.Join(b.TempDir(), "out")+"?sync=0s&format="+f, nil)
		})
	}
}

// discardSyslog is a TCP syslog receiver that reads and counts frames.
func discardSyslog(b *testing.B) (addr string, count func() uint64) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { ln.Close() })
	var n uint64
	done := make(chan struct{})
	var mu = make(chan struct{}, 1)
	mu <- struct{}{}
	go func() {
		defer close(done)
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		br := bufio.NewReaderSize(c, 1<<16)
		for {
			l, err := br.ReadString(' ')
			if err != nil {
				return
			}
			var size int
			fmt.Sscan(strings.TrimSpace(l), &size)
			if _, err := br.Discard(size); err != nil {
				return
			}
			<-mu
			n++
			mu <- struct{}{}
		}
	}()
	return ln.Addr().String(), func() uint64 { <-mu; v := n; mu <- struct{}{}; return v }
}

// Syslog over TCP to a receiver that reads and counts the frames (the
// forwarder's settle time is set to 0: this is the transport's rate).
func BenchmarkForwardSyslogTCP(b *testing.B) {
	for _, f := range []string{"cef", "json"} {
		b.Run(f, func(b *testing.B) {
			addr, count := discardSyslog(b)
			benchForward(b, "syslog+tcp://"+addr+"?settle=0s&format="+f, count)
		})
	}
}

// Syslog over TCP to a real rsyslogd writing a file, counted when written.
func BenchmarkForwardRsyslog(b *testing.B) {
	rs := siemtest.StartRsyslog(b)
	benchForward(b, "syslog+tcp://"+rs.Addr()+"?settle=0s&format=cef", func() uint64 { return uint64(len(rs.Messages())) })
}

// HEC to a local receiver that reads and discards the body; with ack=1 it
// acknowledges every ackId at the first poll.
func BenchmarkForwardHEC(b *testing.B) {
	for _, ack := range []bool{false, true} {
		b.Run(fmt.Sprintf("ack=%v", ack), func(b *testing.B) {
			var mu sync.Mutex
			var next int
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				mu.Lock()
				defer mu.Unlock()
				body, _ := io.ReadAll(r.Body)
				if strings.HasSuffix(r.URL.Path, "/ack") {
					id := strings.Trim(strings.TrimPrefix(string(body), `{"acks":[`), "]}")
					fmt.Fprintf(w, `{"acks":{%q:true}}`, id)
					return
				}
				if !bytes.HasPrefix(body, []byte(`{"time":`)) {
					w.WriteHeader(400)
					return
				}
				next++
				fmt.Fprintf(w, `{"text":"Success","code":0,"ackId":%d}`, next)
			}))
			defer srv.Close()
			u := strings.Replace(srv.URL, "http://", "hec+http://tok@", 1) + "?format=ocsf"
			if ack {
				u += "&ack=1"
			}
			benchForward(b, u, nil)
		})
	}
}

func BenchmarkForwardWebhook(b *testing.B) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.Copy(io.Discard, r.Body) }))
	defer srv.Close()
	benchForward(b, strings.Replace(srv.URL, "http://", "webhook+http://", 1)+"/in?format=ecs", nil)
}

// The Kafka sink into three brokers in this process (acks=all, idempotent).
func BenchmarkForwardKafka(b *testing.B) {
	c := kafkaCluster(b)
	benchForward(b, "kafka://"+strings.Join(c.ListenAddrs(), ",")+"/mcptrail", nil)
}
