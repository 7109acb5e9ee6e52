// Command crashy is an MCP server (stdio) for the end-to-end tests whose
// "crash" tool kills the process while the call is pending, as a real server
// that crashes mid-call would, and whose "hang" tool never answers (it says
// on stderr when it hears the call was cancelled).
package main

import (
	"context"
	"fmt"
	"log"
	"os"

	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// crashExitStatus is the status crashy exits with from its crash tool.
const crashExitStatus = 3

type echoInput struct {
	Text string `json:"text"`
}

func main() {
	server := mcp.NewServer(&mcp.Implementation{Name: "crashy", Version: "1.0.0"}, nil)
	mcp.AddTool(server, &mcp.Tool{Name: "echo", Description: "Returns its text."},
		func(_ context.Context, _ *mcp.CallToolRequest, in echoInput) (*mcp.CallToolResult, any, error) {
			return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: in.Text}}}, nil, nil
		})
	mcp.AddTool(server, &mcp.Tool{Name: "crash", Description: "Exits the server before answering."},
		func(context.Context, *mcp.CallToolRequest, any) (*mcp.CallToolResult, any, error) {
			fmt.Fprintln(os.Stderr, "crashy: exiting mid-call")
			os.Exit(crashExitStatus)
			return nil, nil, nil
		})
	mcp.AddTool(server, &mcp.Tool{Name: "hang", Description: "Never answers."},
		func(ctx context.Context, _ *mcp.CallToolRequest, in echoInput) (*mcp.CallToolResult, any, error) {
			<-ctx.Done() // the SDK cancels ctx on notifications/cancelled
			fmt.Fprintf(os.Stderr, "crashy: hang %s cancelled\n", in.Text)
			select {} // and still never answers
		})
	if err := server.Run(context.Background(), &mcp.StdioTransport{}); err != nil {
		log.Fatal(err)
	}
}
