package spf

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/moatmail/moat/internal/dnsname"
)

// RFC 7208 §4.6.4 limits.
const (
	// MaxLookups is the limit on terms that cost a DNS lookup.
	MaxLookups = 10
	// MaxVoidLookups is the recommended limit on void lookups.
	MaxVoidLookups = 2
	// MaxMXNames is the limit on MX names one "mx" term may look up.
	MaxMXNames = 10
	// MaxPTRNames is the number of PTR names one "ptr" term may validate.
	MaxPTRNames = 10
)

// Errors the walker reports in Problems, Tree.Err and Step.Err.
var (
	// ErrLoop: an include or redirect leads back to a record on its own
	// path. A receiver would recurse until the lookup limit: permerror.
	ErrLoop = errors.New("spf: include/redirect loop")
	// ErrTooManyLookups: more than 10 terms cost a DNS lookup
	// (RFC 7208 §4.6.4: permerror).
	ErrTooManyLookups = errors.New("spf: more than 10 DNS lookups")
	// ErrTooManyVoid: more than 2 lookups returned no answer
	// (RFC 7208 §4.6.4: permerror).
	ErrTooManyVoid = errors.New("spf: more than 2 void lookups")
	// ErrTooManyMX: an "mx" term's domain has more than 10 MX names
	// (RFC 7208 §4.6.4: permerror).
	ErrTooManyMX = errors.New("spf: more than 10 MX names")
	// ErrBadTarget: a domain-spec expands to something that is not a
	// valid domain name (RFC 7208 §4.8).
	ErrBadTarget = errors.New("spf: malformed target name")
	// ErrWalkLimit: the walk stopped early (WalkOpts.MaxDepth or
	// MaxQueries); the tree below is incomplete.
	ErrWalkLimit = errors.New("spf: walk limit reached")
)

// WalkOpts tunes Walk. The zero value means the defaults.
type WalkOpts struct {
	// MaxDepth bounds include/redirect nesting below the root. Zero
	// means 10: deeper trees exceed the 10-lookup limit anyway.
	MaxDepth int
	// MaxQueries bounds the lookups of one walk, counting those answered
	// from the walk's own cache (the same name included twice), so that
	// no record tree can make the walk large. Zero means 100.
	MaxQueries int
	// QueryTimeout bounds each DNS query. Zero means 5 seconds. The
	// whole walk is bounded by ctx.
	QueryTimeout time.Duration
	// Sender, when set, is the context used to expand macros (RFC 7208
	// §7) and to evaluate "ptr". When nil, only %{d} expands: terms
	// whose target needs the sender, IP or HELO still count their lookup
	// but are not resolved, and their Step says so in Unexpanded.
	Sender *MacroContext
}

func (o WalkOpts) withDefaults() WalkOpts {
	if o.MaxDepth <= 0 {
		o.MaxDepth = 10
	}
	if o.MaxQueries <= 0 {
		o.MaxQueries = 100
	}
	if o.QueryTimeout <= 0 {
		o.QueryTimeout = 5 * time.Second
	}
	return o
}

// Tree is one record in the include/redirect tree.
type Tree struct {
	Domain string
	// Record is the SPF record found at Domain; TXT is every TXT record.
	Record string
	TXT    []string
	Parsed *Record
	// Err is why this record could not be used: ErrNoRecord,
	// ErrMultipleRecords, a *ParseError, ErrLookup, ErrLoop, ErrBadTarget
	// or ErrWalkLimit (wrapped).
	Err error
	// Lookups counts the terms of this record that cost a lookup; Void
	// those of them that were void lookups.
	Lookups, Void int
	// Total is Lookups plus the Total of every child: what this record
	// costs with everything it includes or redirects to.
	Total int
	// Children are the include and redirect targets, in evaluation order.
	Children []*Tree
	// Via is the term that led here ("include:_spf.google.com",
	// "redirect=_spf.example.com"); "" at the root.
	Via string
	// Cumulative is the lookup count of the whole evaluation after this
	// subtree, in evaluation order.
	Cumulative int
	// Steps are the terms of this record that cost a lookup, in
	// evaluation order (mechanisms left to right, then redirect).
	Steps []Step
}

