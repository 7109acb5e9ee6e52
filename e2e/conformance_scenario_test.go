package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"sort"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// This file is the conformance scenario: one MCP client session that lists
// and uses everything the go-sdk conformance everything-server offers, and
// writes down everything it saw (results, errors, and what the server sent
// the client: progress, log messages, sampling and elicitation requests,
// resource updates) as a transcript. The conformance tests run it once on a
// direct connection and once through mcptrail and require equal transcripts.

// era is a protocol era the client speaks.
type era struct {
	name string
	opts *mcp.ClientSessionOptions
}

var (
	// The go-sdk client's default: it probes with server/discover (2026-07-28)
	// and falls back to initialize when that fails.
	eraDefault = era{"client-default", nil}
	// The legacy era, with the initialize handshake and sessions.
	eraLegacy = era{"2025-11-25", &mcp.ClientSessionOptions{ProtocolVersion: "2025-11-25"}}
	eras      = []era{eraDefault, eraLegacy}
)

// clientLog keeps what the server sent the client outside of responses.
// It is safe for concurrent use (handlers run on the SDK's goroutines): the
// handlers write with update, the scenario reads under mu.
type clientLog struct {
	watched
	progress       []*mcp.ProgressNotificationParams
	logs           []*mcp.LoggingMessageParams
	sampling       []*mcp.CreateMessageParams
	elicitations   []*mcp.ElicitParams
	updated        []string
	toolsChanged   int
	promptsChanged int
}

func newClientLog() *clientLog { return &clientLog{} }

// waitFor waits until cond (run under the lock) holds, or fails t.
func (l *clientLog) waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	if l.wait(20*time.Second, nil, cond) != nil {
		t.Fatalf("the client never received %s", what)
	}
}

const (
	samplingModel = "e2e-model"
	rootURI       = "file:///e2e-root"
)

// newConformanceClient is the client the conformance scenario uses: it can
// satisfy sampling, elicitation and roots, and logs every notification.
func newConformanceClient(l *clientLog) *mcp.Client {
	c := mcp.NewClient(&mcp.Implementation{Name: "mcptrail-e2e", Version: "1.2.3"}, &mcp.ClientOptions{
		CreateMessageHandler: func(_ context.Context, req *mcp.CreateMessageRequest) (*mcp.CreateMessageResult, error) {
			l.update(func() { l.sampling = append(l.sampling, req.Params) })
			prompt := ""
			if len(req.Params.Messages) > 0 {
				if tc, ok := req.Params.Messages[0].Content.(*mcp.TextContent); ok {
					prompt = tc.Text
				}
			}
			return &mcp.CreateMessageResult{
				Model:   samplingModel,
				Role:    "assistant",
				Content: &mcp.TextContent{Text: "sampled: " + prompt},
			}, nil
		},
		ElicitationHandler: func(_ context.Context, req *mcp.ElicitRequest) (*mcp.ElicitResult, error) {
			l.update(func() { l.elicitations = append(l.elicitations, req.Params) })
			content, err := fillElicitation(req.Params.RequestedSchema)
			if err != nil {
				return nil, err
			}
			return &mcp.ElicitResult{Action: "accept", Content: content}, nil
		},
		ProgressNotificationHandler: func(_ context.Context, req *mcp.ProgressNotificationClientRequest) {
			l.update(func() { l.progress = append(l.progress, req.Params) })
		},
		LoggingMessageHandler: func(_ context.Context, req *mcp.LoggingMessageRequest) {
			l.update(func() { l.logs = append(l.logs, req.Params) })
		},
		ResourceUpdatedHandler: func(_ context.Context, req *mcp.ResourceUpdatedNotificationRequest) {
			l.update(func() { l.updated = append(l.updated, req.Params.URI) })
		},
		ToolListChangedHandler: func(context.Context, *mcp.ToolListChangedRequest) {
			l.update(func() { l.toolsChanged++ })
		},
		PromptListChangedHandler: func(context.Context, *mcp.PromptListChangedRequest) {
			l.update(func() { l.promptsChanged++ })
		},
	})
	c.AddRoots(&mcp.Root{URI: rootURI, Name: "e2e-root"})
	return c
}

