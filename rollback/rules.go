// Package rollback undoes recorded tool calls: rules files say how each
// tool's effect is captured and reversed, a capture hook stores the state a
// write is about to change before the gateway forwards it, the planner
// turns a selection of calls into a reviewed plan (newest first, with
// conflicts, irreversible steps and diffs), and the executor runs the
// inverse calls through the gateway with persisted step state.
//
// It imports store and ingest; ingest never imports it: capture reaches the
// gateway as ingest.Hooks.Capture, which the daemon and wrap wire.
package rollback

import (
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/mcptrail/mcptrail/store"
)

//go:embed rules/*.yaml
var builtinRules embed.FS

// Capture failure policies.
const (
	PolicyRecord = "record" // forward the write; its plan step is missing-prestate
	PolicyBlock  = "block"  // refuse the write
)

// Classes.
const (
	ClassRead   = "read"
	ClassWrite  = "write"
	ClassDelete = "delete"
)

// RuleSet is every loaded rules file, one ServerRules per server.
type RuleSet struct {
	servers []*ServerRules
}

// ServerRules are the rules of one MCP server.
type ServerRules struct {
	Server           string   // the name rules are known by
	Match            []string // upstream names and serverInfo names it applies to
	Env              []string // environment variables the server's state depends on (wrap records them)
	OnCaptureFailure string
	Tools            map[string]*ToolRule
	Sources          []string // files it was read from

	vars []namedTmpl
}

type namedTmpl struct {
	name string
	t    tmpl
}

type rawFile struct {
	Server           string             `yaml:"server"`
	Match            []string           `yaml:"match"`
	Env              []string           `yaml:"env"`
	Vars             yaml.Node          `yaml:"vars"`
	OnCaptureFailure string             `yaml:"on_capture_failure"`
	Tools            map[string]rawTool `yaml:"tools"`
}

type rawTool struct {
	Class            string       `yaml:"class"`
	Key              yaml.Node    `yaml:"key"`
	SkipWhen         string       `yaml:"skip_when"`
	Capture          []rawRead    `yaml:"capture"`
	Check            []rawRead    `yaml:"check"`
	Expect           yaml.Node    `yaml:"expect"`
	Inverse          []rawInverse `yaml:"inverse"`
	Irreversible     string       `yaml:"irreversible"`
	OnCaptureFailure string       `yaml:"on_capture_failure"`
	Diff             struct {
		Current  yaml.Node `yaml:"current"`
		Restored yaml.Node `yaml:"restored"`
	} `yaml:"diff"`
}

type rawRead struct {
	Name    string    `yaml:"name"`
	Tool    string    `yaml:"tool"`
	Args    yaml.Node `yaml:"args"`
	Missing string    `yaml:"missing"`
	When    string    `yaml:"when"`
}

type rawInverse struct {
	When string    `yaml:"when"`
	Tool string    `yaml:"tool"`
	Args yaml.Node `yaml:"args"`
}

// DefaultDir is where users put rules files of their own:
// $XDG_CONFIG_HOME/mcptrail/rollback (else ~/.config/mcptrail/rollback).
func DefaultDir() string {
	if dir := os.Getenv("XDG_CONFIG_HOME"); filepath.IsAbs(dir) {
		return filepath.Join(dir, "mcptrail", "rollback")
	}
	home, _ := os.UserHomeDir()
	return filepath.Join(home, ".config", "mcptrail", "rollback")
}

// Builtin returns the rules shipped in the binary (rules/*.yaml).
func Builtin() (*RuleSet, error) { return Load() }

// Load reads the built-in rules, then every *.yaml file in dirs (a missing
// directory is skipped). A file for a server already known extends it:
// match names and env are added, vars and on_capture_failure override, and
// each tool it names replaces that tool's rule.
func Load(dirs ...string) (*RuleSet, error) {
	rs := &RuleSet{}
	entries, err := fs.ReadDir(builtinRules, "rules")
	if err != nil {
		return nil, err
	}
	for _, e := range entries {
		data, err := builtinRules.ReadFile("rules/" + e.Name())
		if err != nil {
			return nil, err
		}
		if err := rs.add("builtin:"+e.Name(), data); err != nil {
			return nil, err
		}
	}
	for _, dir := range dirs {
		files, err := filepath.Glob(filepath.Join(dir, "*.yaml"))
		if err != nil {
			return nil, err
		}
		sort.Strings(files)
		for _, f := range files {
			data, err := os.ReadFile(f)
			if err != nil {
				return nil, err
			}
			if err := rs.add(f, data); err != nil {
				return nil, err
			}
		}
	}
	return rs, nil
}

