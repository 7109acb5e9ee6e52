package e2e

import (
	"context"
	"os/exec"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// The conformance tests run the conformance scenario (conformance_scenario_test.go)
// against the go-sdk's everything-server twice in one test — on a direct
// connection and through mcptrail — and require the same transcript, byte for
// byte: the gateway must be transparent. Nothing is normalised: the server's
// results hold no timestamps or generated ids, and each run gets a server
// process of its own (the scenario changes the server's tool and prompt lists,
// so two runs against one process would differ for that reason alone).
// Then the record must hold each request with its outcome.

// scenarioTimeout bounds one run of the scenario (it waits up to 3s for the
// watched resource's update; the rest is quick).
const scenarioTimeout = 2 * time.Minute

func scenarioContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), scenarioTimeout)
	t.Cleanup(cancel)
	return ctx
}

// TestConformanceServeHTTPUpstream: client —HTTP→ mcptrail serve —HTTP→ everything-server.
func TestConformanceServeHTTPUpstream(t *testing.T) {
	t.Parallel()
	cases := []struct {
		kind string
		args []string
		era  era
	}{
		// A stateful server (sessions): the default client's server/discover
		// fails and it falls back to initialize, through the gateway too.
		{kindHTTP, []string{"-stateless=false"}, eraDefault},
		{kindHTTP, []string{"-stateless=false"}, eraLegacy},
		// The stateless server of the 2026-07-28 era. (Legacy clients of a
		// stateless server get no server-to-client requests at all.)
		{kindHTTPStateless, nil, eraDefault},
	}
	for _, c := range cases {
		t.Run(c.kind+"/"+c.era.name, func(t *testing.T) {
			t.Parallel()
			ctx := scenarioContext(t)
			expect := expectFor(c.kind, c.era)

			direct, _ := runConformance(t, ctx, &mcp.StreamableClientTransport{Endpoint: startHTTPEverything(t, c.args...)}, c.era, expect)
			checkConformance(t, direct, expect)

			in := newInstance(t)
			d := in.Serve(t, "--upstream", "conf="+startHTTPEverything(t, c.args...))
			viaGateway, session := runConformance(t, ctx, &mcp.StreamableClientTransport{Endpoint: d.Endpoint("conf")}, c.era, expect)
			compareTranscripts(t, direct, viaGateway)
			// Ending the session ends its long-running requests (subscriptions),
			// so every request in the record has an outcome.
			session.Close()
			checkConformanceRecord(t, in, viaGateway, expect, recordExpect{upstream: "conf", transport: "http"})
		})
	}
}

// TestConformanceServeStdioUpstream: client —HTTP→ mcptrail serve —stdio→ everything-server.
func TestConformanceServeStdioUpstream(t *testing.T) {
	t.Parallel()
	for _, e := range eras {
		t.Run(e.name, func(t *testing.T) {
			t.Parallel()
			ctx := scenarioContext(t)
			server := binary(t, "everything-server")
			// The server speaks stdio to mcptrail; what it does is what it does
			// on a direct stdio connection.
			expect := expectFor(kindStdio, e)

			direct, _ := runConformance(t, ctx, &mcp.CommandTransport{Command: exec.Command(server)}, e, expect)
			checkConformance(t, direct, expect)

			in := newInstance(t)
			d := in.Serve(t, "--upstream", "conf=stdio:"+server)
			viaGateway, session := runConformance(t, ctx, &mcp.StreamableClientTransport{Endpoint: d.Endpoint("conf")}, e, expect)
			compareTranscripts(t, direct, viaGateway)
			session.Close()
			checkConformanceRecord(t, in, viaGateway, expect, recordExpect{upstream: "conf", transport: "http"})
		})
	}
}

// TestConformanceWrap: client —stdio→ mcptrail wrap —stdio→ everything-server.
func TestConformanceWrap(t *testing.T) {
	t.Parallel()
	for _, e := range eras {
		t.Run(e.name, func(t *testing.T) {
			t.Parallel()
			ctx := scenarioContext(t)
			server := binary(t, "everything-server")
			expect := expectFor(kindStdio, e)

			direct, directSession := runConformance(t, ctx, &mcp.CommandTransport{Command: exec.Command(server)}, e, expect)
			checkConformance(t, direct, expect)
			directExit := commandExitCode(directSession.Close())

			in := newInstance(t)
			transport, _ := in.Wrap(t, WrapOptions{Name: "conf", Agent: "conformance-agent"}, server)
			viaGateway, wrapSession := runConformance(t, ctx, transport, e, expect)
			compareTranscripts(t, direct, viaGateway)
			// Closing stdin ends the session; wrap exits with its child's status.
			if wrapExit := commandExitCode(wrapSession.Close()); wrapExit != directExit {
				t.Errorf("mcptrail wrap exited with status %d; the server alone exits with %d", wrapExit, directExit)
			}
			checkConformanceRecord(t, in, viaGateway, expect, recordExpect{upstream: "conf", transport: "stdio", agent: "conformance-agent"})
		})
	}
}