// fillElicitation answers an elicitation form: each property's default, else
// its first allowed value, else a value of its type.
func fillElicitation(schema any) (map[string]any, error) {
	type choice struct {
		Const any `json:"const"`
	}
	type prop struct {
		Type    string   `json:"type"`
		Default any      `json:"default"`
		Enum    []any    `json:"enum"`
		OneOf   []choice `json:"oneOf"`
		AnyOf   []choice `json:"anyOf"`
		Items   *prop    `json:"items"`
	}
	first := func(p *prop) any {
		if len(p.Enum) > 0 {
			return p.Enum[0]
		}
		if len(p.OneOf) > 0 {
			return p.OneOf[0].Const
		}
		if len(p.AnyOf) > 0 {
			return p.AnyOf[0].Const
		}
		return nil
	}
	data, err := json.Marshal(schema)
	if err != nil {
		return nil, err
	}
	var s struct {
		Properties map[string]*prop `json:"properties"`
	}
	if err := json.Unmarshal(data, &s); err != nil {
		return nil, err
	}
	content := map[string]any{}
	for name, p := range s.Properties {
		switch {
		case p.Default != nil:
			content[name] = p.Default
		case first(p) != nil:
			content[name] = first(p)
		case p.Type == "string":
			content[name] = "e2e-" + name
		case p.Type == "integer":
			content[name] = 7
		case p.Type == "number":
			content[name] = 1.5
		case p.Type == "boolean":
			content[name] = true
		case p.Type == "array" && p.Items != nil && first(p.Items) != nil:
			content[name] = []any{first(p.Items)}
		default:
			return nil, fmt.Errorf("cannot fill elicitation property %q of type %q", name, p.Type)
		}
	}
	return content, nil
}

// step is one entry of a transcript: what the client asked and what it got.
type step struct {
	Name string
	JSON string // the result, or {"error": ...}
}

type transcript struct {
	steps []step
}

func (tr *transcript) add(t testing.TB, name string, v any, err error) {
	t.Helper()
	if err != nil {
		v = map[string]string{"error": err.Error()}
	}
	data, merr := json.Marshal(v)
	if merr != nil {
		t.Fatalf("%s: marshal: %v", name, merr)
	}
	tr.steps = append(tr.steps, step{name, string(data)})
}

// normalized returns a copy of tr with f applied to every step's JSON.
func (tr *transcript) normalized(f func(string) string) *transcript {
	out := &transcript{}
	for _, s := range tr.steps {
		out.steps = append(out.steps, step{s.Name, f(s.JSON)})
	}
	return out
}

func (tr *transcript) find(name string) (string, bool) {
	for _, s := range tr.steps {
		if s.Name == name {
			return s.JSON, true
		}
	}
	return "", false
}

// compareTranscripts fails t for every step where got differs from want.
func compareTranscripts(t testing.TB, want, got *transcript) {
	t.Helper()
	n := max(len(want.steps), len(got.steps))
	diffs := 0
	for i := range n {
		var w, g step
		if i < len(want.steps) {
			w = want.steps[i]
		}
		if i < len(got.steps) {
			g = got.steps[i]
		}
		if w == g {
			continue
		}
		diffs++
		t.Errorf("step %d differs:\n direct:  %s %s\n gateway: %s %s", i, w.Name, w.JSON, g.Name, g.JSON)
		if diffs >= 10 {
			t.Errorf("... (more differences left out)")
			return
		}
	}
}

// conformanceToolArgs are the arguments for the tools that need some; every
// other tool is called with {}.
var conformanceToolArgs = map[string]map[string]any{
	"test_sampling":    {"prompt": "What is 2+2?"},
	"test_elicitation": {"message": "Please provide your username"},
	"json_schema_2020_12_tool": {
		"name": "e2e", "contactMethod": "email", "email": "e2e@example.invalid",
		"address": map[string]any{"street": "1 Loop Road", "city": "Localhost"},
	},
	"test_x_mcp_header": {"region": "eu-west-1", "level": 3},
}

