package e2e

import (
	"bufio"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/mcptrail/mcptrail/approval"
)

// keepAliveTap reports each ": held for approval" comment in the SSE
// responses a client reads.
type keepAliveTap struct {
	comments chan string
}

func (k *keepAliveTap) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := http.DefaultTransport.RoundTrip(r)
	if err != nil || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
		return resp, err
	}
	resp.Body = &keepAliveBody{ReadCloser: resp.Body, comments: k.comments}
	return resp, nil
}

type keepAliveBody struct {
	io.ReadCloser
	comments chan<- string
	line     []byte
}

func (b *keepAliveBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	for _, c := range p[:n] {
		if c != '\n' {
			b.line = append(b.line, c)
			continue
		}
		if strings.HasPrefix(string(b.line), ": held for approval ") {
			b.comments <- string(b.line)
		}
		b.line = b.line[:0]
	}
	return n, err
}

// keepAlives waits for n keep-alive comments (the gateway sends one at
// once and one every 15 s).
func keepAlives(t *testing.T, comments <-chan string, n int, who string) {
	t.Helper()
	for i := range n {
		select {
		case <-comments:
		case <-time.After(40 * time.Second):
			t.Fatalf("%s: %d keep-alive comments while held, want %d", who, i, n)
		}
	}
}

func heldFor(t *testing.T, held []approval.Pending, path string) uint64 {
	t.Helper()
	for _, p := range held {
		if strings.Contains(string(p.Params), path) {
			return p.Seq
		}
	}
	t.Fatalf("no held call writes %s: %+v", path, held)
	return 0
}

// TestApprovalServeKeepAlive: while serve holds a call, the POST carrying
// it gets SSE keep-alive comments (so an idle proxy does not cut it), and
// the decision follows on that stream: a go-sdk client (2025-11-25, with a
// session) and a raw 2026-07-28 sessionless POST, each approved once and
// denied once, over @modelcontextprotocol/server-filesystem.
func TestApprovalServeKeepAlive(t *testing.T) {
	t.Parallel()
	ctx := scenarioContext(t)
	server := nodeServer(t, "mcp-server-filesystem")
	root := t.TempDir()
	in := newInstance(t)
	in.WriteConfig(t, approvalRules)
	d := in.Serve(t, "--upstream", "filesystem=stdio:"+server+" "+root)

	tap := &keepAliveTap{comments: make(chan string, 100)}
	client := mcp.NewClient(&mcp.Implementation{Name: "approval-keepalive", Version: "1"}, nil)
	cs := connect(t, ctx, client, &mcp.StreamableClientTransport{Endpoint: d.Endpoint("filesystem"), HTTPClient: &http.Client{Transport: tap}}, nil)

	// raw sends one sessionless POST and returns its keep-alives and the
	// data of its first message event.
	raw := func(id int, path string) (<-chan string, <-chan string) {
		comments, data := make(chan string, 100), make(chan string, 1)
		body := fmt.Sprintf(`{"jsonrpc":"2.0","id":%d,"method":"tools/call","params":{"name":"write_file","arguments":{"path":%q,"content":"modern\n"},"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientInfo":{"name":"modern-client","version":"1.0"}}}}`, id, path)
		go func() {
			defer close(data)
			h := newRawHTTP(d.Endpoint("filesystem"))
			req := h.request(ctx, "POST", body, "application/json, text/event-stream")
			req.Header.Set("Mcp-Protocol-Version", "2026-07-28")
			resp, err := h.client.Do(req)
			if err != nil {
				return
			}
			defer resp.Body.Close()
			if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream" {
				data <- "Content-Type " + ct
				return
			}
			sc := bufio.NewScanner(resp.Body)
			for sc.Scan() {
				if strings.HasPrefix(sc.Text(), ": held for approval ") {
					comments <- sc.Text()
				}
				if d, ok := strings.CutPrefix(sc.Text(), "data: "); ok {
					data <- d
					return
				}
			}
		}()
		return comments, data
	}

	// Round 1: the go-sdk client's write is approved, the raw one denied.
	// Round 2: the other way round. Both of a round are held together.
	for round, approveSDK := range []bool{true, false} {
		sdkPath := filepath.Join(root, fmt.Sprintf("sdk%d.txt", round))
		rawPath := filepath.Join(root, fmt.Sprintf("raw%d.txt", round))
		call := callAsync(ctx, cs, "write_file", map[string]any{"path": sdkPath, "content": "sdk\n"})
		rawComments, rawData := raw(10+round, rawPath)
		held := waitHeld(t, in, 2)
		keepAlives(t, tap.comments, 2, "go-sdk client")
		keepAlives(t, rawComments, 2, "2026-07-28 client")
		for _, p := range []string{sdkPath, rawPath} {
			if _, err := os.Stat(p); !os.IsNotExist(err) {
				t.Fatalf("%s exists while its write is held: %v", p, err)
			}
		}
		approve, deny := heldFor(t, held, sdkPath), heldFor(t, held, rawPath)
		if !approveSDK {
			approve, deny = deny, approve
		}
		in.MustRun(t, "approve", strconv.FormatUint(approve, 10))
		in.MustRun(t, "deny", strconv.FormatUint(deny, 10), "--reason", "not in the freeze")
		r := <-call
		data := <-rawData
		if approveSDK {
			if r.err != nil || r.res.IsError {
				t.Fatalf("round %d: the approved go-sdk call: %v %+v", round, r.err, r.res)
			}
			if !strings.Contains(data, "-32003") || !strings.Contains(data, "not in the freeze") {
				t.Fatalf("round %d: the denied 2026-07-28 call's event: %q", round, data)
			}
			checkFile(t, sdkPath, "sdk\n")
			checkFile(t, rawPath, "")
		} else {
			if r.err == nil || !strings.Contains(r.err.Error(), "not in the freeze") {
				t.Fatalf("round %d: the denied go-sdk call: %v %+v", round, r.err, r.res)
			}
			if !strings.Contains(data, `"result"`) || strings.Contains(data, `"isError":true`) {
				t.Fatalf("round %d: the approved 2026-07-28 call's event: %q", round, data)
			}
			checkFile(t, rawPath, "modern\n")
			checkFile(t, sdkPath, "")
		}
	}
	if res := in.Run(t, "verify"); res.Code != 0 {
		t.Fatalf("verify: exit %d\n%s%s", res.Code, res.Stdout, res.Stderr)
	}
}

// checkFile: path holds want ("" : it does not exist).
func checkFile(t *testing.T, path, want string) {
	t.Helper()
	data, err := os.ReadFile(path)
	if want == "" {
		if !os.IsNotExist(err) {
			t.Fatalf("%s: a denied write happened (%q %v)", path, data, err)
		}
		return
	}
	if err != nil || string(data) != want {
		t.Fatalf("%s = %q %v, want %q", path, data, err, want)
	}
}
