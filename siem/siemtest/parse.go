// Package siemtest holds what tests of the SIEM side share: parsers for
// CEF and RFC 5424 written from the specifications rather than from the
// encoders (what the encoders write must come back out of them unchanged),
// checkers of exported events against the ECS and OCSF schema files and
// the CEF key dictionary (ECSChecker, OCSFChecker, CEFDictionary), and a
// real rsyslogd to send to (StartRsyslog).
package siemtest

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// CEFRecord is a parsed CEF line.
type CEFRecord struct {
	Version int
	Header  [6]string // vendor, product, version, class id, name, severity
	Ext     map[string]string
	Keys    []string // extension keys in order
}

// ParseCEF parses "CEF:0|...". Header fields end at an unescaped '|' and
// unescape \| and \\ (a backslash before anything else is a parse error:
// the spec allows no other escape there). The extension is a sequence of
// key=value separated by single spaces, where a key is the run of
// non-space characters before an unescaped '=', and a value runs to the
// space before the next key; values unescape \\, \=, \n and \r.
func ParseCEF(line string) (*CEFRecord, error) {
	rest, ok := strings.CutPrefix(line, "CEF:")
	if !ok {
		return nil, errors.New("no CEF: prefix")
	}
	r := &CEFRecord{Ext: map[string]string{}}
	fields := make([]string, 0, 7)
	var cur strings.Builder
	i := 0
	for ; i < len(rest) && len(fields) < 7; i++ {
		c := rest[i]
		switch c {
		case '\\':
			if i+1 >= len(rest) || (rest[i+1] != '\\' && rest[i+1] != '|') {
				return nil, fmt.Errorf("header: bad escape at %d", i)
			}
			cur.WriteByte(rest[i+1])
			i++
		case '|':
			fields = append(fields, cur.String())
			cur.Reset()
		case '\r', '\n':
			return nil, errors.New("header: line break")
		default:
			cur.WriteByte(c)
		}
	}
	if len(fields) != 7 {
		return nil, fmt.Errorf("want 7 header fields before the extension, got %d", len(fields))
	}
	v, err := strconv.Atoi(fields[0])
	if err != nil {
		return nil, fmt.Errorf("version %q", fields[0])
	}
	r.Version = v
	copy(r.Header[:], fields[1:])
	sev, err := strconv.Atoi(r.Header[5])
	if err != nil || sev < 0 || sev > 10 {
		return nil, fmt.Errorf("severity %q is not 0-10", r.Header[5])
	}
	ext := rest[i:]
	if ext == "" {
		return r, nil
	}
	if strings.ContainsAny(ext, "\r\n") {
		return nil, errors.New("extension: raw line break")
	}
	// Find the unescaped '=' signs.
	var eqs []int
	for j := 0; j < len(ext); j++ {
		switch ext[j] {
		case '\\':
			j++
		case '=':
			eqs = append(eqs, j)
		}
	}
	if len(eqs) == 0 {
		return nil, errors.New("extension without key=value")
	}
	keyStart := func(eq int) (int, error) {
		k := strings.LastIndexByte(ext[:eq], ' ') + 1
		if k == eq {
			return 0, fmt.Errorf("empty key at %d", eq)
		}
		return k, nil
	}
	start, err := keyStart(eqs[0])
	if err != nil {
		return nil, err
	}
	if start != 0 {
		return nil, fmt.Errorf("extension starts with %q before its first key", ext[:start])
	}
	for n, eq := range eqs {
		key := ext[start:eq]
		end := len(ext)
		next := 0
		if n+1 < len(eqs) {
			next, err = keyStart(eqs[n+1])
			if err != nil {
				return nil, err
			}
			if next < eq+2 {
				return nil, fmt.Errorf("value of %q holds an unescaped '='", key)
			}
			end = next - 1 // the separating space
		}
		val, err := cefUnescape(ext[eq+1 : end])
		if err != nil {
			return nil, fmt.Errorf("%s: %w", key, err)
		}
		if _, dup := r.Ext[key]; dup {
			return nil, fmt.Errorf("duplicate key %q", key)
		}
		r.Ext[key] = val
		r.Keys = append(r.Keys, key)
		start = next
	}
	return r, nil
}