// conformancePromptArgs are the arguments of the prompts that take some.
var conformancePromptArgs = map[string]map[string]string{
	"test_prompt_with_arguments":         {"arg1": "alpha", "arg2": "beta"},
	"test_prompt_with_embedded_resource": {"resourceUri": "test://static-text"},
}

// Tools that change the server's lists: called last, after everything else
// was listed and compared.
var listChangingTools = []string{"test_trigger_tool_change", "test_trigger_prompt_change"}

const (
	progressToken = "e2e-progress-token"
	watchedURI    = "test://watched-resource"
)

// scenarioExpect is what the conformance server sends the client besides
// responses in one setup, as a direct connection shows it. The scenario waits
// for each expected notification (and fails when it never comes) instead of
// racing it, and checkConformance checks the results that must be there.
type scenarioExpect struct {
	modern      bool     // the session negotiates 2026-07-28 (else 2025-11-25)
	logs        bool     // log notifications from the logging tools
	updated     bool     // resources/updated for the watched resource after Subscribe
	listChanged bool     // tools and prompts list_changed after the trigger tools
	ping        bool     // ping is a method
	skip        []string // tools the client cannot use in this setup
}

// Kinds of connection to the conformance server.
const (
	kindStdio         = "stdio"
	kindHTTP          = "http"           // everything-server -http ADDR -stateless=false
	kindHTTPStateless = "http-stateless" // everything-server -http ADDR (its default)
)

// expectFor gives the expectations for era e over a kind of connection.
func expectFor(kind string, e era) scenarioExpect {
	x := scenarioExpect{modern: e.opts == nil, logs: true, updated: true, listChanged: true, ping: true}
	switch {
	case kind == kindStdio && x.modern:
		// go-sdk v1.8.0 sends no list_changed notifications on stdio in the
		// 2026-07-28 era (seen on direct connections).
		x.listChanged = false
	case kind == kindHTTP:
		// The stateful server has no server/discover: the default client falls
		// back to initialize and the legacy era.
		x.modern = false
		// test_reconnection closes the SSE stream mid-call for the client to
		// resume; the go-sdk client does not, and fails the call on a direct
		// connection ("request terminated without response"): nothing to compare.
		x.skip = []string{"test_reconnection"}
	case kind == kindHTTPStateless:
		// Stateless 2026-07-28 HTTP has no ping method.
		x.ping = false
	}
	return x
}

