package main

import (
	"bytes"
	"os"
	"os/exec"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
)

// Every flag the completion table names is one the command takes: parsing
// it and then an unknown flag fails on the unknown one, before the command
// runs.
func TestCompletionFlagsExist(t *testing.T) {
	for _, c := range complCmds {
		if len(c.flags) == 0 {
			continue
		}
		args := strings.Fields(c.name)
		for _, f := range c.flags {
			if f.isBool {
				args = append(args, "--"+f.name+"=true")
			} else {
				args = append(args, "--"+f.name+"=1")
			}
		}
		args = append(args, "--zz-not-a-flag")
		err := dispatch(args, strings.NewReader(""), &bytes.Buffer{}, &bytes.Buffer{})
		if err == nil || !strings.Contains(err.Error(), "zz-not-a-flag") {
			t.Errorf("mcptrail %s: %v (want the unknown flag reported, every other one accepted)", strings.Join(args, " "), err)
		}
	}
}

// Every flag a command defines is in the completion table (read from the
// source, so a new flag cannot be forgotten here).
func TestCompletionCoversEveryFlag(t *testing.T) {
	files, _ := os.ReadDir(".")
	defined := map[string][]string{}
	chunkRe := regexp.MustCompile(`newFlags\("([a-z ]+)"\)`)
	flagRe := regexp.MustCompile(`fs\.(?:String|Bool|Int|Uint64|Duration|Var)\((?:&\w+, )?"([a-z-]+)"`)
	for _, f := range files {
		if !strings.HasSuffix(f.Name(), ".go") || strings.HasSuffix(f.Name(), "_test.go") {
			continue
		}
		src, err := os.ReadFile(f.Name())
		if err != nil {
			t.Fatal(err)
		}
		locs := chunkRe.FindAllSubmatchIndex(src, -1)
		for i, l := range locs {
			end := len(src)
			if i+1 < len(locs) {
				end = locs[i+1][0]
			}
			body := src[l[1]:end]
			if j := bytes.Index(body, []byte("\nfunc ")); j >= 0 {
				body = body[:j]
			}
			name := string(src[l[2]:l[3]])
			for _, m := range flagRe.FindAllSubmatch(body, -1) {
				defined[name] = append(defined[name], string(m[1]))
			}
		}
	}
	if len(defined) < 8 {
		t.Fatalf("found flag sets for only %v", defined)
	}
	table := map[string][]string{}
	for _, c := range complCmds {
		for _, f := range c.flags {
			table[c.name] = append(table[c.name], f.name)
		}
	}
	for cmd, flags := range defined {
		for _, f := range flags {
			if f == "auto" && cmd == "serve" {
				continue // internal: wrap's background start
			}
			if !slices.Contains(table[cmd], f) {
				t.Errorf("mcptrail %s --%s is missing from the completion table (cmd_completion.go)", cmd, f)
			}
		}
	}
}

func TestCompletionScripts(t *testing.T) {
	for _, sh := range []string{"bash", "zsh", "fish"} {
		var out bytes.Buffer
		if err := dispatch([]string{"completion", sh}, nil, &out, &out); err != nil {
			t.Fatalf("completion %s: %v", sh, err)
		}
		if !strings.Contains(out.String(), "export") || !strings.Contains(out.String(), "metrics") {
			t.Errorf("completion %s lacks commands or flags:\n%s", sh, out.String())
		}
		if _, err := exec.LookPath(sh); err == nil {
			c := exec.Command(sh, "-n")
			c.Stdin = bytes.NewReader(out.Bytes())
			if msg, err := c.CombinedOutput(); err != nil {
				t.Errorf("%s -n: %v\n%s", sh, err, msg)
			}
		}
	}
	if err := dispatch([]string{"completion", "tcsh"}, nil, &bytes.Buffer{}, &bytes.Buffer{}); err == nil {
		t.Error("completion tcsh: no error")
	}
}

// The bash script completes commands, subcommands, flags and flag values.
func TestBashCompletionCompletes(t *testing.T) {
	if _, err := exec.LookPath("bash"); err != nil {
		t.Skip("no bash")
	}
	script := bashCompletion()
	for _, c := range []struct {
		words []string
		want  []string
	}{
		{[]string{"mcptrail", "s"}, []string{"serve", "sessions", "status", "stop"}},
		{[]string{"mcptrail", "export", "--format", ""}, []string{"cef", "ecs", "jsonl", "ocsf"}},
		{[]string{"mcptrail", "serve", "--m"}, []string{"--metrics"}},
		{[]string{"mcptrail", "serve", "--durability", "b"}, []string{"batch"}},
		{[]string{"mcptrail", "rollback", ""}, []string{"apply", "export-plan", "history", "plan", "show"}},
		{[]string{"mcptrail", "rollback", "apply", "--"}, []string{"--json", "--plan-file", "--yes"}},
		{[]string{"mcptrail", "completion", ""}, []string{"bash", "fish", "zsh"}},
		{[]string{"mcptrail", "ui", "--theme", "h"}, []string{"high-contrast"}},
	} {
		var words []string
		for _, w := range c.words {
			words = append(words, "'"+w+"'")
		}
		prog := script + "\nCOMP_WORDS=(" + strings.Join(words, " ") + ")\nCOMP_CWORD=" + itoa(len(c.words)-1) + "\n_mcptrail\nprintf '%s\\n' \"${COMPREPLY[@]}\"\n"
		out, err := exec.Command("bash", "-c", prog).CombinedOutput()
		if err != nil {
			t.Fatalf("%v: %v\n%s", c.words, err, out)
		}
		got := strings.Fields(string(out))
		sort.Strings(got)
		if !slices.Equal(got, c.want) {
			t.Errorf("%v: completed %v, want %v", c.words, got, c.want)
		}
	}
}

func itoa(n int) string { return strconv.Itoa(n) }

// --version names the version and, when the build has VCS information,
// the commit.
func TestVersion(t *testing.T) {
	var out bytes.Buffer
	if err := dispatch([]string{"--version"}, nil, &out, &out); err != nil {
		t.Fatal(err)
	}
	if !regexp.MustCompile(`^mcptrail \S+( \([0-9a-f]{12}(-dirty)?\))?\n$`).MatchString(out.String()) {
		t.Errorf("--version printed %q", out.String())
	}
}

// The usage text names every command and flag of the completion table
// (which the tests above hold to the flags the commands define): the three
// cannot drift apart.
func TestUsageNamesEveryFlag(t *testing.T) {
	lines := strings.Split(usage+"\n"+rollbackUsage, "\n")
	for _, c := range complCmds {
		if len(c.subs) > 0 {
			continue // a group: its subcommands have lines of their own
		}
		var line string
		for _, l := range lines {
			if strings.HasPrefix(strings.Join(strings.Fields(l), " "), "mcptrail "+c.name+" ") || strings.TrimSpace(l) == "mcptrail "+c.name {
				line = l
				break
			}
		}
		if line == "" {
			t.Errorf("the usage has no line for mcptrail %s", c.name)
			continue
		}
		for _, f := range c.flags {
			if !strings.Contains(line, "--"+f.name) {
				t.Errorf("the usage line of mcptrail %s lacks --%s:\n%s", c.name, f.name, line)
			}
		}
	}
}
