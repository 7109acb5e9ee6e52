// Command recordcheck is an MCP server (stdio) for the end-to-end tests. Its
// one tool, check_recorded, asks mcptrail's record whether the request that
// called it is already there: a gateway that records before it forwards
// passes, one that forwards first (or records later) fails.
//
// It runs `mcptrail export --format jsonl --tool check_recorded`, finding
// mcptrail on PATH and the instance through MCPTRAIL_HOME, both inherited
// from the gateway that started it.
package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log"
	"os/exec"
	"strings"

	"github.com/modelcontextprotocol/go-sdk/mcp"
)

type input struct {
	Marker string `json:"marker" jsonschema:"a string only this call's arguments contain"`
}

type output struct {
	Recorded        bool `json:"recorded"`         // a request event with Marker in its params exists
	ControlRecorded bool `json:"control_recorded"` // one with Marker+controlSuffix exists: no call sends that, so never
	OutcomeRecorded bool `json:"outcome_recorded"` // that request already has an outcome (must be false: no response was sent yet)
	Events          int  `json:"events"`           // events the export returned
}

// controlSuffix makes the control string: the marker with something no call
// sends appended. Finding it would mean the check finds what is not there.
const controlSuffix = "#never-sent"

// event is the part of a record line this server reads.
type event struct {
	Seq    uint64          `json:"seq"`
	Kind   string          `json:"kind"`
	Call   uint64          `json:"call"`
	Params json.RawMessage `json:"params"`
}

func checkRecorded(ctx context.Context, _ *mcp.CallToolRequest, in input) (*mcp.CallToolResult, output, error) {
	if in.Marker == "" || strings.Contains(in.Marker, controlSuffix) {
		return nil, output{}, fmt.Errorf("marker is required and must not contain %q", controlSuffix)
	}
	cmd := exec.CommandContext(ctx, "mcptrail", "export", "--format", "jsonl", "--tool", "check_recorded")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return nil, output{}, fmt.Errorf("mcptrail export: %v: %s", err, stderr.String())
	}
	var out output
	var requestSeqs []uint64
	var events []event
	sc := bufio.NewScanner(&stdout)
	sc.Buffer(nil, 64<<20)
	for sc.Scan() {
		if len(bytes.TrimSpace(sc.Bytes())) == 0 {
			continue
		}
		var ev event
		if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
			return nil, output{}, fmt.Errorf("mcptrail export printed a line that is not an event: %v: %q", err, sc.Text())
		}
		events = append(events, ev)
		if ev.Kind != "request" {
			continue
		}
		if strings.Contains(string(ev.Params), in.Marker) {
			out.Recorded = true
			requestSeqs = append(requestSeqs, ev.Seq)
		}
		if strings.Contains(string(ev.Params), in.Marker+controlSuffix) {
			out.ControlRecorded = true
		}
	}
	for _, ev := range events {
		for _, seq := range requestSeqs {
			if ev.Kind == "call" && ev.Call == seq {
				out.OutcomeRecorded = true
			}
		}
	}
	out.Events = len(events)
	return nil, out, nil
}

func main() {
	server := mcp.NewServer(&mcp.Implementation{Name: "recordcheck", Version: "1.0.0"}, nil)
	mcp.AddTool(server, &mcp.Tool{
		Name:        "check_recorded",
		Description: "Reports whether mcptrail recorded this call's request before the server got it.",
	}, checkRecorded)
	if err := server.Run(context.Background(), &mcp.StdioTransport{}); err != nil {
		log.Fatal(err)
	}
}