// runConformance runs the scenario over transport and returns its transcript.
// The session is left open for the caller (and closed at cleanup).
func runConformance(t testing.TB, ctx context.Context, transport mcp.Transport, e era, expect scenarioExpect) (*transcript, *mcp.ClientSession) {
	t.Helper()
	l := newClientLog()
	cs := connect(t, ctx, newConformanceClient(l), transport, e.opts)
	tr := &transcript{}
	tr.add(t, "initialize", cs.InitializeResult(), nil)
	if got := cs.InitializeResult().ProtocolVersion; (got >= "2026-07-28") != expect.modern {
		t.Fatalf("negotiated protocol version %s; want modern era: %v", got, expect.modern)
	}

	modern := expect.modern
	if !modern {
		tr.add(t, "logging/setLevel", "ok", cs.SetLoggingLevel(ctx, &mcp.SetLoggingLevelParams{Level: "debug"}))
	}
	// meta is the _meta of every call: in the modern era the log level travels
	// with each request instead of logging/setLevel.
	meta := func() mcp.Meta {
		if modern {
			return mcp.Meta{"io.modelcontextprotocol/logLevel": "debug"}
		}
		return nil
	}

	tools, err := cs.ListTools(ctx, nil)
	tr.add(t, "tools/list", tools, err)
	if err != nil {
		t.Fatalf("tools/list: %v", err)
	}
	res, err := cs.ListResources(ctx, nil)
	tr.add(t, "resources/list", res, err)
	templates, err := cs.ListResourceTemplates(ctx, nil)
	tr.add(t, "resources/templates/list", templates, err)
	prompts, err := cs.ListPrompts(ctx, nil)
	tr.add(t, "prompts/list", prompts, err)

	var names []string
	for _, tool := range tools.Tools {
		if !slices.Contains(listChangingTools, tool.Name) && !slices.Contains(expect.skip, tool.Name) {
			names = append(names, tool.Name)
		}
	}
	sort.Strings(names)
	for _, name := range names {
		params := &mcp.CallToolParams{Name: name, Arguments: conformanceToolArgs[name], Meta: meta()}
		l.mu.Lock()
		logsBefore, progressBefore := len(l.logs), len(l.progress)
		l.mu.Unlock()
		switch name {
		case "test_tool_with_progress":
			params.SetProgressToken(progressToken)
		}
		result, err := cs.CallTool(ctx, params)
		tr.add(t, "tools/call "+name, result, err)
		// Wait for what the tool sends besides its result, and put it in the
		// transcript right after the call.
		switch name {
		case "test_tool_with_logging", "test_logging_tool":
			want := map[string]int{"test_tool_with_logging": 3, "test_logging_tool": 1}[name]
			if !expect.logs {
				want = 0
			}
			l.waitFor(t, fmt.Sprintf("%d log messages from %s", want, name), func() bool { return len(l.logs) >= logsBefore+want })
			l.mu.Lock()
			tr.add(t, "notifications/message from "+name, l.logs[logsBefore:], nil)
			l.mu.Unlock()
		case "test_tool_with_progress":
			want := 3 // 0%, 50%, 100%
			l.waitFor(t, fmt.Sprintf("%d progress notifications", want), func() bool { return len(l.progress) >= progressBefore+want })
			l.mu.Lock()
			tr.add(t, "notifications/progress from "+name, l.progress[progressBefore:], nil)
			l.mu.Unlock()
		}
	}

	// Resources: every listed one, and one from the template.
	var uris []string
	if res != nil {
		for _, r := range res.Resources {
			uris = append(uris, r.URI)
		}
	}
	sort.Strings(uris)
	uris = append(uris, "test://template/42/data")
	for _, uri := range uris {
		rr, err := cs.ReadResource(ctx, &mcp.ReadResourceParams{URI: uri})
		tr.add(t, "resources/read "+uri, rr, err)
	}

	// Prompts: every listed one.
	var promptNames []string
	if prompts != nil {
		for _, p := range prompts.Prompts {
			promptNames = append(promptNames, p.Name)
		}
	}
	sort.Strings(promptNames)
	for _, name := range promptNames {
		gp, err := cs.GetPrompt(ctx, &mcp.GetPromptParams{Name: name, Arguments: conformancePromptArgs[name]})
		tr.add(t, "prompts/get "+name, gp, err)
	}

	comp, err := cs.Complete(ctx, &mcp.CompleteParams{
		Ref:      &mcp.CompleteReference{Type: "ref/prompt", Name: "test_prompt_with_arguments"},
		Argument: mcp.CompleteParamsArgument{Name: "arg1", Value: "al"},
	})
	tr.add(t, "completion/complete", comp, err)

	// (Stateless 2026-07-28 HTTP servers have no ping: the step then records
	// their error, which the gateway must pass on like any other.)
	tr.add(t, "ping", "ok", cs.Ping(ctx, nil))

	// Subscription: the server updates the watched resource every 3 seconds.
	err = cs.Subscribe(ctx, &mcp.SubscribeParams{URI: watchedURI})
	tr.add(t, "resources/subscribe", "ok", err)
	if err == nil && expect.updated {
		l.waitFor(t, "notifications/resources/updated for "+watchedURI, func() bool { return slices.Contains(l.updated, watchedURI) })
		tr.add(t, "notifications/resources/updated", watchedURI, nil)
	}
	tr.add(t, "resources/unsubscribe", "ok", cs.Unsubscribe(ctx, &mcp.UnsubscribeParams{URI: watchedURI}))

	// What the server asked the client for.
	l.mu.Lock()
	tr.add(t, "sampling/createMessage requests", l.sampling, nil)
	tr.add(t, "elicitation/create requests", l.elicitations, nil)
	l.mu.Unlock()

	// Last, the tools that change the lists, and the lists again.
	for _, name := range listChangingTools {
		result, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: name, Meta: meta()})
		tr.add(t, "tools/call "+name, result, err)
	}
	if expect.listChanged {
		l.waitFor(t, "tools and prompts list_changed notifications", func() bool { return l.toolsChanged > 0 && l.promptsChanged > 0 })
		tr.add(t, "list_changed notifications", "received", nil)
	}
	tools2, err := cs.ListTools(ctx, nil)
	tr.add(t, "tools/list again", tools2, err)
	prompts2, err := cs.ListPrompts(ctx, nil)
	tr.add(t, "prompts/list again", prompts2, err)
	return tr, cs
}

