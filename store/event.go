// Package store is mcptrail's record: an append-only, hash-chained log of
// events in one bbolt file, with indices for the investigator's queries.
//
// One process writes a store file at a time (bbolt holds an exclusive file
// lock); any number of read-only openers may read a file nobody writes.
package store

import (
	"encoding/json"
	"time"
)

// Event kinds.
const (
	KindRequest      = "request"      // a JSON-RPC request, recorded before it is forwarded
	KindCall         = "call"         // the outcome of a request: response, error, or failure to get one
	KindNotification = "notification" // a JSON-RPC notification, either direction
	KindSessionStart = "session_start"
	KindSessionEnd   = "session_end"
	KindAlert        = "alert"
	KindApproval     = "approval"
	KindRollbackStep = "rollback_step"
	KindBadInput     = "bad_input" // a message that could not be parsed or was too large
	KindRefusal      = "refusal"   // a request the HTTP gateway turned away (auth, origin, session, version, size, caps)
	// KindCheckpoint: a signed checkpoint of another store's chain, as a
	// collector merges it (Origin says whose; Detail holds the note). A
	// forwarder sends this store's own checkpoints under the same kind.
	KindCheckpoint = "checkpoint"

	// A call an approval rule holds: requested when the gateway holds it
	// (after its request event, before forwarding), then one decision:
	// approved (each approver's, the last releasing the call), denied (by
	// a person, or because the session ended) or expired (nobody decided
	// in time, or the daemon restarted while it was held). Call names the
	// held request; Approval says what was decided about which exact params.
	KindApprovalRequested = "approval_requested"
	KindApproved          = "approved"
	KindDenied            = "denied"
	KindExpired           = "expired"
)

// Outcomes of a call.
const (
	OutcomeOK             = "ok"
	OutcomeToolError      = "tool_error" // result with isError: true
	OutcomeRPCError       = "rpc_error"  // JSON-RPC error response
	OutcomeDenied         = "denied"
	OutcomeCancelled      = "cancelled"
	OutcomeTimeout        = "timeout"
	OutcomeTransportError = "transport_error"
	OutcomeUnknown        = "unknown"        // no response before a crash or shutdown
	OutcomeInputRequired  = "input_required" // 2026-07-28 MRTR: the call continues under a new id
)

// Where a call's class came from, most trusted first: an operator's rollback
// rule, the server's own tool annotations, or the MCP specification's
// defaults for a tool without annotations (readOnlyHint false,
// destructiveHint true), which make an unannotated tool a destructive write.
const (
	ClassSourceRule        = "rule"
	ClassSourceAnnotations = "annotations"
	ClassSourceSpecDefault = "spec default"
)

// SpecDestructive says whether a tool with these annotations may destroy
// data by the MCP specification's reading of its hints: destructiveHint
// means something only when readOnlyHint is false, and both default to the
// cautious value (not read-only, destructive) when the server omits them.
func SpecDestructive(a *Annotations) bool {
	if a == nil {
		return true
	}
	if a.ReadOnly != nil && *a.ReadOnly {
		return false
	}
	return a.Destructive == nil || *a.Destructive
}

// Message directions.
const (
	FromClient = "client" // agent → server
	FromServer = "server" // server → agent (sampling, elicitation, roots, notifications)
)

// Agent is who acted: the MCP client, as configured and as it claims to be.
type Agent struct {
	ID            string `json:"id,omitempty"`
	Name          string `json:"name,omitempty"`
	ClientName    string `json:"client_name,omitempty"`    // clientInfo.name: a claim
	ClientVersion string `json:"client_version,omitempty"` // clientInfo.version: a claim
}

// Principal is the identity the agent used.
type Principal struct {
	Subject      string `json:"subject,omitempty"`
	Issuer       string `json:"issuer,omitempty"`
	CredentialID string `json:"credential_id,omitempty"` // fingerprint of the token, never the token
	Kind         string `json:"kind,omitempty"`          // os_user, token, jwt, ssh_key
	Verified     bool   `json:"verified,omitempty"`      // proven by the gateway, not claimed by the agent
}

// Task is the unit of work a call belongs to.
type Task struct {
	ID       string `json:"id,omitempty"`
	Name     string `json:"name,omitempty"`
	Workflow string `json:"workflow,omitempty"`
	TraceID  string `json:"trace_id,omitempty"`
	SpanID   string `json:"span_id,omitempty"`
}

// Authorization says whether a human reviewed the action.
type Authorization struct {
	Reviewed bool      `json:"reviewed"`
	Approver string    `json:"approver,omitempty"`
	Method   string    `json:"method,omitempty"`
	Time     time.Time `json:"time,omitzero"`
	// Approval is the seq of the approved event that released the call,
	// on the outcome of a call an approval rule held.
	Approval uint64 `json:"approval,omitempty"`
}

// Annotations are the tool's hints as advertised by the server's tools/list.
// Pointers: absent is not the same as false.
type Annotations struct {
	ReadOnly    *bool `json:"read_only,omitempty"`
	Destructive *bool `json:"destructive,omitempty"`
	Idempotent  *bool `json:"idempotent,omitempty"`
	OpenWorld   *bool `json:"open_world,omitempty"`
}

