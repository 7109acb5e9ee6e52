// Package envelope is the gateway's one reading of an MCP message: what it
// is (request, notification, response), its id, method and the params
// members the gateway interprets. The Session records that reading and the
// transports route on it; nothing else in the gateway parses a message.
// ReadMessage keeps the reading with the bytes it was made of (Read), so a
// transport that reads a message to route it hands the same reading to the
// Session, and each message is read once.
//
// The reading is strict because the record must name what the server will
// act on, and servers read JSON differently: encoding/json (mark3labs/mcp-go
// and most Go servers) matches member names case-insensitively, folding
// "Name", "NAME" onto "name" (and U+212A KELVIN SIGN onto k), and keeps the
// last of duplicate members; JSON.parse (the TypeScript SDK) and Python's
// json are case-sensitive and keep the last; the go-sdk is case-sensitive.
// Where these readers could disagree, or where the gateway and a server
// could, the message is refused before it is forwarded, after I-JSON (RFC
// 7493): no duplicate member names (compared after unescaping), no member
// spelled like a protocol member in another case or with escapes, no
// invalid UTF-8, no lone surrogate escapes, no nesting deeper than the
// SDKs take, and ids only in the forms every server echoes back alike.
package envelope

import (
	"bytes"
	"encoding/json"
	"fmt"
	"sync"
	"unicode"
	"unicode/utf8"

	segjson "github.com/segmentio/encoding/json"

	"github.com/mcptrail/mcptrail/internal/rawjson"
)

// DefaultMaxDepth bounds nesting when the configuration says nothing. The
// official SDKs refuse deeper messages at 1,000 (go-sdk), 200 (the Python
// SDK, through pydantic's JSON parser) and the TypeScript SDK's validators
// recurse without a bound; 128 leaves a tool's arguments 125 levels under
// the envelope, params and arguments.
const DefaultMaxDepth = 128

// JSON-RPC error codes the gateway answers refusals with.
const (
	CodeParseError     = -32700
	CodeInvalidRequest = -32600
)

// Error is a refused message: Reason says why (it goes to the record and to
// the client), Code is the JSON-RPC error code, ID the message's id when it
// could be read (for the error response), else nil.
type Error struct {
	Code   int
	Reason string
	ID     []byte
}

func (e *Error) Error() string { return e.Reason }

func refuse(reason string, args ...any) *Error {
	return &Error{Code: CodeInvalidRequest, Reason: fmt.Sprintf(reason, args...)}
}

// Message is one message as the gateway reads it. Raw values (Params,
// Result, Error, Meta, ...) are views of the bytes given to Parse.
type Message struct {
	// ID is the id in its canonical form, the one a server echoes back: a
	// string id without escapes or an integer as written, else the string
	// re-encoded. nil when the message has none (a notification).
	ID        []byte
	Method    string
	HasMethod bool
	Params    []byte
	Result    []byte
	Error     []byte

	// Members of params the gateway interprets.
	Name, URI, RequestState, Reason, ProtocolVersion string
	ClientName, ClientVersion                        string // initialize's clientInfo
	InputResponses                                   []byte
	RequestID                                        []byte // notifications/cancelled's, canonical
	ProgressToken                                    []byte // notifications/progress's, canonical

	// Members of params._meta.
	Meta                []byte // the whole _meta object, nil when absent
	MetaProgressToken   []byte // canonical
	MetaProtocolVersion string
	MetaClientName      string
	MetaClientVersion   string
	SubscriptionID      []byte
}

// IsRequest reports whether m is a request (it has a method and an id).
func (m *Message) IsRequest() bool { return m.HasMethod && m.ID != nil }

// IsNotification reports whether m is a notification.
func (m *Message) IsNotification() bool { return m.HasMethod && m.ID == nil }

// IsResponse reports whether m is a response (no method).
func (m *Message) IsResponse() bool { return !m.HasMethod }

