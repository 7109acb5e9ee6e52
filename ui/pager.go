package ui

import (
	"github.com/charmbracelet/bubbles/key"
	tea "github.com/charmbracelet/bubbletea"
)

// pager scrolls prepared lines. Lines are wrapped to the width when they
// are built (in a command), so scrolling never re-renders anything.
type pager struct {
	lines    []string
	sections []int // line index of each section title, for tab
	off      int
	height   int
}

func (p *pager) set(lines []string, sections []int) {
	p.lines, p.sections = lines, sections
	p.clamp()
}

func (p *pager) clamp() {
	p.off = max(0, min(p.off, len(p.lines)-p.height))
}

func (p *pager) handle(k *KeyMap, msg tea.KeyMsg) bool {
	if d, ok := k.step(msg, p.height); ok {
		p.off += d
		p.clamp()
		return true
	}
	if !key.Matches(msg, k.Tab) {
		return false
	}
	// Next section below the top line, wrapping to the first.
	next := -1
	for _, s := range p.sections {
		if s > p.off {
			next = s
			break
		}
	}
	if next < 0 && len(p.sections) > 0 {
		next = p.sections[0]
	}
	if next >= 0 {
		p.off = next
	}
	p.clamp()
	return true
}

func (p *pager) view() []string {
	end := min(len(p.lines), p.off+p.height)
	if p.off >= end {
		return nil
	}
	return p.lines[p.off:end]
}

// percent is how far down the pager is.
func (p *pager) percent() int {
	if len(p.lines) <= p.height {
		return 100
	}
	return 100 * (p.off + p.height) / len(p.lines)
}
