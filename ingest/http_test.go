package ingest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mcptrail/mcptrail/store"
	"github.com/modelcontextprotocol/go-sdk/jsonrpc"
	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// The stdio upstream of these tests is this test binary itself, started
// with htChildEnv set: init serves the test MCP server on stdio instead of
// running tests.
const htChildEnv = "MCPTRAIL_HTTP_TEST_CHILD"

func init() {
	if os.Getenv(htChildEnv) == "1" {
		if err := htServer(nil).Run(context.Background(), &mcp.StdioTransport{}); err != nil {
			log.Print(err)
		}
		os.Exit(0)
	}
}

type htArgs struct {
	Text string `json:"text,omitempty"`
	Ms   int    `json:"ms,omitempty"`
}

func htText(s string) *mcp.CallToolResult {
	return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: s}}}
}

// htServer is the upstream MCP server of the tests. seen, when set, tells
// whether the gateway's record already holds a request carrying a marker.
func htServer(seen func(marker string) bool) *mcp.Server {
	srv := mcp.NewServer(&mcp.Implementation{Name: "httptest-server", Version: "1.0.0"}, nil)
	mcp.AddTool(srv, &mcp.Tool{Name: "echo", Annotations: &mcp.ToolAnnotations{ReadOnlyHint: true}},
		func(_ context.Context, _ *mcp.CallToolRequest, in htArgs) (*mcp.CallToolResult, any, error) {
			return htText(in.Text), nil, nil
		})
	mcp.AddTool(srv, &mcp.Tool{Name: "fail"},
		func(_ context.Context, _ *mcp.CallToolRequest, in htArgs) (*mcp.CallToolResult, any, error) {
			return &mcp.CallToolResult{IsError: true, Content: []mcp.Content{&mcp.TextContent{Text: "failed: " + in.Text}}}, nil, nil
		})
	mcp.AddTool(srv, &mcp.Tool{Name: "progress"},
		func(ctx context.Context, req *mcp.CallToolRequest, in htArgs) (*mcp.CallToolResult, any, error) {
			if tok := req.Params.GetProgressToken(); tok != nil {
				for i := 1; i <= 3; i++ {
					req.Session.NotifyProgress(ctx, &mcp.ProgressNotificationParams{ProgressToken: tok, Progress: float64(i), Total: 3})
				}
			}
			return htText("done"), nil, nil
		})
	// sample and elicit ask the client through the multi round-trip pattern:
	// under 2026-07-28 an input_required result, before it the SDK sends a
	// real sampling/createMessage or elicitation/create request.
	mcp.AddTool(srv, &mcp.Tool{Name: "sample"},
		func(_ context.Context, req *mcp.CallToolRequest, in htArgs) (*mcp.CallToolResult, any, error) {
			if r, ok := req.Params.InputResponses["s"].(*mcp.CreateMessageWithToolsResult); ok && len(r.Content) > 0 {
				if tc, ok := r.Content[0].(*mcp.TextContent); ok {
					return htText("model said: " + tc.Text), nil, nil
				}
			}
			return &mcp.CallToolResult{
				InputRequests: mcp.InputRequestMap{"s": &mcp.CreateMessageParams{
					MaxTokens: 10,
					Messages:  []*mcp.SamplingMessage{{Role: "user", Content: &mcp.TextContent{Text: in.Text}}},
				}},
				RequestState: "state-" + in.Text,
			}, nil, nil
		})
	mcp.AddTool(srv, &mcp.Tool{Name: "elicit"},
		func(_ context.Context, req *mcp.CallToolRequest, in htArgs) (*mcp.CallToolResult, any, error) {
			if r, ok := req.Params.InputResponses["e"].(*mcp.ElicitResult); ok {
				return htText(fmt.Sprintf("%s %v", r.Action, r.Content["name"])), nil, nil
			}
			return &mcp.CallToolResult{InputRequests: mcp.InputRequestMap{"e": &mcp.ElicitParams{
				Message: "who are you?",
				RequestedSchema: map[string]any{
					"type":       "object",
					"properties": map[string]any{"name": map[string]any{"type": "string"}},
				},
			}}}, nil, nil
		})
	mcp.AddTool(srv, &mcp.Tool{Name: "slow"},
		func(ctx context.Context, req *mcp.CallToolRequest, in htArgs) (*mcp.CallToolResult, any, error) {
			if tok := req.Params.GetProgressToken(); tok != nil {
				req.Session.NotifyProgress(ctx, &mcp.ProgressNotificationParams{ProgressToken: tok, Progress: 0, Total: 1})
			}
			select {
			case <-ctx.Done():
				return nil, nil, ctx.Err()
			case <-time.After(time.Duration(in.Ms) * time.Millisecond):
				return htText("slept"), nil, nil
			}
		})
	// addtool changes the tool list: the server says so 10ms later, when no
	// request of the client is in flight any more.
	mcp.AddTool(srv, &mcp.Tool{Name: "addtool"},
		func(_ context.Context, _ *mcp.CallToolRequest, in htArgs) (*mcp.CallToolResult, any, error) {
			mcp.AddTool(srv, &mcp.Tool{Name: "added-" + in.Text},
				func(context.Context, *mcp.CallToolRequest, htArgs) (*mcp.CallToolResult, any, error) {
					return htText("added"), nil, nil
				})
			return htText("adding"), nil, nil
		})
	if seen == nil {
		mcp.AddTool(srv, &mcp.Tool{Name: "crash"},
			func(_ context.Context, _ *mcp.CallToolRequest, _ htArgs) (*mcp.CallToolResult, any, error) {
				os.Exit(3)
				return nil, nil, nil
			})
	} else {
		mcp.AddTool(srv, &mcp.Tool{Name: "marker"},
			func(_ context.Context, _ *mcp.CallToolRequest, in htArgs) (*mcp.CallToolResult, any, error) {
				if seen(in.Text) {
					return htText("recorded before it reached me"), nil, nil
				}
				return &mcp.CallToolResult{IsError: true, Content: []mcp.Content{&mcp.TextContent{Text: "not in the record"}}}, nil, nil
			})
	}
	return srv
}

type htFixture struct {
	st       *store.Store
	gw       *HTTPGateway
	srv      *httptest.Server
	upstream struct {
		mu      sync.Mutex
		headers []http.Header // what the HTTP upstreams received
	}
}

