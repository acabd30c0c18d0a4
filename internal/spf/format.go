package spf

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
)

// Format renders the tree with its counts, one line per term that costs a
// lookup, numbered in evaluation order, includes indented under the term
// that leads to them. For example:
//
//	example.com  [12 lookups: 2 here, 10 through includes; 1 void]
//	   1  include:_spf.google.com  [costs 4, running total 4]
//	   2    include:_netblocks.google.com  [costs 1, running total 2]
//	   ...
//	  11  mx  [2 MX names]  <- lookup 11: over the limit of 10
//
// Format is meant for people; its layout may change.
func (t *Tree) Format() string {
	var b strings.Builder
	name := t.Domain
	if t.Via != "" {
		name = t.Via
	}
	fmt.Fprintf(&b, "%s  [%s: %d here, %d through includes; %s]",
		name, plural(t.Total, "lookup"), t.Lookups, t.Total-t.Lookups, plural(t.Void, "void lookup")+" here")
	if t.Err != nil {
		fmt.Fprintf(&b, "  ! %v", t.Err)
	}
	b.WriteByte('\n')
	formatSteps(&b, t, 0)
	return b.String()
}

func formatSteps(b *strings.Builder, t *Tree, depth int) {
	indent := strings.Repeat("  ", depth)
	for i := range t.Steps {
		s := &t.Steps[i]
		fmt.Fprintf(b, "%4d  %s%s", s.Seq, indent, s.Term.Raw)
		var notes []string
		if s.Child != nil {
			notes = append(notes, fmt.Sprintf("costs %d, running total %d", 1+s.Child.Total, s.Child.Cumulative))
		}
		if s.Target != "" && s.Target != t.Domain && s.Term.Domain != "" && s.Term.Domain != s.Target {
			notes = append(notes, "as "+s.Target)
		}
		switch {
		case s.Term.Mechanism == "mx" && len(s.Names) > 0:
			notes = append(notes, plural(len(s.Names), "MX name"))
		case s.Term.Mechanism == "ptr" && len(s.Names) > 0:
			notes = append(notes, plural(len(s.Names), "PTR name"))
		}
		if s.Void {
			notes = append(notes, fmt.Sprintf("void %d", s.VoidSeq))
		}
		if s.Unexpanded != "" {
			notes = append(notes, "not resolved: "+s.Unexpanded)
		}
		if len(notes) > 0 {
			fmt.Fprintf(b, "  [%s]", strings.Join(notes, ", "))
		}
		if s.Seq == MaxLookups+1 {
			fmt.Fprintf(b, "  <- lookup %d: over the limit of %d", s.Seq, MaxLookups)
		}
		if s.VoidSeq == MaxVoidLookups+1 {
			fmt.Fprintf(b, "  <- void lookup %d: over the limit of %d", s.VoidSeq, MaxVoidLookups)
		}
		if s.Err != nil {
			fmt.Fprintf(b, "  ! %v", s.Err)
		}
		if len(s.NoAddress) > 0 {
			fmt.Fprintf(b, "  ! no address: %s", strings.Join(s.NoAddress, ", "))
		}
		b.WriteByte('\n')
		if c := s.Child; c != nil {
			if c.Err != nil {
				fmt.Fprintf(b, "      %s  ! %v\n", indent, c.Err)
			}
			formatSteps(b, c, depth+1)
		}
	}
}

func plural(n int, word string) string {
	if n == 1 {
		return "1 " + word
	}
	return fmt.Sprintf("%d %ss", n, word)
}

// Cost is what an include or redirect of a record costs: its own lookup
// plus every lookup of the subtree it leads to.
type Cost struct {
	Via     string // the term as written, e.g. "include:_spf.google.com"
	Lookups int
}

// CostByInclude lists what each include and redirect of this record
// costs, most expensive first (ties in record order). The record's own
// other lookups (a, mx, ptr, exists) are t.Lookups minus len(the list).
func (t *Tree) CostByInclude() []Cost {
	var costs []Cost
	for _, s := range t.Steps {
		if s.Child != nil {
			costs = append(costs, Cost{Via: s.Term.Raw, Lookups: 1 + s.Child.Total})
		} else if s.Term.Mechanism == "include" || s.Term.Modifier == "redirect" {
			costs = append(costs, Cost{Via: s.Term.Raw, Lookups: 1}) // not followed
		}
	}
	slices.SortStableFunc(costs, func(a, b Cost) int { return cmp.Compare(b.Lookups, a.Lookups) })
	return costs
}
