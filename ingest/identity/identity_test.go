package identity

import (
	"bytes"
	"encoding/json"
	"os/user"
	"reflect"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/mcptrail/mcptrail/store"
)

func TestTokenFingerprint(t *testing.T) {
	const tok = "s3cr3t-token"
	fp := TokenFingerprint(tok)
	if !strings.HasPrefix(fp, "sha256:") || len(fp) != len("sha256:")+16 {
		t.Errorf("fingerprint %q", fp)
	}
	if strings.Contains(fp, tok) {
		t.Error("fingerprint contains the token")
	}
	if got := TokenFingerprint("abc"); got != "sha256:ba7816bf8f01cfea" { // FIPS 180-2 test vector
		t.Errorf("TokenFingerprint(abc) = %q", got)
	}
}

func TestBearerToken(t *testing.T) {
	for in, want := range map[string]string{
		"Bearer abc123":       "abc123",
		"bearer abc123":       "abc123",
		"BEARER   abc123  ":   "abc123",
		"Basic dXNlcjpwYXNz":  "",
		"Bearer":              "",
		"Bearer ":             "",
		"":                    "",
		"Bearer two tokens":   "",
		"Bearerabc":           "",
		"  Bearer eyJ.a.b   ": "eyJ.a.b",
	} {
		got, ok := BearerToken(in)
		if got != want || ok != (want != "") {
			t.Errorf("BearerToken(%q) = %q, %v; want %q", in, got, ok, want)
		}
	}
}

func TestOSPrincipal(t *testing.T) {
	p := OSPrincipal()
	if p.Kind != "os_user" || !p.Verified || p.Subject == "" {
		t.Fatalf("principal = %+v", p)
	}
	if u, err := user.Current(); err == nil && p.Subject != u.Username {
		t.Errorf("subject %q, want %q", p.Subject, u.Username)
	}
}

func TestTraceParent(t *testing.T) {
	const trace, span = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
	valid := "00-" + trace + "-" + span + "-01"
	if tr, sp, ok := TraceParent(valid); !ok || tr != trace || sp != span {
		t.Errorf("TraceParent(valid) = %q, %q, %v", tr, sp, ok)
	}
	if _, _, ok := TraceParent(" " + valid + " "); !ok {
		t.Error("surrounding spaces rejected")
	}
	for _, bad := range []string{
		"",
		"01-" + trace + "-" + span + "-01", // other version
		"ff-" + trace + "-" + span + "-01",
		"00-00000000000000000000000000000000-" + span + "-01",
		"00-" + trace + "-0000000000000000-01",
		"00-" + strings.ToUpper(trace) + "-" + span + "-01",
		"00-" + trace + "-" + span + "-1",
		"00-" + trace + "-" + span + "-01-extra",
		"00-" + trace[:31] + "g-" + span + "-01",
		"00_" + trace + "_" + span + "_01",
	} {
		if tr, sp, ok := TraceParent(bad); ok {
			t.Errorf("TraceParent(%q) = %q, %q, true", bad, tr, sp)
		}
	}
}

func TestBaggage(t *testing.T) {
	got := Baggage(" task.id = T-1 ;prop=x, task.name=Fix%20login%2C%20again,workflow=ci ,bad key=1, =v,noequals, pct=%zz,empty=")
	want := map[string]string{"task.id": "T-1", "task.name": "Fix login, again", "workflow": "ci", "empty": ""}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Baggage = %v, want %v", got, want)
	}
	if b := Baggage(""); b != nil {
		t.Errorf("Baggage(\"\") = %v", b)
	}
	if b := Baggage(strings.Repeat("k=v,", 1000)); len(b) != 1 {
		t.Errorf("Baggage(many) = %v", b)
	}
}