// The protocol's member names, per level. A member that folds onto one of
// them (as encoding/json folds) but is not it byte for byte is refused.
var (
	envelopeMembers = []string{"jsonrpc", "id", "method", "params", "result", "error"}
	paramsMembers   = []string{"name", "arguments", "_meta", "uri", "cursor", "requestState", "inputResponses",
		"protocolVersion", "clientInfo", "capabilities", "requestId", "reason", "progressToken", "progress",
		"total", "message", "task", "level", "ref", "argument"}
	metaMembers = []string{"progressToken", "traceparent", "baggage", "io.mcptrail/task", "io.mcptrail/on_behalf_of",
		"io.modelcontextprotocol/protocolVersion", "io.modelcontextprotocol/clientInfo",
		"io.modelcontextprotocol/clientCapabilities", "io.modelcontextprotocol/logLevel",
		"io.modelcontextprotocol/subscriptionId"}
	clientInfoMembers = []string{"name", "version", "title"}
	taskMembers       = []string{"id", "name", "workflow"}
)

// Check refuses what no message may hold anywhere: text that is not JSON,
// invalid UTF-8, a lone surrogate escape, nesting deeper than maxDepth.
//
// Past a parse error (CodeParseError) the text is valid JSON, which Parse
// can still read for its id.
func Check(raw []byte, maxDepth int) *Error {
	if !segjson.Valid(raw) {
		return &Error{Code: CodeParseError, Reason: "malformed JSON"}
	}
	if !utf8.Valid(raw) {
		return refuse("invalid UTF-8")
	}
	if maxDepth <= 0 {
		maxDepth = DefaultMaxDepth
	}
	if rawjson.Deeper(raw, maxDepth) {
		return refuse("nesting deeper than %d levels", maxDepth)
	}
	if bytes.Contains(raw, []byte(`\u`)) && rawjson.LoneSurrogate(raw) {
		return refuse("a lone UTF-16 surrogate escape")
	}
	return nil
}

// Parse reads one message (not a batch: see Elements) that Check accepted.
// A refused message gives an *Error.
func Parse(raw []byte) (Message, *Error) {
	var m Message
	var version, method, id []byte
	var hasID, hasResult, hasError bool
	var err *Error
	var seen names
	ok := rawjson.Members(raw, func(k []byte, esc bool, v []byte) bool {
		var name string
		if name, err = seen.add(k, esc, envelopeMembers, "the envelope"); err != nil {
			return false
		}
		switch name {
		case "jsonrpc":
			version = v
		case "id":
			id, hasID = v, true
		case "method":
			method, m.HasMethod = v, true
		case "params":
			m.Params = v
		case "result":
			m.Result, hasResult = v, true
		case "error":
			m.Error, hasError = v, true
		}
		return true
	})
	if !ok {
		return m, refuse("not a JSON-RPC message: not an object")
	}
	if err != nil {
		return m, err
	}
	if hasID {
		if m.ID, err = CanonicalID(id); err != nil {
			return m, err
		}
		if m.ID == nil {
			if m.HasMethod {
				return m, refuse("a request's id must not be null")
			}
			return m, refuse("a response needs an id")
		}
	}
	if s, ok := stringValue(version); !ok || s != "2.0" {
		return m, withID(refuse(`invalid message version tag %s; expected "2.0"`, clip(version)), m.ID)
	}
	if m.HasMethod {
		s, ok := methodName(method)
		if !ok {
			return m, withID(refuse("method is not a string"), m.ID)
		}
		m.Method = s
		if hasResult || hasError {
			return m, withID(refuse("a request or notification with a result or error"), m.ID)
		}
		if len(m.Params) > 0 && m.Params[0] != '{' && m.Params[0] != '[' && string(m.Params) != "null" {
			return m, withID(refuse("params is neither an object nor an array"), m.ID)
		}
	}
	// params is read wherever it is an object, a response's too: no
	// message the gateway passes on may read two ways.
	if len(m.Params) > 0 && m.Params[0] == '{' {
		if err := m.readParams(); err != nil {
			return m, withID(err, m.ID)
		}
	}
	if m.HasMethod {
		return m, nil
	}
	if !hasID {
		return m, refuse("a response needs an id")
	}
	if hasResult && hasError {
		return m, withID(refuse("a response with both a result and an error"), m.ID)
	}
	return m, nil
}

func withID(e *Error, id []byte) *Error { e.ID = id; return e }

// clip keeps a value quoted in a reason short.
func clip(v []byte) string {
	if len(v) > 40 {
		return string(v[:40]) + "..."
	}
	if len(v) == 0 {
		return "(none)"
	}
	return string(v)
}

