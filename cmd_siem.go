package main

import (
	"fmt"
	"io"
	"time"

	"github.com/mcptrail/mcptrail/collect"
	"github.com/mcptrail/mcptrail/internal/termsafe"
	"github.com/mcptrail/mcptrail/siem"
	"github.com/mcptrail/mcptrail/store"
)

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

// printSinks prints the daemon's sinks for `mcptrail status`.
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
