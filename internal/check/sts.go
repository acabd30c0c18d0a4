package check

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/moatmail/moat/internal/mtasts"
)

// Policy max_age thresholds.
const (
	// minEnforceMaxAge: an enforce policy cached for less than a day is
	// too easy to outwait (RFC 8461 §3.2 suggests weeks).
	minEnforceMaxAge = 86400
	// suggestedMaxAge is the max_age written in fixes: one week, the
	// value of RFC 8461's example.
	suggestedMaxAge = 604800
)

// stsData is what the MTA-STS TXT lookup and policy fetch found.
type stsData struct {
	record    *mtasts.Record
	raw       string
	recordErr error
	fetch     *mtasts.FetchResult
	fetchErr  error
}

func (r *run) gatherSTSRecord(ctx context.Context) {
	done := r.timed("mta-sts record", "")
	r.sts.record, r.sts.raw, r.sts.recordErr = mtasts.LookupRecord(ctx, r.res, r.domain)
	done()
}

func (r *run) gatherSTSPolicy(ctx context.Context) {
	done := r.timed("mta-sts policy", "")
	f := mtasts.NewFetcher(mtasts.FetchOpts{
		Resolver:  r.res,
		RootCAs:   r.opts.RootCAs,
		Timeout:   r.opts.StepTimeout,
		Port:      r.opts.HTTPSPort,
		AllowAddr: r.allowAddr(),
		Now:       r.opts.Now,
		UserAgent: "moat-check",
	})
	r.sts.fetch, r.sts.fetchErr = f.Fetch(ctx, r.domain)
	done()
}

// stsRecordFix is the TXT record a fix publishes, with a fresh id.
func (r *run) stsRecordFix() string {
	id := r.opts.Now().UTC().Format("20060102T150405")
	return txtRecord(mtasts.RecordName(r.domain), "v=STSv1; id="+id)
}

// policyFix is the policy text a fix serves: p changed as asked, or a new
// policy covering the domain's MX hosts.
func (r *run) policyFix(p *mtasts.Policy) string {
	var np mtasts.Policy
	if p != nil {
		np = *p
		np.MX = append([]string(nil), p.MX...)
	} else {
		np = mtasts.Policy{Mode: mtasts.ModeTesting, MX: r.mx.hostNames(), MaxAge: suggestedMaxAge}
	}
	return fmt.Sprintf("serve at %s (Content-Type: text/plain):\n%s", mtasts.PolicyURL(r.domain), strings.TrimRight(strings.ReplaceAll(string(np.Format()), "\r\n", "\n"), "\n"))
}

// withNewID tells the owner to change the TXT id so senders refetch.
func (r *run) withNewID(fix string) string {
	return fix + "\nthen change the id so senders fetch it again: " + r.stsRecordFix()
}

