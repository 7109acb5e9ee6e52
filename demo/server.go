// Package demo is `mcptrail demo`: a small operations MCP server with writes
// worth reversing (files, tickets, users), and a scripted agent whose night
// shift goes wrong, run through the real gateway into a real store.
package demo

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"

	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// opsServer is the demo server: its world, kept as files in a directory so
// that every write is a real change on disk, and its tools, the methods
// NewServer registers (those that touch the records hold mu).
type opsServer struct {
	mu   sync.Mutex
	root string // files live under root/files; records in root/db.json
	db   struct {
		Tickets map[string]*Ticket `json:"tickets"`
		Users   map[string]*User   `json:"users"`
	}
}

// Ticket is a support ticket.
type Ticket struct {
	ID       string `json:"id"`
	Title    string `json:"title"`
	Status   string `json:"status"`
	Assignee string `json:"assignee,omitempty"`
	Priority string `json:"priority"`
}

// User is an account in the demo's directory.
type User struct {
	Name   string   `json:"name"`
	Email  string   `json:"email"`
	Roles  []string `json:"roles"`
	Active bool     `json:"active"`
}

func (s *opsServer) load() error {
	b, err := os.ReadFile(filepath.Join(s.root, "db.json"))
	if errors.Is(err, os.ErrNotExist) {
		s.seed()
		return s.save()
	}
	if err != nil {
		return err
	}
	return json.Unmarshal(b, &s.db)
}

func (s *opsServer) save() error {
	b, _ := json.MarshalIndent(&s.db, "", "  ")
	return os.WriteFile(filepath.Join(s.root, "db.json"), b, 0o600)
}

func (s *opsServer) seed() {
	s.db.Tickets = map[string]*Ticket{}
	for i, t := range []string{"VPN drops every hour", "Billing export is late", "Reset MFA for j.doe", "Disk almost full on build-07", "Stale DNS record for api-old", "Rotate the staging TLS cert"} {
		id := fmt.Sprintf("OPS-%d", 101+i)
		s.db.Tickets[id] = &Ticket{ID: id, Title: t, Status: "open", Priority: []string{"high", "low", "medium"}[i%3]}
	}
	s.db.Users = map[string]*User{
		"alice": {Name: "alice", Email: "alice@example.com", Roles: []string{"admin"}, Active: true},
		"bob":   {Name: "bob", Email: "bob@example.com", Roles: []string{"developer"}, Active: true},
		"carol": {Name: "carol", Email: "carol@example.com", Roles: []string{"support"}, Active: true},
	}
	os.MkdirAll(filepath.Join(s.root, "files", "runbooks"), 0o700)
	os.WriteFile(filepath.Join(s.root, "files", "runbooks", "vpn.md"), []byte("# VPN\n\nRestart the concentrator, then check the tunnel.\n"), 0o600)
	os.WriteFile(filepath.Join(s.root, "files", "config.yaml"), []byte("replicas: 3\nmaintenance: false\nbackup_retention_days: 30\n"), 0o600)
}

func bptr(b bool) *bool { return &b }

var (
	readOnly    = &mcp.ToolAnnotations{ReadOnlyHint: true, IdempotentHint: true, OpenWorldHint: bptr(false)}
	additive    = &mcp.ToolAnnotations{DestructiveHint: bptr(false), OpenWorldHint: bptr(false)}
	destructive = &mcp.ToolAnnotations{DestructiveHint: bptr(true), OpenWorldHint: bptr(false)}
)

