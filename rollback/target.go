package rollback

import (
	"context"
	"encoding/json"

	"github.com/mcptrail/mcptrail/ingest"
)

// Target is how to reach the upstream a session talked to.
type Target struct {
	Upstream   string            `json:"upstream"`
	Transport  string            `json:"transport"`         // stdio: a wrap session; http: a serve upstream
	Command    []string          `json:"command,omitempty"` // a wrap session's server command
	Dir        string            `json:"dir,omitempty"`
	Env        map[string]string `json:"env,omitempty"`
	Roots      json.RawMessage   `json:"roots,omitempty"` // what the session's client answered to roots/list
	ServerName string            `json:"server_name,omitempty"`
}

func (t Target) key() string {
	b, _ := json.Marshal(t)
	return string(b)
}

// StartParams are what wrap records in its session_start (params) so that
// a rollback can start the server again: ParseStartParams reads them.
type StartParams struct {
	Command []string          `json:"command"`
	Dir     string            `json:"dir,omitempty"`
	Env     map[string]string `json:"env,omitempty"`
}

// Conn is a connection to an upstream, for re-reads and inverse calls.
// *ingest.Origin is one.
type Conn interface {
	Call(ctx context.Context, method string, params any, rec *ingest.CallRecord) (json.RawMessage, uint64, error)
	Close(detail string) error
}

// Connector opens a connection to a target. rec nil: nothing is recorded
// (the planner's re-reads); else the session is recorded as the plan's
// apply, by the approver.
type Connector func(ctx context.Context, t Target, rec *ApplyInfo) (Conn, error)

// ApplyInfo names the plan and approver of a recorded apply session.
type ApplyInfo struct {
	Plan     string
	Approver Approver
}