// Step is one term that costs a DNS lookup.
type Step struct {
	Term Term
	// Seq is this term's number among the lookups of the whole
	// evaluation (1-based); above 10 it is over the limit.
	Seq int
	// Target is the name looked up after macro expansion; "" when the
	// term could not be expanded (see Unexpanded).
	Target string
	// Void: the lookup found nothing (NXDOMAIN or no records);
	// VoidSeq is its number among the void lookups.
	Void    bool
	VoidSeq int
	// Names are the MX (sorted by preference) or PTR names found.
	Names []string
	// NoAddress lists MX names without an address record.
	NoAddress []string
	// Unexpanded says why the term was counted but not resolved, e.g.
	// "needs %{i}" or "needs the client IP"; "" when resolved.
	Unexpanded string
	// Child is the record an include or redirect leads to.
	Child *Tree
	// Err is a problem with this term itself (ErrLookup, ErrTooManyMX,
	// ErrBadTarget, ErrWalkLimit), wrapped.
	Err error
}

// Problem is one finding of the walk, in evaluation order.
type Problem struct {
	Domain string // the record where it was found
	Term   string // the term, as written, when it is about one
	// Result is what a receiver would return because of it: "permerror",
	// "temperror", "none" (no record at the root), or "" for a finding
	// that does not change the result (a redirect ignored because of
	// "all", an incomplete walk, an MX name without address).
	Result string
	Err    error
}

func (p Problem) String() string {
	s := p.Domain
	if p.Term != "" {
		s += " " + p.Term
	}
	if p.Result != "" {
		s += " (" + p.Result + ")"
	}
	return s + ": " + p.Err.Error()
}

// Result is the outcome of Walk.
type Result struct {
	Tree         *Tree
	TotalLookups int
	TotalVoid    int
	// ExceededAt is the term whose lookup passed the limit of 10, as in
	// "include:x.example (lookup 11)", and ExceededIn the domain whose
	// record holds it; "" when within the limit.
	ExceededAt, ExceededIn string
	// VoidExceededAt is the term of the third void lookup, as in
	// "a:gone.example (void lookup 3)", and VoidExceededIn its record.
	VoidExceededAt, VoidExceededIn string
	Problems                       []Problem
	// Queries is the number of DNS queries sent.
	Queries int
}

// Walk follows the include/redirect tree of domain's SPF record, looking
// up every term that costs a DNS lookup, and counts the lookups and void
// lookups of RFC 7208 §4.6.4 in evaluation order.
//
// The count is the worst case: Walk assumes no mechanism matches (as for
// a sender the record does not authorize), so every term is evaluated;
// and it carries on past errors to show the whole tree. Lookups run in
// parallel, one round per level of dependency (TXT of an include, then
// the terms of that record, ...); identical queries are asked once. The
// tree, counts and problems do not depend on the order answers arrive.
//
// What counts as void: an include or redirect target with NXDOMAIN or no
// TXT records; an "a" target with neither A nor AAAA records (the walk
// does not know the client's address family); an "mx" target without MX
// records; an "exists" target without A records; a "ptr" without PTR
// records. MX name address lookups are limited to 10 per "mx" (§4.6.4)
// but count neither as lookups nor as void.
func Walk(ctx context.Context, r Resolver, domain string, opts WalkOpts) *Result {
	w := &walker{ctx: ctx, r: r, opts: opts.withDefaults(), cache: map[qkey]*answer{}}
	root := &Tree{Domain: strings.TrimSuffix(domain, ".")}
	if err := checkName(root.Domain); err != nil {
		root.Err = err
	} else {
		w.visit(root, nil, 0, []string{strings.ToLower(root.Domain)})
		w.run()
	}
	res := &Result{Tree: root, Queries: w.sent}
	if root.Err != nil && (errors.Is(root.Err, ErrNoRecord) || errors.Is(root.Err, ErrBadTarget)) {
		// RFC 7208 §4.3, §4.5: a malformed domain or no record at the
		// domain itself is "none".
		res.Problems = append(res.Problems, Problem{Domain: root.Domain, Result: "none", Err: root.Err})
	} else if root.Err != nil {
		res.Problems = append(res.Problems, Problem{Domain: root.Domain, Result: resultOf(root.Err), Err: root.Err})
	}
	number(root, res)
	return res
}

type qkind uint8

const (
	qTXT qkind = iota
	qMX
	qIP  // A and AAAA
	qIP4 // A
	qPTR
)

type qkey struct {
	kind qkind
	name string
}

type answer struct {
	txt   []string
	mx    []*net.MX
	ips   []netip.Addr
	names []string
	err   error
}

type job struct {
	key  qkey
	done func(*answer)
}

