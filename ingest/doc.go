// Package ingest is mcptrail's gateway: it relays MCP messages between an
// agent and its servers, over stdio or Streamable HTTP, and records each one
// before it is forwarded.
//
// The pumps (Stdio for `mcptrail wrap`; HTTPGateway for `serve`, whose
// proxyUpstream relays to HTTP servers and whose stdioUpstream drives stdio
// children through childSession and stdioMux) move bytes and stay dumb; a Session decides what every message means —
// request, outcome, notification, bad input — and records it through a
// Recorder. Redaction, classification, pre-state capture and approvals are
// Hooks, so ingest never imports the packages that implement them.
package ingest
