package redact_test

import (
	"encoding/json"
	"strings"
	"sync"
	"testing"

	"github.com/mcptrail/mcptrail/ingest"
	"github.com/mcptrail/mcptrail/ingest/redact"
	"github.com/mcptrail/mcptrail/store"
)

// recorder keeps what the Session records.
type recorder struct {
	mu  sync.Mutex
	evs []store.Event
}

func (r *recorder) Record(ev *store.Event, _ bool) (uint64, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	ev.Seq = uint64(len(r.evs) + 1)
	r.evs = append(r.evs, *ev)
	return ev.Seq, nil
}

// newSession is a gateway session wired as the daemon and `mcptrail wrap`
// wire it: the built-in redactor is the Redact hook.
func newSession(t *testing.T) (*ingest.Session, *recorder) {
	t.Helper()
	red, err := redact.New(redact.Rules{})
	if err != nil {
		t.Fatal(err)
	}
	rec := &recorder{}
	hooks := ingest.Hooks{Redact: func(raw json.RawMessage) json.RawMessage { out, _ := red.JSON(raw); return out }}
	return ingest.NewSession(ingest.SessionInfo{ID: "s"}, rec, hooks, ingest.Limits{}, nil), rec
}

// recorded is everything the event holds that came from the message, as
// stored and as a reader of the stored JSON string sees it.
func recorded(t *testing.T, ev store.Event) string {
	t.Helper()
	all := string(ev.Params) + string(ev.Result)
	var s string
	if json.Unmarshal(ev.Params, &s) == nil {
		all += "\n" + s
	}
	return all
}

const (
	cutHead = `{"jsonrpc":"2.0","id":5,"method":"tools/call","params":{"pad":"`
	cutKey  = `","api_key":"`
)

// The three shapes seen getting past redaction, through a real Session:
// each secret is absent from the record, and the text around it is kept.
func TestSessionRecordsNoSecret(t *testing.T) {
	const secret = "Zq7vKp2LwX9"
	awsSecret := "wJalrXUtnFEMI/K7MDENG/" + "bPxRfiCYEXAMPLEKEY"
	tests := []struct {
		name, msg string
		kind      string
		secrets   []string
		kept      []string
	}{
		{
			name: "aws configure line in a string argument",
			msg:  `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"shell","arguments":{"cmd":"aws configure set aws_secret_access_key ` + awsSecret + ` --profile dev"}}}`,
			kind: store.KindRequest, secrets: []string{awsSecret},
			kept: []string{"aws configure set aws_secret_access_key ", " --profile dev"},
		},
		{
			name: "pwd field",
			msg:  `{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"login","arguments":{"user":"bob","pwd":"` + secret + `"}}}`,
			kind: store.KindRequest, secrets: []string{secret},
			kept: []string{`"user":"bob"`, `"pwd":`},
		},
		{
			// Malformed (no closing braces): recorded as bad input, an
			// excerpt of the raw body held in a JSON string.
			name: "malformed body with an escaped key",
			msg:  `{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"login","arguments":{"user":"bob","pass\u0077ord":"` + secret + `"`,
			kind: store.KindBadInput, secrets: []string{secret},
			kept: []string{`"user\":\"bob\"`, `pass\\u0077ord`},
		},
		{
			name: "malformed body, secret in a command with escaped quotes",
			msg:  `{"jsonrpc":"2.0","id":4,"method":"tools/call","params":{"name":"sh","arguments":{"cmd":"mysql -u root -p\"` + secret + `\" shop && echo \"token=` + secret + `x\""`,
			kind: store.KindBadInput, secrets: []string{secret},
			kept: []string{"mysql -u root -p", "shop && echo", "token="},
		},
		{
			// Longer than the 512 bytes kept, and cut there five bytes
			// into the secret.
			name: "malformed body cut inside a secret",
			msg:  cutHead + strings.Repeat("x", 507-len(cutHead)-len(cutKey)) + cutKey + secret + `", "more": `,
			kind: store.KindBadInput, secrets: []string{secret[:5]},
			kept: []string{`\"api_key\":\"`},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, rec := newSession(t)
			s.FromClient([]byte(tt.msg), nil)
			if len(rec.evs) != 1 {
				t.Fatalf("%d events recorded, want 1", len(rec.evs))
			}
			ev := rec.evs[0]
			if ev.Kind != tt.kind {
				t.Fatalf("recorded a %s event, want %s (%s)", ev.Kind, tt.kind, ev.Detail)
			}
			got := recorded(t, ev)
			for _, sec := range tt.secrets {
				if strings.Contains(got, sec) {
					t.Errorf("secret %q recorded:\n%s", sec, got)
				}
			}
			for _, k := range tt.kept {
				if !strings.Contains(string(ev.Params), k) {
					t.Errorf("%q lost from the record:\n%s", k, ev.Params)
				}
			}
			if !strings.Contains(got, "[REDACTED:") {
				t.Errorf("no redaction marker in the record:\n%s", got)
			}
		})
	}
}