// walker runs the walk in rounds: all lookups of one round run in
// parallel, then their callbacks run one by one in the order the jobs
// were queued (a deterministic order), queuing the next round.
type walker struct {
	ctx   context.Context
	r     Resolver
	opts  WalkOpts
	cache map[qkey]*answer
	jobs  int // lookups granted, from cache or not
	sent  int // DNS queries sent
	next  []job
}

func (w *walker) enqueue(k qkey, done func(*answer)) {
	k.name = strings.ToLower(strings.TrimSuffix(k.name, "."))
	w.next = append(w.next, job{key: k, done: done})
}

func (w *walker) run() {
	for len(w.next) > 0 {
		round := w.next
		w.next = nil
		answers := make([]*answer, len(round))
		var fetch []qkey
		fetching := map[qkey]bool{}
		for i, j := range round {
			if w.jobs >= w.opts.MaxQueries {
				answers[i] = &answer{err: fmt.Errorf("%w: more than %d lookups in one walk", ErrWalkLimit, w.opts.MaxQueries)}
				continue
			}
			w.jobs++
			if a, ok := w.cache[j.key]; ok {
				answers[i] = a
			} else if !fetching[j.key] {
				fetching[j.key] = true
				fetch = append(fetch, j.key)
			}
		}
		results := make([]*answer, len(fetch))
		var wg sync.WaitGroup
		for i, k := range fetch {
			wg.Add(1)
			go func() {
				defer wg.Done()
				results[i] = w.query(k)
			}()
		}
		wg.Wait()
		w.sent += len(fetch)
		for i, k := range fetch {
			w.cache[k] = results[i]
		}
		for i, j := range round {
			a := answers[i]
			if a == nil {
				a = w.cache[j.key]
			}
			j.done(a)
		}
	}
}

func (w *walker) query(k qkey) *answer {
	ctx, cancel := context.WithTimeout(w.ctx, w.opts.QueryTimeout)
	defer cancel()
	a := &answer{}
	// Fully qualified: no resolv.conf search domains.
	fqdn := k.name + "."
	switch k.kind {
	case qTXT:
		a.txt, a.err = w.r.LookupTXT(ctx, fqdn)
	case qMX:
		a.mx, a.err = w.r.LookupMX(ctx, fqdn)
	case qIP:
		a.ips, a.err = w.r.LookupNetIP(ctx, "ip", fqdn)
	case qIP4:
		a.ips, a.err = w.r.LookupNetIP(ctx, "ip4", fqdn)
	case qPTR:
		a.names, a.err = w.r.LookupAddr(ctx, k.name)
	}
	if a.err == nil && len(a.txt)+len(a.mx)+len(a.ips)+len(a.names) == 0 {
		// An empty answer without error is NODATA.
		a.err = dnsname.NotFound(k.name)
	}
	return a
}

// visit queues the TXT lookup of n, reached through step (nil at the
// root), at depth with the domains of path on the way.
func (w *walker) visit(n *Tree, step *Step, depth int, path []string) {
	w.enqueue(qkey{qTXT, n.Domain}, func(a *answer) {
		switch {
		case a.err != nil && dnsname.IsNotFound(a.err):
			n.Err = fmt.Errorf("%w at %s", ErrNoRecord, n.Domain)
			if step != nil {
				step.Void = true
			}
			return
		case a.err != nil:
			n.Err = lookupErr("TXT", n.Domain, a.err)
			return
		}
		n.TXT = a.txt
		var recs []string
		for _, t := range a.txt {
			if IsRecord(t) {
				recs = append(recs, t)
			}
		}
		switch len(recs) {
		case 0:
			n.Err = fmt.Errorf("%w at %s", ErrNoRecord, n.Domain)
			return
		case 1:
		default:
			// RFC 7208 §4.5: more than one record is a permerror.
			n.Err = fmt.Errorf("%w: %d at %s", ErrMultipleRecords, len(recs), n.Domain)
			return
		}
		n.Record = recs[0]
		p, err := Parse(n.Record)
		if err != nil {
			n.Err = fmt.Errorf("at %s: %w", n.Domain, err)
			return
		}
		n.Parsed = p
		w.expand(n, depth, path)
	})
}

func lookupErr(qtype, name string, err error) error {
	if errors.Is(err, ErrWalkLimit) {
		return err
	}
	return fmt.Errorf("%w: %s %s: %w", ErrLookup, qtype, name, err)
}

