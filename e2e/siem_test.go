package e2e

// SIEM forwarding and detections through the built binary: calls through
// the gateway reach a real rsyslog as RFC 5424 + CEF, every one of them
// across an rsyslog restart; a first tool use through `mcptrail wrap` is
// an alert, in the record and in the OCSF file sink as a Detection
// Finding; `mcptrail status` shows the sinks and `mcptrail export` speaks
// every format.

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/mcptrail/mcptrail/siem/siemtest"
	"github.com/mcptrail/mcptrail/store"
	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// sinkStatus reads the sinks and the event count from `mcptrail status --json`.
func sinkStatus(t *testing.T, in *Instance) (events uint64, sinks []map[string]any) {
	t.Helper()
	st := in.Status(t)
	n, _ := st["events"].(float64)
	list, _ := st["sinks"].([]any)
	for _, s := range list {
		sinks = append(sinks, s.(map[string]any))
	}
	return uint64(n), sinks
}

// waitSinksCaughtUp waits until every sink has accepted every event and
// the count has stopped moving.
func waitSinksCaughtUp(t *testing.T, in *Instance) uint64 {
	t.Helper()
	var last uint64
	stable := 0
	ok := pollUntil(60*time.Second, func() bool {
		events, sinks := sinkStatus(t, in)
		for _, s := range sinks {
			if uint64(s["cursor"].(float64)) != events {
				stable = 0
				return false
			}
		}
		if events == last {
			stable++
		} else {
			last, stable = events, 0
		}
		return stable >= 3
	})
	if !ok {
		events, sinks := sinkStatus(t, in)
		t.Fatalf("sinks did not catch up with %d events: %v", events, sinks)
	}
	return last
}