func TestTaskFromMeta(t *testing.T) {
	const tp = `"traceparent":"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"`
	tests := []struct {
		name, params string
		want         *store.Task
	}{
		{"none", `{"name":"x","arguments":{}}`, nil},
		{"empty meta", `{"_meta":{}}`, nil},
		{"not an object", `[1,2]`, nil},
		{"empty params", ``, nil},
		{"traceparent only", `{"_meta":{` + tp + `}}`,
			&store.Task{TraceID: "4bf92f3577b34da6a3ce929d0e0e4736", SpanID: "00f067aa0ba902b7"}},
		{"bad traceparent ignored", `{"_meta":{"traceparent":"garbage","baggage":"task=T"}}`, &store.Task{ID: "T"}},
		{"baggage", `{"_meta":{"baggage":"task.id=T-7,task.name=deploy%20api,task.workflow=release"}}`,
			&store.Task{ID: "T-7", Name: "deploy api", Workflow: "release"}},
		{"baggage key precedence", `{"_meta":{"baggage":"task=a,task.id=b,mcptrail.task.id=c,workflow=w"}}`,
			&store.Task{ID: "c", Workflow: "w"}},
		{"own key as string", `{"_meta":{"io.mcptrail/task":"T-9"}}`, &store.Task{ID: "T-9"}},
		{"own key wins over baggage", `{"_meta":{` + tp + `,"baggage":"task.id=B,task.name=from-baggage","io.mcptrail/task":{"id":"OWN","workflow":"wf"}}}`,
			&store.Task{ID: "OWN", Name: "from-baggage", Workflow: "wf", TraceID: "4bf92f3577b34da6a3ce929d0e0e4736", SpanID: "00f067aa0ba902b7"}},
		{"own key malformed", `{"_meta":{"io.mcptrail/task":42}}`, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, _ := MetaClaims(metaOf(tt.params))
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("TaskFromMeta = %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestOnBehalfOfFromMeta(t *testing.T) {
	if _, got := MetaClaims(metaOf(`{"_meta":{"io.mcptrail/on_behalf_of":"alice@example.com"}}`)); got != "alice@example.com" {
		t.Errorf("got %q", got)
	}
	for _, p := range []string{`{}`, `{"_meta":{"io.mcptrail/on_behalf_of":7}}`, `nope`} {
		if _, got := MetaClaims(metaOf(p)); got != "" {
			t.Errorf("OnBehalfOfFromMeta(%s) = %q", p, got)
		}
	}
}

// metaOf is the _meta of params, as the envelope hands it to MetaClaims.
func metaOf(params string) json.RawMessage {
	var top map[string]json.RawMessage
	_ = json.Unmarshal([]byte(params), &top)
	return top["_meta"]
}

func TestMergeTask(t *testing.T) {
	base := &store.Task{ID: "a", Name: "n", TraceID: "t"}
	over := &store.Task{ID: "b", Workflow: "w"}
	got := MergeTask(base, over)
	want := &store.Task{ID: "b", Name: "n", Workflow: "w", TraceID: "t"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("MergeTask = %+v", got)
	}
	if got == base || base.ID != "a" {
		t.Error("MergeTask modified or returned base")
	}
	if MergeTask(nil, nil) != nil {
		t.Error("MergeTask(nil, nil) != nil")
	}
	if got := MergeTask(nil, over); !reflect.DeepEqual(got, over) || got == over {
		t.Errorf("MergeTask(nil, over) = %+v", got)
	}
	if got := MergeTask(base, nil); !reflect.DeepEqual(got, base) || got == base {
		t.Errorf("MergeTask(base, nil) = %+v", got)
	}
}

func FuzzTraceParent(f *testing.F) {
	f.Add("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
	f.Add("00-00000000000000000000000000000000-0000000000000000-00")
	f.Add("")
	f.Fuzz(func(t *testing.T, s string) {
		tr, sp, ok := TraceParent(s)
		if ok && (len(tr) != 32 || len(sp) != 16 || allZero(tr) || allZero(sp)) {
			t.Fatalf("TraceParent(%q) = %q, %q, true", s, tr, sp)
		}
	})
}

func FuzzBaggage(f *testing.F) {
	f.Add("task.id=T-1;p=1,task.name=a%20b")
	f.Add("k=%ZZ,=,,;;")
	f.Fuzz(func(t *testing.T, s string) {
		for k := range Baggage(s) {
			if !isToken(k) {
				t.Fatalf("Baggage(%q) kept key %q", s, k)
			}
		}
	})
}

// ParseMeta and Meta.String read what encoding/json reads, on the objects
// the envelope lets through (no duplicate members, valid UTF-8: encoding/json
// turns an invalid byte in a name into U+FFFD, where ParseMeta keeps it,
// and the envelope refuses such a message before anything reads its
// _meta).
func FuzzParseMeta(f *testing.F) {
	for _, s := range []string{
		`{"traceparent":"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01","progressToken":7}`,
		`{"a":"b","a":"c"}`, `null`, `{"\u0061":"x"}`, `{ "k" : "v\n" }`, `{"k":1,"k2":"\u00e9"}`, `[]`,
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, meta string) {
		if !json.Valid([]byte(meta)) || !utf8.ValidString(meta) {
			return
		}
		var want map[string]json.RawMessage
		werr := json.Unmarshal([]byte(meta), &want)
		got := ParseMeta(json.RawMessage(meta))
		if werr != nil || want == nil {
			if got != nil && werr != nil {
				t.Fatalf("%s: got %v, encoding/json fails: %v", meta, got, werr)
			}
			return
		}
		for k, v := range want {
			// Duplicates (the envelope refuses them) aside, every member.
			if !bytes.Equal(got[k], v) && len(got) == len(want) {
				t.Fatalf("%s: member %q is %s, want %s", meta, k, got[k], v)
			}
			var s string
			if json.Unmarshal(v, &s) != nil {
				s = ""
			}
			if g := got.String(k); g != s && bytes.Equal(got[k], v) {
				t.Fatalf("%s: String(%q) = %q, want %q", meta, k, g, s)
			}
		}
	})
}
