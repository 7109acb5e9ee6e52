package siem

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mcptrail/mcptrail/internal/termsafe/termsafetest"
	"github.com/mcptrail/mcptrail/siem/siemtest"
	"github.com/mcptrail/mcptrail/store"
)

// variedRecord is a record with every kind of event the formats map
// differently, written to and read back from a real store: the sample
// events (stdio and HTTP upstreams, tool calls ok and failed, requests,
// notifications, alerts, refusals and their summary, bad input), a hostile
// agent's session (termsafetest.Record: control characters and bidi
// overrides in every field, an rpc error, raw invalid UTF-8), an approval,
// a rollback step, bad input whose body is a malformed message, a
// response to an unknown id whose result is not an object, an IPv6
// refusal, oversized names — and a forwarded checkpoint.
func variedRecord(t *testing.T) []*store.Event {
	t.Helper()
	st, err := store.Open(filepath.Join(t.TempDir(), "mcptrail.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	samples := sampleEvents()
	names := make([]string, 0, len(samples))
	for n := range samples {
		names = append(names, n)
	}
	slices.Sort(names)
	add := func(ev *store.Event) {
		t.Helper()
		ev.Seq, ev.PrevHash, ev.Hash = 0, "", ""
		if _, err := st.Append(ev); err != nil {
			t.Fatal(err)
		}
	}
	for _, n := range names {
		add(samples[n])
	}
	if _, err := termsafetest.Record(testTime, func(ev *store.Event) (uint64, error) { return st.Append(ev) }); err != nil {
		t.Fatal(err)
	}
	long := strings.Repeat("ü", 3000) // multi-byte, past every limit
	base := store.Event{Time: testTime, Session: "sess-9", Upstream: "web", Transport: "http", ProtocolVersion: "2025-11-25",
		Agent:     &store.Agent{ID: "a", Name: long, ClientName: long, ClientVersion: "1"},
		Principal: &store.Principal{Subject: long, Issuer: "https://idp.example.com", Kind: "token", Verified: true}}
	for _, mk := range []func(e *store.Event){
		func(e *store.Event) {
			e.Kind, e.From, e.Method, e.Tool, e.Class, e.ClassSource = store.KindRequest, store.FromClient, "tools/call", "rm", "delete", store.ClassSourceAnnotations
			e.JSONRPCID = json.RawMessage(`1e3`)
			yes, no := true, false
			e.Annotations = &store.Annotations{ReadOnly: &no, Destructive: &yes, Idempotent: &no, OpenWorld: &yes}
			e.Params = json.RawMessage(`{"name":"rm","arguments":{"path":[1,{"x":null}]}}`)
		},
		func(e *store.Event) {
			e.Kind, e.Method, e.Tool, e.Call = store.KindApproval, "tools/call", "rm", 1
			e.Authorization = &store.Authorization{Reviewed: true, Approver: "carol", Method: "console", Time: testTime}
			e.Detail = "approved by carol"
		},
		func(e *store.Event) {
			e.Kind, e.Method, e.Tool, e.Reverts, e.Outcome, e.Prestate = store.KindRollbackStep, "tools/call", "write_file", 3, store.OutcomeOK, "sha256:00"
			e.Detail = "restored /tmp/x"
		},
		func(e *store.Event) {
			e.Kind, e.From, e.Detail, e.Size = store.KindBadInput, store.FromClient, "malformed JSON", 17
			e.Params = json.RawMessage(`"{\"jsonrpc\":\"2.0\",\"id\":"`) // the excerpt, as a JSON string
		},
		func(e *store.Event) {
			e.Kind, e.From, e.Detail = store.KindBadInput, store.FromServer, "response to an unknown request id"
			e.JSONRPCID, e.Result = json.RawMessage(`77`), json.RawMessage(`[1,2]`)
		},
		func(e *store.Event) {
			e.Kind, e.From, e.Method, e.Call, e.Outcome, e.Detail = store.KindCall, store.FromClient, "tools/call", 1, store.OutcomeRPCError, long
			e.Error = json.RawMessage(`{"code":-32603,"message":"boom","data":{"x":[1]}}`)
			e.DurationNS, e.LogicalCall, e.OnBehalfOf = 1, 1, long
			e.Task = &store.Task{ID: long, TraceID: "4bf92f3577b34da6a3ce929d0e0e4736", SpanID: "00f067aa0ba902b7", Workflow: "w"}
		},
		func(e *store.Event) {
			// JSON-RPC allows positional params, and a broken server any error.
			e.Kind, e.From, e.Method, e.JSONRPCID, e.Params = store.KindRequest, store.FromServer, "roots/list", json.RawMessage(`"r"`), json.RawMessage(`[1,"two"]`)
		},
		func(e *store.Event) {
			e.Kind, e.From, e.Method, e.Call, e.Outcome = store.KindCall, store.FromServer, "roots/list", 1, store.OutcomeRPCError
			e.Error = json.RawMessage(`"not an error object"`)
		},
		func(e *store.Event) {
			e.Kind, e.Agent, e.Principal = store.KindRefusal, nil, nil
			e.Refusal = &store.Refusal{Reason: "host", Status: 421, RemoteAddr: "2001:db8::1", HTTPMethod: "GET", Path: "/" + long, Host: long, SessionID: "s"}
		},
		func(e *store.Event) {
			e.Kind, e.Agent, e.Principal = store.KindRefusal, nil, nil
			e.Refusal = &store.Refusal{Reason: "cap", Status: 503, RemoteAddr: "*", Suppressed: 3}
			e.DurationNS = int64(time.Second)
		},
	} {
		ev := base
		mk(&ev)
		add(&ev)
	}
	var out []*store.Event
	for seq := uint64(1); ; seq++ {
		ev, err := st.Get(seq)
		if err != nil {
			break
		}
		out = append(out, ev)
	}
	if len(out) < 30 {
		t.Fatalf("the record holds %d events", len(out))
	}
	out = append(out, &store.Event{Seq: uint64(len(out)), Time: testTime, Kind: KindCheckpoint, Hash: strings.Repeat("ab", 32),
		Detail: "mcptrail/x\n1000\nq83vEjRWeJA=\n\n— mcptrail-host sig==\n"})
	return out
}

// schemaOpts: bodies on (the most fields), an IPv6 and a named upstream,
// and a hostname past dvchost's limit.
var schemaOpts = Options{Version: "1.2.3", Hostname: strings.Repeat("h", 120) + ".example.com", Bodies: true,
	Upstreams: map[string]string{"web": "https://[2001:db8::2]:8443/mcp", "filesystem": "http://files.example.com/mcp"}}

func docName(ev *store.Event) string { return fmt.Sprintf("event %d (%s)", ev.Seq, ev.Kind) }

// TestECSDocumentsFollowECS: every field of every ECS document is an ECS
// 9.4.0 field of the right type or a mcptrail.* field the shipped index
// template maps with the type it has, and no field changes type across
// the documents (Elasticsearch would reject the later one).
func TestECSDocumentsFollowECS(t *testing.T) {
	c := newECSChecker(t)
	for _, opts := range []Options{schemaOpts, testOpts} {
		for _, ev := range variedRecord(t) {
			c.Check(docName(ev), encodeWith(t, FormatECS, opts, ev))
		}
	}
	for _, e := range c.Errs {
		t.Error(e)
	}
	// The template maps nothing the encoder never writes, either.
	for _, f := range c.Unused() {
		t.Errorf("template maps %s, which no document has", f)
	}
}

// The vendored schemas and the shipped template (siem/testdata/NOTICE-schemas).
const (
	ecsFlatFile      = "testdata/ecs_flat-9.4.0.yml.gz"
	ocsfCompiledFile = "testdata/ocsf-1.8.0.compiled.json.gz"
	cefDictFile      = "testdata/cef-key-dictionary.txt"
	templateFile     = "elasticsearch/mcptrail-template.json"
)

func newECSChecker(t *testing.T) *siemtest.ECSChecker {
	t.Helper()
	c, err := siemtest.NewECSChecker(ecsFlatFile, "9.4.0", templateFile)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func newOCSFChecker(t *testing.T) *siemtest.OCSFChecker {
	t.Helper()
	c, err := siemtest.NewOCSFChecker(ocsfCompiledFile)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestOCSFEventsValidateAgainstCompiledSchema: every OCSF event validates
// against the compiled OCSF 1.8.0 schema, with type_id beside every
// caption and unmapped members of one type across events.
func TestOCSFEventsValidateAgainstCompiledSchema(t *testing.T) {
	c := newOCSFChecker(t)
	for _, opts := range []Options{schemaOpts, testOpts} {
		for _, ev := range variedRecord(t) {
			c.Check(docName(ev), encodeWith(t, FormatOCSF, opts, ev))
		}
	}
	for _, e := range c.Errs {
		t.Error(e)
	}
}

// TestCEFLinesWithinDictionary: every CEF line parses, uses only keys of
// the CEF key dictionary, each within its type and length, and the
// encoder's table of limits agrees with the dictionary.
func TestCEFLinesWithinDictionary(t *testing.T) {
	dict, err := siemtest.LoadCEFDictionary(cefDictFile)
	if err != nil {
		t.Fatal(err)
	}
	for k, n := range cefLimits {
		d, ok := dict[k]
		if !ok {
			t.Errorf("cefLimits has %s, the dictionary does not", k)
		} else if n != d.Max {
			t.Errorf("cefLimits[%s] = %d, the dictionary says %d", k, n, d.Max)
		}
	}
	names := map[string]bool{}
	for _, opts := range []Options{schemaOpts, testOpts} {
		for _, ev := range variedRecord(t) {
			line := string(encodeWith(t, FormatCEF, opts, ev))
			for _, err := range dict.Violations(line) {
				t.Errorf("%s: %v\n%s", docName(ev), err, line)
			}
			r, _ := siemtest.ParseCEF(line)
			if r != nil {
				names[r.Header[4]] = true
			}
		}
	}
	// Name is stable: one per method and kind, rule or refusal reason, not
	// one per event.
	if len(names) > 24 {
		t.Errorf("%d distinct Names in one record: %v", len(names), names)
	}
}

// TestSyslogMessageSizes: what docs/siem.md tells receivers. A CEF message
// of an ordinary event fits the 2,048 octets RFC 5424 has every receiver
// accept; OCSF and ECS messages without bodies stay within 4 KB, well under
// rsyslog's default 8 KB (and the 64k docs/siem.md recommends).
func TestSyslogMessageSizes(t *testing.T) {
	f := NewSyslogFramer()
	for _, tc := range []struct {
		format Format
		max    int
	}{{FormatCEF, 2048}, {FormatOCSF, 4096}, {FormatECS, 4096}} {
		largest := 0
		for name, ev := range sampleEvents() {
			n := len(f.Message(ev, encodeWith(t, tc.format, testOpts, ev)))
			largest = max(largest, n)
			if n > tc.max {
				t.Errorf("%s %s: a %d-octet syslog message, more than %d", tc.format, name, n, tc.max)
			}
		}
		t.Logf("%s: largest syslog message %d octets", tc.format, largest)
	}
}
