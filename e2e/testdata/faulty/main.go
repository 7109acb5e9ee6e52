// Command faulty is a stdio MCP server for the fault-injection tests. It
// speaks newline-delimited JSON-RPC itself (no SDK) so that the tests
// control exactly what it writes and when, and it notes what it receives in
// a log file the tests read:
//
//	faulty -log FILE
//
// Tools (each tools/call is handled on its own goroutine, so calls overlap):
//
//	echo  {text}            logs "call <text>" on receipt, answers text
//	block {marker}          logs "block <marker> <pid>", never answers
//	wait  {marker, file}    logs "wait <marker> <pid>", sends a progress
//	                        notification (when the call has a
//	                        progressToken) every 20ms until file exists,
//	                        then answers "released <marker>"
//	flood {count, size}     sends count notifications of about size bytes
//	                        each — progress when the call has a
//	                        progressToken, else notifications/message —
//	                        numbered 1..count in params.n, logging
//	                        "flood <n>" after writing each, then answers
//	                        "flooded <count>"
//
// The log lines are appended with O_APPEND, one write each, so several
// faulty processes can share one file.
package main

import (
	"bufio"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"strings"
	"sync"
	"time"
)

var (
	outMu sync.Mutex
	logf  *os.File
)

func logLine(format string, a ...any) {
	if logf == nil {
		return
	}
	logf.WriteString(fmt.Sprintf(format, a...) + "\n")
}

func write(v any) {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	outMu.Lock()
	defer outMu.Unlock()
	os.Stdout.Write(append(b, '\n'))
}

type request struct {
	ID     json.RawMessage `json:"id"`
	Method string          `json:"method"`
	Params json.RawMessage `json:"params"`
}

type callParams struct {
	Name      string         `json:"name"`
	Arguments map[string]any `json:"arguments"`
	Meta      struct {
		ProgressToken json.RawMessage `json:"progressToken"`
	} `json:"_meta"`
}

func result(id json.RawMessage, v any) {
	write(map[string]any{"jsonrpc": "2.0", "id": id, "result": v})
}

func text(id json.RawMessage, s string) {
	result(id, map[string]any{"content": []any{map[string]any{"type": "text", "text": s}}})
}

func str(args map[string]any, k string) string {
	s, _ := args[k].(string)
	return s
}

func num(args map[string]any, k string) int {
	f, _ := args[k].(float64)
	return int(f)
}

var tools = []any{
	tool("echo", "Returns its text.", "text"),
	tool("block", "Never answers.", "marker"),
	tool("wait", "Sends progress until a file exists, then answers.", "marker", "file"),
	map[string]any{"name": "flood", "description": "Sends many large notifications, then answers.",
		"inputSchema": map[string]any{"type": "object", "properties": map[string]any{
			"count": map[string]any{"type": "integer"}, "size": map[string]any{"type": "integer"}}}},
}

func tool(name, desc string, props ...string) any {
	p := map[string]any{}
	for _, k := range props {
		p[k] = map[string]any{"type": "string"}
	}
	return map[string]any{"name": name, "description": desc, "inputSchema": map[string]any{"type": "object", "properties": p}}
}

func call(id json.RawMessage, p callParams) {
	args := p.Arguments
	switch p.Name {
	case "echo":
		logLine("call %s", str(args, "text"))
		text(id, str(args, "text"))
	case "block":
		logLine("block %s %d", str(args, "marker"), os.Getpid())
		select {}
	case "wait":
		logLine("wait %s %d", str(args, "marker"), os.Getpid())
		for i := 1; ; i++ {
			if _, err := os.Stat(str(args, "file")); err == nil {
				break
			}
			if len(p.Meta.ProgressToken) > 0 {
				write(map[string]any{"jsonrpc": "2.0", "method": "notifications/progress",
					"params": map[string]any{"progressToken": p.Meta.ProgressToken, "progress": i, "message": "waiting"}})
			}
			time.Sleep(20 * time.Millisecond) // the pace of the progress notifications
		}
		text(id, "released "+str(args, "marker"))
	case "flood":
		count, size := num(args, "count"), num(args, "size")
		pad := strings.Repeat("x", size)
		for n := 1; n <= count; n++ {
			if len(p.Meta.ProgressToken) > 0 {
				write(map[string]any{"jsonrpc": "2.0", "method": "notifications/progress",
					"params": map[string]any{"progressToken": p.Meta.ProgressToken, "progress": n, "total": count, "n": n, "message": pad}})
			} else {
				write(map[string]any{"jsonrpc": "2.0", "method": "notifications/message",
					"params": map[string]any{"level": "info", "logger": "flood", "data": map[string]any{"n": n, "pad": pad}}})
			}
			logLine("flood %d", n)
		}
		text(id, fmt.Sprintf("flooded %d", count))
	default:
		write(map[string]any{"jsonrpc": "2.0", "id": id, "error": map[string]any{"code": -32602, "message": "unknown tool " + p.Name}})
	}
}

func main() {
	logPath := flag.String("log", "", "file to append what the server receives to")
	flag.Parse()
	if *logPath != "" {
		f, err := os.OpenFile(*logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
		if err != nil {
			fmt.Fprintln(os.Stderr, "faulty:", err)
			os.Exit(2)
		}
		logf = f
	}
	sc := bufio.NewScanner(os.Stdin)
	sc.Buffer(make([]byte, 0, 64<<10), 64<<20)
	for sc.Scan() {
		var r request
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			write(map[string]any{"jsonrpc": "2.0", "id": nil, "error": map[string]any{"code": -32700, "message": "parse error"}})
			continue
		}
		if len(r.ID) == 0 || r.Method == "" {
			continue // a notification or a response: nothing to answer
		}
		switch r.Method {
		case "initialize":
			var p struct {
				ProtocolVersion string `json:"protocolVersion"`
			}
			json.Unmarshal(r.Params, &p)
			v := p.ProtocolVersion
			if v == "" {
				v = "2025-11-25"
			}
			result(r.ID, map[string]any{"protocolVersion": v,
				"capabilities": map[string]any{"tools": map[string]any{}, "logging": map[string]any{}},
				"serverInfo":   map[string]any{"name": "faulty", "version": "1.0.0"}})
		case "ping", "logging/setLevel":
			result(r.ID, map[string]any{})
		case "tools/list":
			result(r.ID, map[string]any{"tools": tools})
		case "tools/call":
			var p callParams
			json.Unmarshal(r.Params, &p)
			go call(r.ID, p)
		default:
			write(map[string]any{"jsonrpc": "2.0", "id": r.ID, "error": map[string]any{"code": -32601, "message": "method not found"}})
		}
	}
}