// NewServer builds the demo operations server over the directory root.
func NewServer(root string) (*mcp.Server, error) {
	s := &opsServer{root: root}
	if err := os.MkdirAll(filepath.Join(root, "files"), 0o700); err != nil {
		return nil, err
	}
	if err := s.load(); err != nil {
		return nil, err
	}
	srv := mcp.NewServer(&mcp.Implementation{Name: "acme-ops", Version: "1.0.0"}, nil)
	mcp.AddTool(srv, &mcp.Tool{Name: "list_files", Description: "List workspace files", Annotations: readOnly}, s.listFiles)
	mcp.AddTool(srv, &mcp.Tool{Name: "read_file", Description: "Read a workspace file", Annotations: readOnly}, s.readFile)
	mcp.AddTool(srv, &mcp.Tool{Name: "write_file", Description: "Create or overwrite a workspace file", Annotations: destructive}, s.writeFile)
	mcp.AddTool(srv, &mcp.Tool{Name: "delete_file", Description: "Delete a workspace file", Annotations: destructive}, s.deleteFile)
	mcp.AddTool(srv, &mcp.Tool{Name: "list_tickets", Description: "List support tickets", Annotations: readOnly}, s.listTickets)
	mcp.AddTool(srv, &mcp.Tool{Name: "get_ticket", Description: "Read one support ticket", Annotations: readOnly}, s.getTicket)
	mcp.AddTool(srv, &mcp.Tool{Name: "update_ticket", Description: "Change a ticket's status or assignee", Annotations: additive}, s.updateTicket)
	mcp.AddTool(srv, &mcp.Tool{Name: "list_users", Description: "List directory users", Annotations: readOnly}, s.listUsers)
	mcp.AddTool(srv, &mcp.Tool{Name: "get_user", Description: "Read one directory user", Annotations: readOnly}, s.getUser)
	mcp.AddTool(srv, &mcp.Tool{Name: "create_user", Description: "Create a directory user", Annotations: additive}, s.createUser)
	mcp.AddTool(srv, &mcp.Tool{Name: "grant_role", Description: "Grant a role to a user", Annotations: additive}, s.grantRole)
	mcp.AddTool(srv, &mcp.Tool{Name: "revoke_role", Description: "Take a role from a user", Annotations: destructive}, s.revokeRole)
	mcp.AddTool(srv, &mcp.Tool{Name: "delete_user", Description: "Delete a directory user", Annotations: destructive}, s.deleteUser)
	mcp.AddTool(srv, &mcp.Tool{Name: "export_customer_data", Description: "Export customer records to an external bucket",
		Annotations: &mcp.ToolAnnotations{ReadOnlyHint: true, OpenWorldHint: bptr(true)}}, exportCustomerData)
	return srv, nil
}

// The tools' arguments.
type (
	pathArg struct {
		Path string `json:"path" jsonschema:"file path relative to the workspace"`
	}
	writeArgs struct {
		Path    string `json:"path"`
		Content string `json:"content"`
	}
	ticketArgs struct {
		ID       string  `json:"id"`
		Status   string  `json:"status,omitempty"`
		Assignee *string `json:"assignee,omitempty" jsonschema:"the new assignee; empty unassigns"`
		Comment  string  `json:"comment,omitempty"`
	}
	userArgs struct {
		Name  string   `json:"name"`
		Email string   `json:"email,omitempty"`
		Role  string   `json:"role,omitempty"`
		Roles []string `json:"roles,omitempty" jsonschema:"create_user: every role of the new user (with role)"`
	}
	bucketArgs struct {
		Bucket string `json:"bucket"`
	}
)

// toolResult is what every tool handler returns: the SDK's result, no
// structured output, and no protocol error (a failed tool call is a result
// with IsError set).
type toolResult = *mcp.CallToolResult

func (s *opsServer) listFiles(context.Context, *mcp.CallToolRequest, struct{}) (toolResult, any, error) {
	var names []string
	base := filepath.Join(s.root, "files")
	filepath.WalkDir(base, func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			rel, _ := filepath.Rel(base, p)
			names = append(names, rel)
		}
		return nil
	})
	sort.Strings(names)
	return text(strings.Join(names, "\n")), nil, nil
}

func (s *opsServer) readFile(_ context.Context, _ *mcp.CallToolRequest, a pathArg) (toolResult, any, error) {
	p, err := s.file(a.Path)
	if err != nil {
		return toolErr(err), nil, nil
	}
	b, err := os.ReadFile(p)
	if err != nil {
		return toolErr(err), nil, nil
	}
	return text(string(b)), nil, nil
}

func (s *opsServer) writeFile(_ context.Context, _ *mcp.CallToolRequest, a writeArgs) (toolResult, any, error) {
	p, err := s.file(a.Path)
	if err != nil {
		return toolErr(err), nil, nil
	}
	os.MkdirAll(filepath.Dir(p), 0o700)
	if err := os.WriteFile(p, []byte(a.Content), 0o600); err != nil {
		return toolErr(err), nil, nil
	}
	return text(fmt.Sprintf("wrote %d bytes to %s", len(a.Content), a.Path)), nil, nil
}

func (s *opsServer) deleteFile(_ context.Context, _ *mcp.CallToolRequest, a pathArg) (toolResult, any, error) {
	p, err := s.file(a.Path)
	if err != nil {
		return toolErr(err), nil, nil
	}
	if err := os.Remove(p); err != nil {
		return toolErr(err), nil, nil
	}
	return text("deleted " + a.Path), nil, nil
}

func (s *opsServer) listTickets(context.Context, *mcp.CallToolRequest, struct{}) (toolResult, any, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return jsonText(sortedTickets(s.db.Tickets)), nil, nil
}

func (s *opsServer) getTicket(_ context.Context, _ *mcp.CallToolRequest, a ticketArgs) (toolResult, any, error) {
	return get(s, s.db.Tickets, "ticket", a.ID), nil, nil
}

func (s *opsServer) updateTicket(_ context.Context, _ *mcp.CallToolRequest, a ticketArgs) (toolResult, any, error) {
	return edit(s, s.db.Tickets, "ticket", a.ID, func(t *Ticket) {
		if a.Status != "" {
			t.Status = a.Status
		}
		if a.Assignee != nil {
			t.Assignee = *a.Assignee
		}
	}), nil, nil
}

