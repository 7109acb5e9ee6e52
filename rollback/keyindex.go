package rollback

import (
	"sort"
)

// keyIndex finds, for a call, the later calls that touched an overlapping
// key (keysOverlap) without comparing it with every call of the stream:
// exact[k] lists the calls with key k, under[k] those with a key below k,
// each in seq order with, for every position, where the next call outside
// the plan is.
type keyIndex struct {
	exact, under map[string]*callList
}

type callList struct {
	calls     []*call
	nextUnsel []int // index of the first unselected call at or after i; len(calls) if none
}

// keyIndexes are a stream's key indexes, one per server's rules: keys are
// the rules' names for resources, and two servers' "file:/x" stay apart.
type keyIndexes struct {
	byServer map[*ServerRules]*keyIndex
	none     *keyIndex // a call without a rule has no keys
}

func newKeyIndexes(stream []*call) keyIndexes {
	byServer := map[*ServerRules][]*call{}
	for _, c := range stream {
		if c.rule != nil {
			byServer[c.rule.server] = append(byServer[c.rule.server], c)
		}
	}
	ix := keyIndexes{byServer: map[*ServerRules]*keyIndex{}, none: newKeyIndex(nil)}
	for srv, calls := range byServer {
		ix.byServer[srv] = newKeyIndex(calls)
	}
	return ix
}

// of is the index c's keys are in.
func (ix keyIndexes) of(c *call) *keyIndex {
	if c.rule == nil {
		return ix.none
	}
	return ix.byServer[c.rule.server]
}

func newKeyIndex(stream []*call) *keyIndex {
	ix := &keyIndex{exact: map[string]*callList{}, under: map[string]*callList{}}
	add := func(m map[string]*callList, k string, c *call) {
		l := m[k]
		if l == nil {
			l = &callList{}
			m[k] = l
		}
		if n := len(l.calls); n == 0 || l.calls[n-1] != c {
			l.calls = append(l.calls, c)
		}
	}
	for _, c := range stream {
		if !c.touched {
			continue
		}
		for _, k := range c.keys {
			add(ix.exact, k, c)
			for _, a := range ancestors(k) {
				add(ix.under, a, c)
			}
		}
	}
	for _, m := range []map[string]*callList{ix.exact, ix.under} {
		for _, l := range m {
			l.nextUnsel = make([]int, len(l.calls)+1)
			l.nextUnsel[len(l.calls)] = len(l.calls)
			for i := len(l.calls) - 1; i >= 0; i-- {
				if l.calls[i].selected {
					l.nextUnsel[i] = l.nextUnsel[i+1]
				} else {
					l.nextUnsel[i] = i
				}
			}
		}
	}
	return ix
}

// ancestors of "file:/a/b/c": "file:/a/b", "file:/a", "file:".
func ancestors(k string) []string {
	var out []string
	for i := len(k) - 1; i > 0; i-- {
		if k[i] == '/' {
			out = append(out, k[:i])
		}
	}
	return out
}

// later reports whether any call after c touched a key overlapping one of
// c's, and the earliest such call outside the plan (nil if none), with the
// key of c it touched.
func (ix *keyIndex) later(c *call) (any bool, unselected *call, key string) {
	seq := c.req.Seq
	look := func(l *callList, k string) {
		if l == nil {
			return
		}
		i := sort.Search(len(l.calls), func(i int) bool { return l.calls[i].req.Seq > seq })
		if i == len(l.calls) {
			return
		}
		any = true
		if j := l.nextUnsel[i]; j < len(l.calls) && (unselected == nil || l.calls[j].req.Seq < unselected.req.Seq) {
			unselected, key = l.calls[j], k
		}
	}
	for _, k := range c.keys {
		look(ix.exact[k], k)
		look(ix.under[k], k)
		for _, a := range ancestors(k) {
			look(ix.exact[a], k)
		}
	}
	return any, unselected, key
}
