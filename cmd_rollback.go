package main

import (
	"bufio"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/charmbracelet/x/term"

	"github.com/mcptrail/mcptrail/daemon"
	"github.com/mcptrail/mcptrail/ingest"
	"github.com/mcptrail/mcptrail/ingest/identity"
	"github.com/mcptrail/mcptrail/internal/termsafe"
	"github.com/mcptrail/mcptrail/rollback"
	"github.com/mcptrail/mcptrail/ui"
)

const rollbackUsage = `usage:
  mcptrail rollback plan  (--session S | --calls SEQ[,SEQ...] | --from SEQ) [--json]
  mcptrail rollback apply PLAN_ID [--yes] [--json]
  mcptrail rollback apply --plan-file FILE [--yes] [--json]
  mcptrail rollback export-plan PLAN_ID  mcptrail rollback show  PLAN_ID [--json]
  mcptrail rollback history SEQ [--json]`

// cmdRollback is `mcptrail rollback plan|apply|show`. Plans are built and
// applied by the daemon (started in the background when none runs), which
// owns the store and reaches the upstreams.
func cmdRollback(args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return usagef("rollback: no subcommand (%s)", strings.ReplaceAll(rollbackUsage, "\n", "; "))
	}
	switch args[0] {
	case "plan":
		return cmdRollbackPlan(args[1:], stdout, stderr)
	case "apply":
		return cmdRollbackApply(args[1:], stdin, stdout, stderr)
	case "show":
		return cmdRollbackShow(args[1:], stdout, stderr)
	case "export-plan":
		return cmdRollbackExport(args[1:], stdout, stderr)
	case "history":
		return cmdRollbackHistory(args[1:], stdout, stderr)
	case "-h", "--help", "help":
		fmt.Fprintln(stdout, rollbackUsage)
		return nil
	}
	return usagef("rollback: unknown subcommand %q (plan, apply, show, export-plan or history)", args[0])
}

// cmdRollbackHistory prints the history of the resource a call changed:
// every call that touched it, with the version before and after each.
func cmdRollbackHistory(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("rollback history")
	asJSON := fs.Bool("json", false, "print the history as one JSON object")
	flags, pos := interspersed(args, "json")
	if err := parse(fs, flags); err != nil {
		return err
	}
	seq, ok := oneSeq(pos)
	if !ok {
		return usagef("rollback history: give the seq of one call")
	}
	c, err := rollbackDaemon(stderr)
	if err != nil {
		return err
	}
	defer c.Close()
	h, err := c.RollbackHistory(seq)
	if err != nil {
		return usageError{"rollback history: " + oneLine(err)}
	}
	if *asJSON {
		return json.NewEncoder(termsafe.JSONWriter{W: stdout}).Encode(h)
	}
	upstreams := h.Upstreams
	if len(upstreams) == 0 {
		upstreams = []string{h.Upstream}
	}
	steps := len(h.Versions) - h.Changes()
	fmt.Fprintf(stdout, "%s on %s: %d changes, %d rollback steps, oldest first\n", termsafe.Line(h.Key), termsafe.Line(strings.Join(upstreams, ", ")), h.Changes(), steps)
	for i, v := range h.Versions {
		at := v.Time.Local().Format("2006-01-02 15:04:05")
		if v.IsRollback() {
			fmt.Fprintf(stdout, "\nversion %d: rollback step %d reverts call %d (%s), session %s, %s, %s\n", i+1, v.Call, v.Reverts, termsafe.Line(v.Tool), termsafe.Line(v.Session), at, v.Outcome)
		} else {
			fmt.Fprintf(stdout, "\nversion %d: call %d %s by %s on %s, session %s, %s, %s\n", i+1, v.Call, termsafe.Line(v.Tool), termsafe.Line(v.Agent), termsafe.Line(v.Upstream), termsafe.Line(v.Session), at, v.Outcome)
			if v.RevertedBy != 0 {
				fmt.Fprintf(stdout, "  reverted by rollback step %d\n", v.RevertedBy)
			}
		}
		if v.Note != "" {
			fmt.Fprintf(stdout, "  %s\n", termsafe.Line(v.Note))
		}
		for _, l := range strings.Split(strings.TrimSuffix(v.Diff, "\n"), "\n") {
			if l != "" {
				fmt.Fprintf(stdout, "  %s\n", termsafe.Line(l))
			}
		}
	}
	if n := len(h.Versions); n > 1 {
		fmt.Fprintf(stdout, "\nTo go back to version K: mcptrail rollback plan --calls <the calls (not rollback steps, not reverted) of versions K+1..%d>\n", n)
	}
	return nil
}

