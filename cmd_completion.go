package main

import (
	"fmt"
	"io"
	"sort"
	"strings"
)

// Shell completions: `mcptrail completion bash|zsh|fish` prints a script
// generated from the table below (kept in step with the commands' flag sets
// by TestCompletionFlagsExist).

// complCmd is one command (or "rollback plan"-style subcommand) for
// completion.
type complCmd struct {
	name  string
	help  string
	flags []complFlag
	subs  []string // subcommands, completed as the next word
	args  []string // fixed words for the first argument
	files bool     // complete file names as arguments
}

type complFlag struct {
	name   string
	help   string
	values []string // fixed values; nil with file set: file names; nil otherwise: free text
	file   bool
	isBool bool
}

var (
	complFormats    = []string{"ocsf", "ecs", "cef", "jsonl"}
	complThemes     = []string{"dark", "light", "high-contrast", "mono"}
	complDurability = []string{"strict", "batch"}
)

var complCmds = []complCmd{
	{name: "serve", help: "run the daemon: HTTP gateway, store, console, SIEM", flags: []complFlag{
		{name: "config", help: "config file", file: true},
		{name: "listen", help: "HTTP gateway address"},
		{name: "ssh", help: "SSH console address"},
		{name: "authorized-keys", help: "authorized_keys for the SSH console", file: true},
		{name: "upstream", help: "NAME=URL or 'NAME=stdio:CMD ARG...'"},
		{name: "sink", help: "SIEM sink URL"},
		{name: "durability", help: "strict or batch", values: complDurability},
		{name: "metrics", help: "Prometheus metrics address"},
		{name: "collect", help: "collect a fleet's records: kafka://HOST:PORT/TOPIC?group=NAME"},
	}},
	{name: "wrap", help: "stdio gateway for one server: wrap -- CMD [ARG...]", flags: []complFlag{
		{name: "name", help: "upstream name"},
		{name: "agent", help: "agent name"},
		{name: "task", help: "task id"},
		{name: "config", help: "config file", file: true},
	}},
	{name: "status", help: "daemon state, store size, sinks, readiness", flags: []complFlag{
		{name: "json", help: "print JSON", isBool: true},
	}},
	{name: "stop", help: "stop the daemon cleanly"},
	{name: "ui", help: "the console", flags: []complFlag{
		{name: "db", help: "store file, read-only", file: true},
		{name: "theme", help: "colour theme", values: complThemes},
	}},
	{name: "demo", help: "demo upstream and scripted agent through the gateway", flags: []complFlag{
		{name: "no-ui", help: "skip the console; leave the daemon running", isBool: true},
		{name: "keep", help: "leave the daemon running after the console", isBool: true},
	}},
	{name: "verify", help: "check the hash chain and checkpoints", flags: []complFlag{
		{name: "db", help: "store file", file: true},
		{name: "key", help: "verifier key to trust"},
		{name: "checkpoint", help: "checkpoint file kept off the box", file: true},
		{name: "print-key", help: "print this instance's verifier key", isBool: true},
		{name: "config", help: "config file", file: true},
		{name: "json", help: "print JSON", isBool: true},
	}},
	{name: "export", help: "events to stdout", flags: []complFlag{
		{name: "format", help: "output format", values: complFormats},
		{name: "since", help: "duration or time"},
		{name: "agent", help: "agent"},
		{name: "tool", help: "tool"},
		{name: "session", help: "session"},
		{name: "origin", help: "collected origin: store id or host"},
		{name: "db", help: "store file, read-only", file: true},
	}},
	{name: "sessions", help: "sessions, newest first", flags: []complFlag{
		{name: "agent", help: "agent"},
		{name: "origin", help: "collected origin: store id or host"},
		{name: "json", help: "print JSON lines", isBool: true},
		{name: "db", help: "store file, read-only", file: true},
		{name: "limit", help: "most sessions to list"},
	}},
	{name: "rollback", help: "plan and apply reversals", subs: []string{"plan", "apply", "show", "export-plan", "history"}},
	{name: "rollback plan", help: "plan the reversal of calls", flags: []complFlag{
		{name: "session", help: "session to reverse"},
		{name: "calls", help: "SEQ[,SEQ...]"},
		{name: "from", help: "SEQ: this call and every later call of its session"},
		{name: "json", help: "print JSON", isBool: true},
	}},
	{name: "rollback apply", help: "execute a plan through the gateway", flags: []complFlag{
		{name: "yes", help: "do not ask", isBool: true},
		{name: "json", help: "print JSON", isBool: true},
		{name: "plan-file", help: "a plan exported on a central mcptrail, re-checked here", file: true},
	}},
	{name: "rollback export-plan", help: "print a plan as a file to apply on its origin"},
	{name: "rollback show", help: "show a plan", flags: []complFlag{
		{name: "json", help: "print JSON", isBool: true},
	}},
	{name: "rollback history", help: "history of what a call changed", flags: []complFlag{
		{name: "json", help: "print JSON", isBool: true},
	}},
	{name: "approvals", help: "calls held for approval", flags: []complFlag{
		{name: "json", help: "print JSON lines", isBool: true},
	}},
	{name: "approve", help: "approve a held call (SEQ)"},
	{name: "deny", help: "deny a held call (SEQ)", flags: []complFlag{
		{name: "reason", help: "why: recorded, and read by the agent"},
	}},
	{name: "config", help: "config file tools", subs: []string{"check"}},
	{name: "config check", help: "validate a config file", files: true},
	{name: "completion", help: "shell completion script", args: []string{"bash", "zsh", "fish"}},
}

