package main

import (
	"bufio"
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"

	"github.com/mcptrail/mcptrail/daemon"
	"github.com/mcptrail/mcptrail/internal/timerange"
	"github.com/mcptrail/mcptrail/siem"
	"github.com/mcptrail/mcptrail/store"
)

type exportFlags struct {
	format, since, db string
	query             store.Query
}

// newExportCmd is `mcptrail export --format F`: events to stdout, for
// auditors.
func newExportCmd() *cobra.Command {
	var f exportFlags
	cmd := command("export --format ocsf|ecs|cef|jsonl", "events to stdout, in a SIEM format or one record per line", noArgs, func(cmd *cobra.Command, _ []string) error { return f.run(cmd.OutOrStdout()) })
	fl := cmd.Flags()
	fl.StringVar(&f.format, "format", "", "`FORMAT`: ocsf, ecs, cef or jsonl")
	fl.StringVar(&f.since, "since", "", "only events since `DUR|TIME`: a duration ago (3h, 1.5d, 1w) or a time (RFC 3339)")
	fl.StringVar(&f.query.Agent, "agent", "", "only this `AGENT`")
	fl.StringVar(&f.query.Tool, "tool", "", "only this `TOOL`")
	fl.StringVar(&f.query.Session, "session", "", "only this `SESSION`")
	fl.StringVar(&f.query.Origin, "origin", "", "only the events collected from this `ORIGIN` (its store id or host; a central store)")
	fl.StringVar(&f.db, "db", "", "read this store `FILE` (read-only)")
	cmd.MarkFlagFilename("db")
	fixedValues(cmd, "format", string(siem.FormatOCSF), string(siem.FormatECS), string(siem.FormatCEF), string(siem.FormatJSONL))
	return cmd
}

func (f *exportFlags) run(stdout io.Writer) error {
	if f.format == "" {
		return usagef("export: --format is required (ocsf, ecs, cef or jsonl)")
	}
	encode, err := exportEncoder(f.format)
	if err != nil {
		return usagef("export: --format: %v", err)
	}
	q := f.query
	q.Limit = 1000
	if f.since != "" {
		t, err := timerange.Since(f.since, time.Now())
		if err != nil {
			return usagef("export: --since: %v", err)
		}
		q.Since = t
	}
	r, err := daemon.OpenReader(home(), f.db)
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

// exportEncoder encodes events for `mcptrail export --format F`: the
// record's JSON lines, or a SIEM format (OCSF, ECS, CEF) exactly as the
// sinks send it, with params and results (an auditor's export is the
// whole record).
func exportEncoder(format string) (func(*store.Event) ([]byte, error), error) {
	f, err := siem.ParseFormat(format)
	if err != nil {
		return nil, err
	}
	o := siem.Options{Version: buildVersion(), Bodies: true}
	if cfg, err := loadConfig(""); err == nil {
		// Upstream URLs name the servers' hosts in dst_endpoint; a config
		// that does not load only costs that.
		o.Upstreams = map[string]string{}
		for name, u := range cfg.Upstreams {
			if u.URL != "" {
				o.Upstreams[name] = u.URL
			}
		}
	}
	enc, err := siem.NewEncoder(f, o)
	if err != nil {
		return nil, err
	}
	return enc.Encode, nil
}