// oneSeq reads the one positional argument of a command that takes a
// record's seq (rollback history SEQ, approve SEQ); seqs start at 1.
func oneSeq(pos []string) (uint64, bool) {
	if len(pos) != 1 {
		return 0, false
	}
	seq, err := strconv.ParseUint(pos[0], 10, 64)
	return seq, err == nil && seq > 0
}

// interspersed lets flags follow positional arguments (apply PLAN --yes).
func interspersed(args []string, boolFlags ...string) (flags, pos []string) {
	for i := 0; i < len(args); i++ {
		a := args[i]
		if strings.HasPrefix(a, "-") && a != "-" {
			flags = append(flags, a)
			name := strings.TrimLeft(a, "-")
			isBool := false
			for _, b := range boolFlags {
				if name == b || strings.HasPrefix(name, b+"=") {
					isBool = true
				}
			}
			if !isBool && !strings.Contains(a, "=") && i+1 < len(args) {
				i++
				flags = append(flags, args[i])
			}
			continue
		}
		pos = append(pos, a)
	}
	return flags, pos
}

func cmdRollbackPlan(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("rollback plan")
	session := fs.String("session", "", "revert every tool call of this session")
	calls := fs.String("calls", "", "revert these calls (seq of the request or its outcome, comma-separated)")
	from := fs.Uint64("from", 0, "revert this call and every later call of its session")
	asJSON := fs.Bool("json", false, "print the plan as one JSON object")
	if err := parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usagef("rollback plan: unexpected argument %q", fs.Arg(0))
	}
	var sel rollback.Selection
	n := 0
	if *session != "" {
		sel.Session = *session
		n++
	}
	if *calls != "" {
		for _, part := range strings.Split(*calls, ",") {
			seq, err := strconv.ParseUint(strings.TrimSpace(part), 10, 64)
			if err != nil || seq == 0 {
				return usagef("rollback plan: --calls: %q is not a seq", part)
			}
			sel.Calls = append(sel.Calls, seq)
		}
		n++
	}
	if *from != 0 {
		sel.From = *from
		n++
	}
	if n != 1 {
		return usagef("rollback plan: give exactly one of --session S, --calls SEQ[,SEQ...] or --from SEQ")
	}
	c, err := rollbackDaemon(stderr)
	if err != nil {
		return err
	}
	defer c.Close()
	plan, err := c.RollbackPlan(sel, identity.OSPrincipal().Subject)
	if err != nil {
		return usageError{"rollback plan: " + oneLine(err)}
	}
	if *asJSON {
		return json.NewEncoder(termsafe.JSONWriter{W: stdout}).Encode(plan)
	}
	printPlan(stdout, plan)
	switch {
	case plan.Origin != "":
		printElsewhere(stdout, plan)
	case plan.Counts()[rollback.StatusReady] > 0:
		fmt.Fprintf(stdout, "\nApply it with: mcptrail rollback apply %s --yes\n", plan.ID)
	}
	return nil
}

// printElsewhere tells how a central plan is applied: on its origin.
func printElsewhere(w io.Writer, p *rollback.Plan) {
	here, there := p.ElsewhereCommands()
	fmt.Fprintf(w, "\nThis plan cannot be applied here: the calls ran on %s (store %s). Apply it there:\n", termsafe.Line(p.Host()), termsafe.Line(p.Origin))
	fmt.Fprintf(w, "  here:  %s\n", termsafe.Line(here))
	fmt.Fprintf(w, "  there: %s\n", termsafe.Line(there))
}

// cmdRollbackExport writes a central plan as the file the origin applies
// with rollback apply --plan-file.
func cmdRollbackExport(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("rollback export-plan")
	c, plan, err := openPlan("rollback export-plan", fs, args, nil, "give one PLAN_ID", stderr)
	if err != nil {
		return err
	}
	defer c.Close()
	if plan.Origin == "" {
		return usagef("rollback export-plan: plan %s reverts calls of this store: apply it here with mcptrail rollback apply %s", plan.ID, plan.ID)
	}
	return json.NewEncoder(termsafe.JSONWriter{W: stdout}).Encode(plan)
}

func cmdRollbackShow(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("rollback show")
	asJSON := fs.Bool("json", false, "print the plan as one JSON object")
	c, plan, err := openPlan("rollback show", fs, args, []string{"json"}, "give one PLAN_ID", stderr)
	if err != nil {
		return err
	}
	defer c.Close()
	if *asJSON {
		return json.NewEncoder(termsafe.JSONWriter{W: stdout}).Encode(plan)
	}
	printPlan(stdout, plan)
	return nil
}