func cmdCompletion(args []string, stdout io.Writer) error {
	if len(args) != 1 {
		return usagef("completion: want one of bash, zsh, fish (e.g. mcptrail completion bash > /etc/bash_completion.d/mcptrail)")
	}
	switch args[0] {
	case "bash":
		_, err := io.WriteString(stdout, bashCompletion())
		return err
	case "zsh":
		_, err := io.WriteString(stdout, zshCompletion())
		return err
	case "fish":
		_, err := io.WriteString(stdout, fishCompletion())
		return err
	}
	return usagef("completion: unknown shell %q (bash, zsh or fish)", args[0])
}

// topLevel are the commands completed as the first word.
func topLevel() []complCmd {
	var out []complCmd
	for _, c := range complCmds {
		if !strings.Contains(c.name, " ") {
			out = append(out, c)
		}
	}
	return out
}

func names(cs []complCmd) []string {
	var out []string
	for _, c := range cs {
		out = append(out, c.name)
	}
	return out
}

func flagWords(c complCmd) []string {
	var out []string
	for _, f := range c.flags {
		out = append(out, "--"+f.name)
	}
	sort.Strings(out)
	return out
}

func bashCompletion() string {
	var b strings.Builder
	b.WriteString(`# bash completion for mcptrail (mcptrail completion bash)
_mcptrail() {
    local cur prev cmd
    cur="${COMP_WORDS[COMP_CWORD]}"
    prev="${COMP_WORDS[COMP_CWORD-1]}"
    if [[ $COMP_CWORD -eq 1 ]]; then
        COMPREPLY=( $(compgen -W "` + strings.Join(append(names(topLevel()), "--version", "--help"), " ") + `" -- "$cur") )
        return
    fi
    cmd="${COMP_WORDS[1]}"
    case "$cmd" in
        rollback|config)
            if [[ $COMP_CWORD -eq 2 ]]; then
                case "$cmd" in
`)
	for _, c := range complCmds {
		if len(c.subs) > 0 {
			fmt.Fprintf(&b, "                    %s) COMPREPLY=( $(compgen -W %q -- \"$cur\") ) ;;\n", c.name, strings.Join(c.subs, " "))
		}
	}
	b.WriteString(`                esac
                return
            fi
            cmd="$cmd ${COMP_WORDS[2]}" ;;
    esac
    case "$cmd" in
`)
	for _, c := range complCmds {
		if len(c.subs) > 0 {
			continue
		}
		fmt.Fprintf(&b, "        %q)\n            case \"$prev\" in\n", c.name)
		for _, f := range c.flags {
			switch {
			case f.values != nil:
				fmt.Fprintf(&b, "                --%s|-%s) COMPREPLY=( $(compgen -W %q -- \"$cur\") ); return ;;\n", f.name, f.name, strings.Join(f.values, " "))
			case f.file:
				fmt.Fprintf(&b, "                --%s|-%s) COMPREPLY=( $(compgen -f -- \"$cur\") ); return ;;\n", f.name, f.name)
			case !f.isBool:
				fmt.Fprintf(&b, "                --%s|-%s) return ;;\n", f.name, f.name)
			}
		}
		b.WriteString("            esac\n")
		switch {
		case len(c.flags) > 0:
			fmt.Fprintf(&b, "            if [[ $cur == -* ]]; then COMPREPLY=( $(compgen -W %q -- \"$cur\") ); return; fi\n", strings.Join(flagWords(c), " "))
		}
		switch {
		case len(c.args) > 0:
			fmt.Fprintf(&b, "            COMPREPLY=( $(compgen -W %q -- \"$cur\") ) ;;\n", strings.Join(c.args, " "))
		case c.files:
			b.WriteString("            COMPREPLY=( $(compgen -f -- \"$cur\") ) ;;\n")
		case c.name == "wrap":
			b.WriteString("            COMPREPLY=( $(compgen -c -- \"$cur\") ) ;;\n")
		default:
			b.WriteString("            ;;\n")
		}
	}
	b.WriteString(`    esac
}
complete -F _mcptrail mcptrail
`)
	return b.String()
}

func zshQuote(s string) string {
	return strings.NewReplacer(`'`, `'\''`, `[`, `\[`, `]`, `\]`, `:`, `\:`).Replace(s)
}