// newHTFixture serves a gateway with four upstreams: web (a stateful go-sdk
// Streamable HTTP server), webless (a stateless one), local (a stdio child)
// and dead (an HTTP address nobody listens on).
func newHTFixture(t *testing.T, edit func(*HTTPOptions)) *htFixture {
	t.Helper()
	f := &htFixture{}
	st, err := store.Open(filepath.Join(t.TempDir(), "mcptrail.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	f.st = st
	seen := func(marker string) bool {
		p, err := st.Query(store.Query{Kind: store.KindRequest, Tool: "marker", Limit: 1000})
		if err != nil {
			return false
		}
		for _, ev := range p.Events {
			if bytes.Contains(ev.Params, []byte(marker)) {
				return true
			}
		}
		return false
	}
	record := func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			f.upstream.mu.Lock()
			f.upstream.headers = append(f.upstream.headers, r.Header.Clone())
			f.upstream.mu.Unlock()
			h.ServeHTTP(w, r)
		})
	}
	server := htServer(seen)
	web := httptest.NewServer(record(mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return server }, nil)))
	webless := httptest.NewServer(record(mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return server }, &mcp.StreamableHTTPOptions{Stateless: true, PropagateRequestCancellation: true})))
	dead, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	deadURL := "http://" + dead.Addr().String() + "/mcp"
	dead.Close()

	opts := HTTPOptions{
		Upstreams: map[string]Upstream{
			"web":     {URL: web.URL, Headers: map[string]string{"X-Upstream-Key": "gateway-secret"}},
			"webless": {URL: webless.URL},
			"local":   {Command: []string{os.Args[0]}, Env: []string{htChildEnv + "=1"}},
			"dead":    {URL: deadURL},
		},
		Recorder:    st,
		Logger:      slog.New(slog.NewTextHandler(io.Discard, nil)),
		ChildStderr: io.Discard,
	}
	if testing.Verbose() {
		opts.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
		opts.ChildStderr = os.Stderr
	}
	if edit != nil {
		edit(&opts)
	}
	f.gw = NewHTTPGateway(opts)
	f.srv = httptest.NewServer(f.gw)
	t.Cleanup(func() {
		f.srv.CloseClientConnections()
		f.srv.Close()
		f.gw.Close()
		web.CloseClientConnections()
		web.Close()
		webless.CloseClientConnections()
		webless.Close()
		st.Close()
	})
	return f
}

func (f *htFixture) url(name string) string { return f.srv.URL + "/mcp/" + name }

func (f *htFixture) events(t *testing.T) []store.Event {
	t.Helper()
	if err := f.st.Flush(); err != nil {
		t.Fatal(err)
	}
	p, err := f.st.Query(store.Query{Limit: 10000})
	if err != nil {
		t.Fatal(err)
	}
	return p.Events
}

// htClient is a go-sdk client with sampling, elicitation and progress.
type htClient struct {
	cs       *mcp.ClientSession
	mu       sync.Mutex
	progress []float64
	sampled  []string
}

const era2025 = "2025-11-25"

func (f *htFixture) connect(t *testing.T, name, version string, hc *http.Client) *htClient {
	t.Helper()
	return f.connectRetrying(t, name, version, hc, -1)
}

// connectRetrying is connect with the SDK's MaxRetries for broken streams
// (0: its default).
func (f *htFixture) connectRetrying(t *testing.T, name, version string, hc *http.Client, retries int) *htClient {
	t.Helper()
	c := &htClient{}
	client := mcp.NewClient(&mcp.Implementation{Name: "test-agent", Version: "0.1"}, &mcp.ClientOptions{
		CreateMessageHandler: func(_ context.Context, req *mcp.CreateMessageRequest) (*mcp.CreateMessageResult, error) {
			text := ""
			if len(req.Params.Messages) > 0 {
				if tc, ok := req.Params.Messages[0].Content.(*mcp.TextContent); ok {
					text = tc.Text
				}
			}
			c.mu.Lock()
			c.sampled = append(c.sampled, text)
			c.mu.Unlock()
			return &mcp.CreateMessageResult{Role: "assistant", Model: "test-model", Content: &mcp.TextContent{Text: "echo of " + text}}, nil
		},
		ElicitationHandler: func(context.Context, *mcp.ElicitRequest) (*mcp.ElicitResult, error) {
			return &mcp.ElicitResult{Action: "accept", Content: map[string]any{"name": "bob"}}, nil
		},
		ProgressNotificationHandler: func(_ context.Context, req *mcp.ProgressNotificationClientRequest) {
			c.mu.Lock()
			c.progress = append(c.progress, req.Params.Progress)
			c.mu.Unlock()
		},
	})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var opts *mcp.ClientSessionOptions
	if version != "" {
		opts = &mcp.ClientSessionOptions{ProtocolVersion: version}
	}
	cs, err := client.Connect(ctx, &mcp.StreamableClientTransport{Endpoint: f.url(name), HTTPClient: hc, MaxRetries: retries}, opts)
	if err != nil {
		t.Fatalf("connecting to %s: %v", name, err)
	}
	c.cs = cs
	t.Cleanup(func() { cs.Close() })
	return c
}

func (c *htClient) call(t *testing.T, tool string, args map[string]any, meta mcp.Meta) *mcp.CallToolResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	res, err := c.cs.CallTool(ctx, &mcp.CallToolParams{Name: tool, Arguments: args, Meta: meta})
	if err != nil {
		t.Fatalf("calling %s: %v", tool, err)
	}
	return res
}

func resultText(res *mcp.CallToolResult) string {
	var parts []string
	for _, c := range res.Content {
		if tc, ok := c.(*mcp.TextContent); ok {
			parts = append(parts, tc.Text)
		}
	}
	return strings.Join(parts, "")
}

// outcomes lists "tool:outcome" for every call outcome of a tool in order.
func outcomes(evs []store.Event, tool string) []string {
	var out []string
	for _, ev := range evs {
		if ev.Kind == store.KindCall && ev.Tool == tool {
			out = append(out, ev.Outcome)
		}
	}
	return out
}