// Event is one record. Field names are the exported JSON names (what `export --format jsonl` prints and
// sinks receive) that docs/architecture.md ("The record") describes; the store assigns Seq, PrevHash and Hash,
// and ID and Time when they are empty.
type Event struct {
	Seq        uint64    `json:"seq"`
	ID         string    `json:"id"`
	Time       time.Time `json:"time"`
	DurationNS int64     `json:"duration_ns,omitempty"`
	Kind       string    `json:"kind"`

	Session         string          `json:"session,omitempty"`
	Upstream        string          `json:"upstream,omitempty"`
	Transport       string          `json:"transport,omitempty"` // stdio, http
	ProtocolVersion string          `json:"protocol_version,omitempty"`
	From            string          `json:"from,omitempty"` // client or server: who sent the message
	Method          string          `json:"method,omitempty"`
	Tool            string          `json:"tool,omitempty"`
	JSONRPCID       json.RawMessage `json:"jsonrpc_id,omitempty"`
	Call            uint64          `json:"call,omitempty"`         // on an outcome: the seq of its request
	LogicalCall     uint64          `json:"logical_call,omitempty"` // MRTR: seq of the first request of the logical call

	Agent         *Agent         `json:"agent,omitempty"`
	Principal     *Principal     `json:"principal,omitempty"`
	OnBehalfOf    string         `json:"on_behalf_of,omitempty"`
	Task          *Task          `json:"task,omitempty"`
	Authorization *Authorization `json:"authorization,omitempty"`

	Params json.RawMessage `json:"params,omitempty"`
	Result json.RawMessage `json:"result,omitempty"`
	Error  json.RawMessage `json:"error,omitempty"` // the JSON-RPC error object, on rpc_error

	Outcome     string       `json:"outcome,omitempty"`
	Annotations *Annotations `json:"annotations,omitempty"`
	Class       string       `json:"class,omitempty"`        // read, write, delete, unknown
	ClassSource string       `json:"class_source,omitempty"` // where Class came from: ClassSource* below

	Prestate string `json:"prestate,omitempty"`
	Reverts  uint64 `json:"reverts,omitempty"`

	Detail string `json:"detail,omitempty"` // human-readable: why input was bad, what an alert saw
	Size   int    `json:"size,omitempty"`   // bytes of the original message

	Refusal *Refusal `json:"refusal,omitempty"` // on a refusal: what was turned away

	// Origin is set on a central store's copy of an event another
	// mcptrail recorded (the collector): the content above is the origin's,
	// Seq, PrevHash and Hash are this store's.
	Origin   *Origin   `json:"origin,omitempty"`
	Approval *Approval `json:"approval,omitempty"` // on approval_requested, approved, denied, expired

	PrevHash string `json:"prev_hash,omitempty"`
	Hash     string `json:"hash,omitempty"`
}

// Refusal is what the HTTP gateway turned away, on an event of kind
// refusal. Everything in it came from the client and is recorded as sent
// (bounded in length); a credential never is: the event's principal is the
// one a known credential proves, and an unknown one leaves no trace but
// the reason. A summary event (Suppressed > 0) counts the refusals of one
// source and reason that were not recorded one by one, over the event's
// duration_ns.
type Refusal struct {
	Reason     string `json:"reason"`                // auth, origin, host, session, version, request, size, cap, upstream
	Status     int    `json:"status"`                // the HTTP status answered
	RemoteAddr string `json:"remote_addr,omitempty"` // the client's IP address
	HTTPMethod string `json:"http_method,omitempty"`
	Path       string `json:"path,omitempty"`
	Origin     string `json:"origin,omitempty"`     // the Origin header
	Host       string `json:"host,omitempty"`       // the Host header
	SessionID  string `json:"session_id,omitempty"` // the Mcp-Session-Id the client sent
	Suppressed int64  `json:"suppressed,omitempty"` // on a summary: refusals not recorded one by one
}

// Origin names where a collected event was recorded: the origin store's
// id (its checkpoints' origin is "mcptrail/" + Store), the host its
// gateway ran on (as that gateway said), and the event's seq and hash in
// the origin's own chain. For a collected checkpoint, Seq is the
// checkpoint's size and Hash the chain head it signs.
type Origin struct {
	Store string `json:"store"`
	Host  string `json:"host,omitempty"`
	Seq   uint64 `json:"seq"`
	Hash  string `json:"hash,omitempty"`
}

// OriginEvent is the event as its origin recorded it: the collected copy
// without this store's chain fields or Origin, under the origin's seq.
// Nil Origin: the event itself (its own seq, without its hashes).
func (e *Event) OriginEvent() Event {
	c := *e
	if e.Origin != nil {
		c.Seq = e.Origin.Seq
	}
	c.Origin, c.PrevHash, c.Hash = nil, "", ""
	return c
}

// Label names a collected event's or session's origin for a listing: its
// host, else its store id; "-" for one recorded here (nil).
func (o *Origin) Label() string {
	switch {
	case o == nil:
		return "-"
	case o.Host != "":
		return o.Host
	}
	return o.Store
}

// Matches says whether an origin filter names o: its store id or its
// host. A nil Origin (an event recorded here) matches none.
func (o *Origin) Matches(filter string) bool {
	return o != nil && filter != "" && (o.Store == filter || o.Host == filter)
}

// Approval is what an approval event says about the call it holds (the
// event's Call). ParamsSHA256 and Policy bind a decision to that exact
// call: the SHA-256 of its params as sent (canonical JSON, before
// redaction) and the version of the approval rules it was held under.
type Approval struct {
	Rule         string    `json:"rule"`
	ParamsSHA256 string    `json:"params_sha256"`
	Policy       string    `json:"policy"`
	Required     int       `json:"required,omitempty"`  // approvals needed to release the call
	Approvers    []string  `json:"approvers,omitempty"` // identities that approved so far (SHA256:… key fingerprints, user:NAME)
	Deadline     time.Time `json:"deadline,omitzero"`   // when an undecided call expires
	Reason       string    `json:"reason,omitempty"`    // a denial's reason, as its approver gave it
	Resource     []string  `json:"resource,omitempty"`  // what the call would change, by its rollback rule's keys
}
