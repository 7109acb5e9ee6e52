package main

import (
	"fmt"
	"io"
	"time"

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