// checkConformance checks that a transcript shows the server's features
// working, so a comparison of two transcripts can't pass on two failures.
func checkConformance(t testing.TB, tr *transcript, expect scenarioExpect) {
	t.Helper()
	want := map[string][]string{
		"tools/call test_simple_text":                         {`"text":"This is a simple text response for testing."`},
		"tools/call test_image_content":                       {`"type":"image"`, `"mimeType":"image/png"`},
		"tools/call test_audio_content":                       {`"type":"audio"`, `"mimeType":"audio/wav"`},
		"tools/call test_embedded_resource":                   {`"type":"resource"`, `"uri":"test://embedded-resource"`},
		"tools/call test_multiple_content_types":              {`"type":"text"`, `"type":"image"`, `"type":"resource"`},
		"tools/call test_error_handling":                      {`"isError":true`, "this tool intentionally returns an error"},
		"tools/call test_tool_with_progress":                  {progressToken},
		"tools/call test_tool_with_logging":                   {"Tool with logging executed successfully"},
		"tools/call test_x_mcp_header":                        {"region=eu-west-1"},
		"notifications/progress from test_tool_with_progress": {`"progress":0`, `"progress":50`, `"progress":100`},
		"resources/read test://static-text":                   {"This is the content of the static text resource."},
		"resources/read test://static-binary":                 {`"blob":`},
		"resources/read test://template/42/data":              {`Data for ID: 42`},
		"prompts/get test_prompt_with_arguments":              {`arg1='alpha', arg2='beta'`},
		"completion/complete":                                 {`"values":[]`},
	}
	if expect.ping {
		want["ping"] = []string{`"ok"`}
	}
	if expect.updated {
		want["notifications/resources/updated"] = []string{watchedURI}
	}
	if expect.logs {
		want["notifications/message from test_tool_with_logging"] = []string{"Tool execution started", "Tool processing data", "Tool execution completed"}
	}
	if expect.listChanged {
		want["list_changed notifications"] = []string{"received"}
	}
	// Requests from the server to the client: multi-round-trip results in
	// the 2026-07-28 era (and in the legacy era too, for these tools) ...
	want["tools/call test_input_required_result_sampling"] = []string{"Sampling response: sampled: What is the capital of France?"}
	want["tools/call test_input_required_result_elicitation"] = []string{"Hello, e2e-name!"}
	want["tools/call test_input_required_result_list_roots"] = []string{rootURI}
	want["tools/call test_input_required_result_multi_round"] = []string{"Multi-round complete: e2e-name likes e2e-color"}
	if !expect.modern {
		// ... and real server-to-client requests in the legacy era.
		want["tools/call test_sampling"] = []string{"LLM response: sampled: What is 2+2?"}
		want["tools/call test_elicitation"] = []string{"action=accept", "username:e2e-username"}
		want["tools/call test_elicitation_sep1034_defaults"] = []string{"action=accept", "John Doe"}
		want["sampling/createMessage requests"] = []string{"What is 2+2?"}
	}
	checkSteps(t, tr, want)
}
