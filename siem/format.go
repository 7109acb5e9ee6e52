// Package siem puts mcptrail's record into the security team's tools: it
// encodes events in the formats SIEMs read (OCSF 1.x, Elastic ECS, ArcSight
// CEF, the record's own JSON lines), frames them for transport (RFC 5424
// syslog with octet counting, Splunk HEC envelopes, webhook bodies), and
// forwards them from the store to sinks named by URLs, each with a cursor
// persisted in the store: at-least-once, in seq order, retried with backoff,
// and never on the gateway's call path.
//
// The mappings are documented in docs/siem.md.
package siem

import (
	"encoding/json"
	"fmt"
	"net"
	"net/url"
	"os"
	"strconv"
	"strings"

	"github.com/mcptrail/mcptrail/internal/termsafe"
	"github.com/mcptrail/mcptrail/store"
)

// Format names an encoding of events.
type Format string

// The formats.
const (
	FormatOCSF  Format = "ocsf"  // OCSF 1.x: API Activity (6003), Detection Finding (2004) for alerts
	FormatECS   Format = "ecs"   // Elastic Common Schema JSON with OpenTelemetry MCP fields
	FormatCEF   Format = "cef"   // ArcSight Common Event Format, one line
	FormatJSONL Format = "jsonl" // the record's own JSON (mcptrail export --format jsonl)
)

// ParseFormat checks a format name.
func ParseFormat(s string) (Format, error) {
	switch f := Format(strings.ToLower(s)); f {
	case FormatOCSF, FormatECS, FormatCEF, FormatJSONL:
		return f, nil
	}
	return "", fmt.Errorf("unknown format %q (want ocsf, ecs, cef or jsonl)", s)
}

// JSON reports whether the format's records are JSON objects.
func (f Format) JSON() bool { return f != FormatCEF }

// Product identifies mcptrail in every format.
const (
	ProductName = "mcptrail"
	VendorName  = "mcptrail"
)

// Options shape the encoders. The zero value works: the hostname is looked
// up and the version is "dev".
type Options struct {
	Version  string // mcptrail's version (metadata.product.version, CEF Device Version)
	Hostname string // the gateway's host; default os.Hostname
	// Upstreams maps an upstream name to its URL (HTTP upstreams), so that
	// dst_endpoint / destination can name the server's host and port.
	Upstreams map[string]string
	// Bodies includes the (already redacted) params and result of calls.
	// Off by default for sinks: tool arguments are sensitive, and the
	// OpenTelemetry conventions make them opt-in.
	Bodies bool
	// Origin is the store's id, and OriginKey the verifier key of its
	// checkpoints: the Kafka sink keys records by the one and publishes
	// the other beside each checkpoint, so that a collector can pin it.
	Origin    string
	OriginKey string
	// Prestates reads the pre-state stored for a call (store.Prestate):
	// the Kafka sink (jsonl) publishes each one after the outcome that
	// names it, so that a central mcptrail can plan a reversal. Nil: none
	// are published.
	Prestates func(call uint64) ([]byte, error)
}

func (o Options) withDefaults() Options {
	if o.Version == "" {
		o.Version = "dev"
	}
	if o.Hostname == "" {
		o.Hostname = Hostname()
	}
	return o
}

// Hostname is this machine's name, "localhost" if it has none.
func Hostname() string {
	h, err := os.Hostname()
	if err != nil || h == "" {
		return "localhost"
	}
	return h
}

// Encoder turns one event into one record (without a trailing newline).
type Encoder interface {
	Encode(ev *store.Event) ([]byte, error)
	Format() Format
}

// NewEncoder returns the encoder of format f.
func NewEncoder(f Format, o Options) (Encoder, error) {
	o = o.withDefaults()
	switch f {
	case FormatOCSF:
		return &ocsfEncoder{o: o}, nil
	case FormatECS:
		return &ecsEncoder{o: o}, nil
	case FormatCEF:
		return &cefEncoder{o: o}, nil
	case FormatJSONL:
		return jsonlEncoder{}, nil
	}
	return nil, fmt.Errorf("unknown format %q", f)
}

type jsonlEncoder struct{}

func (jsonlEncoder) Format() Format { return FormatJSONL }

func (jsonlEncoder) Encode(ev *store.Event) ([]byte, error) { return marshal(ev) }

