package tlsrptstats

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/moatmail/moat/internal/store"
)

// ReadinessOpts tunes ReadyToEnforce. The zero value is the default.
type ReadinessOpts struct {
	// Window is how far back to look; 0 means 14 days. It is rounded up
	// to whole UTC days ending with the day of now (today's reports count
	// as they arrive).
	Window time.Duration
	// MinSessions is the number of MTA-STS sessions the window must hold;
	// 0 means 100: enough that a sender or MX that fails now and then
	// would have shown up.
	MinSessions int64
	// MinOrganizations is the number of distinct reporting organizations
	// those sessions must come from; 0 means 2, so that one sender's
	// peculiarities do not decide alone.
	MinOrganizations int
}

// Defaults of ReadinessOpts.
const (
	DefaultWindow           = 14 * 24 * time.Hour
	DefaultMinSessions      = 100
	DefaultMinOrganizations = 2
)

// Verdict says whether a domain can move its MTA-STS policy from mode
// testing to enforce (RFC 8461 §5), judged from the TLS reports received.
type Verdict struct {
	Domain string `json:"domain"`
	Ready  bool   `json:"ready"`
	// Reason is one or two sentences for a postmaster, with the numbers.
	Reason string `json:"reason"`
	// Sessions counts the MTA-STS sessions of the window: those reported
	// under policy type "sts", plus failures of an sts-* result type under
	// any policy type (a sender that could not fetch or validate the
	// policy may report "no-policy-found").
	Sessions int64 `json:"sessions"`
	// Failures counts those that failed.
	Failures int64 `json:"failures"`
	// Organizations counts the distinct reporting organizations of
	// Sessions.
	Organizations int `json:"organizations"`
	// ByResult breaks Failures down by result type, most first, with what
	// each usually means.
	ByResult []ResultHint `json:"failures_by_result,omitempty"`
	// Since and Until are the UTC days judged: [Since, Until).
	Since time.Time `json:"since"`
	Until time.Time `json:"until"`
}

// ResultHint is the failures of one result type, with a hint at the fix.
type ResultHint struct {
	ResultType    string    `json:"result_type"`
	Sessions      int64     `json:"sessions"`
	Organizations int       `json:"organizations"`
	FirstDay      time.Time `json:"first_day"` // the first day of the window with such failures
	// MXs are the receiving MX hosts the reports name for these failures,
	// most sessions first; empty when they name none.
	MXs []string `json:"mx_hosts,omitempty"`
	// Hint says what the failure usually means and what to fix.
	Hint string `json:"hint"`
}

// stsRelated reports whether rollup sessions of a policy type and result
// type bear on the MTA-STS policy: sessions a sender ran under the policy
// (policy type "sts", RFC 8460 §4.4) and the MTA-STS-specific policy
// failures of RFC 8460 §4.3.2.2, whatever policy type they came with.
func stsRelated(policyType, resultType string) bool {
	return policyType == "sts" || strings.HasPrefix(resultType, "sts-")
}