func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestHTTPGatewayBothEras drives a go-sdk client through the gateway to
// each kind of upstream, in both protocol eras, and checks the record.
func TestHTTPGatewayBothEras(t *testing.T) {
	for _, tc := range []struct {
		upstream, version string
		modern            bool // the session runs 2026-07-28
		marker            bool // the upstream can look into the record
	}{
		{"web", era2025, false, true},
		{"web", "", false, true}, // the client tries server/discover, then falls back to initialize
		{"webless", "", true, true},
		{"local", era2025, false, false},
		{"local", "", true, false},
	} {
		name := tc.upstream + "/" + tc.version
		if tc.version == "" {
			name = tc.upstream + "/default"
		}
		t.Run(name, func(t *testing.T) {
			f := newHTFixture(t, nil)
			c := f.connect(t, tc.upstream, tc.version, nil)
			if got := c.cs.InitializeResult().ProtocolVersion; (got == modernVersion) != tc.modern {
				t.Fatalf("negotiated %s", got)
			}
			ctx := context.Background()
			tools, err := c.cs.ListTools(ctx, nil)
			if err != nil {
				t.Fatal(err)
			}
			if len(tools.Tools) < 5 {
				t.Fatalf("tools/list gave %d tools", len(tools.Tools))
			}
			if got := resultText(c.call(t, "echo", map[string]any{"text": "hi"}, nil)); got != "hi" {
				t.Errorf("echo = %q", got)
			}
			if res := c.call(t, "fail", map[string]any{"text": "x"}, nil); !res.IsError {
				t.Errorf("fail: isError not set")
			}
			c.call(t, "progress", map[string]any{"text": "p"}, mcp.Meta{"progressToken": "tok-1"})
			eventually(t, "3 progress notifications", func() bool {
				c.mu.Lock()
				defer c.mu.Unlock()
				return len(c.progress) == 3
			})
			if got := resultText(c.call(t, "sample", map[string]any{"text": "hello"}, nil)); got != "model said: echo of hello" {
				t.Errorf("sample = %q", got)
			}
			if got := resultText(c.call(t, "elicit", nil, nil)); got != "accept bob" {
				t.Errorf("elicit = %q", got)
			}
			if tc.marker {
				if res := c.call(t, "marker", map[string]any{"text": "mark-" + name}, nil); res.IsError {
					t.Errorf("the upstream got the request before it was recorded: %s", resultText(res))
				}
			}

			evs := f.events(t)
			for _, tool := range []string{"echo", "progress", "elicit"} {
				if got := outcomes(evs, tool); len(got) == 0 || got[len(got)-1] != store.OutcomeOK {
					t.Errorf("%s outcomes %v", tool, got)
				}
			}
			if got := outcomes(evs, "fail"); len(got) != 1 || got[0] != store.OutcomeToolError {
				t.Errorf("fail outcomes %v, want [tool_error]", got)
			}
			sample := outcomes(evs, "sample")
			if tc.modern {
				// MRTR: the first round asks for input, the retry (a new
				// JSON-RPC id) completes the same logical call.
				if len(sample) != 2 || sample[0] != store.OutcomeInputRequired || sample[1] != store.OutcomeOK {
					t.Errorf("sample outcomes %v, want [input_required ok]", sample)
				}
				var first, retry *store.Event
				for i := range evs {
					if evs[i].Kind == store.KindRequest && evs[i].Tool == "sample" {
						if first == nil {
							first = &evs[i]
						} else {
							retry = &evs[i]
						}
					}
				}
				if first == nil || retry == nil || retry.LogicalCall != first.Seq {
					t.Errorf("the retry is not linked to the first round: %+v %+v", first, retry)
				}
			} else {
				if len(sample) != 1 || sample[0] != store.OutcomeOK {
					t.Errorf("sample outcomes %v, want [ok]", sample)
				}
				// The server asked the client: that request and its answer
				// are in the record too.
				var asked, answered bool
				for _, ev := range evs {
					if ev.Method == "sampling/createMessage" && ev.From == store.FromServer {
						asked = asked || ev.Kind == store.KindRequest
						answered = answered || (ev.Kind == store.KindCall && ev.Outcome == store.OutcomeOK)
					}
				}
				if !asked || !answered {
					t.Errorf("sampling request recorded %v, answered %v", asked, answered)
				}
			}
			var progress, starts int
			var session string
			for _, ev := range evs {
				if ev.Kind == store.KindNotification && ev.Method == "notifications/progress" {
					progress++
				}
				if ev.Kind == store.KindRequest && ev.Tool == "echo" {
					session = ev.Session
					if ev.Agent == nil || ev.Agent.ClientName != "test-agent" {
						t.Errorf("echo request agent %+v", ev.Agent)
					}
					if ev.Class != "read" {
						t.Errorf("echo class %q, want read (from tools/list annotations)", ev.Class)
					}
				}
				if ev.Kind == store.KindSessionStart {
					starts++
				}
			}
			if progress != 3 {
				t.Errorf("%d progress notifications recorded, want 3", progress)
			}
			// Every call of the agent lands in one gateway session.
			for _, ev := range evs {
				if ev.Kind == store.KindRequest && ev.Method == "tools/call" && ev.Session != session {
					t.Errorf("tools/call %s in session %s, echo in %s", ev.Tool, ev.Session, session)
				}
			}
			if !tc.modern {
				c.cs.Close()
				eventually(t, "session end", func() bool {
					for _, ev := range f.events(t) {
						if ev.Kind == store.KindSessionEnd && ev.Session == session {
							return true
						}
					}
					return false
				})
			}
		})
	}
}

// rawPost sends one POST and returns the response with its body read.
func rawPost(t *testing.T, url string, body string, header http.Header) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, b
}

const htInit = `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"raw","version":"1"}}}`