func (m *Message) readParams() *Error {
	var err *Error
	var seen names
	var clientInfo []byte
	rawjson.Members(m.Params, func(k []byte, esc bool, v []byte) bool {
		var name string
		if name, err = seen.add(k, esc, paramsMembers, "params"); err != nil {
			return false
		}
		switch name {
		case "name":
			m.Name, _ = stringValue(v)
		case "uri":
			m.URI, _ = stringValue(v)
		case "requestState":
			m.RequestState, _ = stringValue(v)
		case "reason":
			m.Reason, _ = stringValue(v)
		case "protocolVersion":
			m.ProtocolVersion, _ = stringValue(v)
		case "inputResponses":
			m.InputResponses = v
		case "arguments":
			err = checkArguments(v)
		case "clientInfo":
			clientInfo = v
		case "requestId":
			m.RequestID, err = CanonicalID(v)
		case "progressToken":
			m.ProgressToken, err = CanonicalID(v)
		case "_meta":
			if v[0] == '{' {
				m.Meta = v
			}
		}
		return err == nil
	})
	if err != nil {
		return err
	}
	if m.ClientName, m.ClientVersion, err = readClientInfo(clientInfo, "params.clientInfo"); err != nil {
		return err
	}
	if m.Meta != nil {
		return m.readMeta()
	}
	return nil
}

func (m *Message) readMeta() *Error {
	var err *Error
	var seen names
	var clientInfo []byte
	rawjson.Members(m.Meta, func(k []byte, esc bool, v []byte) bool {
		var name string
		if name, err = seen.add(k, esc, metaMembers, "_meta"); err != nil {
			return false
		}
		switch name {
		case "progressToken":
			m.MetaProgressToken, err = CanonicalID(v)
		case "io.modelcontextprotocol/protocolVersion":
			m.MetaProtocolVersion, _ = stringValue(v)
		case "io.modelcontextprotocol/clientInfo":
			clientInfo = v
		case "io.modelcontextprotocol/subscriptionId":
			m.SubscriptionID = v
		case "io.mcptrail/task":
			if v[0] == '{' {
				var tseen names
				rawjson.Members(v, func(k []byte, esc bool, _ []byte) bool {
					_, err = tseen.add(k, esc, taskMembers, "_meta io.mcptrail/task")
					return err == nil
				})
			}
		}
		return err == nil
	})
	if err != nil {
		return err
	}
	m.MetaClientName, m.MetaClientVersion, err = readClientInfo(clientInfo, "_meta clientInfo")
	return err
}

func readClientInfo(v []byte, where string) (name, version string, err *Error) {
	if len(v) == 0 || v[0] != '{' {
		return "", "", nil
	}
	var seen names
	rawjson.Members(v, func(k []byte, esc bool, v []byte) bool {
		var n string
		if n, err = seen.add(k, esc, clientInfoMembers, where); err != nil {
			return false
		}
		switch n {
		case "name":
			name, _ = stringValue(v)
		case "version":
			version, _ = stringValue(v)
		}
		return true
	})
	return name, version, err
}

// checkArguments refuses tool or prompt arguments that servers would read
// two ways. A tool's parameters bind by name: encoding/json (mark3labs/mcp-go
// and go-sdk handlers with typed arguments) matches a struct field
// case-insensitively and keeps the last duplicate, JSON.parse keeps the
// last of the exact name, and the gateway's own readers of arguments —
// rollback rules' keys such as args.path, the console — take them exactly.
// With {"path":"/a","Path":"/etc/passwd"} a Go server writes /etc/passwd
// while the record and the rollback capture name /a. So a member named
// twice (after unescaping) is refused at any depth, as I-JSON refuses it,
// and two top-level members that fold onto each other are refused too.
// Below the top level a case variant is left alone: there a map (an
// environment, headers) may rightly hold PATH and Path.
func checkArguments(v []byte) *Error {
	d := argChecks.Get().(*duplicates)
	d.reset(len(v) > 0 && v[0] == '{')
	var err *Error
	if rawjson.WalkKeys(v, d) {
		err = d.folded
	} else {
		err = d.err // a duplicate, reported before any case variant
	}
	d.reset(false) // holds no views of v in the pool
	argChecks.Put(d)
	return err
}