// marshal is json.Marshal without HTML escaping (SIEM records are not HTML),
// with the characters a terminal acts on escaped as JSON escapes them
// (termsafe.JSON): lossless, and safe to tail, grep and page.
func marshal(v any) ([]byte, error) {
	b, err := marshalRaw(v)
	if err != nil {
		return nil, err
	}
	return termsafe.JSON(b), nil
}

// marshalRaw is json.Marshal without HTML escaping.
func marshalRaw(v any) ([]byte, error) {
	var b strings.Builder
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	s := b.String()
	return []byte(s[:len(s)-1]), nil
}

// AlertInfo is what an alert event carries in its params: the contract
// between detect, which writes it, and the formats, which map it. Only the
// fields the formats need are named here; detect documents the rest.
type AlertInfo struct {
	Rule struct {
		ID          string `json:"id"`
		Title       string `json:"title"`
		Type        string `json:"type"`
		Severity    string `json:"severity"`
		Description string `json:"description,omitempty"`
	} `json:"rule"`
	Group map[string]string `json:"group,omitempty"`
	Value string            `json:"value,omitempty"`
	Count int               `json:"count,omitempty"`
	Calls []uint64          `json:"calls,omitempty"`
}

// alertInfo decodes an alert's params; a bare alert gets a generic rule.
func alertInfo(ev *store.Event) AlertInfo {
	var a AlertInfo
	_ = json.Unmarshal(ev.Params, &a)
	if a.Rule.ID == "" {
		a.Rule.ID = "alert"
	}
	if a.Rule.Title == "" {
		a.Rule.Title = ev.Detail
		if a.Rule.Title == "" {
			a.Rule.Title = "mcptrail alert"
		}
	}
	if a.Rule.Severity == "" {
		a.Rule.Severity = "medium"
	}
	return a
}

// rpcError reads the code and message of a JSON-RPC error object.
func rpcError(raw json.RawMessage) (code int64, msg string, ok bool) {
	if len(raw) == 0 {
		return 0, "", false
	}
	var e struct {
		Code    *int64 `json:"code"`
		Message string `json:"message"`
	}
	if json.Unmarshal(raw, &e) != nil || e.Code == nil {
		return 0, "", false
	}
	return *e.Code, e.Message, true
}

// operation is what the event did: the tool, else the method, else its kind.
func operation(ev *store.Event) string {
	switch {
	case ev.Tool != "":
		return ev.Tool
	case ev.Method != "":
		return ev.Method
	}
	return ev.Kind
}

// callSeq is the seq of the request an event belongs to (its own for a
// request), 0 when it is not part of a call.
func callSeq(ev *store.Event) uint64 {
	switch {
	case ev.Kind == store.KindRequest:
		return ev.Seq
	case ev.Call != 0:
		return ev.Call
	}
	return 0
}

// Outcome groups.
func failed(outcome string) bool {
	switch outcome {
	case "", store.OutcomeOK, store.OutcomeInputRequired, store.OutcomeUnknown:
		return false
	}
	return true
}

// endpoint is where an upstream lives, as far as the gateway knows.
type endpoint struct {
	host string
	port int
}

func (o *Options) upstreamEndpoint(ev *store.Event) endpoint {
	if raw, ok := o.Upstreams[ev.Upstream]; ok {
		if u, err := url.Parse(raw); err == nil && u.Host != "" {
			host, port := u.Hostname(), u.Port()
			n, _ := strconv.Atoi(port)
			if n == 0 {
				switch u.Scheme {
				case "https":
					n = 443
				case "http":
					n = 80
				}
			}
			return endpoint{host: host, port: n}
		}
	}
	if ev.Transport == "stdio" {
		// A stdio server is the gateway's child process: same host.
		return endpoint{host: o.Hostname}
	}
	return endpoint{}
}

// isIP reports whether host is an IP address (OCSF and ECS want those in
// ip fields, names in hostname fields).
func isIP(host string) bool { return net.ParseIP(host) != nil }

// severity levels of rules, in order.
var severities = []string{"informational", "low", "medium", "high", "critical"}

func severityRank(s string) int {
	for i, v := range severities {
		if strings.EqualFold(v, s) {
			return i
		}
	}
	return 2
}