func (r *run) evalSTS() {
	if r.mx.null {
		r.add("mta-sts.not-applicable", fmt.Sprintf("%s has a null MX; MTA-STS does not apply.", r.domain), "", nil)
		return
	}
	s := &r.sts
	name := mtasts.RecordName(r.domain)
	url := mtasts.PolicyURL(r.domain)
	noRecord := errors.Is(s.recordErr, mtasts.ErrNoRecord)
	policy := (*mtasts.Policy)(nil)
	if s.fetch != nil && s.fetchErr == nil {
		policy = s.fetch.Policy
	}
	r.evalHosted()

	// The TXT record.
	var le *mtasts.LookupError
	errors.As(s.recordErr, &le)
	switch {
	case s.recordErr == nil:
	case noRecord && policy == nil:
		hosts := ""
		for _, h := range r.mx.hostNames() {
			hosts += " --mx " + h
		}
		r.add("mta-sts.missing", fmt.Sprintf("%s has no _mta-sts TXT record and no policy at %s.", r.domain, url),
			fmt.Sprintf("publish %s\n%s\nwith a valid certificate for %s; or let Moat host it: moat domains add %s%s",
				r.stsRecordFix(), r.policyFix(nil), mtasts.PolicyHost(r.domain), r.domain, hosts), nil)
		return
	case noRecord:
		r.add("mta-sts.policy-without-record", fmt.Sprintf("%s serves a policy (mode %s) but %s has no \"v=STSv1\" TXT record.", url, policy.Mode, name),
			"publish "+r.stsRecordFix(), nil)
	case errors.Is(s.recordErr, mtasts.ErrMultipleRecords):
		var lines []string
		var keep string
		for _, t := range le.TXT {
			if !strings.HasPrefix(t, "v=STSv1") {
				continue
			}
			if _, err := mtasts.ParseRecord(t); err != nil {
				lines = append(lines, fmt.Sprintf("%q (invalid: %v)", t, err))
			} else {
				lines = append(lines, fmt.Sprintf("%q (valid)", t))
				keep = t
			}
		}
		fix := "delete all but one of them, keeping one record such as " + r.stsRecordFix()
		if keep != "" {
			fix = "delete all but one of them, for example keep only " + txtRecord(name, keep)
		}
		r.add("mta-sts.multiple-records", fmt.Sprintf("%s has %d \"v=STSv1\" TXT records: %s.", name, len(lines), strings.Join(lines, ", ")), fix, le.TXT)
	case errors.Is(s.recordErr, mtasts.ErrRecordSyntax):
		r.add("mta-sts.record-syntax", fmt.Sprintf("%s: %q is invalid: %v", name, s.raw, unwrapLookup(s.recordErr)), "replace it with "+r.stsRecordFix(), s.raw)
	default:
		r.add("mta-sts.dns-error", fmt.Sprintf("%s: %v", name, s.recordErr), "Check that the domain's name servers answer TXT queries for "+name+".", nil)
	}

	// The policy.
	if s.fetchErr != nil {
		r.evalFetchErr(s.recordErr == nil)
		return
	}
	p := policy
	details := map[string]any{"url": url, "policy": string(s.fetch.Body)}
	switch p.Mode {
	case mtasts.ModeNone:
		np := *p
		np.Mode = mtasts.ModeTesting
		r.add("mta-sts.mode-none", fmt.Sprintf("The policy at %s has mode: none.", url), r.withNewID(r.policyFix(&np)), details)
		return
	case mtasts.ModeTesting:
		np := *p
		np.Mode = mtasts.ModeEnforce
		r.add("mta-sts.mode-testing", fmt.Sprintf("The policy at %s has mode: testing (max_age %d).", url, p.MaxAge),
			"once TLS reports show no failures, "+r.withNewID(r.policyFix(&np)), details)
	case mtasts.ModeEnforce:
		if p.MaxAge < minEnforceMaxAge {
			np := *p
			np.MaxAge = suggestedMaxAge
			r.add("mta-sts.max-age-short", fmt.Sprintf("The enforce policy at %s has max_age %d (%s); less than a day.", url, p.MaxAge, ageText(p.MaxAge)),
				r.withNewID(r.policyFix(&np)), details)
		}
	}
	covered := r.evalCoverage(p, url, details)
	if s.recordErr == nil && p.Mode == mtasts.ModeEnforce && covered {
		r.add("mta-sts.ok", fmt.Sprintf("%s: id %s; policy mode enforce, max_age %d (%s), mx %s covers every MX host.",
			name, s.record.ID, p.MaxAge, ageText(p.MaxAge), strings.Join(p.MX, ", ")), "", details)
	}
}

// evalCoverage checks every MX host against the patterns and every pattern
// against the MX hosts (RFC 8461 §4.1). It reports whether every host is
// covered.
func (r *run) evalCoverage(p *mtasts.Policy, url string, details any) bool {
	hosts := r.mx.hostNames()
	covered := true
	var missing []string
	for _, h := range hosts {
		if !p.Match(h) {
			covered = false
			missing = append(missing, h)
		}
	}
	if len(missing) > 0 {
		np := *p
		np.MX = append(append([]string(nil), p.MX...), missing...)
		for _, h := range missing {
			r.add("mta-sts.mx-not-covered", fmt.Sprintf("MX host %s matches none of the policy's mx patterns (%s).", h, strings.Join(p.MX, ", ")),
				r.withNewID(r.policyFix(&np)), details)
		}
	}
	if len(hosts) == 0 {
		return covered
	}
	for _, pat := range p.MX {
		used := false
		for _, h := range hosts {
			if mtasts.MatchMX(pat, h) {
				used = true
				break
			}
		}
		if !used {
			np := *p
			np.MX = nil
			for _, q := range p.MX {
				if q != pat {
					np.MX = append(np.MX, q)
				}
			}
			r.add("mta-sts.pattern-unused", fmt.Sprintf("The policy's mx pattern %q matches none of the MX hosts (%s).", pat, strings.Join(hosts, ", ")),
				"if no MX host is planned there, "+r.withNewID(r.policyFix(&np)), details)
		}
	}
	return covered
}