func TestHTTPGatewayRejects(t *testing.T) {
	f := newHTFixture(t, func(o *HTTPOptions) {
		o.Limits.MaxMessageBytes = 1024
		o.AllowedOrigins = []string{"https://console.example.com"}
	})
	h := func(kv ...string) http.Header {
		hd := http.Header{}
		for i := 0; i < len(kv); i += 2 {
			hd.Set(kv[i], kv[i+1])
		}
		return hd
	}
	for _, tc := range []struct {
		name   string
		url    string
		body   string
		header http.Header
		status int
	}{
		{"unknown upstream", f.url("nope"), htInit, nil, 404},
		{"evil origin", f.url("local"), htInit, h("Origin", "https://evil.example"), 403},
		{"null origin", f.url("local"), htInit, h("Origin", "null"), 403},
		{"DNS rebinding", f.url("local"), htInit, h("Host", "attacker.example:80"), 403},
		{"unsupported protocol version", f.url("local"), htInit, h("Mcp-Protocol-Version", "1999-01-01"), 400},
		{"unknown session (stdio)", f.url("local"), `{"jsonrpc":"2.0","id":2,"method":"tools/list"}`, h("Mcp-Session-Id", "NOSUCHSESSION"), 404},
		{"unknown session (http)", f.url("web"), `{"jsonrpc":"2.0","id":2,"method":"tools/list"}`, h("Mcp-Session-Id", "NOSUCHSESSION"), 404},
		{"missing session", f.url("local"), `{"jsonrpc":"2.0","id":2,"method":"tools/list"}`, nil, 400},
		{"loopback origin", f.url("local"), htInit, h("Origin", "http://localhost:5173"), 200},
		{"allowed origin", f.url("local"), htInit, h("Origin", "https://console.example.com"), 200},
		{"IP host", f.url("local"), htInit, h("Host", "127.0.0.1:1"), 200},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequest(http.MethodPost, tc.url, strings.NewReader(tc.body))
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("Accept", "application/json, text/event-stream")
			for k, v := range tc.header {
				req.Header[k] = v
			}
			if host := tc.header.Get("Host"); host != "" {
				req.Host = host
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != tc.status {
				t.Errorf("status %d, want %d", resp.StatusCode, tc.status)
			}
		})
	}

	t.Run("oversized body", func(t *testing.T) {
		big := `{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"echo","arguments":{"text":"` + strings.Repeat("x", 2000) + `"}}}`
		for _, up := range []string{"local", "web"} {
			resp, body := rawPost(t, f.url(up), big, h("Mcp-Protocol-Version", modernVersion))
			if resp.StatusCode != http.StatusRequestEntityTooLarge {
				t.Errorf("%s: status %d, want 413 (%s)", up, resp.StatusCode, body)
			}
		}
		n := 0
		for _, ev := range f.events(t) {
			if ev.Kind == store.KindRefusal && ev.Refusal.Reason == RefusedSize && strings.Contains(ev.Detail, "exceeds") {
				n++
			}
		}
		if n != 2 {
			t.Errorf("%d refusal events for oversized bodies, want 2", n)
		}
	})

	t.Run("malformed JSON", func(t *testing.T) {
		for _, up := range []string{"local", "web"} {
			resp, body := rawPost(t, f.url(up), `{"jsonrpc":"2.0","id":4,`, nil)
			var r struct {
				Error struct{ Code int } `json:"error"`
			}
			json.Unmarshal(body, &r)
			if resp.StatusCode != http.StatusBadRequest || r.Error.Code != -32700 {
				t.Errorf("%s: status %d body %s, want 400 with -32700", up, resp.StatusCode, body)
			}
		}
		n := 0
		for _, ev := range f.events(t) {
			if ev.Kind == store.KindBadInput && strings.Contains(ev.Detail, "malformed JSON") {
				n++
			}
		}
		if n != 2 {
			t.Errorf("%d bad_input events for malformed JSON, want 2", n)
		}
	})
}

func TestHTTPGatewayAuthentication(t *testing.T) {
	f := newHTFixture(t, func(o *HTTPOptions) {
		o.Authenticate = func(r *http.Request) (*Overrides, error) {
			switch r.Header.Get("Authorization") {
			case "Bearer alice-token":
				return &Overrides{Principal: &store.Principal{Subject: "alice", Kind: "token", Verified: true}}, nil
			case "Bearer bob-token":
				return &Overrides{Principal: &store.Principal{Subject: "bob", Kind: "token", Verified: true}}, nil
			}
			return nil, errors.New("no valid token")
		}
	})
	resp, _ := rawPost(t, f.url("local"), htInit, nil)
	if resp.StatusCode != http.StatusUnauthorized || !strings.HasPrefix(resp.Header.Get("WWW-Authenticate"), "Bearer") {
		t.Fatalf("no token: status %d, WWW-Authenticate %q", resp.StatusCode, resp.Header.Get("WWW-Authenticate"))
	}

	alice := &http.Client{Transport: bearer{"alice-token"}}
	for _, up := range []string{"web", "local"} {
		c := f.connect(t, up, era2025, alice)
		if got := resultText(c.call(t, "echo", map[string]any{"text": "as alice"}, nil)); got != "as alice" {
			t.Errorf("%s: echo = %q", up, got)
		}
		// Bob cannot use Alice's session.
		resp, _ := rawPost(t, f.url(up), `{"jsonrpc":"2.0","id":9,"method":"tools/list"}`,
			http.Header{"Authorization": {"Bearer bob-token"}, "Mcp-Session-Id": {c.cs.ID()}, "Mcp-Protocol-Version": {era2025}})
		if resp.StatusCode != http.StatusNotFound {
			t.Errorf("%s: another principal's request on the session: status %d, want 404", up, resp.StatusCode)
		}
	}
	// Token passthrough is forbidden: the upstream sees the gateway's own
	// header and never the client's token.
	f.upstream.mu.Lock()
	defer f.upstream.mu.Unlock()
	if len(f.upstream.headers) == 0 {
		t.Fatal("the HTTP upstream saw no request")
	}
	for _, hd := range f.upstream.headers {
		if hd.Get("Authorization") != "" {
			t.Errorf("the upstream got the client's Authorization header %q", hd.Get("Authorization"))
		}
		if hd.Get("X-Upstream-Key") != "gateway-secret" {
			t.Errorf("the upstream did not get the gateway's header: %v", hd)
		}
	}
	for _, ev := range f.events(t) {
		if ev.Kind == store.KindRequest && ev.Tool == "echo" && (ev.Principal == nil || ev.Principal.Subject != "alice") {
			t.Errorf("echo recorded with principal %+v", ev.Principal)
		}
	}
}

type bearer struct{ token string }

func (b bearer) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("Authorization", "Bearer "+b.token)
	return http.DefaultTransport.RoundTrip(r)
}