// Parse reads one rules file's content (for `config check`-style
// validation and tests); name labels errors.
func Parse(name string, data []byte) (*RuleSet, error) {
	rs := &RuleSet{}
	return rs, rs.add(name, data)
}

func (rs *RuleSet) add(source string, data []byte) error {
	dec := yaml.NewDecoder(strings.NewReader(string(data)))
	dec.KnownFields(true)
	var raw rawFile
	if err := dec.Decode(&raw); err != nil {
		return fmt.Errorf("rollback rules %s: %w", source, err)
	}
	sr, err := compileFile(&raw)
	if err != nil {
		return fmt.Errorf("rollback rules %s: %w", source, err)
	}
	sr.Sources = []string{source}
	for _, old := range rs.servers {
		if old.Server == sr.Server {
			old.merge(sr)
			return nil
		}
	}
	rs.servers = append(rs.servers, sr)
	return nil
}

func (sr *ServerRules) merge(o *ServerRules) {
	for _, m := range o.Match {
		if !slices.Contains(sr.Match, m) {
			sr.Match = append(sr.Match, m)
		}
	}
	for _, e := range o.Env {
		if !slices.Contains(sr.Env, e) {
			sr.Env = append(sr.Env, e)
		}
	}
	for _, v := range o.vars {
		i := slices.IndexFunc(sr.vars, func(w namedTmpl) bool { return w.name == v.name })
		if i >= 0 {
			sr.vars[i] = v
		} else {
			sr.vars = append(sr.vars, v)
		}
	}
	if o.OnCaptureFailure != "" {
		sr.OnCaptureFailure = o.OnCaptureFailure
	}
	for name, t := range o.Tools {
		t.server = sr
		sr.Tools[name] = t
	}
	sr.Sources = append(sr.Sources, o.Sources...)
}

var classes = []string{ClassRead, ClassWrite, ClassDelete}

func compileFile(raw *rawFile) (*ServerRules, error) {
	if raw.Server == "" {
		return nil, errors.New("server: the server's name is required")
	}
	sr := &ServerRules{Server: raw.Server, Match: raw.Match, Env: raw.Env, OnCaptureFailure: raw.OnCaptureFailure, Tools: map[string]*ToolRule{}}
	if err := checkPolicy(raw.OnCaptureFailure); err != nil {
		return nil, err
	}
	if raw.Vars.Kind == yaml.MappingNode {
		for i := 0; i+1 < len(raw.Vars.Content); i += 2 {
			t, err := compileNode(raw.Vars.Content[i+1])
			if err != nil {
				return nil, fmt.Errorf("vars.%s: %w", raw.Vars.Content[i].Value, err)
			}
			sr.vars = append(sr.vars, namedTmpl{raw.Vars.Content[i].Value, t})
		}
	} else if raw.Vars.Kind != 0 {
		return nil, fmt.Errorf("line %d: vars: want a mapping", raw.Vars.Line)
	}
	for name, rt := range raw.Tools {
		t, err := compileTool(name, &rt)
		if err != nil {
			return nil, fmt.Errorf("tools.%s: %w", name, err)
		}
		t.server = sr
		sr.Tools[name] = t
	}
	return sr, nil
}

func checkPolicy(p string) error {
	switch p {
	case "", PolicyRecord, PolicyBlock:
		return nil
	}
	return fmt.Errorf("on_capture_failure %q: want record or block", p)
}

