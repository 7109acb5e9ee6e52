package demo

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"

	"github.com/mcptrail/mcptrail/daemon"
	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// Options for a demo run.
type Options struct {
	Exe     string    // the mcptrail binary (the daemon, wrap and demo-server run from it)
	Home    string    // a fresh data directory for the demo instance
	Log     io.Writer // progress lines
	Version string
}

// step is one call of the scripted agent.
type step struct {
	tool string
	args map[string]any
}

// incident is the night shift: routine triage, a data export the agent has
// never used before, then a bulk edit, a config change, deletions and
// privilege changes — the kind of session an on-call engineer must read and
// undo. The export comes first: it is the one call no rule can undo, and a
// reversal runs newest first and stops at the first step it cannot take,
// so every write after it is reverted and the export is left, with its
// reason, for a human.
var incident = []step{
	{"list_tickets", nil},
	{"read_file", map[string]any{"path": "runbooks/vpn.md"}},
	{"export_customer_data", map[string]any{"bucket": "s3://tmp-transfer-7731"}},
	{"update_ticket", map[string]any{"id": "OPS-101", "status": "in_progress", "assignee": "nightly-ops-bot"}},
	{"read_file", map[string]any{"path": "runbooks/dns.md"}}, // missing: a tool error
	{"update_ticket", map[string]any{"id": "OPS-102", "status": "closed"}},
	{"update_ticket", map[string]any{"id": "OPS-103", "status": "closed"}},
	{"update_ticket", map[string]any{"id": "OPS-104", "status": "closed"}},
	{"update_ticket", map[string]any{"id": "OPS-105", "status": "closed"}},
	{"update_ticket", map[string]any{"id": "OPS-106", "status": "closed"}},
	{"read_file", map[string]any{"path": "config.yaml"}},
	{"write_file", map[string]any{"path": "config.yaml", "content": "replicas: 0\nmaintenance: true\nbackup_retention_days: 0\naws_secret_access_key: wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY\n"}},
	{"delete_file", map[string]any{"path": "runbooks/vpn.md"}},
	{"create_user", map[string]any{"name": "svc-backup", "email": "svc-backup@example.com", "role": "admin"}},
	{"grant_role", map[string]any{"name": "bob", "role": "admin"}},
	{"delete_user", map[string]any{"name": "carol"}},
}

// triage is a well-behaved second agent, for contrast.
var triage = []step{
	{"list_tickets", nil},
	{"list_users", nil},
	{"read_file", map[string]any{"path": "config.yaml"}},
}

// Run prepares the demo instance in opts.Home — its workspace, and a
// configuration directory of its own with the demo server's rollback rules
// and loopback listeners on free ports — starts the instance's daemon in
// the background, and runs both agents through `mcptrail wrap` (the real
// stdio gateway, recording into the real store). The daemon is left
// running, so the console can plan and apply reversals: Stop stops it.
//
// The demo's configuration directory becomes this process's
// XDG_CONFIG_HOME, which the daemon and wrap inherit: the demo never reads
// or changes the user's own configuration or rules.
func Run(ctx context.Context, opts Options) error {
	workspace := Workspace(opts.Home)
	if err := os.MkdirAll(workspace, 0o700); err != nil {
		return err
	}
	cfgHome := filepath.Join(opts.Home, "config")
	if err := WriteRules(filepath.Join(cfgHome, "mcptrail", "rollback")); err != nil {
		return err
	}
	// Free ports: the demo must not take, or fail on, a real instance's.
	if err := os.WriteFile(filepath.Join(cfgHome, "mcptrail", "config.yaml"), []byte("listen: 127.0.0.1:0\nssh: 127.0.0.1:0\n"), 0o600); err != nil {
		return err
	}
	if err := os.Setenv("XDG_CONFIG_HOME", cfgHome); err != nil {
		return err
	}
	c, err := daemon.Ensure(opts.Home, opts.Log)
	if err != nil {
		return err
	}
	c.Close()
	fmt.Fprintf(opts.Log, "demo: daemon up, record in %s\n", opts.Home)

	agents := []struct {
		name, task, traceparent string
		steps                   []step
	}{
		{"triage-assistant", "TRIAGE-2291", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", triage},
		{"nightly-ops-bot", "INC-4711", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01", incident},
	}
	for _, a := range agents {
		if err := runAgent(ctx, opts, workspace, a.name, a.task, a.traceparent, a.steps); err != nil {
			return fmt.Errorf("agent %s: %w", a.name, err)
		}
	}
	return nil
}

// Stop stops the demo instance's daemon and waits until it has let go of
// the store.
func Stop(home string) error {
	c, err := daemon.Dial(home)
	if errors.Is(err, daemon.ErrNotRunning) {
		return nil
	}
	if err != nil {
		return err
	}
	defer c.Close()
	if err := c.Stop(); err != nil {
		return err
	}
	return daemon.WaitStopped(home)
}

// Workspace is the directory the demo server keeps its tickets, users and
// files in.
func Workspace(home string) string { return filepath.Join(home, "acme-ops") }

func runAgent(ctx context.Context, opts Options, workspace, agent, task, traceparent string, steps []step) error {
	cmd := exec.CommandContext(ctx, opts.Exe, "wrap", "--name", "acme-ops", "--agent", agent, "--task", task, "--", opts.Exe, "demo-server", workspace)
	cmd.Env = append(os.Environ(), "MCPTRAIL_HOME="+opts.Home)
	cmd.Stderr = io.Discard
	client := mcp.NewClient(&mcp.Implementation{Name: "claude-code", Version: "2.1.0"}, nil)
	sess, err := client.Connect(ctx, &mcp.CommandTransport{Command: cmd}, nil)
	if err != nil {
		return err
	}
	defer sess.Close()
	if _, err := sess.ListTools(ctx, nil); err != nil {
		return err
	}
	for _, s := range steps {
		params := &mcp.CallToolParams{Name: s.tool, Arguments: s.args, Meta: mcp.Meta{"traceparent": traceparent}}
		res, err := sess.CallTool(ctx, params)
		if err != nil {
			return fmt.Errorf("%s: %w", s.tool, err)
		}
		status := "ok"
		if res.IsError {
			status = "tool error"
		}
		fmt.Fprintf(opts.Log, "demo: %-16s %-20s %s\n", agent, s.tool, status)
	}
	return nil
}

// Summary prints what the investigator would look at first.
func Summary(w io.Writer, r daemon.Reader) error {
	list, err := r.Sessions(storeSessionQuery())
	if err != nil {
		return err
	}
	for _, s := range list {
		fmt.Fprintf(w, "\nsession %s  agent %s  calls %d  writes %d  errors %d\n", s.Session, s.Agent.Name, s.Calls, s.Writes, s.Errors)
		page, err := r.Query(callQuery(s.Session))
		if err != nil {
			return err
		}
		for _, ev := range page.Events {
			args := ""
			if req, err := r.Get(ev.Call); err == nil {
				args = summarize(req.Params)
			}
			fmt.Fprintf(w, "  %s  %-20s %-7s %-10s %s\n", ev.Time.Local().Format("15:04:05.000"), ev.Tool, ev.Class, ev.Outcome, args)
		}
	}
	return nil
}
