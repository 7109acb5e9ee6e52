package main

import (
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"

	"github.com/mcptrail/mcptrail/collect"
	"github.com/mcptrail/mcptrail/daemon"
	"github.com/mcptrail/mcptrail/internal/termsafe"
)

// newStatusCmd is `mcptrail status [--json]`: exit 1 when no daemon runs.
func newStatusCmd() *cobra.Command {
	var asJSON bool
	cmd := command("status", "daemon state, addresses, store size, sinks, readiness; exit 1 when no daemon runs", noArgs, func(cmd *cobra.Command, _ []string) error { return status(cmd.OutOrStdout(), asJSON) })
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

func status(stdout io.Writer, asJSON bool) error {
	c, err := daemon.Dial(home())
	if err != nil {
		if asJSON {
			writeJSON(stdout, map[string]any{"running": false, "home": home()})
		} else {
			fmt.Fprintf(stdout, "daemon: not running (data directory %s)\n", home())
		}
		return problemError{"no daemon is running"}
	}
	defer c.Close()
	s, err := c.Status()
	if err != nil {
		return problemError{oneLine(err)}
	}
	if asJSON {
		return writeJSON(stdout, struct {
			Running bool `json:"running"`
			*daemon.Status
		}{true, s})
	}
	fmt.Fprintf(stdout, "daemon:     running, pid %d, version %s, since %s\n", s.PID, s.Version, s.Started.Format("2006-01-02 15:04:05 MST"))
	fmt.Fprintf(stdout, "gateway:    %s\n", termsafe.OrDash(s.Listen))
	for _, u := range s.Upstreams {
		fmt.Fprintf(stdout, "  upstream: %s/mcp/%s\n", s.Listen, u)
	}
	fmt.Fprintf(stdout, "store:      %s, %d events, %s, durability %s\n", s.DB, s.Events, humanBytes(s.FileBytes), s.Durability)
	fmt.Fprintf(stdout, "sessions:   %d active over HTTP\n", s.Sessions)
	fmt.Fprintf(stdout, "socket:     %s\n", s.Socket)
	printSinks(stdout, s.Sinks)
	printCollector(stdout, s.Collector)
	if s.Ready != nil {
		for _, l := range s.Ready.Lines() {
			fmt.Fprintln(stdout, l)
		}
	}
	return nil
}

// printSinks prints the daemon's sinks.
func printSinks(w io.Writer, sinks []map[string]any) {
	if len(sinks) == 0 {
		fmt.Fprintln(w, "sinks:      none (serve --sink URL, or sinks: in the config)")
		return
	}
	fmt.Fprintf(w, "sinks:      %d\n", len(sinks))
	for _, s := range sinks {
		str := func(k string) string { v, _ := s[k].(string); return v }
		num := func(k string) uint64 { v, _ := s[k].(float64); return uint64(v) }
		fmt.Fprintf(w, "  sink:     %s (%s) %s, cursor %d, lag %d, delivered %d", str("url"), str("format"), str("state"), num("cursor"), num("lag"), num("delivered"))
		if n := num("failures"); n > 0 {
			fmt.Fprintf(w, ", %d failures", n)
		}
		fmt.Fprintln(w)
		if e := str("last_error"); e != "" {
			at := ""
			if t, err := time.Parse(time.RFC3339Nano, str("last_error_at")); err == nil {
				at = " at " + t.Local().Format("15:04:05")
			}
			// A sink's error may quote what the SIEM answered.
			fmt.Fprintf(w, "            last error%s: %s\n", at, termsafe.Line(e))
		}
	}
}

// printCollector is status's line for the fleet collector.
func printCollector(w io.Writer, c *collect.Status) {
	if c == nil {
		return
	}
	fmt.Fprintf(w, "collector:  %s (group %s), %s: %d events and %d checkpoints merged from %d origins, %d redeliveries dropped, %d records refused\n",
		termsafe.Line(c.URL), termsafe.Line(c.Group), c.State, c.Stats.Events, c.Stats.Checkpoints, c.Stats.Origins, c.Stats.Duplicates, c.Stats.Alerts)
	for _, o := range c.Origins {
		fmt.Fprintf(w, "  origin:   %s (%s) seq %d, checkpoint %d\n", termsafe.Line(o.Store), termsafe.Line(o.Host), o.Seq, o.Checkpoint)
	}
	if c.LastError != "" {
		fmt.Fprintf(w, "  last error: %s\n", termsafe.Line(c.LastError))
	}
}

func humanBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}