func compileTool(name string, rt *rawTool) (*ToolRule, error) {
	t := &ToolRule{Tool: name, Class: rt.Class, Irreversible: rt.Irreversible, OnCaptureFailure: rt.OnCaptureFailure}
	if !slices.Contains(classes, t.Class) {
		return nil, fmt.Errorf("class %q: want read, write or delete", t.Class)
	}
	if err := checkPolicy(t.OnCaptureFailure); err != nil {
		return nil, err
	}
	var err error
	if t.keys, err = compileNode(&rt.Key); err != nil {
		return nil, fmt.Errorf("key: %w", err)
	}
	if rt.SkipWhen != "" {
		if t.skipWhen, err = parseExpr(rt.SkipWhen); err != nil {
			return nil, fmt.Errorf("skip_when: %w", err)
		}
	}
	if t.capture, err = compileReads(rt.Capture); err != nil {
		return nil, fmt.Errorf("capture: %w", err)
	}
	if t.check, err = compileReads(rt.Check); err != nil {
		return nil, fmt.Errorf("check: %w", err)
	}
	switch {
	case rt.Expect.Kind == yaml.ScalarNode && !strings.Contains(rt.Expect.Value, "{{"):
		x, err := parseExpr(rt.Expect.Value)
		if err != nil {
			return nil, fmt.Errorf("expect: %w", err)
		}
		t.expect = wholeT{x}
	case rt.Expect.Kind != 0:
		if t.expect, err = compileNode(&rt.Expect); err != nil {
			return nil, fmt.Errorf("expect: %w", err)
		}
	}
	if (t.expect == nil) != (len(t.check) == 0) {
		return nil, errors.New("check and expect go together: the reads, and what they must show right after the call")
	}
	for i, ri := range rt.Inverse {
		if ri.Tool == "" {
			return nil, fmt.Errorf("inverse[%d]: tool is required", i)
		}
		ic := inverseCall{tool: ri.Tool}
		if ri.When != "" {
			if ic.when, err = parseExpr(ri.When); err != nil {
				return nil, fmt.Errorf("inverse[%d].when: %w", i, err)
			}
		}
		if ic.args, err = compileNode(&ri.Args); err != nil {
			return nil, fmt.Errorf("inverse[%d].args: %w", i, err)
		}
		t.inverse = append(t.inverse, ic)
	}
	if t.diffCur, err = compileNode(&rt.Diff.Current); err != nil {
		return nil, fmt.Errorf("diff.current: %w", err)
	}
	if t.diffRest, err = compileNode(&rt.Diff.Restored); err != nil {
		return nil, fmt.Errorf("diff.restored: %w", err)
	}
	if t.Class != ClassRead && len(t.inverse) == 0 && t.Irreversible == "" {
		return nil, errors.New("a write needs inverse calls, or irreversible: saying why it has none")
	}
	return t, nil
}

func compileReads(raws []rawRead) ([]readCall, error) {
	var out []readCall
	seen := map[string]bool{}
	for i, r := range raws {
		if r.Name == "" || r.Tool == "" {
			return nil, fmt.Errorf("[%d]: name and tool are required", i)
		}
		if seen[r.Name] {
			return nil, fmt.Errorf("[%d]: name %q is used twice", i, r.Name)
		}
		seen[r.Name] = true
		rc := readCall{name: r.Name, tool: r.Tool}
		var err error
		if rc.args, err = compileNode(&r.Args); err != nil {
			return nil, fmt.Errorf("[%d].args: %w", i, err)
		}
		if r.Missing != "" {
			if rc.missing, err = regexp.Compile(r.Missing); err != nil {
				return nil, fmt.Errorf("[%d].missing: %w", i, err)
			}
		}
		if r.When != "" {
			if rc.when, err = parseExpr(r.When); err != nil {
				return nil, fmt.Errorf("[%d].when: %w", i, err)
			}
		}
		out = append(out, rc)
	}
	return out, nil
}

// --- lookup ---

// Servers lists the loaded servers' rules.
func (rs *RuleSet) Servers() []*ServerRules { return rs.servers }

// ServerFor returns the rules that apply to an upstream (by its name in the
// record) or a server (by the name it reports), or nil.
func (rs *RuleSet) ServerFor(upstream, serverName string) *ServerRules {
	if rs == nil {
		return nil
	}
	for _, names := range [][]string{{upstream}, {serverName}} {
		n := names[0]
		if n == "" {
			continue
		}
		for _, sr := range rs.servers {
			if sr.Server == n || slices.Contains(sr.Match, n) {
				return sr
			}
		}
	}
	return nil
}

// Lookup returns the rule of a tool, or nil.
func (rs *RuleSet) Lookup(upstream, serverName, tool string) *ToolRule {
	if sr := rs.ServerFor(upstream, serverName); sr != nil {
		return sr.Tools[tool]
	}
	return nil
}

// Classify is ingest.Hooks.Classify: the class the rules give a tool; ""
// leaves it to the annotations.
func (rs *RuleSet) Classify(upstream, serverName, tool string, _ *store.Annotations) string {
	if r := rs.Lookup(upstream, serverName, tool); r != nil {
		return r.Class
	}
	return ""
}

// EnvNames are the environment variables any server's state depends on,
// which wrap records with its command so that a rollback can start the
// server again against the same state.
func (rs *RuleSet) EnvNames() []string {
	var out []string
	if rs == nil {
		return nil
	}
	for _, sr := range rs.servers {
		for _, e := range sr.Env {
			if !slices.Contains(out, e) {
				out = append(out, e)
			}
		}
	}
	return out
}
