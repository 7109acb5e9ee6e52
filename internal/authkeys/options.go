// Package authkeys reads the options of an OpenSSH authorized_keys line
// (sshd(8), AUTHORIZED_KEYS FILE FORMAT) the way sshd does, for the SSH
// console: an operator who restricts a key in OpenSSH's syntax gets the
// restriction, and an option the console cannot honour refuses the line
// rather than being ignored.
package authkeys

import (
	"errors"
	"fmt"
	"strings"
	"time"
)

// RoleVar is the environment="NAME=value" option the console reads its
// role from.
const RoleVar = "MCPTRAIL_ROLE"

// Rules are what one line's options allow.
type Rules struct {
	From   string    // from="pattern-list" as written; "" means from anywhere
	Expiry time.Time // expiry-time=; zero means never
	PTY    bool      // a pty may be allocated (false after no-pty or restrict)
	Role   string    // environment="MCPTRAIL_ROLE=…", "" when absent
}

// ErrCommand refuses a line with command=: the console cannot run a
// forced command instead of itself, and letting the key in anyway would
// ignore what the operator meant.
var ErrCommand = errors.New(`command= is not supported by the mcptrail console (it would not run that command); the line is refused`)

// harmless are options that restrict (or re-allow) things the console
// never offers — forwarding, X11, user rc — so honouring them takes nothing.
var harmless = map[string]bool{
	"no-agent-forwarding": true, "agent-forwarding": true,
	"no-port-forwarding": true, "port-forwarding": true,
	"no-x11-forwarding": true, "x11-forwarding": true,
	"no-user-rc": true, "user-rc": true,
	"no-touch-required": true, // the console does not check FIDO touch anyway
}

// harmlessValued are valued options of the same kind.
var harmlessValued = map[string]bool{"permitopen": true, "permitlisten": true, "tunnel": true}

// Parse reads the options gossh.ParseAuthorizedKey returned for a line, in
// order (restrict then pty re-allows a pty, as in sshd). Option names are
// matched without regard to case, as sshd does. Any option it does not
// know, and command=, refuse the line with an error saying which.
func Parse(options []string, loc *time.Location) (Rules, error) {
	r := Rules{PTY: true}
	fromSeen := false
	for _, opt := range options {
		name, raw, valued := strings.Cut(opt, "=")
		name = strings.ToLower(name)
		val := ""
		if valued {
			v, err := unquote(raw)
			if err != nil {
				return Rules{}, fmt.Errorf("option %s: %v", name, err)
			}
			val = v
		}
		switch {
		case !valued && name == "restrict":
			r.PTY = false // and every forwarding, which the console never offers
		case !valued && name == "no-pty":
			r.PTY = false
		case !valued && name == "pty":
			r.PTY = true
		case !valued && harmless[name]:
		case valued && harmlessValued[name]:
		case valued && name == "from":
			if fromSeen {
				return Rules{}, errors.New(`more than one from= option`)
			}
			if val == "" {
				return Rules{}, errors.New(`from= is empty`)
			}
			fromSeen, r.From = true, val
		case valued && name == "expiry-time":
			t, err := ParseExpiry(val, loc)
			if err != nil {
				return Rules{}, err
			}
			if r.Expiry.IsZero() || t.Before(r.Expiry) {
				r.Expiry = t // the earliest wins, as in sshd
			}
		case valued && name == "environment":
			k, v, ok := strings.Cut(val, "=")
			if !ok || k == "" {
				return Rules{}, fmt.Errorf("environment=%q is not NAME=value", val)
			}
			if k == RoleVar {
				if r.Role != "" && r.Role != v {
					return Rules{}, fmt.Errorf("two different %s values (%q, %q)", RoleVar, r.Role, v)
				}
				r.Role = v
			}
		case valued && name == "command":
			return Rules{}, ErrCommand
		default:
			shown := name
			if valued {
				shown += "="
			}
			return Rules{}, fmt.Errorf("option %q is not one the mcptrail console knows how to honour; the line is refused", shown)
		}
	}
	return r, nil
}

// Expired says whether the rules' expiry-time has passed at now.
func (r Rules) Expired(now time.Time) bool {
	return !r.Expiry.IsZero() && now.After(r.Expiry)
}

// unquote undoes the quoting of an option value: "…" with \" inside.
func unquote(s string) (string, error) {
	if !strings.HasPrefix(s, `"`) {
		return s, nil
	}
	if len(s) < 2 || !strings.HasSuffix(s, `"`) {
		return "", errors.New("unterminated quote")
	}
	return strings.ReplaceAll(s[1:len(s)-1], `\"`, `"`), nil
}

// ParseExpiry reads an expiry-time value: YYYYMMDD[HHMM[SS]] in local time
// (loc), or in UTC with a trailing Z.
func ParseExpiry(v string, loc *time.Location) (time.Time, error) {
	s := v
	if strings.HasSuffix(s, "Z") || strings.HasSuffix(s, "z") {
		s, loc = s[:len(s)-1], time.UTC
	}
	layout := map[int]string{8: "20060102", 12: "200601021504", 14: "20060102150405"}[len(s)]
	for _, c := range s {
		if c < '0' || c > '9' {
			layout = ""
		}
	}
	if layout == "" {
		return time.Time{}, fmt.Errorf("expiry-time %q is not YYYYMMDD[HHMM[SS]][Z]", v)
	}
	t, err := time.ParseInLocation(layout, s, loc)
	if err != nil {
		return time.Time{}, fmt.Errorf("expiry-time %q: %v", v, err)
	}
	return t, nil
}