// evalFetchErr makes the finding of a policy fetch that failed.
func (r *run) evalFetchErr(haveRecord bool) {
	err := r.sts.fetchErr
	url := mtasts.PolicyURL(r.domain)
	host := mtasts.PolicyHost(r.domain)
	var fe *mtasts.FetchError
	errors.As(err, &fe)
	var pe *mtasts.PolicyError
	var details any
	if r.sts.fetch != nil && r.sts.fetch.Body != nil {
		details = map[string]any{"url": url, "status": r.sts.fetch.StatusCode, "content_type": r.sts.fetch.ContentType, "body": clip(string(r.sts.fetch.Body), 2000)}
	}
	msg := fmt.Sprintf("%s: %v", url, fetchCause(err))
	switch {
	case errors.Is(err, mtasts.ErrFetchAddrRefused):
		r.add("mta-sts.policy-refused", msg, fmt.Sprintf("Point %s at a public address.", host), details)
	case errors.Is(err, mtasts.ErrFetchTimeout):
		r.add("mta-sts.policy-timeout", msg, fmt.Sprintf("Make %s answer HTTPS on port 443 promptly.", host), details)
	case errors.Is(err, mtasts.ErrFetchRedirect):
		r.add("mta-sts.policy-redirect", msg, fmt.Sprintf("Serve the policy itself at %s with status 200, without a redirect (also none from / to a www host or from http to https at this path).", url), details)
	case errors.Is(err, mtasts.ErrFetchMediaType):
		r.add("mta-sts.policy-media-type", msg, fmt.Sprintf("Serve %s with the header Content-Type: text/plain.", url), details)
	case errors.Is(err, mtasts.ErrFetchTLS):
		r.add("mta-sts.policy-tls", msg, fmt.Sprintf("Install a certificate for %s from a public CA (for example by ACME), with its intermediates, and TLS 1.2 or later.", host), details)
	case errors.Is(err, mtasts.ErrFetchTooLarge):
		r.add("mta-sts.policy-too-large", msg, "Serve only the policy: a few lines of text/plain.", details)
	case errors.As(err, &pe):
		fix := fmt.Sprintf("Correct %s (line %d, %s): every line is \"key: value\"; version: STSv1, mode, max_age (at most 31557600) and mx are required.", url, pe.Line, pe.Key)
		if r.sts.fetch != nil && r.sts.fetch.Body != nil {
			fix = "serve a valid policy, for example:\n" + r.policyFix(nil)
		}
		r.add("mta-sts.policy-syntax", msg, fix, details)
	case errors.Is(err, mtasts.ErrFetchStatus) && fe != nil && fe.StatusCode != 404:
		r.add("mta-sts.policy-status", msg, fmt.Sprintf("Serve the policy at %s with status 200.", url), details)
	default:
		// No policy host, no connection, or 404: nothing is served.
		if !haveRecord {
			// Reported as mta-sts.missing or as the TXT record's problem:
			// without a valid record, senders never look for a policy.
			return
		}
		r.add("mta-sts.policy-missing", fmt.Sprintf("%s announces a policy but %s", mtasts.RecordName(r.domain), msg),
			fmt.Sprintf("point %s at an HTTPS server with a valid certificate for it, and %s\nor let Moat host it: moat domains add %s", host, r.policyFix(nil), r.domain), details)
	}
}

// fetchCause strips the FetchError wrapper, whose text repeats the URL.
func fetchCause(err error) error {
	var fe *mtasts.FetchError
	if errors.As(err, &fe) {
		return fe.Err
	}
	return err
}

// unwrapLookup strips the LookupError wrapper, whose text repeats the name.
func unwrapLookup(err error) error {
	var le *mtasts.LookupError
	if errors.As(err, &le) {
		return le.Err
	}
	return err
}

func ageText(s int64) string {
	switch {
	case s >= 86400 && s%86400 == 0:
		return plural(int(s/86400), "day", "days")
	case s >= 3600 && s%3600 == 0:
		return plural(int(s/3600), "hour", "hours")
	default:
		return plural(int(s), "second", "seconds")
	}
}

func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}

// hostedData is what Options.Hosted said.
type hostedData struct {
	known  bool
	hosted bool
	err    error
}

func (r *run) gatherHosted(ctx context.Context) {
	if r.opts.Hosted == nil {
		return
	}
	r.hosted.known = true
	r.hosted.hosted, r.hosted.err = r.opts.Hosted(ctx, r.domain)
}

func (r *run) evalHosted() {
	h := r.hosted
	switch {
	case !h.known:
	case h.err != nil:
		r.add("mta-sts.hosted", fmt.Sprintf("Whether this Moat hosts %s is unknown: %v", r.domain, h.err), "", nil)
	case h.hosted:
		r.add("mta-sts.hosted", fmt.Sprintf("This Moat hosts the MTA-STS policy of %s (moat domains show %s).", r.domain, r.domain), "", nil)
	default:
		r.add("mta-sts.hosted", fmt.Sprintf("This Moat does not host the MTA-STS policy of %s.", r.domain), "", nil)
	}
}