func zshCompletion() string {
	var b strings.Builder
	b.WriteString("#compdef mcptrail\n# zsh completion for mcptrail (mcptrail completion zsh > \"${fpath[1]}/_mcptrail\")\n\n")
	for _, c := range complCmds {
		fn := "_mcptrail_" + strings.ReplaceAll(c.name, " ", "_")
		fmt.Fprintf(&b, "%s() {\n", fn)
		if len(c.subs) > 0 {
			fmt.Fprintf(&b, "  if (( CURRENT == 2 )); then\n    _values 'subcommand' %s\n  else\n", quoteAll(c.subs))
			fmt.Fprintf(&b, "    local sub=\"${words[2]}\"\n    shift words; (( CURRENT-- ))\n    (( $+functions[_mcptrail_%s_$sub] )) && _mcptrail_%s_$sub\n  fi\n}\n\n",
				strings.ReplaceAll(c.name, " ", "_"), strings.ReplaceAll(c.name, " ", "_"))
			continue
		}
		b.WriteString("  _arguments -s \\\n")
		for _, f := range c.flags {
			spec := "'--" + f.name + "[" + zshQuote(f.help) + "]"
			switch {
			case f.isBool:
			case f.values != nil:
				spec += ":" + f.name + ":(" + strings.Join(f.values, " ") + ")"
			case f.file:
				spec += ":" + f.name + ":_files"
			default:
				spec += ":" + f.name + ": "
			}
			b.WriteString("    " + spec + "' \\\n")
		}
		switch {
		case len(c.args) > 0:
			fmt.Fprintf(&b, "    '1:argument:(%s)'\n", strings.Join(c.args, " "))
		case c.files:
			b.WriteString("    '1:file:_files'\n")
		case c.name == "wrap":
			b.WriteString("    '*::command:_normal'\n")
		default:
			b.WriteString("    '*: :'\n")
		}
		b.WriteString("}\n\n")
	}
	b.WriteString("_mcptrail() {\n  if (( CURRENT == 2 )); then\n    local -a cmds\n    cmds=(\n")
	for _, c := range topLevel() {
		fmt.Fprintf(&b, "      '%s:%s'\n", c.name, zshQuote(c.help))
	}
	b.WriteString("    )\n    _describe 'command' cmds\n    return\n  fi\n")
	b.WriteString("  local cmd=\"${words[2]}\"\n  shift words; (( CURRENT-- ))\n  (( $+functions[_mcptrail_$cmd] )) && _mcptrail_$cmd\n}\n\n")
	b.WriteString("if [[ $zsh_eval_context[-1] == loadautofunc ]]; then\n  _mcptrail \"$@\"\nelse\n  compdef _mcptrail mcptrail\nfi\n")
	return b.String()
}

func quoteAll(ws []string) string {
	var out []string
	for _, w := range ws {
		out = append(out, "'"+w+"'")
	}
	return strings.Join(out, " ")
}

func fishQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `\'`) + "'" }

func fishCompletion() string {
	var b strings.Builder
	b.WriteString("# fish completion for mcptrail (mcptrail completion fish > ~/.config/fish/completions/mcptrail.fish)\n")
	b.WriteString("complete -c mcptrail -f\n")
	top := names(topLevel())
	fmt.Fprintf(&b, "complete -c mcptrail -n 'not __fish_seen_subcommand_from %s' -a %s\n", strings.Join(top, " "), fishQuote(strings.Join(top, " ")))
	for _, c := range topLevel() {
		fmt.Fprintf(&b, "complete -c mcptrail -n '__fish_use_subcommand' -a %s -d %s\n", c.name, fishQuote(c.help))
	}
	b.WriteString("complete -c mcptrail -n '__fish_use_subcommand' -l version -d 'print version and commit'\n")
	for _, c := range complCmds {
		parts := strings.Fields(c.name)
		cond := "__fish_seen_subcommand_from " + parts[0]
		if len(parts) == 2 {
			cond += "; and __fish_seen_subcommand_from " + parts[1]
		}
		if len(c.subs) > 0 {
			fmt.Fprintf(&b, "complete -c mcptrail -n '__fish_seen_subcommand_from %s; and not __fish_seen_subcommand_from %s' -a %s\n",
				c.name, strings.Join(c.subs, " "), fishQuote(strings.Join(c.subs, " ")))
			continue
		}
		for _, f := range c.flags {
			line := fmt.Sprintf("complete -c mcptrail -n '%s' -l %s -d %s", cond, f.name, fishQuote(f.help))
			switch {
			case f.values != nil:
				line += " -x -a " + fishQuote(strings.Join(f.values, " "))
			case f.file:
				line += " -r -F"
			case !f.isBool:
				line += " -x"
			}
			b.WriteString(line + "\n")
		}
		switch {
		case len(c.args) > 0:
			fmt.Fprintf(&b, "complete -c mcptrail -n '%s' -a %s\n", cond, fishQuote(strings.Join(c.args, " ")))
		case c.files:
			fmt.Fprintf(&b, "complete -c mcptrail -n '%s' -F\n", cond)
		}
	}
	return b.String()
}
