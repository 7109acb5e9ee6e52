package demo

import (
	"encoding/json"
	"io"
	"log/slog"

	"github.com/mcptrail/mcptrail/store"
)

func quietLogger() *slog.Logger {
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

func storeSessionQuery() store.SessionQuery { return store.SessionQuery{Limit: 20} }

func callQuery(session string) store.Query {
	return store.Query{Session: session, Kind: store.KindCall, Method: "tools/call", Limit: 100}
}

// summarize renders a tool call's arguments on one line.
func summarize(params json.RawMessage) string {
	var p struct {
		Arguments json.RawMessage `json:"arguments"`
	}
	if json.Unmarshal(params, &p) != nil || len(p.Arguments) == 0 {
		return ""
	}
	s := string(p.Arguments)
	if len(s) > 70 {
		s = s[:67] + "..."
	}
	return s
}