func cmdRollbackApply(args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	fs := newFlags("rollback apply")
	yes := fs.Bool("yes", false, "apply without asking")
	asJSON := fs.Bool("json", false, "print the plan after the apply as one JSON object")
	planFile := fs.String("plan-file", "", "apply here a plan made on a central mcptrail (rollback export-plan), re-checked against this store's record")
	var c *daemon.Client
	var plan *rollback.Plan
	var err error
	if hasFlag(args, "plan-file") {
		c, plan, err = planFromFile(fs, args, planFile, identity.OSPrincipal().Subject, stderr)
	} else {
		c, plan, err = openPlan("rollback apply", fs, args, []string{"yes", "json"}, "give one PLAN_ID (from `mcptrail rollback plan`) or --plan-file FILE", stderr)
	}
	if err != nil {
		return err
	}
	defer c.Close()
	if !*yes {
		f, ok := stdin.(*os.File)
		if !ok || !term.IsTerminal(f.Fd()) {
			return usagef("rollback apply: pass --yes to apply without a prompt")
		}
		printPlan(stdout, plan)
		fmt.Fprintf(stdout, "\nApply plan %s as %s? Every inverse call is recorded under your name. Type yes to go on: ", plan.ID, identity.OSPrincipal().Subject)
		line, _ := bufio.NewReader(stdin).ReadString('\n')
		if strings.TrimSpace(line) != "yes" {
			return problemError{"not applied"}
		}
	}
	who := rollback.Approver{Name: identity.OSPrincipal().Subject, Via: "cli"}
	plan, err = c.RollbackApply(plan.ID, who)
	if err != nil {
		return problemError{"rollback apply: " + oneLine(err)}
	}
	if *asJSON {
		if err := json.NewEncoder(termsafe.JSONWriter{W: stdout}).Encode(plan); err != nil {
			return err
		}
	} else {
		printApplied(stdout, plan)
	}
	if plan.State != rollback.PlanApplied {
		return problemError{fmt.Sprintf("rollback plan %s %s: %s", plan.ID, plan.State, plan.Error)}
	}
	return nil
}

// planFromFile reads the plan file of rollback apply --plan-file, checks
// it against this store's record (refusing the whole plan at the first
// step that does not match), and plans its calls afresh here, re-reading
// their current state: what is then confirmed and applied is this
// store's plan, never the file's steps.
func planFromFile(fs *flag.FlagSet, args []string, file *string, by string, stderr io.Writer) (*daemon.Client, *rollback.Plan, error) {
	flags, pos := interspersed(args, "yes", "json")
	if err := parse(fs, flags); err != nil {
		return nil, nil, err
	}
	if len(pos) != 0 {
		return nil, nil, usagef("rollback apply: give a PLAN_ID or --plan-file FILE, not both")
	}
	name := *file
	if name == "" {
		return nil, nil, usagef("rollback apply: --plan-file needs a file (from mcptrail rollback export-plan)")
	}
	f, err := os.Open(name)
	if err != nil {
		return nil, nil, usageError{"rollback apply: " + oneLine(err)}
	}
	central, err := rollback.ReadPlanFile(f)
	f.Close()
	if err != nil {
		return nil, nil, usageError{"rollback apply: " + termsafe.Line(name) + ": " + oneLine(err)}
	}
	c, err := rollbackDaemon(stderr)
	if err != nil {
		return nil, nil, err
	}
	st, err := c.Status()
	if err != nil {
		c.Close()
		return nil, nil, err
	}
	sel, err := central.OriginSelection(st.StoreID, c)
	if err != nil {
		c.Close()
		return nil, nil, problemError{"rollback apply: plan file " + termsafe.Line(name) + " refused, nothing applied: " + termsafe.Line(oneLine(err))}
	}
	plan, err := c.RollbackPlan(sel, by)
	if err != nil {
		c.Close()
		return nil, nil, usageError{"rollback apply: planning the file's calls here: " + oneLine(err)}
	}
	fmt.Fprintf(stderr, "mcptrail: plan file %s (central plan %s): its %d calls match this store's record; planned here as %s\n",
		termsafe.Line(name), termsafe.Line(central.ID), len(sel.Calls), plan.ID)
	return c, plan, nil
}

// hasFlag says whether args hold -name or --name (with or without =).
func hasFlag(args []string, name string) bool {
	return slices.ContainsFunc(args, func(a string) bool {
		a = strings.TrimPrefix(strings.TrimPrefix(a, "-"), "-")
		return a == name || strings.HasPrefix(a, name+"=")
	})
}

