package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestSinksAndDetections(t *testing.T) {
	dir := t.TempDir()
	write := func(body string) string {
		p := filepath.Join(dir, "config.yaml")
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	c, err := Load(write(`sinks:
  - syslog+tcp://127.0.0.1:514?format=cef
  - hec+https://TOKEN@splunk.example:8088?format=ocsf&ack=1
detections:
  disable: [mcp-write-burst]
  rules:
    - id: mcp-outside-schedule
      type: schedule
      schedule: {timezone: Europe/Paris, days: [mon-fri], hours: ["08:00-19:00"]}
`))
	if err != nil {
		t.Fatal(err)
	}
	rules, err := c.Detections.Load()
	if err != nil || len(rules) != 5 || rules[1].Schedule.Timezone != "Europe/Paris" {
		t.Fatalf("rules %+v, %v", rules, err)
	}
	for _, tc := range []struct{ body, want string }{
		{"detections:\n  rules:\n    - id: x\n      type: new_value\n      colour: red\n", `:5: unknown key "colour" in detections.rules[0]`},
		{"detections:\n  rules:\n    - id: x\n      type: sometimes\n", `detection rule x: type "sometimes"`},
		{"detections:\n  disable: [nope]\n", `no rule has id "nope"`},
		{"sinks:\n  - hec+https://S3CRET@splunk:8088?bogus=1\n", `:2: sinks: "hec+https://***@splunk:8088?bogus=1": unknown option "bogus"`},
		{"sinks:\n  - kafka://broker:9092\n", `:2: sinks: "kafka://broker:9092": topic ""`},
		{"sinks:\n  - gopher://broker:9092\n", `unknown scheme "gopher"`},
		{"collect:\n  url: kafka://alice:S3CRET@b:9092/t?sasl=scram-sha-512\n", `:2: collect: url: "kafka://***@b:9092/t?sasl=scram-sha-512": sasl without tls=1`},
		{"collect:\n  url: kafka://b:9092/t?group=g&bogus=1\n", `unknown option "bogus"`},
		{"collect:\n  url: kafka://b:9092/t\n  keys:\n    01ORIGIN: not-a-key\n", `collect: keys: 01ORIGIN`},
		{"collect:\n  url: kafka://b:9092/t\n  pinned_only: true\n", `pinned_only needs keys`},
		{"collect:\n  urls: kafka://b:9092/t\n", `unknown key "urls" in collect`},
	} {
		_, err := Load(write(tc.body))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: error %v, want %q", tc.body, err, tc.want)
		}
		if err != nil && strings.Contains(err.Error(), "S3CRET") {
			t.Errorf("the error shows the token: %v", err)
		}
	}
}
