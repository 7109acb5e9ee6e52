package testkit

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// Env is the environment of every process of one mcptrail instance (data
// directory home, config directory configHome): the test's own, without
// anything that would point mcptrail at another instance, plus the
// instance's directories. With binDir set, binDir also comes first on PATH,
// so that servers under test find the built `mcptrail` there.
func Env(home, configHome, binDir string) []string {
	var env []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(k, "MCPTRAIL_") || k == "XDG_CONFIG_HOME" || k == "XDG_STATE_HOME" || (binDir != "" && k == "PATH") {
			continue
		}
		env = append(env, kv)
	}
	env = append(env,
		"MCPTRAIL_HOME="+home,
		"XDG_CONFIG_HOME="+configHome,
		"XDG_STATE_HOME="+filepath.Join(filepath.Dir(home), "state"),
	)
	if binDir != "" {
		env = append(env, "PATH="+binDir+string(os.PathListSeparator)+os.Getenv("PATH"))
	}
	return env
}

// Result is a finished command.
type Result struct {
	Stdout, Stderr string
	Code           int // exit status
}

// RunCLI runs the mcptrail binary bin with args (in environment env) to
// completion and returns what it printed and its exit status. It fails t
// only when the command cannot run at all or outlives timeout: a non-zero
// status is often what a test wants to see. A data race it reports fails t.
func RunCLI(t testing.TB, timeout time.Duration, bin string, env []string, args ...string) Result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = env
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	res := Result{Stdout: stdout.String(), Stderr: stderr.String()}
	var exitErr *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &exitErr) && ctx.Err() == nil:
		res.Code = exitErr.ExitCode()
	default:
		t.Fatalf("mcptrail %s: %v (stderr: %s)", strings.Join(args, " "), err, res.Stderr)
	}
	CheckNoRace(t, "mcptrail "+strings.Join(args, " "), res.Stderr)
	return res
}
