package ingest

import (
	"context"
	"fmt"
	"io"
	"sync"

	"github.com/mcptrail/mcptrail/store"
)

// Stdio relays one stdio MCP session: the client speaks on in/out, the
// server is a child process. Every message passes through sess before it is
// forwarded.
type Stdio struct {
	Session *Session
	Child   ChildOptions
	In      io.Reader // from the client
	Out     io.Writer // to the client
}

// Run relays until the client closes its input (then the server is shut
// down: stdin closed, SIGTERM, SIGKILL) or the server exits. It returns the
// server's exit status.
func (s *Stdio) Run(ctx context.Context) (int, error) {
	// Unread until the session's start is recorded: nothing from the
	// server may come before it.
	child, err := startChild(s.Child)
	if err != nil {
		return 1, err
	}
	out := &lockedWriter{w: s.Out}
	// Calls the gateway itself makes on this connection (injector).
	inj := newInjector(child.Send)
	s.Session.attachUpstream(inj)
	s.Session.onTimeout(func(id, reply []byte) {
		out.writeLine(reply)
		_ = child.Send(cancelNotification(id, timeoutReason))
	})
	// A call held for approval goes on (or is refused) when decided,
	// while the client's other messages flow.
	s.Session.onRelease(func(fwd, reply []byte) {
		if reply != nil {
			out.writeLine(reply)
		}
		if fwd != nil {
			_ = child.Send(fwd)
		}
	})
	if err := s.Session.Start(); err != nil {
		// Nothing is forwarded unrecorded: without a record there is no session.
		go child.serve(func([]byte) {}, func() {})
		child.Close()
		return 1, fmt.Errorf("recording session start: %w", err)
	}

	clientDone := make(chan struct{})
	go func() {
		defer close(clientDone)
		lr := NewLineReader(s.In, s.Child.MaxMessageBytes)
		for {
			line, err := lr.Next()
			if err != nil {
				return
			}
			fwd, reply := s.Session.FromClient(line, nil)
			if reply != nil {
				out.writeLine(reply)
			}
			if fwd != nil {
				if err := child.Send(fwd); err != nil {
					// The server is gone; its exit is handled below.
					return
				}
			}
		}
	}()

	serverDone := make(chan struct{})
	go child.serve(func(line []byte) {
		if inj.deliver(line) {
			return
		}
		fwd, reply := s.Session.FromServer(line)
		if fwd != nil {
			out.writeLine(fwd)
		}
		if reply != nil {
			_ = child.Send(reply)
		}
	}, func() {
		inj.close(ErrUpstreamClosed)
		close(serverDone)
	})

	select {
	case <-clientDone:
		// The client hung up: shut the server down in order.
		child.Close()
		<-serverDone
		s.Session.Close(store.OutcomeUnknown, "client closed the session")
	case <-ctx.Done():
		child.Close()
		<-serverDone
		s.Session.Close(store.OutcomeUnknown, "gateway stopped")
	case <-child.Done():
		<-serverDone
		detail := fmt.Sprintf("upstream server exited with status %d", child.ExitCode())
		for _, r := range s.Session.Close(store.OutcomeTransportError, detail) {
			out.writeLine(r)
		}
	}
	<-child.Done()
	return child.ExitCode(), nil
}

type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) writeLine(b []byte) {
	l.mu.Lock()
	defer l.mu.Unlock()
	buf := make([]byte, 0, len(b)+1)
	l.w.Write(append(append(buf, b...), '\n'))
}
