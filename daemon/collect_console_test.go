package daemon

import (
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/mcptrail/mcptrail/config"
	"github.com/mcptrail/mcptrail/siem"
	"github.com/mcptrail/mcptrail/store"
)

// The SSH console on a collector works as on any daemon: an investigator
// connects with a key, and the fleet's sessions are there, each named by
// the host it ran on, beside the collector's own.
func TestConsoleSSHOnACollector(t *testing.T) {
	cluster, err := kfake.NewCluster(kfake.NumBrokers(3), kfake.SeedTopics(3, "mcptrail"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cluster.Close)
	url := "kafka://" + strings.Join(cluster.ListenAddrs(), ",") + "/mcptrail"

	// An origin gateway's store on "build-42", streaming through its Kafka sink.
	skey, _, err := store.GenerateKey("build-42")
	if err != nil {
		t.Fatal(err)
	}
	origin, err := store.Open(filepath.Join(t.TempDir(), "origin.db"), store.Options{SigningKey: skey, CheckpointEvery: 2})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { origin.Close() })
	agent := &store.Agent{ID: "release-bot"}
	for _, ev := range []*store.Event{
		{Kind: store.KindSessionStart, Session: "01ORIGINSESSION", Agent: agent},
		{Kind: store.KindRequest, Session: "01ORIGINSESSION", Agent: agent, From: store.FromClient, Method: "tools/call", Tool: "publish_release", Class: "write"},
	} {
		if _, err := origin.Append(ev); err != nil {
			t.Fatal(err)
		}
	}
	spec, err := siem.ParseSinkURL(url)
	if err != nil {
		t.Fatal(err)
	}
	fw, err := siem.NewForwarder(origin, spec, siem.ForwarderOptions{
		Encoding: siem.Options{Origin: origin.ID(), OriginKey: origin.VerifierKey(), Hostname: "build-42"},
		Poll:     5 * time.Millisecond, Linger: time.Millisecond, MinBackoff: time.Millisecond, MaxBackoff: 10 * time.Millisecond,
		Checkpoints: siem.StoreCheckpoints(origin),
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := fw.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { fw.Stop(time.Second) })

	env := startConsoleDaemonWith(t, func(c *config.Config) {
		c.Collect = config.Collect{URL: url + "?group=central", Keys: map[string]string{origin.ID(): origin.VerifierKey()}}
	})
	if env.d.collectStatus() == nil {
		t.Fatal("the daemon started no collector")
	}
	deadline := time.Now().Add(30 * time.Second)
	for env.d.collectStatus().Stats.Events < 2 {
		if time.Now().After(deadline) {
			t.Fatalf("collector: %+v; log:\n%s", env.d.collectStatus(), env.log())
		}
		time.Sleep(5 * time.Millisecond)
	}
	tm, err := dialConsole(t, env.d.ConsoleAddr(), env.viewer)
	if err != nil {
		t.Fatal(err)
	}
	tm.waitFor("ORIGIN")
	tm.waitFor("build-42")
	tm.waitFor("release-bot")
	tm.waitFor("nightly-ops-bot") // the collector's own session
	tm.send("f", "origin:build-42", "\r")
	tm.waitFor("session 1 of 1")
	tm.send("\r")
	tm.waitFor("publish_release")
	tm.send("\x03")
}
