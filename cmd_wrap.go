package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/oklog/ulid/v2"
	"github.com/spf13/cobra"

	"github.com/mcptrail/mcptrail/approval"
	"github.com/mcptrail/mcptrail/daemon"
	"github.com/mcptrail/mcptrail/ingest"
	"github.com/mcptrail/mcptrail/ingest/identity"
	"github.com/mcptrail/mcptrail/ingest/redact"
	"github.com/mcptrail/mcptrail/rollback"
	"github.com/mcptrail/mcptrail/store"
)

type wrapFlags struct{ name, agent, task, config string }

// newWrapCmd is `mcptrail wrap [flags] -- CMD [ARG...]`: the stdio gateway
// for one server. Its flags end at the server's command (or at "--"):
// everything after goes to the server untouched, flags included.
func newWrapCmd() *cobra.Command {
	var f wrapFlags
	cmd := command("wrap [flags] -- CMD [ARG...]", "stdio gateway for one server; starts a daemon in the background when none runs", nArgs(1, -1, "no server command given (usage: mcptrail wrap [flags] -- CMD [ARG...])"), func(cmd *cobra.Command, argv []string) error {
		return f.run(argv, cmd.InOrStdin(), cmd.OutOrStdout(), cmd.ErrOrStderr())
	})
	cmd.Annotations = map[string]string{annotationStopAtArg: "true"}
	cmd.ValidArgsFunction = completeCommand
	cmd.Flags().SetInterspersed(false)
	cmd.Flags().StringVar(&f.name, "name", "", "upstream `NAME` in the record (default: the command's base name)")
	cmd.Flags().StringVar(&f.agent, "agent", "", "agent `NAME` in the record")
	cmd.Flags().StringVar(&f.task, "task", "", "task `ID` in the record")
	cmd.Flags().StringVar(&f.config, "config", "", "config `FILE`")
	cmd.MarkFlagFilename("config")
	return cmd
}

func (f *wrapFlags) run(argv []string, stdin io.Reader, stdout, stderr io.Writer) error {
	cfg, err := loadConfig(f.config)
	if err != nil {
		return err
	}
	red, err := redact.New(cfg.Redact)
	if err != nil {
		return usageError{oneLine(err)}
	}
	client, err := daemon.Ensure(home(), stderr)
	if err != nil {
		return problemError{"cannot reach the daemon, so nothing would be recorded: " + oneLine(err)}
	}
	defer client.Close()
	// Batch durability: requests are forwarded without waiting for the
	// daemon's seq (a daemon from before that waits as under strict).
	if _, err := client.RecordAhead(); err != nil {
		fmt.Fprintf(stderr, "mcptrail: the daemon does not take provisional seqs (%s): each request waits for its record\n", oneLine(err))
	}

	upstream := f.name
	if upstream == "" {
		upstream = filepath.Base(argv[0])
	}
	info := ingest.SessionInfo{
		ID:        ulid.Make().String(),
		Upstream:  upstream,
		Transport: "stdio",
		Agent:     store.Agent{ID: f.agent, Name: f.agent},
		Principal: identity.OSPrincipal(),
	}
	if f.task != "" {
		info.Task = &store.Task{ID: f.task}
	}
	limits := ingest.Limits{MaxMessageBytes: cfg.MaxMessageBytes, MaxDepth: cfg.MaxDepth, CallTimeout: time.Duration(cfg.CallTimeout)}
	hooks := ingest.Hooks{Redact: func(raw json.RawMessage) json.RawMessage { out, _ := red.JSON(raw); return out }}
	info.StartParams = rollbackWrap(argv, &hooks, client, stderr)
	if p, err := approval.Compile(cfg.Approvals); err == nil && p != nil {
		// Held calls wait in the daemon's desk; calls no rule holds never ask it.
		hooks.Approve = (&approval.Remote{Policy: p, Desk: client}).Approve
	}
	sess := ingest.NewSession(info, client, hooks, limits, nil)
	env := []string{"MCPTRAIL_HOME=" + home()}
	if exe, err := os.Executable(); err == nil {
		env = append(env, "MCPTRAIL_BIN="+exe)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	if f, ok := stdin.(*os.File); ok {
		pf, restore := ingest.Pollable(f)
		defer restore()
		stdin = pf
	}
	if f, ok := stdout.(*os.File); ok {
		pf, restore := ingest.Pollable(f)
		defer restore()
		stdout = pf
	}
	pump := &ingest.Stdio{
		Session: sess,
		Child:   ingest.ChildOptions{Command: argv, Env: env, Stderr: stderr, MaxMessageBytes: cfg.MaxMessageBytes},
		In:      stdin,
		Out:     stdout,
	}
	code, err := pump.Run(ctx)
	if err != nil {
		return problemError{oneLine(err)}
	}
	if code != 0 {
		return exitCode(code)
	}
	return nil
}

// rollbackWrap wires pre-state capture into a wrap session, with pre-states
// stored through the daemon, and returns the session_start params that let
// a rollback start the same server again: its command (argv[0] resolved),
// working directory, and the environment variables the rules say the
// server's state depends on.
func rollbackWrap(argv []string, hooks *ingest.Hooks, c *daemon.Client, stderr io.Writer) json.RawMessage {
	sp := rollback.StartParams{Command: append([]string(nil), argv...)}
	if p, err := exec.LookPath(argv[0]); err == nil {
		if abs, err := filepath.Abs(p); err == nil {
			sp.Command[0] = abs
		}
	}
	sp.Dir, _ = os.Getwd()
	rules, err := rollback.Load(rollback.DefaultDir())
	if err != nil {
		fmt.Fprintf(stderr, "mcptrail: rollback rules: %s; calls are recorded without pre-state\n", oneLine(err))
	} else {
		rollback.Hook(hooks, rules, c, slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn})))
		for _, name := range rules.EnvNames() {
			if v, ok := os.LookupEnv(name); ok {
				if sp.Env == nil {
					sp.Env = map[string]string{}
				}
				sp.Env[name] = v
			}
		}
	}
	b, err := json.Marshal(sp)
	if err != nil {
		return nil
	}
	return b
}
