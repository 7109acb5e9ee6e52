package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/mcptrail/mcptrail/approval"
	"github.com/mcptrail/mcptrail/collect"
	"github.com/mcptrail/mcptrail/daemon"
	"github.com/mcptrail/mcptrail/ingest"
	"github.com/mcptrail/mcptrail/ingest/identity"
	"github.com/mcptrail/mcptrail/ingest/redact"
	"github.com/mcptrail/mcptrail/internal/termsafe"
	"github.com/mcptrail/mcptrail/internal/timerange"
	"github.com/mcptrail/mcptrail/store"
	"github.com/oklog/ulid/v2"
	"golang.org/x/mod/sumdb/note"
)

func cmdWrap(args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	fs := newFlags("wrap")
	name := fs.String("name", "", "upstream name in the record (default: the command's base name)")
	agent := fs.String("agent", "", "agent name in the record")
	task := fs.String("task", "", "task id in the record")
	cfgPath := fs.String("config", "", "config file")
	if err := parse(fs, args); err != nil {
		return err
	}
	argv := fs.Args()
	if len(argv) == 0 {
		return usagef("wrap: no server command given (usage: mcptrail wrap [flags] -- CMD [ARG...])")
	}
	cfg, err := loadConfig(*cfgPath)
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

	upstream := *name
	if upstream == "" {
		upstream = filepath.Base(argv[0])
	}
	info := ingest.SessionInfo{
		ID:        ulid.Make().String(),
		Upstream:  upstream,
		Transport: "stdio",
		Agent:     store.Agent{ID: *agent, Name: *agent},
		Principal: identity.OSPrincipal(),
	}
	if *task != "" {
		info.Task = &store.Task{ID: *task}
	}
	limits := ingest.Limits{MaxMessageBytes: cfg.MaxMessageBytes, MaxDepth: cfg.MaxDepth, CallTimeout: time.Duration(cfg.CallTimeout)}
	hooks := ingest.Hooks{Redact: func(raw json.RawMessage) json.RawMessage { out, _ := red.JSON(raw); return out }}
	info.StartParams = rollbackWrap(argv, &hooks, client, stderr) // cmd_rollback.go: pre-state capture
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

func cmdSessions(args []string, stdout io.Writer) error {
	fs := newFlags("sessions")
	agent := fs.String("agent", "", "only this agent's sessions")
	origin := fs.String("origin", "", "only the sessions collected from this origin (its store id or host; a central store)")
	asJSON := fs.Bool("json", false, "JSON lines")
	db := fs.String("db", "", "read this store file (read-only)")
	limit := fs.Int("limit", 1000, "most sessions to list")
	if err := parse(fs, args); err != nil {
		return err
	}
	r, err := daemon.OpenReader(home(), *db)
	if err != nil {
		return usageError{oneLine(err)}
	}
	defer r.Close()
	list, err := r.Sessions(store.SessionQuery{Agent: *agent, Origin: *origin, Limit: *limit})
	if err != nil {
		return problemError{oneLine(err)}
	}
	if *asJSON {
		enc := json.NewEncoder(termsafe.JSONWriter{W: stdout})
		for _, s := range list {
			if err := enc.Encode(s); err != nil {
				return err
			}
		}
		return nil
	}
	// A central store's sessions come from many hosts: an ORIGIN column,
	// only then (a gateway's own list keeps its columns).
	fleet := false
	for _, s := range list {
		fleet = fleet || s.Origin != nil
	}
	tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
	head := "STARTED\tSESSION\tAGENT\tUPSTREAM\tPRINCIPAL\tCALLS\tWRITES\tERRORS\tALERTS\tENDED"
	if fleet {
		head += "\tORIGIN"
	}
	fmt.Fprintln(tw, head)
	for _, s := range list {
		ended := "open"
		if !s.Ended.IsZero() {
			ended = s.Ended.Local().Format("15:04:05")
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%d\t%d\t%d\t%d\t%s",
			s.Started.Local().Format("2006-01-02 15:04:05"), termsafe.Line(s.Session), termsafe.Line(termsafe.OrDash(store.AgentLabel(s.Agent))), termsafe.Line(s.Upstream),
			termsafe.Line(principalLabel(s.Principal)), s.Calls, s.Writes, s.Errors, s.Alerts, ended)
		if fleet {
			fmt.Fprintf(tw, "\t%s", termsafe.Line(s.Origin.Label()))
		}
		fmt.Fprintln(tw)
	}
	return tw.Flush()
}

func principalLabel(p *store.Principal) string {
	if p == nil || p.Subject == "" {
		return "-"
	}
	return p.Kind + ":" + p.Subject
}

func cmdExport(args []string, stdout io.Writer) error {
	fs := newFlags("export")
	format := fs.String("format", "", "ocsf, ecs, cef or jsonl")
	since := fs.String("since", "", "only events since a duration ago (3h, 1.5d, 1w) or a time (RFC 3339)")
	agent := fs.String("agent", "", "only this agent")
	tool := fs.String("tool", "", "only this tool")
	session := fs.String("session", "", "only this session")
	origin := fs.String("origin", "", "only the events collected from this origin (its store id or host; a central store)")
	db := fs.String("db", "", "read this store file (read-only)")
	if err := parse(fs, args); err != nil {
		return err
	}
	if *format == "" {
		return usagef("export: --format is required (ocsf, ecs, cef or jsonl)")
	}
	encode, err := exportEncoder(*format) // cmd_siem.go
	if err != nil {
		return usagef("export: --format: %v", err)
	}
	q := store.Query{Agent: *agent, Tool: *tool, Session: *session, Origin: *origin, Limit: 1000}
	if *since != "" {
		t, err := timerange.Since(*since, time.Now())
		if err != nil {
			return usagef("export: --since: %v", err)
		}
		q.Since = t
	}
	r, err := daemon.OpenReader(home(), *db)
	if err != nil {
		return usageError{oneLine(err)}
	}
	defer r.Close()
	w := bufio.NewWriter(stdout)
	defer w.Flush()
	for {
		page, err := r.Query(q)
		if err != nil {
			return problemError{oneLine(err)}
		}
		for i := range page.Events {
			line, err := encode(&page.Events[i])
			if err != nil {
				return problemError{fmt.Sprintf("export: event %d: %v", page.Events[i].Seq, err)}
			}
			w.Write(line)
			if err := w.WriteByte('\n'); err != nil {
				return err
			}
		}
		if page.Next == 0 {
			return nil
		}
		q.Cursor = page.Next
	}
}

func cmdVerify(args []string, stdout io.Writer) error {
	fs := newFlags("verify")
	db := fs.String("db", "", "verify this store file (read-only)")
	var keys, external multiFlag
	fs.Var(&keys, "key", "trust only checkpoints signed by this verifier key (repeatable; default: config verify_key, else this instance's key)")
	fs.Var(&external, "checkpoint", "also check this checkpoint note, kept off the box (file; repeatable)")
	printKey := fs.Bool("print-key", false, "print this instance's verifier key, to pin with --key or verify_key, and exit")
	cfgPath := fs.String("config", "", "config file (for verify_key)")
	asJSON := fs.Bool("json", false, "print the result as JSON")
	if err := parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usagef("verify: unexpected argument %q", fs.Arg(0))
	}
	if *printKey {
		vkey, err := daemon.LocalVerifierKey(home())
		if errors.Is(err, os.ErrNotExist) {
			return usagef("verify: no signing key in %s yet (the daemon creates it when it first starts)", home())
		}
		if err != nil {
			return usagef("verify: %s", oneLine(err))
		}
		fmt.Fprintln(stdout, vkey)
		return nil
	}
	opts := store.VerifyOptions{Keys: keys}
	source := "--key"
	if len(keys) == 0 {
		cfg, err := loadConfig(*cfgPath)
		if err != nil {
			return err
		}
		switch vkey, kerr := daemon.LocalVerifierKey(home()); {
		case cfg.VerifyKey != "":
			opts.Keys, source = []string{cfg.VerifyKey}, "verify_key"
		case *db == "" && kerr == nil:
			opts.Keys, source = []string{vkey}, "this instance's signing key"
		}
	}
	for _, k := range opts.Keys {
		if _, err := note.NewVerifier(k); err != nil {
			return usagef("verify: %s %q: %v (want the line `mcptrail verify --print-key` prints)", source, k, err)
		}
	}
	for _, f := range external {
		data, err := os.ReadFile(f)
		if err != nil {
			return usagef("verify: --checkpoint: %s", oneLine(err))
		}
		opts.External = append(opts.External, data)
	}
	res, err := daemon.Verify(home(), *db, opts)
	if err != nil {
		return usageError{oneLine(err)}
	}
	// A central store also holds the fleet's origins' chains.
	cfg, err := loadConfig(*cfgPath)
	if err != nil {
		return err
	}
	origins, err := daemon.VerifyOrigins(home(), *db, cfg.Collect.Keys)
	if err != nil {
		return usageError{oneLine(err)}
	}
	if *asJSON {
		out := struct {
			store.VerifyResult
			Origins []collect.OriginResult `json:"origins,omitempty"`
		}{res, origins}
		if err := json.NewEncoder(termsafe.JSONWriter{W: stdout}).Encode(out); err != nil {
			return err
		}
	}

	if !res.OK {
		if !*asJSON {
			fmt.Fprintf(stdout, "TAMPERED: first bad seq %d: %s", res.BadSeq, termsafe.Line(res.Problem))
			if res.Detail != "" {
				fmt.Fprintf(stdout, " (%s)", termsafe.Line(res.Detail))
			}
			fmt.Fprintf(stdout, "; %d events checked intact before it\n", res.Events)
		}
		return problemError{fmt.Sprintf("the record was tampered with at seq %d (%s)", res.BadSeq, res.Problem)}
	}
	if *asJSON {
		return printOrigins(stdout, origins, true)
	}
	from := ""
	if res.From > 1 {
		from = fmt.Sprintf(" (seq %d on: retention pruned those before, summarized by a signed checkpoint)", res.From)
	}
	fmt.Fprintf(stdout, "ok: %d events%s, hash chain intact, %d signed checkpoints valid\n", res.Events, from, res.Checkpoints)
	switch {
	case res.Checkpoints == 0 && res.Events > 0:
		fmt.Fprintln(stdout, "warning: no signed checkpoints, so events cut off the end would go unnoticed (the daemon signs them once it has a key)")
	case !res.Pinned:
		fmt.Fprintln(stdout, "warning: no --key or verify_key: signatures were checked against the key recorded in the file itself, which proves nothing against whoever could rewrite the file")
	default:
		fmt.Fprintf(stdout, "signatures checked against %s\n", source)
	}
	if last := max(res.From, 1) + res.Events - 1; res.Checkpoints > 0 && res.Covered < last {
		fmt.Fprintf(stdout, "the newest checkpoint covers seq %d; %d newer events are not signed yet\n", res.Covered, last-res.Covered)
	}
	return printOrigins(stdout, origins, false)
}