// expand creates the steps of n and queues their lookups.
func (w *walker) expand(n *Tree, depth int, path []string) {
	terms := n.Parsed.Terms
	hasAll := n.Parsed.All() != nil
	for _, t := range terms {
		if t.CostsLookup() && t.Modifier == "" {
			n.Steps = append(n.Steps, Step{Term: t})
		}
	}
	// RFC 7208 §6.1: redirect applies after all mechanisms, and MUST be
	// ignored if there is an "all" mechanism anywhere in the record.
	for _, t := range terms {
		if t.Modifier == "redirect" && !hasAll {
			n.Steps = append(n.Steps, Step{Term: t})
		}
	}
	for i := range n.Steps {
		w.start(n, &n.Steps[i], depth, path)
	}
}

// start resolves the target of one step and queues its lookups.
func (w *walker) start(n *Tree, s *Step, depth int, path []string) {
	t := s.Term
	target := n.Domain
	if t.Domain != "" {
		name, missing, ok := expandDomainSpec(t.Domain, macroEnv{domain: n.Domain, ctx: w.opts.Sender})
		if !ok {
			s.Unexpanded = "needs " + missing
			return
		}
		target = strings.TrimSuffix(name, ".")
	}
	if err := checkName(target); err != nil {
		s.Err = err
		return
	}
	s.Target = target
	switch {
	case t.Mechanism == "include" || t.Modifier == "redirect":
		c := &Tree{Domain: target, Via: t.Raw}
		s.Child = c
		n.Children = append(n.Children, c)
		lt := strings.ToLower(target)
		if slices.Contains(path, lt) {
			c.Err = fmt.Errorf("%w: %s leads back to %s", ErrLoop, t.Raw, target)
			return
		}
		if depth+1 > w.opts.MaxDepth {
			c.Err = fmt.Errorf("%w: nesting deeper than %d", ErrWalkLimit, w.opts.MaxDepth)
			return
		}
		w.visit(c, s, depth+1, append(slices.Clip(path), lt))
	case t.Mechanism == "a" || t.Mechanism == "exists":
		// RFC 7208 §5.7: exists always looks up A records.
		kind := qIP
		if t.Mechanism == "exists" {
			kind = qIP4
		}
		w.enqueue(qkey{kind, target}, func(a *answer) { w.addrDone(s, a) })
	case t.Mechanism == "mx":
		w.enqueue(qkey{qMX, target}, func(a *answer) { w.mxDone(s, a) })
	case t.Mechanism == "ptr":
		if w.opts.Sender == nil || !w.opts.Sender.IP.IsValid() {
			s.Unexpanded = "needs the client IP"
			s.Target = ""
			return
		}
		ip := w.opts.Sender.IP.Unmap().String()
		w.enqueue(qkey{qPTR, ip}, func(a *answer) {
			if w.addrDone(s, a) {
				names := slices.Clone(a.names)
				slices.Sort(names)
				// RFC 7208 §4.6.4: PTR names past the first 10 MUST be ignored.
				if len(names) > MaxPTRNames {
					names = names[:MaxPTRNames]
				}
				s.Names = names
			}
		})
	}
}

// addrDone records the answer of a step's own lookup; it reports whether
// there were records.
func (w *walker) addrDone(s *Step, a *answer) bool {
	switch {
	case a.err == nil:
		return true
	case dnsname.IsNotFound(a.err):
		s.Void = true
	default:
		s.Err = lookupErr(kindName(s.Term.Mechanism), s.Target, a.err)
	}
	return false
}

func kindName(mech string) string {
	switch mech {
	case "mx":
		return "MX"
	case "ptr":
		return "PTR"
	case "exists":
		return "A"
	}
	return "A/AAAA"
}

func (w *walker) mxDone(s *Step, a *answer) {
	if !w.addrDone(s, a) {
		return
	}
	mx := slices.Clone(a.mx)
	// Deterministic order: net.Resolver shuffles equal preferences.
	slices.SortFunc(mx, func(x, y *net.MX) int {
		return cmp.Or(cmp.Compare(x.Pref, y.Pref), strings.Compare(x.Host, y.Host))
	})
	for _, m := range mx {
		s.Names = append(s.Names, strings.TrimSuffix(m.Host, "."))
	}
	hosts := s.Names
	if len(hosts) > MaxMXNames {
		// RFC 7208 §4.6.4: more than 10 address lookups for one mx is a
		// permerror; the first 10 are still resolved for the report.
		s.Err = fmt.Errorf("%w: %s has %d", ErrTooManyMX, s.Target, len(hosts))
		hosts = hosts[:MaxMXNames]
	}
	for _, h := range hosts {
		if h == "" { // null MX (RFC 7505): no host to look up
			continue
		}
		// Callbacks of one round run in queue order: NoAddress keeps
		// the MX order.
		w.enqueue(qkey{qIP, h}, func(a *answer) {
			if a.err != nil {
				s.NoAddress = append(s.NoAddress, h)
			}
		})
	}
}