func TestHTTPGatewayChildCrash(t *testing.T) {
	for _, version := range []string{era2025, ""} {
		t.Run("version="+version, func(t *testing.T) {
			f := newHTFixture(t, nil)
			// A real client retries a broken stream: the standalone stream
			// of a crashed session ends, and only the 404 on reconnecting
			// tells the client the session is gone — after its call's error.
			c := f.connectRetrying(t, "local", version, nil, 0)
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			_, err := c.cs.CallTool(ctx, &mcp.CallToolParams{Name: "crash", Arguments: map[string]any{}})
			if err == nil || !strings.Contains(err.Error(), "upstream exited with status 3") {
				t.Fatalf("crash call: err = %v, want the gateway's transport error", err)
			}
			if got := outcomes(f.events(t), "crash"); len(got) != 1 || got[0] != store.OutcomeTransportError {
				t.Errorf("crash outcomes %v, want [transport_error]", got)
			}
			if version == era2025 {
				// The session is gone with its child; a new one starts a new child.
				eventually(t, "the crashed session to go", func() bool { return f.gw.Sessions() == 0 })
				resp, _ := rawPost(t, f.url("local"), `{"jsonrpc":"2.0","id":5,"method":"tools/list"}`,
					http.Header{"Mcp-Session-Id": {c.cs.ID()}})
				if resp.StatusCode != http.StatusNotFound {
					t.Errorf("request on the crashed session: status %d, want 404", resp.StatusCode)
				}
				c = f.connect(t, "local", version, nil)
			}
			if got := resultText(c.call(t, "echo", map[string]any{"text": "again"}, nil)); got != "again" {
				t.Errorf("echo after the crash = %q", got)
			}
		})
	}
}

func TestHTTPGatewayDeleteEndsSession(t *testing.T) {
	f := newHTFixture(t, nil)
	for _, up := range []string{"local", "web"} {
		c := f.connect(t, up, era2025, nil)
		c.call(t, "echo", map[string]any{"text": "x"}, nil)
		sid := c.cs.ID()
		if sid == "" {
			t.Fatalf("%s: no Mcp-Session-Id", up)
		}
		c.cs.Close() // sends DELETE
		resp, _ := rawPost(t, f.url(up), `{"jsonrpc":"2.0","id":5,"method":"tools/list"}`,
			http.Header{"Mcp-Session-Id": {sid}, "Mcp-Protocol-Version": {era2025}})
		if resp.StatusCode != http.StatusNotFound {
			t.Errorf("%s: request after DELETE: status %d, want 404", up, resp.StatusCode)
		}
	}
	ends := 0
	for _, ev := range f.events(t) {
		if ev.Kind == store.KindSessionEnd && ev.Detail == "client ended the session" {
			ends++
		}
	}
	if ends != 2 {
		t.Errorf("%d session_end events for DELETE, want 2", ends)
	}
}

// TestHTTPGatewayStatelessIDs runs concurrent 2026-07-28 clients against
// one shared stdio child: their JSON-RPC ids collide (each client counts
// from 1), the gateway's remapping keeps the answers apart.
func TestHTTPGatewayStatelessIDs(t *testing.T) {
	f := newHTFixture(t, nil)
	var wg sync.WaitGroup
	for i := range 4 {
		c := f.connect(t, "local", "", nil)
		wg.Go(func() {
			for j := range 10 {
				want := fmt.Sprintf("client %d call %d", i, j)
				if got := resultText(c.call(t, "echo", map[string]any{"text": want}, nil)); got != want {
					t.Errorf("got %q, want %q", got, want)
				}
			}
		})
	}
	wg.Wait()
	if got := outcomes(f.events(t), "echo"); len(got) != 40 {
		t.Errorf("%d echo outcomes, want 40", len(got))
	}
}

// TestHTTPGatewayStatelessCancel: under 2026-07-28 closing the response
// stream cancels the call; the stdio child hears notifications/cancelled.
func TestHTTPGatewayStatelessCancel(t *testing.T) {
	for _, up := range []string{"local", "webless"} {
		t.Run(up, func(t *testing.T) {
			f := newHTFixture(t, nil)
			c := f.connect(t, up, "", nil)
			ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
			defer cancel()
			if _, err := c.cs.CallTool(ctx, &mcp.CallToolParams{Name: "slow", Arguments: map[string]any{"ms": 60000}}); err == nil {
				t.Fatal("the slow call returned")
			}
			eventually(t, "the cancelled outcome", func() bool {
				got := outcomes(f.events(t), "slow")
				return len(got) == 1 && got[0] == store.OutcomeCancelled
			})
			// The session carries on.
			if got := resultText(c.call(t, "echo", map[string]any{"text": "still here"}, nil)); got != "still here" {
				t.Errorf("echo = %q", got)
			}
		})
	}
}

// TestHTTPGatewayStatelessTimeout: under 2026-07-28 the call timeout ends
// a call the stdio child leaves unanswered, on each request the shared
// session serves (the session is made once and reused).
func TestHTTPGatewayStatelessTimeout(t *testing.T) {
	f := newHTFixture(t, func(o *HTTPOptions) { o.Limits.CallTimeout = 200 * time.Millisecond })
	c := f.connect(t, "local", "", nil)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for i := range 2 {
		_, err := c.cs.CallTool(ctx, &mcp.CallToolParams{Name: "slow", Arguments: map[string]any{"ms": 60000}})
		var rpcErr *jsonrpc.Error
		if !errors.As(err, &rpcErr) || rpcErr.Code != -32001 {
			t.Fatalf("slow call %d under a 200ms call timeout: %v, want a -32001 error", i, err)
		}
	}
	eventually(t, "two timeout outcomes", func() bool {
		got := outcomes(f.events(t), "slow")
		return len(got) == 2 && got[0] == store.OutcomeTimeout && got[1] == store.OutcomeTimeout
	})
	if got := resultText(c.call(t, "echo", map[string]any{"text": "still here"}, nil)); got != "still here" {
		t.Errorf("echo = %q", got)
	}
}

func TestHTTPGatewayUpstreamUnreachable(t *testing.T) {
	f := newHTFixture(t, nil)
	resp, body := rawPost(t, f.url("dead"), htInit, nil)
	if resp.StatusCode != http.StatusBadGateway {
		t.Fatalf("status %d, want 502", resp.StatusCode)
	}
	var r struct {
		ID    int `json:"id"`
		Error struct {
			Message string `json:"message"`
		} `json:"error"`
	}
	if json.Unmarshal(body, &r) != nil || r.ID != 1 || !strings.Contains(r.Error.Message, "could not be reached") {
		t.Errorf("body %s", body)
	}
	var got []string
	for _, ev := range f.events(t) {
		if ev.Kind == store.KindCall && ev.Method == "initialize" {
			got = append(got, ev.Outcome)
		}
	}
	if len(got) != 1 || got[0] != store.OutcomeTransportError {
		t.Errorf("initialize outcomes %v, want [transport_error]", got)
	}
}