func cefUnescape(s string) (string, error) {
	if !strings.Contains(s, `\`) {
		return s, nil
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '\\' {
			b.WriteByte(s[i])
			continue
		}
		if i+1 == len(s) {
			return "", errors.New("trailing backslash")
		}
		i++
		switch s[i] {
		case '\\', '=':
			b.WriteByte(s[i])
		case 'n':
			b.WriteByte('\n')
		case 'r':
			b.WriteByte('\r')
		default:
			return "", fmt.Errorf("bad escape \\%c", s[i])
		}
	}
	return b.String(), nil
}

// SyslogMsg is a parsed RFC 5424 message.
type SyslogMsg struct {
	Facility, Severity int
	Time               time.Time
	Hostname, AppName  string
	ProcID, MsgID      string
	SD                 map[string]map[string]string // SD-ID → params
	Msg                string
}

// ParseRFC5424 parses one message (without framing) by the RFC's ABNF.
func ParseRFC5424(s string) (*SyslogMsg, error) {
	m := &SyslogMsg{SD: map[string]map[string]string{}}
	if !strings.HasPrefix(s, "<") {
		return nil, errors.New("no PRI")
	}
	end := strings.IndexByte(s, '>')
	if end < 2 || end > 4 {
		return nil, errors.New("bad PRI")
	}
	pri, err := strconv.Atoi(s[1:end])
	if err != nil || pri > 191 || (len(s[1:end]) > 1 && s[1] == '0') {
		return nil, fmt.Errorf("bad PRI %q", s[1:end])
	}
	m.Facility, m.Severity = pri/8, pri%8
	s = s[end+1:]
	if !strings.HasPrefix(s, "1 ") {
		return nil, errors.New("VERSION is not 1")
	}
	s = s[2:]
	ts, s, err := headerField(s, "TIMESTAMP", 64)
	if err != nil {
		return nil, err
	}
	if ts != "-" {
		// FULL-DATE "T" FULL-TIME, at most 6 fractional digits.
		if dot := strings.IndexByte(ts, '.'); dot >= 0 {
			frac := strings.IndexAny(ts[dot:], "Z+-")
			if frac-1 > 6 || frac < 2 {
				return nil, fmt.Errorf("TIME-SECFRAC of %q", ts)
			}
		}
		if m.Time, err = time.Parse(time.RFC3339Nano, ts); err != nil {
			return nil, fmt.Errorf("TIMESTAMP: %v", err)
		}
	}
	if m.Hostname, s, err = headerField(s, "HOSTNAME", 255); err != nil {
		return nil, err
	}
	if m.AppName, s, err = headerField(s, "APP-NAME", 48); err != nil {
		return nil, err
	}
	if m.ProcID, s, err = headerField(s, "PROCID", 128); err != nil {
		return nil, err
	}
	if m.MsgID, s, err = headerField(s, "MSGID", 32); err != nil {
		return nil, err
	}
	if s, err = parseSD(s, m.SD); err != nil {
		return nil, err
	}
	if s == "" {
		return m, nil
	}
	if !strings.HasPrefix(s, " ") {
		return nil, errors.New("no SP before MSG")
	}
	m.Msg = strings.TrimPrefix(s[1:], "\ufeff")
	return m, nil
}

// headerField cuts the header field name, which ends at a space, off the
// front of s, and checks its length and characters.
func headerField(s, name string, max int) (v, rest string, err error) {
	i := strings.IndexByte(s, ' ')
	if i < 0 {
		return "", s, fmt.Errorf("%s: no space after it", name)
	}
	v, rest = s[:i], s[i+1:]
	if v == "" || len(v) > max {
		return "", rest, fmt.Errorf("%s %q: length not 1..%d", name, v, max)
	}
	for j := 0; j < len(v); j++ {
		if v[j] < 33 || v[j] > 126 {
			return "", rest, fmt.Errorf("%s %q: not PRINTUSASCII", name, v)
		}
	}
	return v, rest, nil
}

// parseSD reads STRUCTURED-DATA ("-" or 1*SD-ELEMENT) off the front of s
// into sd and returns what follows it.
func parseSD(s string, sd map[string]map[string]string) (string, error) {
	// STRUCTURED-DATA: "-" or 1*SD-ELEMENT.
	switch {
	case strings.HasPrefix(s, "-"):
		s = s[1:]
	case strings.HasPrefix(s, "["):
		for strings.HasPrefix(s, "[") {
			s = s[1:]
			i := strings.IndexAny(s, " ]")
			if i <= 0 {
				return "", errors.New("SD-ID")
			}
			id := s[:i]
			if len(id) > 32 || strings.ContainsAny(id, "=\"") {
				return "", fmt.Errorf("SD-ID %q", id)
			}
			params := map[string]string{}
			sd[id] = params
			s = s[i:]
			for strings.HasPrefix(s, " ") {
				s = s[1:]
				eq := strings.Index(s, `="`)
				if eq <= 0 || eq > 32 {
					return "", errors.New("PARAM-NAME")
				}
				name := s[:eq]
				s = s[eq+2:]
				var v strings.Builder
				closed := false
				for j := 0; j < len(s); j++ {
					c := s[j]
					if c == '\\' && j+1 < len(s) && (s[j+1] == '"' || s[j+1] == '\\' || s[j+1] == ']') {
						v.WriteByte(s[j+1])
						j++
						continue
					}
					if c == ']' {
						return "", fmt.Errorf("unescaped ] in PARAM-VALUE of %s", name)
					}
					if c == '"' {
						s = s[j+1:]
						closed = true
						break
					}
					v.WriteByte(c)
				}
				if !closed {
					return "", fmt.Errorf("PARAM-VALUE of %s not closed", name)
				}
				params[name] = v.String()
			}
			if !strings.HasPrefix(s, "]") {
				return "", errors.New("SD-ELEMENT not closed")
			}
			s = s[1:]
		}
	default:
		return "", errors.New("STRUCTURED-DATA")
	}
	return s, nil
}

// ReadFramed splits an octet-counted stream into messages.
func ReadFramed(stream []byte) ([]string, error) {
	var out []string
	for len(stream) > 0 {
		sp := strings.IndexByte(string(stream[:min(len(stream), 12)]), ' ')
		if sp <= 0 {
			return out, errors.New("no MSG-LEN")
		}
		n, err := strconv.Atoi(string(stream[:sp]))
		if err != nil || n <= 0 || stream[0] == '0' {
			return out, fmt.Errorf("bad MSG-LEN %q", stream[:sp])
		}
		stream = stream[sp+1:]
		if len(stream) < n {
			return out, fmt.Errorf("short message: want %d bytes, have %d", n, len(stream))
		}
		out = append(out, string(stream[:n]))
		stream = stream[n:]
	}
	return out, nil
}
