package themes

import (
	"bytes"
	"strings"
	"testing"

	"github.com/charmbracelet/lipgloss"
	"github.com/muesli/termenv"
)

func TestCycleVisitsEveryTheme(t *testing.T) {
	seen := map[string]bool{}
	name := Dark
	for range Names() {
		seen[name] = true
		name = Next(name)
	}
	if name != Dark || len(seen) != 4 {
		t.Fatalf("cycle: back at %q after %d themes, want dark after 4", name, len(seen))
	}
	if Next("nonsense") != Dark {
		t.Fatalf("Next of an unknown theme should restart the cycle")
	}
}

func TestDefaultHonorsNoColor(t *testing.T) {
	if Default(true) != Mono || Default(false) != Dark {
		t.Fatal("NO_COLOR should pick mono, else dark")
	}
}

// Every color is an ANSI palette index, so terminals keep their own palette.
func TestPalettesUseANSIIndices(t *testing.T) {
	for _, p := range palettes {
		for _, c := range []string{p.Text, p.Muted, p.Accent, p.OK, p.Warn, p.Error, p.BarFg, p.BarBg, p.SelFg, p.SelBg, p.ChipFg, p.ChipBg, p.DiffAdd, p.DiffDel, p.JSONKey, p.JSONStr, p.JSONNum, p.JSONBool} {
			if c == "" {
				continue
			}
			if len(c) > 2 || strings.Trim(c, "0123456789") != "" || (len(c) == 2 && c > "15") {
				t.Errorf("%s: color %q is not an ANSI index 0-15", p.Name, c)
			}
		}
	}
}

// Under the ASCII profile (NO_COLOR, or a dumb terminal) styles emit no
// escape sequences at all, which is why rows carry a glyph.
func TestASCIIProfileEmitsNoEscapes(t *testing.T) {
	var buf bytes.Buffer
	r := lipgloss.NewRenderer(&buf)
	r.SetColorProfile(termenv.Ascii)
	for _, name := range Names() {
		st := Get(name).Build(r)
		if out := st.Selected.Render("row"); out != "row" {
			t.Errorf("%s: selected row renders as %q under ASCII", name, out)
		}
	}
}

func TestColorProfileEmitsPaletteIndex(t *testing.T) {
	var buf bytes.Buffer
	r := lipgloss.NewRenderer(&buf)
	r.SetColorProfile(termenv.ANSI)
	st := Get(Dark).Build(r)
	if out := st.Error.Render("x"); !strings.Contains(out, "\x1b[") {
		t.Fatalf("dark error style renders without color: %q", out)
	}
}
