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

// TestMain lets the test binary stand in for mcptrail when a completion
// script calls it back (`mcptrail __complete ...`).
func TestMain(m *testing.M) {
	if os.Getenv("MCPTRAIL_TEST_AS_MAIN") == "1" {
		os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
	}
	os.Exit(m.Run())
}

func TestCompletionScripts(t *testing.T) {
	for _, sh := range []string{"bash", "zsh", "fish"} {
		var out, errOut bytes.Buffer
		if code := run([]string{"completion", sh}, nil, &out, &errOut); code != 0 {
			t.Fatalf("completion %s: exit %d: %s", sh, code, errOut.String())
		}
		if !strings.Contains(out.String(), "mcptrail") || !strings.Contains(out.String(), "__complete") {
			t.Errorf("completion %s is not a script that asks mcptrail:\n%s", sh, out.String())
		}
		if _, err := exec.LookPath(sh); err == nil {
			c := exec.Command(sh, "-n")
			c.Stdin = bytes.NewReader(out.Bytes())
			if msg, err := c.CombinedOutput(); err != nil {
				t.Errorf("%s -n: %v\n%s", sh, err, msg)
			}
		}
	}
	if code := run([]string{"completion", "tcsh"}, nil, &bytes.Buffer{}, &bytes.Buffer{}); code != exitUsage {
		t.Errorf("completion tcsh: exit %d, want 2", code)
	}
}

// The bash script, run by a real bash without the bash-completion package,
// completes commands, subcommands, flags and flag values, asking this
// program (the test binary standing in for it) for them.
func TestBashCompletionCompletes(t *testing.T) {
	if _, err := exec.LookPath("bash"); err != nil {
		t.Skip("no bash")
	}
	var script bytes.Buffer
	if code := run([]string{"completion", "bash"}, nil, &script, &script); code != 0 {
		t.Fatalf("completion bash: %s", script.String())
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	bin := t.TempDir() // wrap completes its server's command from PATH
	if err := os.WriteFile(bin+"/mcptrail-test-server", []byte("#!/bin/sh\n"), 0o700); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		words []string
		want  []string
	}{
		{[]string{"mcptrail", "s"}, []string{"serve", "sessions", "status", "stop"}},
		{[]string{"mcptrail", "export", "--format", ""}, []string{"cef", "ecs", "jsonl", "ocsf"}},
		{[]string{"mcptrail", "serve", "--m"}, []string{"--metrics"}},
		{[]string{"mcptrail", "serve", "--durability", "b"}, []string{"batch"}},
		{[]string{"mcptrail", "rollback", ""}, []string{"apply", "export-plan", "history", "plan", "show"}},
		{[]string{"mcptrail", "rollback", "apply", "--"}, []string{"--help", "--json", "--plan-file", "--yes"}},
		{[]string{"mcptrail", "completion", ""}, []string{"bash", "fish", "zsh"}},
		{[]string{"mcptrail", "ui", "--theme", "h"}, []string{"high-contrast"}},
		{[]string{"mcptrail", "wrap", "--name", "x", "--", "mcptrail-test-s"}, []string{"mcptrail-test-server"}},
	} {
		words := []string{"'" + self + "'"}
		for _, w := range c.words[1:] {
			words = append(words, "'"+w+"'")
		}
		prog := script.String() + "\nCOMP_WORDS=(" + strings.Join(words, " ") + ")\nCOMP_CWORD=" + strconv.Itoa(len(c.words)-1) +
			"\nCOMP_LINE=\"${COMP_WORDS[*]}\"\nCOMP_POINT=${#COMP_LINE}\n__start_mcptrail\nprintf '%s\\n' \"${COMPREPLY[@]}\"\n"
		cmd := exec.Command("bash", "--norc", "--noprofile", "-c", prog)
		cmd.Env = append(os.Environ(), "MCPTRAIL_TEST_AS_MAIN=1", "PATH="+bin+":"+os.Getenv("PATH"))
		var stderr bytes.Buffer
		cmd.Stderr = &stderr // compopt complains outside a real completion: not ours
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("%v: %v\n%s%s", c.words, err, out, stderr.String())
		}
		var got []string
		for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
			if f := strings.Fields(line); len(f) > 0 {
				got = append(got, f[0]) // the word, without its description
			}
		}
		sort.Strings(got)
		got = slices.Compact(got)
		if !slices.Equal(got, c.want) {
			t.Errorf("%v: completed %v, want %v", c.words, got, c.want)
		}
	}
}

// --version names the version and, when the build has VCS information,
// the commit.
func TestVersion(t *testing.T) {
	for _, arg := range []string{"--version", "-version", "version"} {
		var out bytes.Buffer
		if code := run([]string{arg}, nil, &out, &out); code != 0 {
			t.Fatalf("%s: exit %d: %s", arg, code, out.String())
		}
		if !regexp.MustCompile(`^mcptrail \S+( \([0-9a-f]{12}(-dirty)?\))?\n$`).MatchString(out.String()) {
			t.Errorf("%s printed %q", arg, out.String())
		}
	}
}
