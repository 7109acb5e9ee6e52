package siem

import (
	"fmt"
	"strings"
	"sync"
	"time"
)

// Manager runs one forwarder per sink.
type Manager struct {
	fws []*Forwarder
}

// StartForwarders parses the sink URLs and starts a forwarder for each.
// Two URLs naming the same sink (the same cursor) are an error.
func StartForwarders(src Source, urls []string, o ForwarderOptions) (*Manager, error) {
	m := &Manager{}
	seen := map[string]bool{}
	for _, raw := range urls {
		spec, err := ParseSinkURL(raw)
		if err != nil {
			m.Stop(0)
			return nil, err
		}
		if seen[spec.Name] {
			m.Stop(0)
			return nil, fmt.Errorf("sink %s is configured twice (give one a different ?name=)", spec.Redacted)
		}
		seen[spec.Name] = true
		f, err := NewForwarder(src, spec, o)
		if err != nil {
			m.Stop(0)
			return nil, err
		}
		if err := f.Start(); err != nil {
			m.Stop(0)
			return nil, err
		}
		m.fws = append(m.fws, f)
	}
	// A sink taken out of the config leaves its cursor, which holds
	// retention back: say so.
	if all, err := src.Cursors().All(); err == nil {
		for name, seq := range all {
			base := strings.TrimSuffix(name, "#checkpoints")
			if strings.HasPrefix(name, "siem:") && !seen[strings.TrimPrefix(base, "siem:")] {
				o.withDefaults().Logger.Warn("siem: a sink no longer configured still has a cursor, which keeps retention from pruning past it",
					"cursor", name, "seq", seq)
			}
		}
	}
	return m, nil
}

// Status lists every sink's status.
func (m *Manager) Status() []SinkStatus {
	if m == nil {
		return nil
	}
	out := make([]SinkStatus, 0, len(m.fws))
	for _, f := range m.fws {
		out = append(out, f.Status())
	}
	return out
}

// Stop stops every forwarder, giving them up to drain to deliver what is
// left (concurrently).
func (m *Manager) Stop(drain time.Duration) {
	if m == nil {
		return
	}
	var wg sync.WaitGroup
	for _, f := range m.fws {
		wg.Add(1)
		go func() { defer wg.Done(); f.Stop(drain) }()
	}
	wg.Wait()
}