// sseReader reads the events of a response body.
type sseReader struct {
	t      *testing.T
	body   io.ReadCloser
	p      *sseParser
	events chan sseEvent
}

func newSSEReader(t *testing.T, body io.ReadCloser) *sseReader {
	r := &sseReader{t: t, body: body, p: newSSEParser(1 << 20), events: make(chan sseEvent, 100)}
	go func() {
		defer close(r.events)
		buf := make([]byte, 4096)
		for {
			n, err := body.Read(buf)
			r.p.feed(buf[:n], func(ev sseEvent, _ int) bool {
				ev.Data = append([]byte(nil), ev.Data...)
				r.events <- ev
				return true
			})
			if err != nil {
				return
			}
		}
	}()
	return r
}

// next returns the next event whose data contains want.
func (r *sseReader) next(want string) sseEvent {
	r.t.Helper()
	timeout := time.After(10 * time.Second)
	for {
		select {
		case ev, ok := <-r.events:
			if !ok {
				r.t.Fatalf("the stream ended before an event with %q", want)
			}
			if strings.Contains(string(ev.Data), want) {
				return ev
			}
		case <-timeout:
			r.t.Fatalf("no event with %q", want)
		}
	}
}

func (f *htFixture) waitRecorded(t *testing.T, what string, match func(store.Event) bool) {
	t.Helper()
	eventually(t, what, func() bool {
		for _, ev := range f.events(t) {
			if match(ev) {
				return true
			}
		}
		return false
	})
}

// TestHTTPGatewayStdioStreams checks the stdio side's own Streamable HTTP
// server: 202 for notifications, one standalone GET at a time, messages
// for a client with no stream queued until its GET.
func TestHTTPGatewayStdioStreams(t *testing.T) {
	f := newHTFixture(t, nil)
	resp, body := rawPost(t, f.url("local"), htInit, nil)
	sid := resp.Header.Get("Mcp-Session-Id")
	// Its only message is the response: one JSON body when it comes within
	// jsonGrace, else a stream (a call that reports progress gets a stream,
	// below).
	if ct := resp.Header.Get("Content-Type"); resp.StatusCode != 200 || sid == "" || (ct != "application/json" && !strings.HasPrefix(ct, "text/event-stream")) {
		t.Fatalf("initialize: status %d, sid %q, type %q", resp.StatusCode, sid, resp.Header.Get("Content-Type"))
	}
	for _, b := range sid {
		if b < 0x21 || b > 0x7e {
			t.Fatalf("Mcp-Session-Id %q is not visible ASCII", sid)
		}
	}
	if !bytes.Contains(body, []byte(`"serverInfo"`)) {
		t.Errorf("initialize answer %q", body)
	}
	hd := http.Header{"Mcp-Session-Id": {sid}, "Mcp-Protocol-Version": {era2025}}
	resp, _ = rawPost(t, f.url("local"), `{"jsonrpc":"2.0","method":"notifications/initialized"}`, hd)
	if resp.StatusCode != http.StatusAccepted {
		t.Errorf("notification: status %d, want 202", resp.StatusCode)
	}
	// A JSON-only client gets a JSON body.
	req, _ := http.NewRequest(http.MethodPost, f.url("local"), strings.NewReader(`{"jsonrpc":"2.0","id":2,"method":"tools/list"}`))
	req.Header = hd.Clone()
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	jr, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	jb, _ := io.ReadAll(jr.Body)
	jr.Body.Close()
	if jr.Header.Get("Content-Type") != "application/json" || !bytes.Contains(jb, []byte(`"tools"`)) {
		t.Errorf("JSON answer: %s %s", jr.Header.Get("Content-Type"), jb)
	}

	// A notification the server sends while no request is in flight waits
	// for the client's standalone stream.
	resp, body = rawPost(t, f.url("local"), `{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"addtool","arguments":{"text":"x"}}}`, hd)
	if !bytes.Contains(body, []byte("adding")) {
		t.Fatalf("addtool: %d %s", resp.StatusCode, body)
	}
	f.waitRecorded(t, "list_changed", func(ev store.Event) bool { return ev.Method == "notifications/tools/list_changed" })

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	get := func(lastEventID string) *http.Response {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, f.url("local"), nil)
		req.Header = hd.Clone()
		req.Header.Set("Accept", "text/event-stream")
		if lastEventID != "" {
			req.Header.Set("Last-Event-ID", lastEventID)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		return resp
	}
	first := get("")
	defer first.Body.Close()
	if first.StatusCode != 200 {
		t.Fatalf("GET: status %d", first.StatusCode)
	}
	newSSEReader(t, first.Body).next("notifications/tools/list_changed")
	// One reader at a time.
	second := get("")
	second.Body.Close()
	if second.StatusCode != http.StatusConflict {
		t.Errorf("second GET: status %d, want 409", second.StatusCode)
	}

	// Resumption: a client that loses its POST stream mid-call gets the
	// rest of it by GET with Last-Event-ID.
	preq, _ := http.NewRequestWithContext(ctx, http.MethodPost, f.url("local"),
		strings.NewReader(`{"jsonrpc":"2.0","id":4,"method":"tools/call","params":{"name":"slow","arguments":{"ms":300},"_meta":{"progressToken":"p4"}}}`))
	preq.Header = hd.Clone()
	preq.Header.Set("Content-Type", "application/json")
	preq.Header.Set("Accept", "application/json, text/event-stream")
	presp, err := http.DefaultClient.Do(preq)
	if err != nil {
		t.Fatal(err)
	}
	ev := newSSEReader(t, presp.Body).next("notifications/progress")
	presp.Body.Close() // the connection drops
	if ev.ID == "" {
		t.Fatal("the POST stream's events carry no id")
	}
	f.waitRecorded(t, "the slow call's outcome", func(ev store.Event) bool { return ev.Kind == store.KindCall && ev.Tool == "slow" })
	resumed := get(ev.ID)
	defer resumed.Body.Close()
	if resumed.StatusCode != 200 {
		t.Fatalf("resuming GET: status %d", resumed.StatusCode)
	}
	if got := newSSEReader(t, resumed.Body).next(`"id":4`); !strings.Contains(string(got.Data), "slept") {
		t.Errorf("resumed stream gave %s", got.Data)
	}
	cancel()

	req, _ = http.NewRequest(http.MethodDelete, f.url("local"), nil)
	req.Header = hd.Clone()
	dr, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	dr.Body.Close()
	if dr.StatusCode != http.StatusNoContent {
		t.Errorf("DELETE: status %d", dr.StatusCode)
	}
	eventually(t, "no sessions", func() bool { return f.gw.Sessions() == 0 })
}

