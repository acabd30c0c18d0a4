package snapshot

import (
	"testing"
	"time"
)

func TestLookupAndDescendants(t *testing.T) {
	t.Parallel()
	var h Holder
	if got := h.Load().Len(); got != 0 {
		t.Fatalf("empty holder has %d domains", got)
	}
	h.Store(New(7, time.Unix(0, 0), []*Domain{
		{Name: "example.com", PolicyID: "a"},
		{Name: "shop.example.co.uk", PolicyID: "b"},
	}))
	s := h.Load()
	if s.Serial() != 7 || s.Len() != 2 {
		t.Fatalf("serial %d len %d, want 7 and 2", s.Serial(), s.Len())
	}
	if d := s.Lookup("example.com"); d == nil || d.PolicyID != "a" {
		t.Fatalf("Lookup(example.com) = %+v", d)
	}
	if d := s.Lookup("example.org"); d != nil {
		t.Fatalf("Lookup(example.org) = %+v, want nil", d)
	}
	for name, want := range map[string]bool{
		"":                   true,
		"com":                true,
		"uk":                 true,
		"co.uk":              true,
		"example.co.uk":      true,
		"shop.example.co.uk": false,
		"example.com":        false,
		"ample.com":          false,
		"org":                false,
		"k":                  false,
	} {
		if got := s.HasDescendant(name); got != want {
			t.Errorf("HasDescendant(%q) = %v, want %v", name, got, want)
		}
	}
}

func TestNormalize(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"Example.COM.": "example.com",
		"example.com":  "example.com",
		".":            "",
	} {
		if got := Normalize(in); got != want {
			t.Errorf("Normalize(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestHasDescendantDoesNotAllocate(t *testing.T) {
	s := New(1, time.Unix(0, 0), []*Domain{{Name: "example.com"}, {Name: "a.example.org"}})
	long := "some.very.long.random.name.that.is.not.hosted.anywhere.example.net"
	if n := testing.AllocsPerRun(100, func() { s.HasDescendant(long); s.HasDescendant("example.org") }); n != 0 {
		t.Errorf("HasDescendant allocates %.0f times per call", n)
	}
}
