package ingest

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/mcptrail/mcptrail/store"
)

// commentTap reads a response body as the client does and reports each
// ": held for approval" comment in it.
type commentTap struct {
	base     http.RoundTripper
	comments chan string
}

func (c *commentTap) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := c.base.RoundTrip(r)
	if err != nil || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
		return resp, err
	}
	resp.Body = &tapBody{ReadCloser: resp.Body, tap: c}
	return resp, nil
}

type tapBody struct {
	io.ReadCloser
	tap  *commentTap
	line []byte
}

func (b *tapBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	for _, c := range p[:n] {
		if c != '\n' {
			b.line = append(b.line, c)
			continue
		}
		if s := string(b.line); strings.HasPrefix(s, ": held for approval ") {
			b.tap.comments <- s
		}
		b.line = b.line[:0]
	}
	return n, err
}

// waitComments waits for n keep-alive comments.
func waitComments(t *testing.T, comments <-chan string, n int) {
	t.Helper()
	for i := range n {
		select {
		case <-comments:
		case <-time.After(20 * time.Second):
			t.Fatalf("%d keep-alive comments arrived while the call was held, want %d", i, n)
		}
	}
}

func shortKeepAlive(t *testing.T) {
	old := heldKeepAlive
	heldKeepAlive = 20 * time.Millisecond
	t.Cleanup(func() { heldKeepAlive = old })
}

// TestHTTPHeldKeepAlive: while a call is held, its POST's SSE stream gets
// keep-alive comments (an idle proxy would cut it otherwise); the decision
// follows on the same stream and a go-sdk client reads it. Over a stdio
// child (local) and HTTP upstreams answering SSE (web) and JSON (json),
// approved and denied.
func TestHTTPHeldKeepAlive(t *testing.T) {
	shortKeepAlive(t)
	server := htServer(func(string) bool { return true })
	jsonUp := httptest.NewServer(mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return server }, &mcp.StreamableHTTPOptions{JSONResponse: true}))
	t.Cleanup(func() { jsonUp.CloseClientConnections(); jsonUp.Close() })
	for _, up := range []string{"local", "web", "json"} {
		t.Run(up, func(t *testing.T) {
			gates := make(chan *gate, 2)
			f := newHTFixture(t, func(o *HTTPOptions) {
				o.Upstreams["json"] = Upstream{URL: jsonUp.URL} // answers application/json: re-framed as an event
				o.Hooks.Approve = func(ev *store.Event, params json.RawMessage, _ string) Hold {
					if ev.Tool != "echo" || !strings.Contains(string(params), "hold me") {
						return nil
					}
					g := newGate()
					gates <- g
					return g
				}
			})
			tap := &commentTap{base: http.DefaultTransport, comments: make(chan string, 1000)}
			c := f.connect(t, up, "2025-11-25", &http.Client{Transport: tap})
			type result struct {
				res *mcp.CallToolResult
				err error
			}
			call := func() <-chan result {
				done := make(chan result, 1)
				go func() {
					ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
					defer cancel()
					res, err := c.cs.CallTool(ctx, &mcp.CallToolParams{Name: "echo", Arguments: map[string]any{"text": "hold me"}})
					done <- result{res, err}
				}()
				return done
			}
			done := call()
			g := <-gates
			waitComments(t, tap.comments, 2)
			select {
			case r := <-done:
				t.Fatalf("the held call returned before its decision: %+v", r)
			default:
			}
			g.decided <- nil
			r := <-done
			if r.err != nil || resultText(r.res) != "hold me" {
				t.Fatalf("the approved call: %v %+v", r.err, r.res)
			}

			done = call()
			g = <-gates
			waitComments(t, tap.comments, 2)
			g.decided <- errors.New("denied by SHA256:x at 03:12:00Z: not now")
			r = <-done
			if r.err == nil || !strings.Contains(r.err.Error(), "not now") {
				t.Fatalf("the denied call's client got %v %+v", r.err, r.res)
			}

			// 2026-07-28, no session: the one POST is the stream.
			body := `{"jsonrpc":"2.0","id":5,"method":"tools/call","params":{"name":"echo","arguments":{"text":"hold me"},"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientInfo":{"name":"raw","version":"1"},"io.modelcontextprotocol/clientCapabilities":{}}}}`
			if up != "local" {
				return // the go-sdk upstreams serve sessions; the sessionless path is the stdio child's
			}
			req, _ := http.NewRequest(http.MethodPost, f.url(up), strings.NewReader(body))
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("Accept", "application/json, text/event-stream")
			req.Header.Set("Mcp-Protocol-Version", modernVersion)
			respc := make(chan *http.Response, 1)
			go func() {
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Error(err)
					close(respc)
					return
				}
				respc <- resp
			}()
			g = <-gates
			resp := <-respc
			if resp == nil {
				t.FailNow()
			}
			defer resp.Body.Close()
			if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream" {
				t.Fatalf("a held POST answered %q before its decision", ct)
			}
			sc := bufio.NewScanner(resp.Body)
			for n := 0; n < 2 && sc.Scan(); {
				if strings.HasPrefix(sc.Text(), ": held for approval ") {
					n++
				}
			}
			g.decided <- nil
			var data string
			for sc.Scan() {
				if d, ok := strings.CutPrefix(sc.Text(), "data: "); ok {
					data = d
					break
				}
			}
			if !strings.Contains(data, `"hold me"`) || !strings.Contains(data, `"id":5`) {
				t.Fatalf("the approved sessionless call's event: %q", data)
			}
		})
	}
}

// TestHTTPHeldJSONOnly: a client that accepts only JSON gets no stream and
// no comments, and its answer as a JSON body once the call is decided.
func TestHTTPHeldJSONOnly(t *testing.T) {
	shortKeepAlive(t)
	gates := make(chan *gate, 1)
	f := newHTFixture(t, func(o *HTTPOptions) {
		o.Hooks.Approve = func(ev *store.Event, params json.RawMessage, _ string) Hold {
			if ev.Tool != "echo" {
				return nil
			}
			g := newGate()
			gates <- g
			return g
		}
	})
	body := `{"jsonrpc":"2.0","id":5,"method":"tools/call","params":{"name":"echo","arguments":{"text":"json only"},"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientInfo":{"name":"raw","version":"1"},"io.modelcontextprotocol/clientCapabilities":{}}}}`
	go func() { (<-gates).decided <- errors.New("denied by SHA256:x at 03:12:00Z: json") }()
	resp, got := rawPost(t, f.url("local"), body, http.Header{"Accept": {"application/json"}, "Mcp-Protocol-Version": {modernVersion}})
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" || strings.Contains(string(got), "held for approval") || !strings.Contains(string(got), "-32003") {
		t.Fatalf("a JSON-only client's held call: %s %s", ct, got)
	}
}
