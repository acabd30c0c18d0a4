package check

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/moatmail/moat/internal/spf"
)

// spfData is what the SPF walk found.
type spfData struct {
	res       *spf.Result
	lookupErr error // the root TXT lookup failed (not "no record")
}

func (r *run) gatherSPF(ctx context.Context) {
	done := r.timed("spf", "")
	r.spf.res = spf.Walk(ctx, r.res, r.domain, spf.WalkOpts{QueryTimeout: r.opts.StepTimeout})
	done()
	if t := r.spf.res.Tree; t != nil && errors.Is(t.Err, spf.ErrLookup) {
		r.spf.lookupErr = t.Err
	}
}

// spfView is the JSON detail of the SPF findings.
type spfView struct {
	Record        string     `json:"record"`
	Lookups       int        `json:"lookups"`
	VoidLookups   int        `json:"void_lookups"`
	Tree          string     `json:"tree"`
	CostByInclude []spf.Cost `json:"cost_by_include,omitempty"`
}

// replaceTerm returns record with the term old replaced by repl ("" to
// delete it).
func replaceTerm(record, old, repl string) string {
	var out []string
	for _, t := range strings.Fields(record) {
		if t == old {
			if repl == "" {
				continue
			}
			t = repl
		}
		out = append(out, t)
	}
	return strings.Join(out, " ")
}

