package senders

import (
	"cmp"
	"fmt"
	"slices"
	"strings"

	"github.com/moatmail/moat/internal/dnsname"
	"github.com/moatmail/moat/internal/store"
)

// Kinds of fixes.
const (
	FixDKIM       = "dkim"        // sign with DKIM d=<domain> in the service
	FixDKIMKey    = "dkim-key"    // an aligned signature fails: publish the right key for its selector
	FixSPFInclude = "spf-include" // add the service's include to the SPF record
	FixSPFRecord  = "spf-record"  // authorize the source in the SPF record
	FixReturnPath = "return-path" // send with an envelope-from under the domain
)

// Fix is one change that makes misconfigured mail pass DMARC.
type Fix struct {
	Kind    string `json:"kind"`
	Service string `json:"service,omitempty"` // the catalogue id, when known
	// Text says exactly what to change, and where.
	Text string `json:"text"`
	// Messages are the failing messages it concerns; Sources their
	// addresses.
	Messages int64    `json:"messages"`
	Sources  []string `json:"sources"`
}

// fixer writes the fixes of one domain's misconfigured rows. It
// remembers organizational domains and the texts it wrote: rows repeat
// them.
type fixer struct {
	domain, org string
	orgs        map[string]string
	texts       map[fixKey]string
}

// fixKey is what a fix's text is made of.
type fixKey struct {
	kind       string
	svc        *Service
	a, b, c    string
	authorized bool
}

func newFixer(domain string) *fixer {
	return &fixer{domain: domain, org: dnsname.OrgDomain(domain), orgs: map[string]string{}, texts: map[fixKey]string{}}
}

// aligned reports relaxed alignment (RFC 7489 §3.1): the same
// organizational domain.
func (f *fixer) aligned(d string) bool {
	if d == "" {
		return false
	}
	if d == f.domain {
		return true
	}
	o, ok := f.orgs[d]
	if !ok {
		o = dnsname.OrgDomain(d)
		f.orgs[d] = o
	}
	return o == f.org
}

// text returns the text of k, written by write the first time.
func (f *fixer) text(k fixKey, write func() string) string {
	t, ok := f.texts[k]
	if !ok {
		t = write()
		f.texts[k] = t
	}
	return t
}