func TestSIEMRsyslogThroughTheGateway(t *testing.T) {
	t.Parallel()
	ctx := scenarioContext(t)
	rs := siemtest.StartRsyslog(t)
	in := newInstance(t)
	in.WriteConfig(t, "checkpoint: {every: 10, interval: 1s}\n") // checkpoints to forward
	ocsfFile := filepath.Join(in.Home, "siem", "events.ocsf.jsonl")
	d := in.Serve(t, "--upstream", "conf=stdio:"+binary(t, "everything-server"),
		"--sink", "syslog+tcp://"+rs.Addr()+"?format=cef&settle=300ms",
		"--sink", "file://"+ocsfFile+"?format=ocsf")
	client := mcp.NewClient(&mcp.Implementation{Name: "siem-agent", Version: "1.0.0"}, nil)
	call := func(cs *mcp.ClientSession, n int) {
		for i := 0; i < n; i++ {
			if res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "test_simple_text"}); err != nil || res.IsError {
				t.Fatalf("call: %v %+v", err, res)
			}
		}
	}
	cs := connect(t, ctx, client, &mcp.StreamableClientTransport{Endpoint: d.Endpoint("conf")}, nil)
	call(cs, 10)
	// What the gateway turns away is recorded and forwarded too: a request
	// from a foreign Origin, and a body that is not JSON.
	for _, req := range []struct{ origin, body string }{
		{"https://evil.example", `{"jsonrpc":"2.0","id":1,"method":"tools/list"}`},
		{"", `{"jsonrpc":"2.0","id":`},
	} {
		r, _ := http.NewRequestWithContext(ctx, http.MethodPost, d.Endpoint("conf"), strings.NewReader(req.body))
		r.Header.Set("Content-Type", "application/json")
		r.Header.Set("Accept", "application/json, text/event-stream")
		if req.origin != "" {
			r.Header.Set("Origin", req.origin)
		}
		if resp, err := http.DefaultClient.Do(r); err != nil {
			t.Fatal(err)
		} else {
			resp.Body.Close()
			if resp.StatusCode < 400 {
				t.Fatalf("%+v answered %s", req, resp.Status)
			}
		}
	}
	waitSinksCaughtUp(t, in)
	if len(rs.Messages()) == 0 {
		t.Fatal("nothing reached rsyslog")
	}

	// rsyslog stops; calls go on, and never wait for it.
	rs.Stop()
	start := time.Now()
	call(cs, 20)
	if d := time.Since(start); d > 20*time.Second {
		t.Errorf("20 calls took %v with the syslog receiver down", d)
	}
	if !pollUntil(30*time.Second, func() bool {
		_, sinks := sinkStatus(t, in)
		for _, s := range sinks {
			if strings.HasPrefix(s["url"].(string), "syslog") && s["failures"].(float64) > 0 {
				return true
			}
		}
		return false
	}) {
		t.Fatal("the syslog sink never reported its receiver down")
	}
	text := in.MustRun(t, "status").Stdout
	if !strings.Contains(text, "sink:     syslog+tcp://"+rs.Addr()) || !strings.Contains(text, "last error") {
		t.Errorf("mcptrail status does not show the failing sink:\n%s", text)
	}
	rs.Start()
	cs.Close()
	total := waitSinksCaughtUp(t, in)

	// Every event, in order, at least once; each an RFC 5424 message with
	// a CEF payload that names the same event.
	var seqs []uint64
	checkpoints := 0
	for _, raw := range rs.Messages() {
		m, err := siemtest.ParseRFC5424(raw)
		if err != nil {
			t.Fatalf("not RFC 5424: %v\n%s", err, raw)
		}
		c, err := siemtest.ParseCEF(m.Msg)
		if err != nil {
			t.Fatalf("not CEF: %v\n%s", err, m.Msg)
		}
		if m.MsgID == "checkpoint" {
			// A signed checkpoint, forwarded after the events it covers.
			if c.Ext["cn1Label"] != "checkpointSize" || !strings.Contains(c.Ext["msg"], "\n") {
				t.Errorf("checkpoint message: %v", c.Ext)
			}
			checkpoints++
			continue
		}
		seq, err := strconv.ParseUint(c.Ext["cn1"], 10, 64)
		if err != nil || m.SD["mcptrail@32473"]["seq"] != c.Ext["cn1"] || m.AppName != "mcptrail" || m.MsgID == "-" {
			t.Fatalf("message does not name its event consistently: %+v / %v", m, c.Ext)
		}
		seqs = append(seqs, seq)
	}
	siemtest.CheckAtLeastOnceInOrder(t, seqs, total)
	t.Logf("rsyslog: %d messages for %d events, and %d checkpoints", len(seqs), total, checkpoints)
	if checkpoints == 0 {
		t.Error("no signed checkpoint reached rsyslog")
	}

	// The record and the OCSF file agree.
	events := in.Export(t)
	if uint64(len(events)) != total {
		t.Fatalf("export has %d events, status said %d", len(events), total)
	}
	data, err := os.ReadFile(ocsfFile)
	if err != nil {
		t.Fatal(err)
	}
	var lines []string
	var covered uint64 // events before the current line
	for _, l := range strings.Split(strings.TrimSpace(string(data)), "\n") {
		var cp struct {
			ClassUID int `json:"class_uid"`
			Unmapped struct {
				Size uint64 `json:"size"`
				Note string `json:"note"`
			} `json:"unmapped"`
		}
		json.Unmarshal([]byte(l), &cp)
		if cp.ClassUID == 0 { // Base Event: a checkpoint
			if cp.Unmapped.Size == 0 || cp.Unmapped.Size > covered || !strings.HasPrefix(cp.Unmapped.Note, "mcptrail") {
				t.Errorf("checkpoint of %d events after %d events: %s", cp.Unmapped.Size, covered, l)
			}
			continue
		}
		lines = append(lines, l)
		covered++
	}
	if uint64(len(lines)) != total {
		t.Fatalf("OCSF file has %d event lines for %d events", len(lines), total)
	}
	alerts := 0
	for i, l := range lines {
		var rec struct {
			ClassUID int `json:"class_uid"`
			Metadata struct {
				Sequence uint64 `json:"sequence"`
			} `json:"metadata"`
			API struct {
				Operation string `json:"operation"`
			} `json:"api"`
		}
		if err := json.Unmarshal([]byte(l), &rec); err != nil {
			t.Fatalf("OCSF line %d: %v", i+1, err)
		}
		ev := events[i]
		want := 6003
		if ev.Kind == store.KindAlert {
			want = 2004
			alerts++
		}
		if rec.ClassUID != want || rec.Metadata.Sequence != ev.Seq {
			t.Fatalf("OCSF line %d: class %d seq %d for %s event %d", i+1, rec.ClassUID, rec.Metadata.Sequence, ev.Kind, ev.Seq)
		}
	}
	if alerts == 0 {
		t.Error("no alert: the first use of test_simple_text by siem-agent should be one")
	}

	// export speaks every format, each line per its schema (the vendored
	// ECS and OCSF schema files, the CEF key dictionary, the shipped
	// Elasticsearch template), as do the sinks' OCSF file and CEF messages.
	ecs, err := siemtest.NewECSChecker("../siem/testdata/ecs_flat-9.4.0.yml.gz", "9.4.0", "../siem/elasticsearch/mcptrail-template.json")
	if err != nil {
		t.Fatal(err)
	}
	ocsf, err := siemtest.NewOCSFChecker("../siem/testdata/ocsf-1.8.0.compiled.json.gz")
	if err != nil {
		t.Fatal(err)
	}
	dict, err := siemtest.LoadCEFDictionary("../siem/testdata/cef-key-dictionary.txt")
	if err != nil {
		t.Fatal(err)
	}
	kinds := map[string]bool{}
	for _, ev := range events {
		kinds[ev.Kind] = true
	}
	for _, k := range []string{store.KindRequest, store.KindCall, store.KindAlert, store.KindRefusal} {
		if !kinds[k] {
			t.Errorf("the record has no %s event to check: %v", k, kinds)
		}
	}
	for _, f := range []string{"ocsf", "ecs", "cef"} {
		out := in.MustRun(t, "export", "--format", f).Stdout
		got := strings.Split(strings.TrimSpace(out), "\n")
		if uint64(len(got)) != total {
			t.Errorf("export --format %s: %d lines for %d events", f, len(got), total)
		}
		for i, l := range got {
			doc := fmt.Sprintf("export --format %s line %d", f, i+1)
			switch f {
			case "ocsf":
				ocsf.Check(doc, []byte(l))
			case "ecs":
				ecs.Check(doc, []byte(l))
			case "cef":
				for _, err := range dict.Violations(l) {
					t.Errorf("%s: %v\n%s", doc, err, l)
				}
			}
		}
	}
	for i, l := range strings.Split(strings.TrimSpace(string(data)), "\n") {
		ocsf.Check(fmt.Sprintf("OCSF file line %d", i+1), []byte(l))
	}
	for i, raw := range rs.Messages() {
		m, _ := siemtest.ParseRFC5424(raw)
		for _, err := range dict.Violations(m.Msg) {
			t.Errorf("rsyslog message %d: %v\n%s", i+1, err, m.Msg)
		}
	}
	for _, e := range append(ecs.Errs, ocsf.Errs...) {
		t.Error(e)
	}
	if res := in.Run(t, "export", "--format", "leef"); res.Code != 2 {
		t.Errorf("export --format leef: exit %d, want 2", res.Code)
	}
}