func (r *run) evalSPF() {
	res := r.spf.res
	root := res.Tree
	name := r.domain
	suggest := "v=spf1 mx -all"
	if r.mx.null {
		suggest = "v=spf1 -all"
	}
	if root.Err != nil {
		switch {
		case errors.Is(root.Err, spf.ErrNoRecord):
			r.add("spf.missing", fmt.Sprintf("%s has no \"v=spf1\" TXT record.", name),
				"publish "+txtRecord(name, suggest)+" (list every server and service that sends mail as "+name+")", nil)
		case errors.Is(root.Err, spf.ErrMultipleRecords):
			var recs []string
			for _, t := range root.TXT {
				if spf.IsRecord(t) {
					recs = append(recs, fmt.Sprintf("%q", t))
				}
			}
			r.add("spf.multiple", fmt.Sprintf("%s has %d SPF records: %s.", name, len(recs), strings.Join(recs, ", ")),
				"merge them into one \"v=spf1\" record holding every mechanism once, ending with a single -all or ~all, and delete the others", root.TXT)
		case errors.Is(root.Err, spf.ErrLookup):
			r.add("spf.dns-error", fmt.Sprintf("TXT lookup for %s failed: %v", name, root.Err), "Check that the domain's name servers answer TXT queries.", nil)
		default:
			r.add("spf.syntax", fmt.Sprintf("%s: %q is invalid: %v", name, root.Record, root.Err),
				"correct the record; a minimal valid one is "+txtRecord(name, suggest), root.Record)
		}
		return
	}
	view := &spfView{Record: root.Record, Lookups: res.TotalLookups, VoidLookups: res.TotalVoid, Tree: root.Format(), CostByInclude: root.CostByInclude()}
	penalized := false
	add := func(id, msg, fix string) {
		if r.c.rules[id].Penalty > 0 {
			penalized = true
		}
		r.add(id, msg, fix, view)
	}

	if res.TotalLookups > spf.MaxLookups {
		var costs []string
		for _, c := range view.CostByInclude {
			costs = append(costs, fmt.Sprintf("%s costs %d", c.Via, c.Lookups))
		}
		own := root.Lookups - len(view.CostByInclude)
		if own > 0 {
			costs = append(costs, fmt.Sprintf("the record's own a/mx/ptr/exists terms cost %d", own))
		}
		where := res.ExceededAt
		if res.ExceededIn != "" && res.ExceededIn != name {
			where += " in the record of " + res.ExceededIn
		}
		add("spf.lookup-limit", fmt.Sprintf("%s needs %d DNS lookups, over the limit of %d; the limit is passed at %s. %s.",
			name, res.TotalLookups, spf.MaxLookups, where, strings.Join(costs, ", ")),
			fmt.Sprintf("bring %s to %d lookups or fewer: remove includes of services that no longer send for you, replace the costliest include with the ip4:/ip6: ranges it lists, or send through a subdomain with its own SPF record", name, spf.MaxLookups))
	}
	if res.TotalVoid > spf.MaxVoidLookups {
		var voids []string
		walkSteps(root, func(t *spf.Tree, s *spf.Step) {
			if s.Void {
				voids = append(voids, fmt.Sprintf("%s (in %s)", s.Term.Raw, t.Domain))
			}
		})
		add("spf.void-limit", fmt.Sprintf("%s makes %d void lookups, over the limit of %d; the limit is passed at %s: %s.",
			name, res.TotalVoid, spf.MaxVoidLookups, res.VoidExceededAt, strings.Join(voids, ", ")),
			"remove the terms whose target has no record: "+strings.Join(voids, ", "))
	}
	for _, p := range res.Problems {
		switch {
		case errors.Is(p.Err, spf.ErrTooManyLookups), errors.Is(p.Err, spf.ErrTooManyVoid):
			// Reported above with the costs.
		case p.Result == "temperror":
			add("spf.dns-error", fmt.Sprintf("While evaluating %s: %s", name, p), "Check that the name servers of "+p.Domain+" answer.")
		case p.Result == "permerror" && (errors.Is(p.Err, spf.ErrNoRecord) || errors.Is(p.Err, spf.ErrMultipleRecords) || errors.Is(p.Err, spf.ErrSyntax)):
			add("spf.include-error", fmt.Sprintf("While evaluating %s: %s", name, p), fmt.Sprintf("fix or remove the include of %s: it must have exactly one valid \"v=spf1\" record", p.Domain))
		case p.Result == "permerror":
			add("spf.permerror", fmt.Sprintf("While evaluating %s: %s", name, p), fmt.Sprintf("correct the term %s in the record of %s", p.Term, p.Domain))
		default:
			r.add("spf.note", fmt.Sprintf("%s: %s", name, p), "", nil)
		}
	}
	var unexpanded []string
	walkSteps(root, func(t *spf.Tree, s *spf.Step) {
		if s.Unexpanded != "" {
			unexpanded = append(unexpanded, fmt.Sprintf("%s in %s (%s)", s.Term.Raw, t.Domain, s.Unexpanded))
		}
		if s.Term.Mechanism == "ptr" {
			fix := "replace ptr in the record of " + t.Domain + " with the ip4:/ip6: addresses of the servers it was meant to allow"
			if t == root {
				fix = "replace it with ip4:/ip6: terms for the servers it was meant to allow: " + txtRecord(name, replaceTerm(root.Record, s.Term.Raw, ""))
			}
			add("spf.ptr", fmt.Sprintf("The record of %s uses %q.", t.Domain, s.Term.Raw), fix)
		}
	})
	if len(unexpanded) > 0 {
		r.add("spf.unexpanded", "Not followed (their targets need the message): "+strings.Join(unexpanded, ", "), "", nil)
	}

	// The "all" that ends the evaluation: the root's, or the one of the
	// record its redirect leads to (RFC 7208 §6.1).
	t, all := effectiveAll(root)
	recName := t.Domain
	fixRecord := func(repl string) string {
		if all == nil {
			return txtRecord(recName, strings.TrimSpace(t.Record)+" "+repl)
		}
		return txtRecord(recName, replaceTerm(t.Record, all.Raw, repl))
	}
	switch {
	case all == nil && t.Parsed != nil && t.Parsed.Redirect() != "":
		// A redirect that could not be followed: reported as a problem.
	case all == nil:
		add("spf.no-all", fmt.Sprintf("The record of %s (%q) ends without an \"all\" mechanism.", recName, t.Record), fixRecord("-all"))
	case all.Qualifier == '+':
		add("spf.pass-all", fmt.Sprintf("The record of %s ends with %q: every server may send as %s.", recName, all.Raw, name), fixRecord("-all"))
	case all.Qualifier == '?':
		add("spf.neutral-all", fmt.Sprintf("The record of %s ends with %q.", recName, all.Raw), fixRecord("-all")+" (or ~all)")
	case all.Qualifier == '~':
		r.add("spf.softfail-all", fmt.Sprintf("The record of %s ends with \"~all\".", recName), "", nil)
	}
	if n := spf.AnswerSize(name, root.TXT); n > spf.MaxUDPAnswer {
		add("spf.too-long", fmt.Sprintf("The TXT answer of %s (its name and %s, the SPF record being %d bytes) is %d bytes long, more than %d.", name, plural(len(root.TXT), "record", "records"), len(root.Record), n, spf.MaxUDPAnswer),
			"shorten it: move groups of ip4:/ip6: terms into an included record such as _spf."+name)
	}
	if !penalized {
		r.add("spf.ok", fmt.Sprintf("%s: %q: %d of %d DNS lookups, %d of %d void lookups.", name, root.Record, res.TotalLookups, spf.MaxLookups, res.TotalVoid, spf.MaxVoidLookups), "", view)
	}
}

// effectiveAll returns the record whose "all" ends the evaluation, and
// that term (nil when there is none).
func effectiveAll(t *spf.Tree) (*spf.Tree, *spf.Term) {
	for depth := 0; depth < 10 && t.Parsed != nil; depth++ {
		if a := t.Parsed.All(); a != nil {
			return t, a
		}
		next := (*spf.Tree)(nil)
		for i := range t.Steps {
			if t.Steps[i].Term.Modifier == "redirect" && t.Steps[i].Child != nil && t.Steps[i].Child.Parsed != nil {
				next = t.Steps[i].Child
			}
		}
		if next == nil {
			break
		}
		t = next
	}
	return t, nil
}

// walkSteps calls fn for every step of the tree, depth first in
// evaluation order.
func walkSteps(t *spf.Tree, fn func(*spf.Tree, *spf.Step)) {
	for i := range t.Steps {
		fn(t, &t.Steps[i])
		if c := t.Steps[i].Child; c != nil {
			walkSteps(c, fn)
		}
	}
}