// TestHTTPGatewayCloseEndsEverything: Close answers pending calls, records
// them as unknown, stops children, and leaks no goroutine.
func TestHTTPGatewayCloseEndsEverything(t *testing.T) {
	before := runtime.NumGoroutine()
	f := newHTFixture(t, nil)
	var wg sync.WaitGroup
	errs := make(chan error, 3)
	for _, tc := range []struct{ up, version string }{{"local", era2025}, {"local", ""}, {"web", era2025}} {
		c := f.connect(t, tc.up, tc.version, nil)
		wg.Go(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			_, err := c.cs.CallTool(ctx, &mcp.CallToolParams{Name: "slow", Arguments: map[string]any{"ms": 60000}})
			errs <- err
		})
	}
	eventually(t, "three slow calls in flight", func() bool {
		n := 0
		for _, ev := range f.events(t) {
			if ev.Kind == store.KindRequest && ev.Tool == "slow" {
				n++
			}
		}
		return n == 3
	})
	f.gw.Close()
	if f.gw.Sessions() != 0 {
		t.Errorf("%d sessions after Close", f.gw.Sessions())
	}
	// The stdio calls are answered by the gateway; the HTTP call's client
	// stream is cut when the test servers close.
	f.srv.CloseClientConnections()
	wg.Wait()
	close(errs)
	for err := range errs {
		if err == nil {
			t.Error("a slow call succeeded")
		}
	}
	got := outcomes(f.events(t), "slow")
	if len(got) != 3 {
		t.Fatalf("slow outcomes %v", got)
	}
	for _, o := range got {
		if o != store.OutcomeUnknown {
			t.Errorf("slow outcome %s, want unknown: %+v", o, outcomeEvents(f.events(t), "slow"))
		}
	}
	f.srv.Close()
	http.DefaultClient.CloseIdleConnections()
	deadline := time.Now().Add(10 * time.Second)
	for runtime.NumGoroutine() > before+8 && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	if n := runtime.NumGoroutine(); n > before+8 {
		buf := make([]byte, 1<<20)
		buf = buf[:runtime.Stack(buf, true)]
		t.Errorf("%d goroutines before, %d after Close:\n%s", before, n, buf)
	}
}

// TestHTTPGatewayUpstreamBreaksMidStream: an HTTP upstream that dies after
// the stream started; the client gets the events so far and then an error
// for its call on the same stream.
func TestHTTPGatewayUpstreamBreaksMidStream(t *testing.T) {
	broken := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		w.WriteHeader(200)
		io.WriteString(w, "event: message\ndata: {\"jsonrpc\":\"2.0\",\"method\":\"notifications/message\",\"params\":{\"level\":\"info\",\"data\":\"working\"}}\n\n")
		w.(http.Flusher).Flush()
		panic(http.ErrAbortHandler)
	}))
	t.Cleanup(broken.Close)
	f := newHTFixture(t, func(o *HTTPOptions) { o.Upstreams["broken"] = Upstream{URL: broken.URL} })
	resp, body := rawPost(t, f.url("broken"), `{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"echo","arguments":{}}}`,
		http.Header{"Mcp-Protocol-Version": {"2025-06-18"}})
	if resp.StatusCode != 200 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	var evs []sseEvent
	newSSEParser(1<<20).feed(body, func(ev sseEvent, _ int) bool { evs = append(evs, ev); return true })
	if len(evs) != 2 || !strings.Contains(string(evs[0].Data), "working") || !strings.Contains(string(evs[1].Data), `"id":7`) || !strings.Contains(string(evs[1].Data), "stream failed") {
		t.Fatalf("the client got %q", body)
	}
	if got := outcomes(f.events(t), "echo"); len(got) != 1 || got[0] != store.OutcomeTransportError {
		t.Errorf("echo outcomes %v, want [transport_error]", got)
	}
}

// TestHTTPGatewayJSONUpstream: an upstream answering application/json.
func TestHTTPGatewayJSONUpstream(t *testing.T) {
	server := htServer(func(string) bool { return true })
	up := httptest.NewServer(mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return server }, &mcp.StreamableHTTPOptions{JSONResponse: true}))
	t.Cleanup(func() { up.CloseClientConnections(); up.Close() }) // after the fixture's cleanup
	f := newHTFixture(t, func(o *HTTPOptions) { o.Upstreams["json"] = Upstream{URL: up.URL} })
	c := f.connect(t, "json", era2025, nil)
	if got := resultText(c.call(t, "echo", map[string]any{"text": "j"}, nil)); got != "j" {
		t.Errorf("echo = %q", got)
	}
	c.call(t, "fail", nil, nil)
	evs := f.events(t)
	if got := outcomes(evs, "echo"); len(got) != 1 || got[0] != store.OutcomeOK {
		t.Errorf("echo outcomes %v", got)
	}
	if got := outcomes(evs, "fail"); len(got) != 1 || got[0] != store.OutcomeToolError {
		t.Errorf("fail outcomes %v", got)
	}
}

