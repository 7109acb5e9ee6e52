package siem

import (
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/mcptrail/mcptrail/internal/termsafe"
	"github.com/mcptrail/mcptrail/store"
)

// RFC 5424 syslog:
//
//	<PRI>1 TIMESTAMP HOSTNAME APP-NAME PROCID MSGID [SD-ID PARAM="VALUE" ...] MSG
//
// PRI = facility × 8 + severity. HOSTNAME, APP-NAME, PROCID and MSGID are
// printable US-ASCII without spaces (at most 255, 48, 128 and 32
// characters), "-" when nil. Structured-data values escape '"', '\' and
// ']'. Over TCP and TLS each message is framed by octet counting (RFC 6587
// 3.4.1, RFC 5425): its length in bytes, a space, the message.

// Syslog facilities and severities used.
const (
	FacilityLogAudit = 13 // "log audit": mcptrail's default
	FacilityLocal0   = 16

	sevCritical = 2
	sevError    = 3
	sevWarning  = 4
	sevNotice   = 5
	sevInfo     = 6
)

var facilityNames = map[string]int{
	"kern": 0, "user": 1, "mail": 2, "daemon": 3, "auth": 4, "syslog": 5, "lpr": 6, "news": 7,
	"uucp": 8, "cron": 9, "authpriv": 10, "ftp": 11, "ntp": 12, "audit": 13, "logaudit": 13, "alert": 14,
	"clock": 15, "local0": 16, "local1": 17, "local2": 18, "local3": 19, "local4": 20, "local5": 21,
	"local6": 22, "local7": 23,
}

// ParseFacility reads a facility name or number.
func ParseFacility(s string) (int, error) {
	if n, ok := facilityNames[strings.ToLower(s)]; ok {
		return n, nil
	}
	if n, err := strconv.Atoi(s); err == nil && n >= 0 && n <= 23 {
		return n, nil
	}
	return 0, fmt.Errorf("unknown syslog facility %q (want a name such as local0 or audit, or 0-23)", s)
}

// DefaultSDID is the structured-data element mcptrail writes. 32473 is the
// private enterprise number RFC 5612 reserves for documentation; set your
// organization's own with the sink's sd_id option.
const DefaultSDID = "mcptrail@32473"

// SyslogFramer writes RFC 5424 messages.
type SyslogFramer struct {
	Facility int
	Hostname string
	AppName  string
	ProcID   string
	SDID     string // "" for DefaultSDID, "-" for none
}

// NewSyslogFramer returns a framer with mcptrail's defaults.
func NewSyslogFramer() *SyslogFramer {
	return &SyslogFramer{Facility: FacilityLogAudit, Hostname: Hostname(), AppName: ProductName, ProcID: strconv.Itoa(os.Getpid())}
}

// syslogSeverity: alerts by rule (critical → crit, high → err, medium →
// warning, low → notice), failed or denied calls and bad input warning,
// everything else informational.
func syslogSeverity(ev *store.Event) int {
	switch {
	case ev.Kind == store.KindAlert:
		return []int{sevInfo, sevNotice, sevWarning, sevError, sevCritical}[severityRank(alertInfo(ev).Rule.Severity)]
	case failed(ev.Outcome) || ev.Kind == store.KindBadInput || ev.Kind == store.KindRefusal || approvalRefused(ev):
		return sevWarning
	}
	return sevInfo
}

// Message returns the RFC 5424 message for ev with msg as its MSG
// (without framing).
func (f *SyslogFramer) Message(ev *store.Event, msg []byte) []byte {
	b := make([]byte, 0, len(msg)+160)
	b = append(b, '<')
	b = strconv.AppendInt(b, int64(f.Facility*8+syslogSeverity(ev)), 10)
	b = append(b, ">1 "...)
	// TIME-SECFRAC allows at most six digits.
	b = ev.Time.UTC().AppendFormat(b, "2006-01-02T15:04:05.000000Z07:00")
	b = append(b, ' ')
	b = append(b, headerField(f.Hostname, 255)...)
	b = append(b, ' ')
	b = append(b, headerField(f.AppName, 48)...)
	b = append(b, ' ')
	b = append(b, headerField(f.ProcID, 128)...)
	b = append(b, ' ')
	b = append(b, headerField(ev.Kind, 32)...)
	b = append(b, ' ')
	sdid := f.SDID
	if sdid == "" {
		sdid = DefaultSDID
	}
	if sdid == "-" {
		b = append(b, '-')
	} else {
		b = append(b, '[')
		b = append(b, headerField(sdid, 32)...)
		if ev.Kind == KindCheckpoint {
			b = appendParam(b, "size", strconv.FormatUint(ev.Seq, 10))
		} else {
			b = appendParam(b, "seq", strconv.FormatUint(ev.Seq, 10))
		}
		b = appendParam(b, "kind", ev.Kind)
		if ev.Session != "" {
			b = appendParam(b, "session", ev.Session)
		}
		b = append(b, ']')
	}
	if len(msg) > 0 {
		b = append(b, ' ')
		b = append(b, msg...)
	}
	return b
}

// Frame returns msg with octet-counting framing.
func Frame(msg []byte) []byte {
	b := make([]byte, 0, len(msg)+8)
	b = strconv.AppendInt(b, int64(len(msg)), 10)
	b = append(b, ' ')
	return append(b, msg...)
}

// headerField makes s a valid header field: printable US-ASCII other than
// space (others become '_'), cut to max, "-" when empty. An SD-ID or
// PARAM-NAME also may not hold '=', ']' or '"'; the callers pass names
// that don't.
func headerField(s string, max int) string {
	if s == "" {
		return "-"
	}
	ok := len(s) <= max
	for i := 0; ok && i < len(s); i++ {
		ok = s[i] > 32 && s[i] < 127
	}
	if ok {
		return s
	}
	b := []byte(s)
	for i, c := range b {
		if c <= 32 || c >= 127 {
			b[i] = '_'
		}
	}
	if len(b) > max {
		b = b[:max]
	}
	return string(b)
}

// appendParam appends ` name="value"` with the value escaped: control
// characters, C1, bidi controls and invalid UTF-8 made visible (termsafe),
// then '"', '\' and ']' escaped as RFC 5424 section 6.3.3 says.
func appendParam(b []byte, name, value string) []byte {
	b = append(b, ' ')
	b = append(b, name...)
	b = append(b, '=', '"')
	value = termsafe.Line(value)
	for i := 0; i < len(value); i++ {
		switch c := value[i]; c {
		case '"', '\\', ']':
			b = append(b, '\\', c)
		default:
			b = append(b, c)
		}
	}
	return append(b, '"')
}