// argChecks holds the visitors checkArguments walks arguments with, for
// reuse: a visitor escapes to the heap through the KeyVisitor interface,
// and allocating one, and a names set for each object met, was 2 to 4
// allocations and 300 to 700 bytes of every tools/call.
var argChecks = sync.Pool{New: func() any { return new(duplicates) }}

// duplicates is a rawjson.KeyVisitor that refuses a member named twice
// (after unescaping) in any object, and notes the first member of the
// top-level object (when top) that folds onto another: the names of each
// open object, the innermost last. The walk stops at a duplicate, so a
// duplicate anywhere is reported before a case variant, as when the two
// checks walked the arguments one after the other.
type duplicates struct {
	open   []names
	depth  int
	top    bool  // v is an object: its members are also compared folded
	fold   names // the top-level names, folded
	err    *Error
	folded *Error // the first case variant at the top level
}

func (d *duplicates) reset(top bool) {
	clear(d.open)
	d.depth, d.top, d.fold, d.err, d.folded = 0, top, names{}, nil, nil
}

func (d *duplicates) Open() {
	if d.depth == len(d.open) {
		d.open = append(d.open, names{})
	} else {
		d.open[d.depth] = names{}
	}
	d.depth++
}

func (d *duplicates) Close() { d.depth-- }

func (d *duplicates) Key(k []byte, escaped bool) bool {
	key := k
	if escaped {
		key = []byte(rawjson.Key(k, true))
	}
	if !d.open[d.depth-1].insert(key) {
		d.err = refuse("duplicate member %q in arguments", key)
		return false
	}
	if d.top && d.depth == 1 && d.folded == nil && !d.fold.insert(foldKey(key)) {
		d.folded = refuse("member %q in arguments differs from another only in case, which servers read differently", key)
	}
	return true
}

// foldKey is key as encoding/json compares names: ASCII letters in lower
// case, any other rune as the least of its simple-folding orbit (so U+212A
// KELVIN SIGN and K both give k). A key with nothing to fold is returned
// as it is, without allocating.
func foldKey(key []byte) []byte {
	plain := true
	for _, c := range key {
		if c >= utf8.RuneSelf || ('A' <= c && c <= 'Z') {
			plain = false
			break
		}
	}
	if plain {
		return key
	}
	out := make([]byte, 0, len(key))
	for _, r := range string(key) {
		least := r
		for f := unicode.SimpleFold(r); f != r; f = unicode.SimpleFold(f) {
			least = min(least, f)
		}
		out = utf8.AppendRune(out, unicode.ToLower(least))
	}
	return out
}

// names holds the member names of one object seen so far, as views of
// the message (decoded copies for escaped ones): most objects have a
// handful, and past that a map keeps the duplicate check linear.
type names struct {
	small [8][]byte
	n     int
	big   map[string]struct{}
}

// add takes the next key of an object whose protocol members are proto. It
// returns the protocol member the key is ("" for any other member), or
// refuses a duplicate, an escaped protocol member, or a member that folds
// onto one without being it.
func (s *names) add(k []byte, escaped bool, proto []string, where string) (string, *Error) {
	key := k
	if escaped {
		key = []byte(rawjson.Key(k, true))
	}
	if !s.insert(key) {
		return "", refuse("duplicate member %q in %s", key, where)
	}
	for _, p := range proto {
		if string(key) == p {
			if escaped {
				return "", refuse("member %q in %s is spelled with escapes", key, where)
			}
			return p, nil
		}
	}
	// Not a protocol member: refuse one that a case-insensitive decoder
	// would take for one. encoding/json matches names as bytes.EqualFold
	// does, whose simple folding also maps U+212A KELVIN SIGN to k and
	// U+017F LONG S to s; a name that is all ASCII can only fold onto a
	// name of its own length.
	ascii := isASCII(key)
	for _, p := range proto {
		if foldsOnto(key, p, ascii) {
			return "", refuse("member %q in %s is not %q, which some servers would read it as", key, where, p)
		}
	}
	return "", nil
}

func (s *names) insert(key []byte) bool {
	if s.big != nil {
		if _, dup := s.big[string(key)]; dup {
			return false
		}
		s.big[string(key)] = struct{}{}
		return true
	}
	for _, k := range s.small[:s.n] {
		if bytes.Equal(k, key) {
			return false
		}
	}
	if s.n < len(s.small) {
		s.small[s.n] = key
		s.n++
		return true
	}
	s.big = make(map[string]struct{}, 2*len(s.small))
	for _, k := range s.small {
		s.big[string(k)] = struct{}{}
	}
	s.big[string(key)] = struct{}{}
	return true
}