// Detections see wrap's sessions (recorded through the daemon's socket),
// and their state survives a daemon restart.
func TestDetectionsOnWrapAcrossRestart(t *testing.T) {
	t.Parallel()
	ctx := scenarioContext(t)
	in := newInstance(t)
	// A schedule that is never open, so that every call is outside it.
	in.WriteConfig(t, `detections:
  rules:
    - id: mcp-outside-schedule
      type: schedule
      match: {kind: request, from: client, method: tools/call}
      schedule: {timezone: UTC, days: [mon], hours: ["00:00-00:01"]}
      suppress: 1h
`)
	in.Serve(t)
	session := func(tools ...string) {
		transport, _ := in.Wrap(t, WrapOptions{Name: "conf", Agent: "wrapped-agent"}, binary(t, "everything-server"))
		cs := connect(t, ctx, mcp.NewClient(&mcp.Implementation{Name: "c", Version: "1"}, nil), transport, nil)
		for _, tool := range tools {
			if _, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: tool}); err != nil {
				t.Fatal(err)
			}
		}
		cs.Close()
	}
	waitAlerts := func(want ...string) {
		t.Helper()
		var got []string
		ok := pollUntil(30*time.Second, func() bool {
			got = got[:0]
			for _, ev := range in.Export(t) {
				if ev.Kind != store.KindAlert {
					continue
				}
				var p struct {
					Rule struct{ ID string } `json:"rule"`
				}
				json.Unmarshal(ev.Params, &p)
				got = append(got, p.Rule.ID+":"+ev.Tool)
			}
			return strings.Join(got, " ") == strings.Join(want, " ")
		})
		if !ok {
			t.Fatalf("alerts %v, want %v", got, want)
		}
	}
	session("test_simple_text", "test_simple_text")
	waitAlerts("mcp-first-tool-use:test_simple_text", "mcp-outside-schedule:test_simple_text")

	// A restart: known tools stay known, the suppression holds.
	in.StopDaemon(t)
	in.Serve(t)
	session("test_simple_text", "test_error_handling")
	waitAlerts("mcp-first-tool-use:test_simple_text", "mcp-outside-schedule:test_simple_text", "mcp-first-tool-use:test_error_handling")
	for _, ev := range in.Export(t) {
		if ev.Kind == store.KindAlert && (ev.Call == 0 || ev.Agent == nil || ev.Agent.Name != "wrapped-agent") {
			t.Errorf("alert not linked to its trigger: %+v", ev)
		}
	}
}
