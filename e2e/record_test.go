package e2e

import (
	"encoding/json"
	"errors"
	"fmt"
	"os/user"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mcptrail/mcptrail/store"
	"github.com/modelcontextprotocol/go-sdk/jsonrpc"
	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// ---------------------------------------------------------------------------
// Reading the record.

// callIndex pairs the record's requests with their outcomes.
type callIndex struct {
	events  []store.Event
	outcome map[uint64]*store.Event // request seq → its call event
}

func indexCalls(events []store.Event) *callIndex {
	ci := &callIndex{events: events, outcome: map[uint64]*store.Event{}}
	for i := range events {
		if ev := &events[i]; ev.Kind == store.KindCall && ev.Call != 0 {
			ci.outcome[ev.Call] = ev
		}
	}
	return ci
}

// requests returns the request events sent by from ("client" or "server")
// with the given method and, when tool is not empty, tool, in seq order.
func (ci *callIndex) requests(from, method, tool string) []*store.Event {
	var out []*store.Event
	for i := range ci.events {
		ev := &ci.events[i]
		if ev.Kind == store.KindRequest && ev.From == from && ev.Method == method && (tool == "" || ev.Tool == tool) {
			out = append(out, ev)
		}
	}
	return out
}

// notifications returns the notification events from from with method.
func (ci *callIndex) notifications(from, method string) []*store.Event {
	var out []*store.Event
	for i := range ci.events {
		ev := &ci.events[i]
		if ev.Kind == store.KindNotification && ev.From == from && ev.Method == method {
			out = append(out, ev)
		}
	}
	return out
}

// allAnswered is a WaitEvents condition: every request has its outcome.
func allAnswered(events []store.Event) error {
	ci := indexCalls(events)
	var missing []string
	for _, ev := range events {
		if ev.Kind == store.KindRequest && ci.outcome[ev.Seq] == nil {
			missing = append(missing, fmt.Sprintf("seq %d (%s %s %s)", ev.Seq, ev.From, ev.Method, ev.Tool))
		}
	}
	if len(events) == 0 {
		return errors.New("the record is empty")
	}
	if missing != nil {
		return fmt.Errorf("requests without an outcome: %s", strings.Join(missing, ", "))
	}
	return nil
}

// sameJSON reports whether two JSON texts hold equal values.
func sameJSON(a, b []byte) bool {
	var va, vb any
	if json.Unmarshal(a, &va) != nil || json.Unmarshal(b, &vb) != nil {
		return false
	}
	return reflect.DeepEqual(va, vb)
}

// jsonField returns the value of a top-level member of a JSON object, re-encoded.
func jsonField(data []byte, name string) []byte {
	var m map[string]json.RawMessage
	if json.Unmarshal(data, &m) != nil {
		return nil
	}
	return m[name]
}

// outcomeFromClientView is the outcome the record must give a call whose
// result the client saw as resultJSON (a transcript step).
func outcomeFromClientView(resultJSON string) string {
	switch {
	case jsonField([]byte(resultJSON), "error") != nil:
		return store.OutcomeRPCError
	case strings.Contains(resultJSON, `"isError":true`):
		return store.OutcomeToolError
	}
	return store.OutcomeOK
}

// checkOutcome checks the fields an outcome repeats from its request (so
// either line stands alone in a SIEM) and the ones of its own.
// It fails the test now when there is no outcome.
func checkOutcome(t testing.TB, req, out *store.Event) {
	t.Helper()
	what := fmt.Sprintf("outcome of seq %d (%s %s)", req.Seq, req.Method, req.Tool)
	if out == nil {
		t.Fatalf("%s: none in the record", what)
	}
	if out.Seq <= req.Seq {
		t.Errorf("%s: seq %d is not after its request's", what, out.Seq)
	}
	if out.Method != req.Method || out.Tool != req.Tool || out.Session != req.Session || out.Upstream != req.Upstream {
		t.Errorf("%s: method/tool/session/upstream %q/%q/%q/%q, request has %q/%q/%q/%q", what,
			out.Method, out.Tool, out.Session, out.Upstream, req.Method, req.Tool, req.Session, req.Upstream)
	}
	if !reflect.DeepEqual(out.Agent, req.Agent) {
		t.Errorf("%s: agent %+v, request has %+v", what, out.Agent, req.Agent)
	}
	if !reflect.DeepEqual(out.Task, req.Task) {
		t.Errorf("%s: task %+v, request has %+v", what, out.Task, req.Task)
	}
	if out.DurationNS <= 0 {
		t.Errorf("%s: duration_ns %d, want > 0", what, out.DurationNS)
	}
	if out.Outcome == "" {
		t.Errorf("%s: no outcome", what)
	}
}

// ---------------------------------------------------------------------------
// The record of a conformance run.

// recordExpect is what the record of a gateway run must say about where the
// calls went.
type recordExpect struct {
	upstream                  string // the upstream's name (wrap --name, serve --upstream NAME=)
	transport                 string // the client's transport: stdio or http
	agent                     string // wrap --agent, if given
	clientName, clientVersion string // the client's clientInfo
}

// The client info the conformance client gives mcp.NewClient.
const conformanceClientName, conformanceClientVersion = "mcptrail-e2e", "1.2.3"

// logicalCalls groups requests (in seq order) into logical calls: a request
// continues the one before it when that one's result asked the client for
// input — a 2026-07-28 multi-round-trip call, or a result with inputRequests
// that the go-sdk returns to a legacy client when a server needed two rounds.
func (ci *callIndex) logicalCalls(reqs []*store.Event) [][]*store.Event {
	var groups [][]*store.Event
	for i, req := range reqs {
		if i > 0 && asksForInput(ci.outcome[reqs[i-1].Seq]) {
			groups[len(groups)-1] = append(groups[len(groups)-1], req)
			continue
		}
		groups = append(groups, []*store.Event{req})
	}
	return groups
}

func asksForInput(out *store.Event) bool {
	return out != nil && (out.Outcome == store.OutcomeInputRequired || jsonField(out.Result, "inputRequests") != nil)
}

// checkToolCallsRecorded checks that each "tools/call NAME" step of a
// transcript made through the gateway has its request in the record, with an
// outcome that agrees with what the client saw. It returns the sessions the
// requests were recorded under.
func checkToolCallsRecorded(t testing.TB, ci *callIndex, tr *transcript, rx recordExpect) map[string]bool {
	t.Helper()
	var tools []string
	steps := map[string][]step{} // tool → its calls in the transcript, in order
	for _, s := range tr.steps {
		if tool, ok := strings.CutPrefix(s.Name, "tools/call "); ok {
			if steps[tool] == nil {
				tools = append(tools, tool)
			}
			steps[tool] = append(steps[tool], s)
		}
	}
	sessions := map[string]bool{}
	for _, tool := range tools {
		calls := ci.logicalCalls(ci.requests(store.FromClient, "tools/call", tool))
		if len(calls) != len(steps[tool]) {
			t.Errorf("tools/call %s: %d calls in the record, the client made %d", tool, len(calls), len(steps[tool]))
			continue
		}
		for k, rounds := range calls {
			sessions[rounds[0].Session] = true
			checkToolCall(t, ci, tool, rounds, steps[tool][k], rx)
		}
	}
	return sessions
}

// checkToolCall checks the record of one logical tool call (its rounds) against
// the transcript step of what the client saw.
func checkToolCall(t testing.TB, ci *callIndex, tool string, rounds []*store.Event, step step, rx recordExpect) {
	t.Helper()
	for i, req := range rounds {
		if req.Session == "" || req.Upstream != rx.upstream || req.Transport != rx.transport || len(req.JSONRPCID) == 0 {
			t.Errorf("request seq %d (%s): session %q upstream %q transport %q jsonrpc_id %s; want a session, upstream %q, transport %q, an id",
				req.Seq, tool, req.Session, req.Upstream, req.Transport, req.JSONRPCID, rx.upstream, rx.transport)
		}
		if req.Agent == nil || req.Agent.ClientName != rx.clientName || req.Agent.ClientVersion != rx.clientVersion ||
			(rx.agent != "" && req.Agent.Name != rx.agent) {
			t.Errorf("request seq %d (%s): agent %+v; want name %q, client %s %s", req.Seq, tool, req.Agent, rx.agent, rx.clientName, rx.clientVersion)
		}
		if name := jsonField(req.Params, "name"); !sameJSON(name, mustJSON(tool)) {
			t.Errorf("request seq %d: params %s do not name tool %s", req.Seq, req.Params, tool)
		}
		out := ci.outcome[req.Seq]
		checkOutcome(t, req, out)
		if i > 0 && ci.outcome[rounds[i-1].Seq].Outcome == store.OutcomeInputRequired && req.LogicalCall != rounds[0].Seq {
			t.Errorf("round %d of %s (seq %d): logical_call %d, want the first round's seq %d", i+1, tool, req.Seq, req.LogicalCall, rounds[0].Seq)
		}
		if i < len(rounds)-1 {
			// A round that asks for input: in the 2026-07-28 era its outcome says so.
			if strings.Contains(string(jsonField(out.Result, "resultType")), "input_required") && out.Outcome != store.OutcomeInputRequired {
				t.Errorf("round %d of %s (seq %d): outcome %q, want %q", i+1, tool, req.Seq, out.Outcome, store.OutcomeInputRequired)
			}
			continue
		}
		if want := outcomeFromClientView(step.JSON); out.Outcome != want {
			t.Errorf("%s: outcome %q, want %q (client saw %s)", tool, out.Outcome, want, step.JSON)
		}
		if out.Outcome == store.OutcomeRPCError {
			if len(out.Error) == 0 {
				t.Errorf("%s: rpc_error outcome with no error", tool)
			}
			continue
		}
		for _, field := range []string{"content", "isError", "structuredContent"} {
			if !sameJSON(orNull(jsonField(out.Result, field)), orNull(jsonField([]byte(step.JSON), field))) {
				t.Errorf("%s: recorded result's %s differs from what the client got:\n record: %s\n client: %s", tool, field, out.Result, step.JSON)
				break
			}
		}
	}
}

// checkConformanceRecord checks the record of one conformance scenario run
// through the gateway of in: its tool calls (checkToolCallsRecorded), and the
// server's requests and notifications.
func checkConformanceRecord(t testing.TB, in *Instance, tr *transcript, expect scenarioExpect, rx recordExpect) {
	t.Helper()
	rx.clientName, rx.clientVersion = conformanceClientName, conformanceClientVersion
	ci := indexCalls(in.WaitEvents(t, allAnswered))
	sessions := checkToolCallsRecorded(t, ci, tr, rx)
	// One client session ran through the gateway. (Stateless 2026-07-28 HTTP
	// has no session to follow; the record may then hold one per request.)
	if len(sessions) != 1 && !(rx.transport == "http" && expect.modern) {
		t.Errorf("the record has %d sessions for one client session: %v", len(sessions), sessions)
	}
	if !expect.modern {
		// Requests from the server, with the client's answers. (The client
		// refuses one elicitation of the scenario, so not every outcome is ok.)
		for _, m := range []string{"sampling/createMessage", "elicitation/create"} {
			answered := false
			for _, req := range ci.requests(store.FromServer, m, "") {
				if out := ci.outcome[req.Seq]; out.Outcome == store.OutcomeOK && len(out.Result) > 0 {
					answered = true
				}
			}
			if !answered {
				t.Errorf("no %s request from the server with the client's answer (outcome ok) in the record", m)
			}
		}
	}
	if n := len(ci.notifications(store.FromServer, "notifications/progress")); n < 3 {
		t.Errorf("%d notifications/progress events from the server, want at least 3", n)
	}
	if n := len(ci.notifications(store.FromServer, "notifications/message")); expect.logs && n < 4 {
		t.Errorf("%d notifications/message events from the server, want at least 4", n)
	}
}

func orNull(b []byte) []byte {
	if b == nil {
		return []byte("null")
	}
	return b
}

// ---------------------------------------------------------------------------
// TestRecordWrap: what the record says about calls through `mcptrail wrap`.

const (
	recordAgent = "record-agent"
	recordTask  = "TASK-4711"
	// A W3C traceparent: version-traceid-parentid-flags.
	traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	traceID     = "4bf92f3577b34da6a3ce929d0e0e4736"
)

func TestRecordWrap(t *testing.T) {
	t.Parallel()
	u, err := user.Current()
	if err != nil {
		t.Fatal(err)
	}
	// Under batch durability wrap forwards a request before the daemon has
	// given its record a seq (a provisional one links the outcome): the
	// record must come out the same.
	for _, e := range eras {
		for _, durability := range []string{"strict", "batch"} {
			t.Run(e.name+"/"+durability, func(t *testing.T) {
				t.Parallel()
				recordWrap(t, e, durability, u)
			})
		}
	}
}

func recordWrap(t *testing.T, e era, durability string, u *user.User) {
	ctx := scenarioContext(t)
	in := newInstance(t)
	if durability != "strict" {
		in.Serve(t, "--durability", durability)
	}
	transport, wrapStderr := in.Wrap(t, WrapOptions{Name: "conf", Agent: recordAgent, Task: recordTask}, binary(t, "everything-server"))
	l := newClientLog()
	client := newConformanceClient(l)
	cs := connect(t, ctx, client, transport, e.opts)
	// Without a daemon running for this instance (strict), wrap
	// started one, and says so.
	if durability == "strict" {
		if _, err := wrapStderr.WaitMatch(regexp.MustCompile(`(?i)daemon|serve`), nil, 10*time.Second); err != nil {
			t.Errorf("wrap started without a daemon but said nothing about starting one on stderr (%v): %q", err, wrapStderr.String())
		}
	}

	type call struct {
		params  *mcp.CallToolParams
		outcome string
	}
	calls := []*call{
		{params: &mcp.CallToolParams{Name: "test_simple_text", Meta: mcp.Meta{"traceparent": traceparent}}, outcome: store.OutcomeOK},
		{params: &mcp.CallToolParams{Name: "test_error_handling"}, outcome: store.OutcomeToolError},
		{params: &mcp.CallToolParams{Name: "no_such_tool", Arguments: map[string]any{"x": 1}}, outcome: store.OutcomeRPCError},
		{params: &mcp.CallToolParams{Name: "test_tool_with_progress"}, outcome: store.OutcomeOK},
		{params: &mcp.CallToolParams{Name: "json_schema_2020_12_tool", Arguments: conformanceToolArgs["json_schema_2020_12_tool"]}, outcome: store.OutcomeOK},
	}
	calls[3].params.SetProgressToken("record-progress")
	// A call the server needs the client's help with: a sampling
	// request in the legacy era, a multi-round-trip call in 2026-07-28.
	sampling := &call{params: &mcp.CallToolParams{Name: "test_sampling", Arguments: conformanceToolArgs["test_sampling"]}, outcome: store.OutcomeOK}
	if e.opts == nil {
		sampling.params = &mcp.CallToolParams{Name: "test_input_required_result_sampling"}
	}
	calls = append(calls, sampling)

	tr := &transcript{}
	for _, c := range calls {
		res, err := cs.CallTool(ctx, c.params)
		if c.outcome == store.OutcomeRPCError {
			var rpcErr *jsonrpc.Error
			if !errors.As(err, &rpcErr) {
				t.Fatalf("%s: want a JSON-RPC error, got %v", c.params.Name, err)
			}
		} else if err != nil {
			t.Fatalf("%s: %v", c.params.Name, err)
		}
		tr.add(t, "tools/call "+c.params.Name, res, err)
	}
	l.waitFor(t, "3 progress notifications", func() bool { return len(l.progress) >= 3 })
	if err := cs.Close(); err != nil {
		t.Errorf("mcptrail wrap exited with %v after the client closed stdin, want status 0", err)
	}

	events := in.WaitEvents(t, allAnswered)
	ci := indexCalls(events)
	// Requests and outcomes agree with what the client saw; agent, upstream, transport.
	sessions := checkToolCallsRecorded(t, ci, tr, recordExpect{upstream: "conf", transport: "stdio", agent: recordAgent,
		clientName: conformanceClientName, clientVersion: conformanceClientVersion})
	if len(sessions) != 1 {
		t.Errorf("the record has %d sessions for one client session: %v", len(sessions), sessions)
	}
	var session string
	for s := range sessions {
		session = s
	}
	// And what this test set: principal, task, trace, arguments, outcomes.
	for _, c := range calls {
		name := c.params.Name
		reqs := ci.requests(store.FromClient, "tools/call", name)
		if len(reqs) == 0 {
			continue // reported above
		}
		req := reqs[0]
		if req.Principal == nil || req.Principal.Kind != "os_user" || req.Principal.Subject != u.Username {
			t.Errorf("%s: principal %+v, want os_user %q", name, req.Principal, u.Username)
		}
		if req.Task == nil || req.Task.ID != recordTask {
			t.Errorf("%s: task %+v, want id %q", name, req.Task, recordTask)
		}
		if _, ok := c.params.Meta["traceparent"]; ok && (req.Task == nil || req.Task.TraceID != traceID) {
			t.Errorf("%s: task %+v, want trace_id %s from _meta.traceparent", name, req.Task, traceID)
		}
		if args := jsonField(req.Params, "arguments"); c.params.Arguments != nil && !sameJSON(args, mustJSON(c.params.Arguments)) {
			t.Errorf("%s: recorded arguments %s, sent %s", name, args, mustJSON(c.params.Arguments))
		}
		if out := ci.outcome[reqs[len(reqs)-1].Seq]; out.Outcome != c.outcome {
			t.Errorf("%s: outcome %q, want %q", name, out.Outcome, c.outcome)
		} else if c.outcome == store.OutcomeRPCError && !strings.Contains(string(out.Error), `"code"`) {
			t.Errorf("%s: rpc_error outcome with error %s, want the JSON-RPC error object", name, out.Error)
		}
	}

	if e.opts != nil {
		// The server's sampling request and the client's answer.
		reqs := ci.requests(store.FromServer, "sampling/createMessage", "")
		if len(reqs) != 1 {
			t.Fatalf("%d sampling/createMessage requests from the server in the record, want 1", len(reqs))
		}
		out := ci.outcome[reqs[0].Seq]
		if out.Outcome != store.OutcomeOK || !strings.Contains(string(out.Result), samplingModel) {
			t.Errorf("sampling/createMessage outcome %q result %s, want ok with the client's answer", out.Outcome, out.Result)
		}
		if !strings.Contains(string(reqs[0].Params), "What is 2+2?") {
			t.Errorf("sampling/createMessage params %s, want the server's prompt", reqs[0].Params)
		}
	} else if reqs := ci.requests(store.FromClient, "tools/call", "test_input_required_result_sampling"); len(reqs) < 2 {
		// (checkToolCallsRecorded checked how the rounds are linked.)
		t.Errorf("multi-round-trip call: %d requests in the record, want a round that asked for input and one that answered", len(reqs))
	}
	if n := len(ci.notifications(store.FromServer, "notifications/progress")); n != 3 {
		t.Errorf("%d notifications/progress events, want 3", n)
	}

	checkCLIViews(t, in, events, session)
}

// checkCLIViews checks sessions, export filters, status and verify against
// the record of TestRecordWrap (one session, agent recordAgent).
func checkCLIViews(t *testing.T, in *Instance, events []store.Event, session string) {
	t.Helper()
	// sessions --json: one line for the session.
	res := in.MustRun(t, "sessions", "--json")
	var found map[string]any
	for _, line := range strings.Split(strings.TrimSpace(res.Stdout), "\n") {
		var s map[string]any
		if err := json.Unmarshal([]byte(line), &s); err != nil {
			t.Fatalf("sessions --json printed a line that is not JSON: %q", line)
		}
		if s["session"] == session {
			found = s
		}
	}
	if found == nil {
		t.Fatalf("sessions --json has no line for session %q:\n%s", session, res.Stdout)
	}
	for _, k := range []string{"session", "agent", "upstream", "principal", "started", "ended", "calls", "writes", "errors", "alerts"} {
		if _, ok := found[k]; !ok {
			t.Errorf("sessions --json: no %q in %v", k, found)
		}
	}
	if !strings.Contains(string(mustJSON(found["agent"])), recordAgent) || found["upstream"] != "conf" {
		t.Errorf("sessions --json: agent %v upstream %v, want %s and conf", found["agent"], found["upstream"], recordAgent)
	}
	if calls, _ := found["calls"].(float64); calls < 5 {
		t.Errorf("sessions --json: calls %v, want at least the 5 tool calls made", found["calls"])
	}
	if errs, _ := found["errors"].(float64); errs < 1 {
		t.Errorf("sessions --json: errors %v, want at least 1 (a tool error and an rpc error were made)", found["errors"])
	}
	if res := in.MustRun(t, "sessions", "--json", "--agent", "nobody-"+recordAgent); strings.TrimSpace(res.Stdout) != "" {
		t.Errorf("sessions --json --agent nobody: want no lines, got %s", res.Stdout)
	}

	// export filters select subsets of the record.
	filtered := map[string]func(store.Event) bool{
		"--tool=test_error_handling": func(ev store.Event) bool { return ev.Tool == "test_error_handling" },
		"--session=" + session:       func(ev store.Event) bool { return ev.Session == session },
		"--agent=" + recordAgent:     func(ev store.Event) bool { return ev.Agent != nil && ev.Agent.Name == recordAgent },
	}
	for flag, belongs := range filtered {
		name, value, _ := strings.Cut(flag, "=")
		got := in.Export(t, name, value)
		var want []uint64
		for _, ev := range events {
			if belongs(ev) {
				want = append(want, ev.Seq)
			}
		}
		var gotSeqs []uint64
		for _, ev := range got {
			gotSeqs = append(gotSeqs, ev.Seq)
		}
		// The record may have grown since (session end); every wanted event
		// must be there and nothing that does not match.
		for _, ev := range got {
			if !belongs(ev) {
				t.Errorf("export %s: event seq %d does not match the filter: %+v", flag, ev.Seq, ev)
			}
		}
		for _, seq := range want {
			if !slices.Contains(gotSeqs, seq) {
				t.Errorf("export %s: missing seq %d", flag, seq)
			}
		}
		if len(want) < 2 {
			t.Errorf("export %s: the record has only %d matching events; the test expected more", flag, len(want))
		}
	}
	if got := in.Export(t, "--since", "1h"); len(got) < len(events) {
		t.Errorf("export --since 1h: %d events, want all %d", len(got), len(events))
	}
	if got := in.Export(t, "--agent", "nobody-"+recordAgent); len(got) != 0 {
		t.Errorf("export --agent nobody: %d events, want none", len(got))
	}

	// status --json through the daemon wrap started.
	st := in.Status(t)
	if pid, _ := st["pid"].(float64); pid <= 0 {
		t.Errorf("status --json: pid %v, want the running daemon's", st["pid"])
	}
	if listen, _ := st["listen"].(string); listen == "" {
		t.Errorf("status --json: listen %v, want the daemon's address", st["listen"])
	}
	if n, _ := st["events"].(float64); int(n) < len(events) {
		t.Errorf("status --json: events %v, want at least %d", st["events"], len(events))
	}

	if res := in.Run(t, "verify"); res.Code != 0 {
		t.Errorf("mcptrail verify: exit %d, want 0 for an untouched store\n%s%s", res.Code, res.Stdout, res.Stderr)
	}
}

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return b
}

func derefs(evs []*store.Event) []store.Event {
	out := make([]store.Event, len(evs))
	for i, ev := range evs {
		out[i] = *ev
	}
	return out
}
