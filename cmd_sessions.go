package main

import (
	"fmt"
	"io"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/mcptrail/mcptrail/daemon"
	"github.com/mcptrail/mcptrail/internal/termsafe"
	"github.com/mcptrail/mcptrail/store"
)

type sessionsFlags struct {
	db     string
	query  store.SessionQuery
	asJSON bool
}

// newSessionsCmd is `mcptrail sessions`: newest first.
func newSessionsCmd() *cobra.Command {
	var f sessionsFlags
	cmd := command("sessions", "sessions, newest first", noArgs, func(cmd *cobra.Command, _ []string) error { return f.run(cmd.OutOrStdout()) })
	cmd.Flags().StringVar(&f.query.Agent, "agent", "", "only this `AGENT`'s sessions")
	cmd.Flags().StringVar(&f.query.Origin, "origin", "", "only the sessions collected from this `ORIGIN` (its store id or host; a central store)")
	cmd.Flags().BoolVar(&f.asJSON, "json", false, "JSON lines")
	cmd.Flags().StringVar(&f.db, "db", "", "read this store `FILE` (read-only)")
	cmd.Flags().IntVar(&f.query.Limit, "limit", 1000, "list at most `N` sessions")
	cmd.MarkFlagFilename("db")
	return cmd
}

func (f *sessionsFlags) run(stdout io.Writer) error {
	r, err := daemon.OpenReader(home(), f.db)
	if err != nil {
		return usageError{oneLine(err)}
	}
	defer r.Close()
	list, err := r.Sessions(f.query)
	if err != nil {
		return problemError{oneLine(err)}
	}
	if f.asJSON {
		return writeJSONLines(stdout, list)
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