// printPlan writes a plan for a person: its steps newest first, each with
// its status and the diff current → restored.
func printPlan(w io.Writer, p *rollback.Plan) {
	counts := p.Counts()
	var parts []string
	for _, s := range rollback.Statuses {
		if counts[s] > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", counts[s], s))
		}
	}
	fmt.Fprintf(w, "plan %s: %s, %d steps (%s), state %s\n", p.ID, termsafe.Line(p.Selection.String()), len(p.Steps), strings.Join(parts, ", "), p.State)
	if p.Checked {
		fmt.Fprintln(w, "the current state of each resource was re-read")
	}
	if p.Note != "" {
		fmt.Fprintln(w, "note:", termsafe.Line(p.Note))
	}
	for _, a := range p.Approvals {
		fmt.Fprintf(w, "approved by %s (%s) at %s, event %d\n", termsafe.Line(a.Approver.ID()), a.Approver.Via, a.Time.Local().Format("2006-01-02 15:04:05"), a.Seq)
	}
	if p.Error != "" {
		fmt.Fprintln(w, "stopped:", termsafe.Line(p.Error))
	}
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "STEP\tREVERTS\tTOOL\tSTATUS\tSTATE\tARGUMENTS")
	for _, s := range p.Steps {
		fmt.Fprintf(tw, "%d\t%d\t%s\t%s\t%s\t%s\n", s.N, s.Reverts, termsafe.Line(s.Tool), s.Result(), termsafe.OrDash(s.State), cut(termsafe.Line(s.Args), 60))
	}
	tw.Flush()
	for _, s := range p.Steps {
		if s.Reason == "" && s.Diff == "" && len(s.Calls) == 0 {
			continue
		}
		fmt.Fprintf(w, "\nstep %d (call %d, %s, session %s): %s\n", s.N, s.Reverts, termsafe.Line(s.Tool), termsafe.Line(s.Session), s.Result())
		if s.Reason != "" {
			fmt.Fprintf(w, "  %s\n", termsafe.Line(s.Reason))
		}
		for _, c := range s.Calls {
			fmt.Fprintf(w, "  will call %s %s\n", termsafe.Line(c.Tool), cut(string(termsafe.JSON(c.Args)), 120))
		}
		if s.Error != "" {
			fmt.Fprintf(w, "  error: %s\n", termsafe.Line(s.Error))
		}
		if s.Diff != "" {
			lines := strings.Split(strings.TrimSuffix(s.Diff, "\n"), "\n")
			const most = 30
			for i, l := range lines {
				if i == most {
					fmt.Fprintf(w, "  … %d more lines (rollback show --json has them all)\n", len(lines)-most)
					break
				}
				fmt.Fprintf(w, "  %s\n", termsafe.Line(l))
			}
		}
	}
}

func printApplied(w io.Writer, p *rollback.Plan) {
	for _, s := range p.Steps {
		what := s.State
		switch {
		case s.State == rollback.StateDone:
			what = fmt.Sprintf("done (rollback_step events %v)", s.StepSeq)
		case s.Status != rollback.StatusReady:
			what = s.Status + ": " + termsafe.Line(s.Reason)
		case s.State == rollback.StateFailed:
			what = "FAILED: " + termsafe.Line(s.Error)
		case s.State == "":
			what = "not run"
		}
		fmt.Fprintf(w, "step %d (call %d, %s): %s\n", s.N, s.Reverts, termsafe.Line(s.Tool), what)
	}
	switch p.State {
	case rollback.PlanApplied:
		fmt.Fprintf(w, "plan %s applied\n", p.ID)
	default:
		fmt.Fprintf(w, "plan %s %s: %s\n", p.ID, p.State, termsafe.Line(p.Error))
	}
}

func cut(s string, n int) string {
	if len([]rune(s)) <= n {
		return s
	}
	return string([]rune(s)[:n-1]) + "…"
}

// consoleRollback is the rollback service of a console on r: the daemon's
// (through its socket) when r is the daemon, none on a store file.
func consoleRollback(r daemon.Reader) ui.Rollback {
	if c, ok := r.(*daemon.Client); ok {
		return c
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

// openPlan parses a rollback subcommand's flags (boolFlags may come after
// the PLAN_ID) and its one PLAN_ID, and fetches that plan through the
// daemon; the caller closes the client. want says what to give when the
// PLAN_ID is missing.
func openPlan(name string, fs *flag.FlagSet, args, boolFlags []string, want string, stderr io.Writer) (*daemon.Client, *rollback.Plan, error) {
	flags, pos := interspersed(args, boolFlags...)
	if err := parse(fs, flags); err != nil {
		return nil, nil, err
	}
	if len(pos) != 1 {
		return nil, nil, usagef("%s: %s", name, want)
	}
	c, err := rollbackDaemon(stderr)
	if err != nil {
		return nil, nil, err
	}
	plan, err := c.RollbackGet(pos[0])
	if err != nil {
		c.Close()
		return nil, nil, usageError{name + ": " + oneLine(err)}
	}
	return c, plan, nil
}

// rollbackDaemon reaches the daemon that plans and applies reversals
// (starting one if none runs: plans need the store and the gateway).
func rollbackDaemon(stderr io.Writer) (*daemon.Client, error) {
	c, err := daemon.Ensure(home(), stderr)
	if err != nil {
		return nil, problemError{"cannot reach the daemon: " + oneLine(err)}
	}
	return c, nil
}