// ReadyToEnforce judges whether domain, publishing its MTA-STS policy in
// mode testing, can switch to enforce: it is ready when over the window
// ending today there are no MTA-STS failures and at least MinSessions
// MTA-STS sessions from at least MinOrganizations senders. Any failure
// blocks: RFC 8461 §5: under "enforce" senders MUST NOT deliver to an MX
// that fails validation, so each failure seen in testing would have been
// mail not delivered. It does not look
// at the domain's current mode; callers check that. Errors: ErrInvalidQuery
// for an empty domain or negative options; the store's errors, wrapped.
func ReadyToEnforce(ctx context.Context, st store.ReportReader, domain string, now time.Time, opts ReadinessOpts) (*Verdict, error) {
	domain = normDomain(domain)
	switch {
	case domain == "":
		return nil, fmt.Errorf("%w: no domain given", ErrInvalidQuery)
	case opts.Window < 0 || opts.MinSessions < 0 || opts.MinOrganizations < 0:
		return nil, fmt.Errorf("%w: negative readiness option (window %v, min sessions %d, min organizations %d)",
			ErrInvalidQuery, opts.Window, opts.MinSessions, opts.MinOrganizations)
	}
	window := cmp.Or(opts.Window, DefaultWindow)
	minSessions := cmp.Or(opts.MinSessions, DefaultMinSessions)
	minOrgs := cmp.Or(opts.MinOrganizations, DefaultMinOrganizations)
	days := int((window + 24*time.Hour - 1) / (24 * time.Hour))

	v := &Verdict{Domain: domain, Until: day(now).AddDate(0, 0, 1)}
	v.Since = v.Until.AddDate(0, 0, -days)
	rows, err := st.TLSRPTRollups(ctx, store.RollupQuery{Domain: domain, Since: v.Since, Until: v.Until,
		GroupBy: []string{"result_type", "day", "policy_type", "organization", "receiving_mx"}})
	if err != nil {
		return nil, fmt.Errorf("tlsrptstats: readiness of %s: %w", domain, err)
	}

	orgs := map[string]bool{}
	type failures struct {
		ResultHint
		orgs map[string]bool
		mxs  map[string]int64
	}
	byResult := map[string]*failures{}
	for _, r := range rows {
		// Excess entries are skipped: a report detailing more failures
		// than its total is judged by its details, the cautious reading.
		if !stsRelated(r.PolicyType, r.ResultType) || r.Sessions == 0 || r.ResultType == resultDetailExcess {
			continue
		}
		v.Sessions += r.Sessions
		orgs[r.Organization] = true
		if r.ResultType == resultSuccess {
			continue
		}
		v.Failures += r.Sessions
		f := byResult[r.ResultType]
		if f == nil {
			// Rows come ordered by result type, then day: the first is
			// the earliest.
			f = &failures{ResultHint: ResultHint{ResultType: r.ResultType, FirstDay: r.Day},
				orgs: map[string]bool{}, mxs: map[string]int64{}}
			byResult[r.ResultType] = f
		}
		f.Sessions += r.Sessions
		f.orgs[r.Organization] = true
		if r.ReceivingMX != "" {
			f.mxs[r.ReceivingMX] += r.Sessions
		}
	}
	v.Organizations = len(orgs)
	for _, f := range byResult {
		h := f.ResultHint
		h.Organizations = len(f.orgs)
		for mx := range f.mxs {
			h.MXs = append(h.MXs, mx)
		}
		slices.SortFunc(h.MXs, func(a, b string) int { return cmp.Or(cmp.Compare(f.mxs[b], f.mxs[a]), strings.Compare(a, b)) })
		meaning, fix := hint(h.ResultType, domain, h.MXs)
		h.Hint = meaning + "; " + fix
		v.ByResult = append(v.ByResult, h)
	}
	slices.SortFunc(v.ByResult, func(a, b ResultHint) int {
		return cmp.Or(cmp.Compare(b.Sessions, a.Sessions), strings.Compare(a.ResultType, b.ResultType))
	})

	over := fmt.Sprintf("over the last %s", plural(int64(days), "day"))
	switch {
	case v.Failures > 0:
		v.Reason = failureReason(domain, v.ByResult)
	case v.Sessions == 0:
		v.Reason = fmt.Sprintf("no TLS report shows MTA-STS sessions to %s %s: senders report only once they "+
			"have fetched the policy, and only to the rua of the _smtp._tls TXT record; wait for reports before enforcing", domain, over)
	case v.Sessions < minSessions || int64(v.Organizations) < int64(minOrgs):
		v.Reason = fmt.Sprintf("no MTA-STS failures, but only %s from %s %s: wait for at least %s from %s before enforcing",
			plural(v.Sessions, "session"), plural(int64(v.Organizations), "sender"), over,
			plural(minSessions, "session"), plural(int64(minOrgs), "sender"))
	default:
		v.Ready = true
		v.Reason = fmt.Sprintf("no MTA-STS failures in %s from %s %s",
			plural(v.Sessions, "session"), plural(int64(v.Organizations), "sender"), over)
	}
	return v, nil
}

// failureReason names the failures, the largest kinds first (up to three),
// and what to fix for the largest.
func failureReason(domain string, hs []ResultHint) string {
	var parts []string
	for i, h := range hs {
		if i == 3 {
			var n int64
			for _, r := range hs[3:] {
				n += r.Sessions
			}
			parts = append(parts, fmt.Sprintf("%s failed in %s", plural(n, "more session"), plural(int64(len(hs)-3), "other way")))
			break
		}
		parts = append(parts, fmt.Sprintf("%s failed %s from %s since %s", plural(h.Sessions, "session"),
			h.ResultType, plural(int64(h.Organizations), "sender"), h.FirstDay.Format(time.DateOnly)))
	}
	meaning, fix := hint(hs[0].ResultType, domain, hs[0].MXs)
	return strings.Join(parts, "; ") + ": " + meaning + ". Before enforcing, " + fix
}

// plural writes n with thousands separators and the noun, plural unless n
// is 1.
func plural(n int64, noun string) string {
	if n != 1 {
		noun += "s"
	}
	return group(n) + " " + noun
}

// group writes n with commas between groups of three digits.
func group(n int64) string {
	s := fmt.Sprint(n)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}
