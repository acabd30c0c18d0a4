package senders

import (
	"cmp"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
)

// Policy is a DMARC policy whose effect Impact computes.
type Policy struct {
	// P is "quarantine" or "reject".
	P string `json:"p"`
	// Pct is RFC 7489's pct (§6.3): the policy applies to that share of
	// failing messages, the next lower one to the rest: 1 to 100, and 0
	// means 100. RFC 9989 removed the tag (its pct=0 became t=y).
	Pct int `json:"pct"`
	// Testing is RFC 9989's t=y: receivers apply the policy one level
	// below (reject as quarantine, quarantine as none).
	Testing bool `json:"testing"`
}

// Impact is what a policy would do to a domain's mail over a period,
// computed from the rollups: the DMARC-failing messages it would reject
// or quarantine, by class and service, by source, and the fixes that
// would make the misconfigured ones pass. Under a pct below 100 the counts
// are expected values, each rounded half up from its own failing messages
// (so those of the sources need not add up to the total).
type Impact struct {
	Domain string    `json:"domain"`
	Since  time.Time `json:"since,omitzero"`
	Until  time.Time `json:"until,omitzero"`
	Policy Policy    `json:"policy"`
	// Applied is what receivers would do to failing mail: the policy,
	// or the level below it under t=y.
	Applied string `json:"applied"`
	// Messages are all messages of the period; Failing those failing
	// DMARC, Rejected and Quarantined what the policy would do to them
	// (the rest is delivered).
	Messages    int64 `json:"messages"`
	Failing     int64 `json:"failing"`
	Rejected    int64 `json:"rejected"`
	Quarantined int64 `json:"quarantined"`
	// Forwarded are the failing messages of the forwarded class (counted
	// in Rejected and Quarantined too): receivers may let them through
	// by local policy (ARC, known forwarders), and their senders cannot
	// fix them.
	Forwarded int64          `json:"forwarded"`
	Groups    []ImpactGroup  `json:"groups"`
	Sources   []ImpactSource `json:"sources"`
	// Fixes make the misconfigured sources pass.
	Fixes []Fix `json:"fixes"`
}

// ImpactGroup is the effect on one class of messages of one service
// (Service "" for sources no service was recognized for).
type ImpactGroup struct {
	Class       Class  `json:"class"`
	Service     string `json:"service,omitempty"`
	ServiceName string `json:"service_name,omitempty"`
	Sources     int    `json:"sources"`
	Failing     int64  `json:"failing"`
	Rejected    int64  `json:"rejected"`
	Quarantined int64  `json:"quarantined"`
}

// ImpactSource is the effect on one source's failing messages.
type ImpactSource struct {
	IP          string `json:"ip"`
	PTR         string `json:"ptr,omitempty"`
	Service     string `json:"service,omitempty"`
	Class       Class  `json:"class"`
	Failing     Counts `json:"failing"`
	Rejected    int64  `json:"rejected"`
	Quarantined int64  `json:"quarantined"`
}

// ErrPolicy means an impact was asked for a policy that is not one.
var ErrPolicy = errors.New("senders: invalid policy")

// levels orders the dispositions; lower(p) is the level below p.
func lower(p string) string {
	switch p {
	case "reject":
		return "quarantine"
	}
	return "none"
}

// split divides n failing messages between the policy applied (pct per
// cent of them, rounded half up) and the level below.
func split(n int64, pct int) (applied, below int64) {
	applied = (n*int64(pct) + 50) / 100
	return applied, n - applied
}

// ComputeImpact computes what pol would do to the messages of sources
// (from Classify) of domain. It reads nothing but sources.
func ComputeImpact(domain string, sources []*Source, pol Policy) (*Impact, error) {
	switch pol.P {
	case "reject", "quarantine":
	default:
		return nil, fmt.Errorf("%w: p=%q: want quarantine or reject", ErrPolicy, pol.P)
	}
	if pol.Pct == 0 {
		pol.Pct = 100
	}
	if pol.Pct < 0 || pol.Pct > 100 {
		return nil, fmt.Errorf("%w: pct=%d: want 0 to 100", ErrPolicy, pol.Pct)
	}
	im := &Impact{Domain: domain, Policy: pol, Applied: pol.P, Groups: []ImpactGroup{}, Sources: []ImpactSource{}}
	pct := pol.Pct
	if pol.Testing {
		// RFC 9989 (the t tag): failing mail gets the policy one level
		// below; pct no longer exists there.
		im.Applied, pct = lower(pol.P), 100
	}
	// act splits n failing messages between the level applied (pct per
	// cent, rounded half up) and the level below, and returns how many
	// each would reject and quarantine.
	act := func(n int64) (rej, quar int64) {
		a, b := split(n, pct)
		for _, x := range []struct {
			level string
			n     int64
		}{{im.Applied, a}, {lower(im.Applied), b}} {
			switch x.level {
			case "reject":
				rej += x.n
			case "quarantine":
				quar += x.n
			}
		}
		return rej, quar
	}
	groups := map[[2]string]*ImpactGroup{}
	for _, s := range sources {
		im.Messages += s.Messages
		fail := s.Failing.Total()
		if fail == 0 {
			continue
		}
		svc, svcName := "", ""
		if s.Service != nil {
			svc, svcName = s.Service.ID, s.Service.Name
		}
		is := ImpactSource{IP: s.IP, PTR: s.PTR, Service: svc, Class: s.Class, Failing: s.Failing}
		is.Rejected, is.Quarantined = act(fail)
		for _, cl := range Classes {
			n := s.Failing.Of(cl)
			if n == 0 {
				continue
			}
			k := [2]string{string(cl), svc}
			g := groups[k]
			if g == nil {
				g = &ImpactGroup{Class: cl, Service: svc, ServiceName: svcName}
				groups[k] = g
			}
			g.Sources++
			g.Failing += n
			if cl == Forwarded {
				im.Forwarded += n
			}
		}
		im.Failing += fail
		im.Sources = append(im.Sources, is)
	}
	// Each count is rounded on its own, from its own failing messages.
	im.Rejected, im.Quarantined = act(im.Failing)
	for _, g := range groups {
		g.Rejected, g.Quarantined = act(g.Failing)
		im.Groups = append(im.Groups, *g)
	}
	slices.SortFunc(im.Groups, func(a, b ImpactGroup) int {
		return cmp.Or(cmp.Compare(slices.Index(Classes, a.Class), slices.Index(Classes, b.Class)),
			cmp.Compare(b.Failing, a.Failing), strings.Compare(a.Service, b.Service))
	})
	slices.SortFunc(im.Sources, func(a, b ImpactSource) int {
		return cmp.Or(cmp.Compare(b.Failing.Total(), a.Failing.Total()), strings.Compare(a.IP, b.IP))
	})
	im.Fixes = mergeFixes(sources, func(*Source) bool { return true })
	if im.Fixes == nil {
		im.Fixes = []Fix{}
	}
	return im, nil
}