func TestSSEStreamBounds(t *testing.T) {
	// A POST stream whose reader falls behind is broken off.
	st := newStream("s", 10, []string{"n1"})
	st.add([]byte("123456"))
	st.add([]byte("789012"))
	if _, broken, _ := st.state(); !broken {
		t.Error("a POST stream over its limit is not broken off")
	}
	if st.add([]byte("x")) {
		t.Error("a broken stream takes more")
	}
	// The standalone stream drops its oldest messages instead.
	sa := newStream("g", 10, nil)
	sa.standalone = true
	for _, m := range []string{"aaaa", "bbbb", "cccc", "dddd"} {
		sa.add([]byte(m))
	}
	if n := sa.takeDropped(); n != 2 {
		t.Errorf("dropped %d, want 2", n)
	}
	sa.close()
	rec := httptest.NewRecorder()
	if !sa.serve(context.Background(), rec) {
		t.Fatal("serve did not complete")
	}
	if got := rec.Body.String(); !strings.Contains(got, "id: g_2\nevent: message\ndata: cccc\n\n") || strings.Contains(got, "aaaa") {
		t.Errorf("standalone stream wrote %q", got)
	}
	// Resuming replays from the event after Last-Event-ID.
	if err := sa.attach(3); err != nil {
		t.Fatal(err)
	}
	rec = httptest.NewRecorder()
	sa.serve(context.Background(), rec)
	if got := rec.Body.String(); strings.Contains(got, "cccc") || !strings.Contains(got, "dddd") {
		t.Errorf("resumed stream wrote %q", got)
	}
	if err := sa.attach(-1); err != errStreamTaken {
		t.Errorf("second reader: %v", err)
	}
}

func TestHTTPGatewayIdleSessionsEnd(t *testing.T) {
	// Long enough that the first session is not reaped before the count
	// below on a loaded machine under -race; short enough to wait for.
	f := newHTFixture(t, func(o *HTTPOptions) { o.IdleTimeout = 2 * time.Second })
	resp, _ := rawPost(t, f.url("local"), htInit, nil)
	sid := resp.Header.Get("Mcp-Session-Id")
	if sid == "" {
		t.Fatal("no session")
	}
	_, body := rawPost(t, f.url("local"), `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","arguments":{"text":"s"},"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientInfo":{"name":"raw","version":"1"},"io.modelcontextprotocol/clientCapabilities":{}}}}`,
		http.Header{"Mcp-Protocol-Version": {modernVersion}, "Mcp-Method": {"tools/call"}, "Mcp-Name": {"echo"}})
	if !bytes.Contains(body, []byte(`"text":"s"`)) {
		t.Fatalf("stateless echo: %s", body)
	}
	if n := f.gw.Sessions(); n != 2 {
		t.Errorf("%d sessions, want 2", n)
	}
	eventually(t, "idle sessions to end", func() bool { return f.gw.Sessions() == 0 })
	resp, _ = rawPost(t, f.url("local"), `{"jsonrpc":"2.0","id":2,"method":"tools/list"}`, http.Header{"Mcp-Session-Id": {sid}})
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("request on an idle-ended session: status %d, want 404", resp.StatusCode)
	}
	f.waitRecorded(t, "the shared child's stop", func(ev store.Event) bool {
		return ev.Kind == store.KindSessionEnd && ev.Detail == "idle upstream stopped"
	})
}

func outcomeEvents(evs []store.Event, tool string) []string {
	var out []string
	for _, ev := range evs {
		if ev.Kind == store.KindCall && ev.Tool == tool {
			out = append(out, ev.Upstream+" "+ev.Session+" "+ev.Outcome+" "+ev.Detail)
		}
	}
	return out
}

// TestSSEStreamDropReleases checks that a standalone stream nobody reads
// holds at most its limit: the messages it drops are let go, not kept in
// its buffer behind the read position.
func TestSSEStreamDropReleases(t *testing.T) {
	sa := newStream("g", 100, nil)
	sa.standalone = true
	for range 1000 {
		sa.add([]byte("0123456789"))
	}
	held := 0
	for _, e := range sa.events {
		held += len(e.msg)
	}
	if held > 100 || len(sa.events) > 10 {
		t.Errorf("after 10000 bytes through a standalone stream with a 100-byte limit it holds %d events, %d bytes", len(sa.events), held)
	}
	if n := sa.takeDropped(); n != 990 {
		t.Errorf("dropped %d, want 990", n)
	}
}

// A POST whose answer is complete when the handler looks gets one JSON body;
// one with a notification on the way gets a stream.
func TestSSEStreamAnswersJSONWhenOnlyResponses(t *testing.T) {
	quick := newStream("q", 1<<20, []string{"n1"})
	quick.addAnswer([]byte(`{"jsonrpc":"2.0","id":1,"result":{}}`), "n1")
	rec := httptest.NewRecorder()
	if !quick.serve(context.Background(), rec) {
		t.Fatal("serve did not complete")
	}
	if ct := rec.Header().Get("Content-Type"); ct != "application/json" || rec.Body.String() != `{"jsonrpc":"2.0","id":1,"result":{}}` {
		t.Errorf("quick answer: %s %q", ct, rec.Body.String())
	}

	chatty := newStream("c", 1<<20, []string{"n2"})
	chatty.add([]byte(`{"jsonrpc":"2.0","method":"notifications/progress","params":{"progressToken":"p","progress":1}}`))
	chatty.addAnswer([]byte(`{"jsonrpc":"2.0","id":2,"result":{}}`), "n2")
	rec = httptest.NewRecorder()
	chatty.serve(context.Background(), rec)
	if ct := rec.Header().Get("Content-Type"); ct != "text/event-stream" || !strings.Contains(rec.Body.String(), "notifications/progress") {
		t.Errorf("answer after a notification: %s %q", ct, rec.Body.String())
	}
}

// A sessionless client's subscriptions/listen stream gets the shared
// child's acknowledgement, naming the subscription by the client's own
// request id (the child knows it by the gateway's).
func TestHTTPGatewaySharedChildSubscription(t *testing.T) {
	f := newHTFixture(t, nil)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	body := `{"jsonrpc":"2.0","id":"sub-1","method":"subscriptions/listen","params":{"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientInfo":{"name":"raw","version":"1"},"io.modelcontextprotocol/clientCapabilities":{}},"notifications":{"toolsListChanged":true}}}`
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, f.url("local"), strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	req.Header.Set("Mcp-Protocol-Version", modernVersion)
	req.Header.Set("Mcp-Method", "subscriptions/listen")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	ack := newSSEReader(t, resp.Body).next("notifications/subscriptions/acknowledged")
	if !strings.Contains(string(ack.Data), `"io.modelcontextprotocol/subscriptionId":"sub-1"`) {
		t.Errorf("acknowledgement %s does not name the client's subscription sub-1", ack.Data)
	}
}
