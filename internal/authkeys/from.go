package authkeys

import (
	"net/netip"
	"strings"
)

// FromAllows says whether a client at addr (an IP address, as the
// connection reports it) may use a key whose line says from="patterns".
//
// As sshd with UseDNS off (its default), the client's host name is its
// address, so each comma-separated entry is tried two ways: as an address
// or CIDR block, and as a wildcard pattern (* and ?) against the address
// text. An entry starting with ! that matches refuses the key whatever
// else matches; otherwise some positive entry must match. A CIDR block
// with bits set past its mask length is an error in the list, and an
// error refuses the key, as in sshd.
func FromAllows(patterns, addr string) bool {
	ip, err := netip.ParseAddr(addr)
	if err != nil {
		return false
	}
	ip = ip.Unmap()
	mip := addrMatchList(ip, patterns)
	if mip == -2 || mip == -1 {
		return false
	}
	mhost := patternMatchList(strings.ToLower(ip.String()), patterns)
	if mhost == -1 {
		return false
	}
	return mhost == 1 || mip == 1
}

// addrMatchList is 1 when a positive address/CIDR entry matches, -1 when
// a negated one does, 0 when none does, and -2 for a malformed list.
func addrMatchList(ip netip.Addr, list string) int {
	ret := 0
	for _, entry := range strings.Split(list, ",") {
		neg := strings.HasPrefix(entry, "!")
		if neg {
			entry = entry[1:]
		}
		if entry == "" {
			return -2
		}
		matched := false
		if p, ok, bad := parseCIDR(entry); bad {
			return -2
		} else if ok {
			matched = p.Contains(ip)
		} else {
			matched = match(ip.String(), entry)
		}
		if matched {
			if neg {
				return -1
			}
			ret = 1
		}
	}
	return ret
}

// parseCIDR reads an address or addr/len entry. ok is false for an entry
// that is not an address (a wildcard pattern); bad is true for an address
// whose host bits are set past the mask.
func parseCIDR(s string) (p netip.Prefix, ok, bad bool) {
	if !strings.Contains(s, "/") {
		a, err := netip.ParseAddr(s)
		if err != nil {
			return p, false, false
		}
		a = a.Unmap()
		return netip.PrefixFrom(a, a.BitLen()), true, false
	}
	p, err := netip.ParsePrefix(s)
	if err != nil {
		return p, false, false
	}
	if p.Masked() != p {
		return p, false, true
	}
	if p.Addr().Is4In6() {
		return p, false, true
	}
	return p, true, false
}

// patternMatchList is sshd's match_pattern_list: 1 when a positive
// pattern matches s, -1 when a negated one does, 0 otherwise.
func patternMatchList(s, list string) int {
	got := 0
	for _, pat := range strings.Split(list, ",") {
		neg := strings.HasPrefix(pat, "!")
		if neg {
			pat = pat[1:]
		}
		if match(s, pat) {
			if neg {
				return -1
			}
			got = 1
		}
	}
	return got
}

// match is a wildcard match of the whole of s: * any run, ? one character.
func match(s, pat string) bool {
	// Iterative, with one backtrack point for the last *: linear in
	// practice, and no recursion depth an attacker could grow.
	si, pi, star, mark := 0, 0, -1, 0
	for si < len(s) {
		switch {
		case pi < len(pat) && (pat[pi] == '?' || pat[pi] == s[si]):
			si++
			pi++
		case pi < len(pat) && pat[pi] == '*':
			star, mark = pi, si
			pi++
		case star >= 0:
			mark++
			si, pi = mark, star+1
		default:
			return false
		}
	}
	for pi < len(pat) && pat[pi] == '*' {
		pi++
	}
	return pi == len(pat)
}