// add appends to l the fixes of a misconfigured row r of source s, merging
// those already there.
func (f *fixer) add(l []Fix, r *store.DMARCRow, s *Source, n int64) []Fix {
	svc, name, id := s.Service, "the sending service", ""
	if svc != nil {
		name, id = svc.Name, svc.ID
	}
	header := r.HeaderFrom
	if header == "" {
		header = f.domain
	}
	put := func(k fixKey, write func() string) {
		text := f.text(k, write)
		for i := range l {
			if l[i].Kind == k.kind && l[i].Text == text {
				l[i].Messages += n
				return
			}
		}
		l = append(l, Fix{Kind: k.kind, Service: id, Text: text, Messages: n, Sources: []string{s.IP}})
	}
	// DKIM: the fix that works through forwarding too.
	if r.DKIM != "pass" {
		switch {
		case r.DKIMAligned && r.DKIMResult != "pass" && r.DKIMSelector != "":
			put(fixKey{kind: FixDKIMKey, svc: svc, a: r.DKIMDomain, b: r.DKIMSelector, c: r.DKIMResult}, func() string {
				return fmt.Sprintf("the DKIM signature d=%s s=%s fails (%s): publish the key %s gives for selector %s at %s._domainkey.%s",
					r.DKIMDomain, r.DKIMSelector, dash(r.DKIMResult), name, r.DKIMSelector, r.DKIMSelector, r.DKIMDomain)
			})
		case r.DKIMAligned && r.DKIMResult != "pass":
			put(fixKey{kind: FixDKIMKey, svc: svc, a: r.DKIMDomain, c: r.DKIMResult}, func() string {
				return fmt.Sprintf("the DKIM signature d=%s fails (%s): check the key %s signs with against the one published under _domainkey.%s",
					r.DKIMDomain, dash(r.DKIMResult), name, r.DKIMDomain)
			})
		case svc != nil && r.DKIMDomain != "" && r.DKIMResult == "pass":
			put(fixKey{kind: FixDKIM, svc: svc, a: header, b: r.DKIMDomain}, func() string {
				return fmt.Sprintf("sign with DKIM d=%s in %s (%s): its mail is signed with d=%s, which does not align with %s",
					header, name, svc.DKIMSetup, r.DKIMDomain, header)
			})
		case svc != nil:
			put(fixKey{kind: FixDKIM, svc: svc, a: header}, func() string {
				return fmt.Sprintf("sign with DKIM d=%s in %s (%s)", header, name, svc.DKIMSetup)
			})
		default:
			put(fixKey{kind: FixDKIM, a: header}, func() string {
				return fmt.Sprintf("sign the mail of these sources with DKIM d=%s", header)
			})
		}
	}
	// SPF: only an envelope-from under the domain can align.
	env := r.EnvelopeFrom
	if env == "" {
		env = r.SPFDomain
	}
	if r.SPF == "pass" {
		return l
	}
	aligned := f.aligned(env)
	k := fixKey{svc: svc, a: env, b: header, c: r.SPFResult, authorized: s.SPFAuthorized}
	switch {
	case aligned && svc != nil && len(svc.SPF) > 0 && !s.SPFAuthorized:
		k.kind = FixSPFInclude
		put(k, func() string { return fmt.Sprintf("add include:%s to the SPF record of %s", svc.SPF[0], env) })
	case aligned && svc != nil && !s.SPFAuthorized:
		k.kind = FixSPFRecord
		put(k, func() string {
			return fmt.Sprintf("authorize the sending addresses %s documents in the SPF record of %s", name, env)
		})
	case aligned && !s.SPFAuthorized:
		k.kind = FixSPFRecord
		put(k, func() string { return fmt.Sprintf("authorize these sources in the SPF record of %s", env) })
	case aligned && env != f.domain:
		k.kind = FixSPFRecord
		put(k, func() string {
			return fmt.Sprintf("the SPF record of %s authorizes these sources, but receivers checked envelope-from %s (%s): give %s the same authorization",
				f.domain, env, dash(r.SPFResult), env)
		})
	case aligned:
		k.kind = FixSPFRecord
		put(k, func() string {
			return fmt.Sprintf("the SPF record of %s authorizes these sources today, but receivers saw %s: the record changed since, or failed to resolve then",
				f.domain, dash(r.SPFResult))
		})
	case s.SPFAuthorized && svc != nil && svc.ReturnPath != "":
		k.kind = FixReturnPath
		put(k, func() string {
			return fmt.Sprintf("%s is in the SPF record of %s but sends with envelope-from %s: set a custom return path under %s in %s (%s)",
				name, f.domain, envName(env), header, name, svc.ReturnPath)
		})
	case s.SPFAuthorized:
		k.kind = FixReturnPath
		put(k, func() string {
			return fmt.Sprintf("these sources are in the SPF record of %s but send with envelope-from %s: make them use a return path under %s",
				f.domain, envName(env), header)
		})
	}
	return l
}

// envName names an envelope-from domain in a fix.
func envName(env string) string {
	if env == "" {
		return "a domain the reports leave out"
	}
	return env
}

func dash(s string) string {
	if s == "" {
		return "no result"
	}
	return s
}

func sortFixes(l []Fix) {
	slices.SortFunc(l, func(a, b Fix) int {
		return cmp.Or(cmp.Compare(b.Messages, a.Messages), strings.Compare(a.Kind, b.Kind), strings.Compare(a.Text, b.Text))
	})
}

// mergeFixes merges the fixes of several sources: the same change once,
// with the messages and sources added up.
func mergeFixes(sources []*Source, keep func(*Source) bool) []Fix {
	var out []Fix
	idx := map[[2]string]int{}
	seen := map[[2]string]map[string]bool{}
	for _, s := range sources {
		if !keep(s) {
			continue
		}
		for _, f := range s.Fixes {
			k := [2]string{f.Kind, f.Text}
			i, ok := idx[k]
			if !ok {
				i = len(out)
				idx[k] = i
				seen[k] = map[string]bool{}
				out = append(out, Fix{Kind: f.Kind, Service: f.Service, Text: f.Text})
			}
			out[i].Messages += f.Messages
			for _, ip := range f.Sources {
				if !seen[k][ip] {
					seen[k][ip] = true
					out[i].Sources = append(out[i].Sources, ip)
				}
			}
		}
	}
	for i := range out {
		slices.Sort(out[i].Sources)
	}
	sortFixes(out)
	return out
}