func isASCII(b []byte) bool {
	for _, c := range b {
		if c >= utf8.RuneSelf {
			return false
		}
	}
	return true
}

func equalFoldASCII(a []byte, b string) bool {
	for i := range a {
		x, y := a[i], b[i]
		if 'A' <= x && x <= 'Z' {
			x += 'a' - 'A'
		}
		if 'A' <= y && y <= 'Z' {
			y += 'a' - 'A'
		}
		if x != y {
			return false
		}
	}
	return true
}

// maxSafeInteger is the largest integer every reader of an id holds
// exactly: JavaScript's numbers and encoding/json's float64 round past it.
const maxSafeInteger = 1<<53 - 1

// CanonicalID returns a JSON-RPC id (or progress token) in the form a
// server echoes it back, so that a request and its response meet under one
// key and the record holds the id the server answered: nil for null, a
// string as its shortest JSON encoding, an integer as written. It refuses
// what servers echo back differently: numbers with a fraction or exponent
// (1.0, 1e2: encoding/json and JSON.parse give 1 and 100, a Go server that
// keeps json.Number gives 1.0 and 1e2), -0 (JSON.parse gives 0, a float64
// -0), integers past 2^53 (rounded by both), and anything that is neither a
// string nor a number. MCP ids are strings or integers.
func CanonicalID(v []byte) ([]byte, *Error) {
	if len(v) == 0 || string(v) == "null" {
		return nil, nil
	}
	switch c := v[0]; {
	case c == '"':
		if bytes.IndexByte(v, '\\') < 0 {
			return v, nil
		}
		s, _ := stringValue(v)
		var buf bytes.Buffer
		enc := json.NewEncoder(&buf)
		enc.SetEscapeHTML(false)
		_ = enc.Encode(s)
		return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
	case c == '-' || (c >= '0' && c <= '9'):
		digits := v
		if c == '-' {
			digits = v[1:]
		}
		if len(digits) == 0 || len(digits) > 16 || (digits[0] == '0' && (len(digits) > 1 || c == '-')) {
			return nil, refuse("id %s is not an integer every server reads alike", clip(v))
		}
		var n int64
		for _, d := range digits {
			if d < '0' || d > '9' {
				return nil, refuse("id %s is not an integer every server reads alike", clip(v))
			}
			n = n*10 + int64(d-'0')
		}
		if n > maxSafeInteger {
			return nil, refuse("id %s is beyond 2^53, which servers round", clip(v))
		}
		return v, nil
	}
	return nil, refuse("id %s is neither a string nor a number", clip(v))
}

// commonMethods are the methods of most messages, whose names Parse hands
// out as these strings rather than as a copy of each message's: the name
// outlives the message (its call's record keeps it), and a copy was an
// allocation per call.
var commonMethods = [...]string{"tools/call", "notifications/progress", "notifications/cancelled", "resources/read", "prompts/get", "tools/list", "ping"}

// methodName is stringValue of a method member.
func methodName(v []byte) (string, bool) {
	if len(v) >= 2 && v[0] == '"' {
		for _, c := range commonMethods {
			if string(v[1:len(v)-1]) == c {
				return c, true
			}
		}
	}
	return stringValue(v)
}

// stringValue decodes a JSON string that Check accepted.
func stringValue(v []byte) (string, bool) {
	if len(v) < 2 || v[0] != '"' {
		return "", false
	}
	return rawjson.Key(v[1:len(v)-1], bytes.IndexByte(v, '\\') >= 0), true
}

// Elements returns the elements of a JSON-RPC batch (a JSON array that
// Check accepted).
func Elements(raw []byte) [][]byte {
	var out [][]byte
	rawjson.Elements(raw, func(v []byte) { out = append(out, v) })
	return out
}

// foldsOnto reports whether key matches the protocol member p as
// encoding/json matches names (bytes.EqualFold).
func foldsOnto(key []byte, p string, ascii bool) bool {
	if ascii {
		return len(key) == len(p) && equalFoldASCII(key, p)
	}
	return bytes.EqualFold(key, []byte(p))
}
