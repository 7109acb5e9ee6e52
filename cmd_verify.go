package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"
	"golang.org/x/mod/sumdb/note"

	"github.com/mcptrail/mcptrail/collect"
	"github.com/mcptrail/mcptrail/daemon"
	"github.com/mcptrail/mcptrail/internal/termsafe"
	"github.com/mcptrail/mcptrail/store"
)

type verifyFlags struct {
	db, config       string
	keys, external   []string
	printKey, asJSON bool
}

// newVerifyCmd is `mcptrail verify`: exit 0 intact, 1 tampered (the first
// bad seq on stdout), 2 usage or I/O error.
func newVerifyCmd() *cobra.Command {
	var f verifyFlags
	cmd := command("verify", "recompute the hash chain and check every signed checkpoint against a pinned key", noArgs, func(cmd *cobra.Command, _ []string) error { return f.run(cmd.OutOrStdout()) })
	fl := cmd.Flags()
	fl.StringVar(&f.db, "db", "", "verify this store `FILE` (read-only)")
	fl.StringArrayVar(&f.keys, "key", nil, "trust only checkpoints signed by this verifier `KEY` (repeatable; default: config verify_key, else this instance's key)")
	fl.StringArrayVar(&f.external, "checkpoint", nil, "also check the checkpoint note in `FILE`, kept off the box (repeatable)")
	fl.BoolVar(&f.printKey, "print-key", false, "print this instance's verifier key, to pin with --key or verify_key, and exit")
	fl.StringVar(&f.config, "config", "", "config `FILE` (for verify_key)")
	fl.BoolVar(&f.asJSON, "json", false, "print the result as JSON")
	for _, name := range []string{"db", "checkpoint", "config"} {
		cmd.MarkFlagFilename(name)
	}
	return cmd
}

func (f *verifyFlags) run(stdout io.Writer) error {
	if f.printKey {
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
	cfg, err := loadConfig(f.config)
	if err != nil {
		return err
	}
	opts, source, err := f.options(cfg.VerifyKey)
	if err != nil {
		return err
	}
	res, err := daemon.Verify(home(), f.db, opts)
	if err != nil {
		return usageError{oneLine(err)}
	}
	// A central store also holds the fleet's origins' chains.
	origins, err := daemon.VerifyOrigins(home(), f.db, cfg.Collect.Keys)
	if err != nil {
		return usageError{oneLine(err)}
	}
	if f.asJSON {
		out := struct {
			store.VerifyResult
			Origins []collect.OriginResult `json:"origins,omitempty"`
		}{res, origins}
		if err := writeJSONLine(stdout, out); err != nil {
			return err
		}
	} else {
		printVerify(stdout, res, source)
	}
	if !res.OK {
		return problemError{fmt.Sprintf("the record was tampered with at seq %d (%s)", res.BadSeq, res.Problem)}
	}
	return printOrigins(stdout, origins, f.asJSON)
}

// options are the keys to trust and the checkpoints kept off the box, with
// where the keys came from: --key, else verify_key, else (on this
// instance's own store) its signing key.
func (f *verifyFlags) options(verifyKey string) (store.VerifyOptions, string, error) {
	opts := store.VerifyOptions{Keys: f.keys}
	source := "--key"
	if len(f.keys) == 0 {
		switch vkey, kerr := daemon.LocalVerifierKey(home()); {
		case verifyKey != "":
			opts.Keys, source = []string{verifyKey}, "verify_key"
		case f.db == "" && kerr == nil:
			opts.Keys, source = []string{vkey}, "this instance's signing key"
		}
	}
	for _, k := range opts.Keys {
		if _, err := note.NewVerifier(k); err != nil {
			return opts, "", usagef("verify: %s %q: %v (want the line `mcptrail verify --print-key` prints)", source, k, err)
		}
	}
	for _, name := range f.external {
		data, err := os.ReadFile(name)
		if err != nil {
			return opts, "", usagef("verify: --checkpoint: %s", oneLine(err))
		}
		opts.External = append(opts.External, data)
	}
	return opts, source, nil
}

// printVerify reports the check of this store's chain for a person.
func printVerify(w io.Writer, res store.VerifyResult, source string) {
	if !res.OK {
		fmt.Fprintf(w, "TAMPERED: first bad seq %d: %s", res.BadSeq, termsafe.Line(res.Problem))
		if res.Detail != "" {
			fmt.Fprintf(w, " (%s)", termsafe.Line(res.Detail))
		}
		fmt.Fprintf(w, "; %d events checked intact before it\n", res.Events)
		return
	}
	from := ""
	if res.From > 1 {
		from = fmt.Sprintf(" (seq %d on: retention pruned those before, summarized by a signed checkpoint)", res.From)
	}
	fmt.Fprintf(w, "ok: %d events%s, hash chain intact, %d signed checkpoints valid\n", res.Events, from, res.Checkpoints)
	switch {
	case res.Checkpoints == 0 && res.Events > 0:
		fmt.Fprintln(w, "warning: no signed checkpoints, so events cut off the end would go unnoticed (the daemon signs them once it has a key)")
	case !res.Pinned:
		fmt.Fprintln(w, "warning: no --key or verify_key: signatures were checked against the key recorded in the file itself, which proves nothing against whoever could rewrite the file")
	default:
		fmt.Fprintf(w, "signatures checked against %s\n", source)
	}
	if last := max(res.From, 1) + res.Events - 1; res.Checkpoints > 0 && res.Covered < last {
		fmt.Fprintf(w, "the newest checkpoint covers seq %d; %d newer events are not signed yet\n", res.Covered, last-res.Covered)
	}
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