// writeJSON prints v as indented JSON, with the characters a terminal acts
// on escaped (termsafe.JSON: lossless).
func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(termsafe.JSONWriter{W: w})
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// printOrigins reports each collected origin's check, and fails the
// command if any chain is broken.
func printOrigins(w io.Writer, origins []collect.OriginResult, quiet bool) error {
	var bad []string
	for _, o := range origins {
		name := termsafe.Line(o.Origin)
		if o.Host != "" {
			name += " (" + termsafe.Line(o.Host) + ")"
		}
		if !o.OK {
			bad = append(bad, o.Origin)
			if !quiet {
				fmt.Fprintf(w, "origin %s: TAMPERED: first bad origin seq %d: %s (%s); %d events checked intact before it\n",
					name, o.BadSeq, termsafe.Line(o.Problem), termsafe.Line(o.Detail), o.Events)
			}
			continue
		}
		if quiet {
			continue
		}
		pin := "its key pinned in collect.keys"
		if !o.Pinned {
			pin = "its key pinned on first sight, not in collect.keys"
		}
		fmt.Fprintf(w, "origin %s: ok: %d events from origin seq %d, chain intact, %d signed checkpoints valid (%s)\n",
			name, o.Events, o.From, o.Checkpoints, pin)
	}
	if len(bad) > 0 {
		return problemError{fmt.Sprintf("the record of origin %s was tampered with", strings.Join(bad, ", "))}
	}
	return nil
}