// checkName validates a target name (RFC 7208 §4.3: labels of 1 to 63
// octets, at most 253 in all, more than one label). After macro expansion
// any octet may appear in a label, so only the lengths are checked
// (dnsname.CheckLength).
func checkName(name string) error {
	n := strings.TrimSuffix(name, ".")
	if err := dnsname.CheckLength(n); err != nil {
		return fmt.Errorf("%w: %w", ErrBadTarget, err)
	}
	if !strings.Contains(n, ".") {
		return fmt.Errorf("%w: %q is a single label", ErrBadTarget, name)
	}
	return nil
}

// resultOf maps an error to the check_host() result it causes.
func resultOf(err error) string {
	switch {
	case errors.Is(err, ErrWalkLimit):
		return ""
	case errors.Is(err, ErrLookup):
		return "temperror"
	}
	return "permerror"
}

// number counts lookups and void lookups in evaluation order and collects
// the problems, depth first.
func number(n *Tree, res *Result) {
	n.Lookups, n.Void, n.Total = 0, 0, 0
	if n.Parsed != nil && n.Parsed.All() != nil && n.Parsed.Redirect() != "" {
		res.Problems = append(res.Problems, Problem{Domain: n.Domain, Term: "redirect=" + n.Parsed.Redirect(),
			Err: errors.New(`spf: redirect ignored because the record has an "all" mechanism (RFC 7208 §6.1)`)})
	}
	for i := range n.Steps {
		s := &n.Steps[i]
		res.TotalLookups++
		n.Lookups++
		s.Seq = res.TotalLookups
		if s.Seq == MaxLookups+1 {
			res.ExceededAt = fmt.Sprintf("%s (lookup %d)", s.Term.Raw, s.Seq)
			res.ExceededIn = n.Domain
			res.Problems = append(res.Problems, Problem{Domain: n.Domain, Term: s.Term.Raw, Result: "permerror",
				Err: fmt.Errorf("%w: %s is lookup %d (RFC 7208 §4.6.4)", ErrTooManyLookups, s.Term.Raw, s.Seq)})
		}
		if s.Void {
			res.TotalVoid++
			n.Void++
			s.VoidSeq = res.TotalVoid
			if s.VoidSeq == MaxVoidLookups+1 {
				res.VoidExceededAt = fmt.Sprintf("%s (void lookup %d)", s.Term.Raw, s.VoidSeq)
				res.VoidExceededIn = n.Domain
				res.Problems = append(res.Problems, Problem{Domain: n.Domain, Term: s.Term.Raw, Result: "permerror",
					Err: fmt.Errorf("%w: %s is void lookup %d (RFC 7208 §4.6.4)", ErrTooManyVoid, s.Term.Raw, s.VoidSeq)})
			}
		}
		if s.Err != nil {
			result := resultOf(s.Err)
			if errors.Is(s.Err, ErrBadTarget) && s.Child == nil {
				result = "" // RFC 7208 §4.8: receivers differ (no match or permerror)
			}
			res.Problems = append(res.Problems, Problem{Domain: n.Domain, Term: s.Term.Raw, Result: result, Err: s.Err})
		}
		if len(s.NoAddress) > 0 {
			res.Problems = append(res.Problems, Problem{Domain: n.Domain, Term: s.Term.Raw,
				Err: fmt.Errorf("spf: MX names without an address: %s", strings.Join(s.NoAddress, ", "))})
		}
		if c := s.Child; c != nil {
			if c.Err != nil {
				// RFC 7208 §5.2, §6.1: an include or redirect target
				// without a record is a permerror, not "none".
				res.Problems = append(res.Problems, Problem{Domain: c.Domain, Term: c.Via, Result: resultOf(c.Err), Err: c.Err})
			}
			number(c, res)
			n.Total += c.Total
		}
	}
	n.Total += n.Lookups
	n.Cumulative = res.TotalLookups
}