func (s *opsServer) listUsers(context.Context, *mcp.CallToolRequest, struct{}) (toolResult, any, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return jsonText(s.db.Users), nil, nil
}

func (s *opsServer) getUser(_ context.Context, _ *mcp.CallToolRequest, a userArgs) (toolResult, any, error) {
	return get(s, s.db.Users, "user", a.Name), nil, nil
}

func (s *opsServer) createUser(_ context.Context, _ *mcp.CallToolRequest, a userArgs) (toolResult, any, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.db.Users[a.Name] != nil {
		return toolErr(fmt.Errorf("user %s exists", a.Name)), nil, nil
	}
	u := &User{Name: a.Name, Email: a.Email, Active: true, Roles: append([]string(nil), a.Roles...)}
	if a.Role != "" && !slices.Contains(u.Roles, a.Role) {
		u.Roles = append(u.Roles, a.Role)
	}
	s.db.Users[a.Name] = u
	if err := s.save(); err != nil {
		return toolErr(err), nil, nil
	}
	return jsonText(u), nil, nil
}

func (s *opsServer) grantRole(_ context.Context, _ *mcp.CallToolRequest, a userArgs) (toolResult, any, error) {
	return edit(s, s.db.Users, "user", a.Name, func(u *User) {
		if !slices.Contains(u.Roles, a.Role) {
			u.Roles = append(u.Roles, a.Role)
		}
	}), nil, nil
}

func (s *opsServer) revokeRole(_ context.Context, _ *mcp.CallToolRequest, a userArgs) (toolResult, any, error) {
	return edit(s, s.db.Users, "user", a.Name, func(u *User) {
		u.Roles = slices.DeleteFunc(u.Roles, func(r string) bool { return r == a.Role })
	}), nil, nil
}

func (s *opsServer) deleteUser(_ context.Context, _ *mcp.CallToolRequest, a userArgs) (toolResult, any, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.db.Users[a.Name] == nil {
		return toolErr(fmt.Errorf("no user %s", a.Name)), nil, nil
	}
	delete(s.db.Users, a.Name)
	if err := s.save(); err != nil {
		return toolErr(err), nil, nil
	}
	return text("deleted user " + a.Name), nil, nil
}

// exportCustomerData pretends: the demo's exfiltration, which the rules
// flag, changes nothing.
func exportCustomerData(_ context.Context, _ *mcp.CallToolRequest, a bucketArgs) (toolResult, any, error) {
	return text(fmt.Sprintf("exported 48213 customer records to %s", a.Bucket)), nil, nil
}

// get shows the item of items named key, under the server's lock: the
// shape of every tool that reads one ticket or user.
func get[T any](s *opsServer, items map[string]*T, what, key string) toolResult {
	s.mu.Lock()
	defer s.mu.Unlock()
	item := items[key]
	if item == nil {
		return toolErr(fmt.Errorf("no %s %s", what, key))
	}
	return jsonText(item)
}

// edit changes the item of items named key, under the server's lock, and
// saves: the shape of every tool that changes one ticket or user.
func edit[T any](s *opsServer, items map[string]*T, what, key string, change func(*T)) toolResult {
	s.mu.Lock()
	defer s.mu.Unlock()
	item := items[key]
	if item == nil {
		return toolErr(fmt.Errorf("no %s %s", what, key))
	}
	change(item)
	if err := s.save(); err != nil {
		return toolErr(err)
	}
	return jsonText(item)
}

// file resolves a workspace path, refusing escapes from the workspace.
func (s *opsServer) file(rel string) (string, error) {
	base := filepath.Join(s.root, "files")
	p := filepath.Join(base, filepath.Clean("/"+rel))
	if !strings.HasPrefix(p, base+string(filepath.Separator)) {
		return "", fmt.Errorf("path %q is outside the workspace", rel)
	}
	return p, nil
}

func sortedTickets(m map[string]*Ticket) []*Ticket {
	out := make([]*Ticket, 0, len(m))
	for _, t := range m {
		out = append(out, t)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

func text(s string) *mcp.CallToolResult {
	return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: s}}}
}

func jsonText(v any) *mcp.CallToolResult {
	b, _ := json.MarshalIndent(v, "", "  ")
	return text(string(b))
}

func toolErr(err error) *mcp.CallToolResult {
	r := text(err.Error())
	r.IsError = true
	return r
}

// ServeStdio runs the demo server on stdin/stdout until the client hangs up.
func ServeStdio(ctx context.Context, root string) error {
	srv, err := NewServer(root)
	if err != nil {
		return err
	}
	return srv.Run(ctx, &mcp.StdioTransport{})
}
