// Command bridge is the floor of `mcptrail serve`'s topology for bench/run:
// a Streamable HTTP endpoint in front of a stdio MCP server that does the
// least such a bridge can do and records nothing.
//
//	bridge --listen 127.0.0.1:PORT [--path /mcp] -- CMD [ARG...]
//
// An initialize POST (no Mcp-Session-Id) starts one child CMD for a new
// session and gives it an id; every POST is written to its session's child
// as one line; a request's response is the child's line with the same id,
// returned as application/json; a notification or response gets 202. GET
// (the standalone SSE stream) is 405, which clients take as "none"; DELETE
// ends the session and its child. The only parsing is of each message's id,
// which matching a response to its POST needs. Whatever mcptrail serve adds
// beyond what bridge adds is the cost of recording (and of its checks).
package main

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"os/exec"
	"sync"
	"time"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:0", "address to listen on")
	path := flag.String("path", "/mcp", "the endpoint's path")
	flag.Parse()
	argv := flag.Args()
	if len(argv) == 0 {
		fmt.Fprintln(os.Stderr, "usage: bridge --listen ADDR [--path /mcp] -- CMD [ARG...]")
		os.Exit(2)
	}
	log.SetFlags(0)
	log.SetPrefix("bench-bridge: ")
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		log.Fatal(err)
	}
	b := newBridge(argv)
	defer b.closeAll()
	mux := http.NewServeMux()
	mux.Handle(*path, b)
	log.Printf("listening on http://%s%s", ln.Addr(), *path)
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	log.Fatal(srv.Serve(ln))
}

// maxBody bounds one POST.
const maxBody = 16 << 20

// Bridge serves Streamable HTTP sessions, each through its own child.
type Bridge struct {
	argv     []string
	mu       sync.Mutex
	sessions map[string]*session
}

func newBridge(argv []string) *Bridge {
	return &Bridge{argv: argv, sessions: map[string]*session{}}
}

// session is one child and the POSTs waiting for its answers.
type session struct {
	cmd *exec.Cmd
	in  io.WriteCloser

	writeMu sync.Mutex // one line at a time into the child

	mu      sync.Mutex
	pending map[string]chan []byte // by the request's id, as written
	closed  bool
}

// head is all the bridge reads of a message.
type head struct {
	ID     json.RawMessage `json:"id"`
	Method string          `json:"method"`
}

func (b *Bridge) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch r.Method {
	case http.MethodPost:
	case http.MethodDelete:
		if s := b.take(r.Header.Get("Mcp-Session-Id")); s != nil {
			s.close()
			w.WriteHeader(http.StatusNoContent)
			return
		}
		http.Error(w, "no such session", http.StatusNotFound)
		return
	default:
		w.Header().Set("Allow", "POST, DELETE")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, maxBody+1))
	if err != nil || len(body) > maxBody {
		http.Error(w, "unreadable or too large body", http.StatusBadRequest)
		return
	}
	// A line is a message: a body with a newline in it is compacted.
	if bytes.IndexByte(body, '\n') >= 0 {
		var c bytes.Buffer
		if err := json.Compact(&c, body); err != nil {
			http.Error(w, "invalid JSON", http.StatusBadRequest)
			return
		}
		body = c.Bytes()
	}
	var h head
	if err := json.Unmarshal(body, &h); err != nil {
		http.Error(w, "not a JSON-RPC message", http.StatusBadRequest)
		return
	}
	id := r.Header.Get("Mcp-Session-Id")
	var s *session
	if id == "" {
		if h.Method != "initialize" {
			http.Error(w, "no Mcp-Session-Id", http.StatusBadRequest)
			return
		}
		if id, s, err = b.start(); err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
	} else if s = b.get(id); s == nil {
		http.Error(w, "no such session", http.StatusNotFound)
		return
	}
	var wait chan []byte
	if len(h.ID) > 0 && h.Method != "" {
		if wait = s.expect(string(h.ID)); wait == nil {
			http.Error(w, "session closed", http.StatusNotFound)
			return
		}
	}
	if err := s.send(body); err != nil {
		http.Error(w, "the server is gone", http.StatusBadGateway)
		return
	}
	w.Header().Set("Mcp-Session-Id", id)
	if wait == nil {
		w.WriteHeader(http.StatusAccepted)
		return
	}
	select {
	case resp, ok := <-wait:
		if !ok {
			http.Error(w, "the server is gone", http.StatusBadGateway)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Write(resp)
	case <-r.Context().Done():
		s.forget(string(h.ID))
	}
}

// start starts a session's child and its reader.
func (b *Bridge) start() (string, *session, error) {
	var raw [16]byte
	rand.Read(raw[:])
	id := hex.EncodeToString(raw[:])
	cmd := exec.Command(b.argv[0], b.argv[1:]...)
	cmd.Stderr = os.Stderr
	in, err := cmd.StdinPipe()
	if err != nil {
		return "", nil, err
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return "", nil, err
	}
	if err := cmd.Start(); err != nil {
		return "", nil, err
	}
	s := &session{cmd: cmd, in: in, pending: map[string]chan []byte{}}
	go s.read(out)
	b.mu.Lock()
	b.sessions[id] = s
	b.mu.Unlock()
	return id, s, nil
}

func (b *Bridge) get(id string) *session {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.sessions[id]
}

func (b *Bridge) take(id string) *session {
	b.mu.Lock()
	defer b.mu.Unlock()
	s := b.sessions[id]
	delete(b.sessions, id)
	return s
}

func (b *Bridge) closeAll() {
	b.mu.Lock()
	all := b.sessions
	b.sessions = map[string]*session{}
	b.mu.Unlock()
	for _, s := range all {
		s.close()
	}
}

func (s *session) expect(id string) chan []byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	ch := make(chan []byte, 1)
	s.pending[id] = ch
	return ch
}

func (s *session) forget(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.pending, id)
}

func (s *session) send(msg []byte) error {
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	line := make([]byte, 0, len(msg)+1)
	_, err := s.in.Write(append(append(line, msg...), '\n'))
	return err
}

// read hands each response the child writes to the POST waiting for it;
// the child's requests and notifications have nowhere to go (no GET
// stream) and are dropped.
func (s *session) read(out io.Reader) {
	br := bufio.NewReaderSize(out, 64<<10)
	for {
		line, err := br.ReadBytes('\n')
		if len(line) > 0 {
			var h head
			if json.Unmarshal(line, &h) == nil && len(h.ID) > 0 && h.Method == "" {
				s.mu.Lock()
				ch := s.pending[string(h.ID)]
				delete(s.pending, string(h.ID))
				s.mu.Unlock()
				if ch != nil {
					ch <- bytes.TrimRight(line, "\r\n")
				}
			}
		}
		if err != nil {
			break
		}
	}
	s.mu.Lock()
	s.closed = true
	for id, ch := range s.pending {
		close(ch)
		delete(s.pending, id)
	}
	s.mu.Unlock()
}

// close ends the child: stdin closed, then killed if it lingers.
func (s *session) close() {
	s.in.Close()
	done := make(chan error, 1)
	go func() { done <- s.cmd.Wait() }()
	select {
	case err := <-done:
		var exit *exec.ExitError
		if err != nil && !errors.As(err, &exit) {
			log.Print(err)
		}
	case <-time.After(2 * time.Second):
		s.cmd.Process.Kill()
		<-done
	}
}
