package tlsrpt

import (
	"errors"
	"fmt"
	"net/mail"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/moatmail/moat/internal/dnsname"
)

// Validate checks a report against RFC 8460 §4 strictly and returns one
// *ValidationError (wrapping ErrNonConformant) per broken rule, in
// document order, or nil. It is meant for a report Decode accepted: the
// tolerant decoder keeps what it can, Validate says what a conforming
// sender would have done differently.
//
// Rules checked (RFC 8460 §4.4 unless noted):
//   - organization-name, contact-info and report-id are present;
//     contact-info is an addr-spec (RFC 5322 §3.4.1);
//   - date-range has both ends and start-datetime is before end-datetime;
//   - policies is not empty (§4: "policies" holds the applied policies);
//   - policy-type is "tlsa", "sts" or "no-policy-found"; policy-string is
//     present for "tlsa" and "sts" (§4.5); policy-domain is an A-label
//     host name; mx-host is present for "sts" and each pattern is a host
//     name with an optional "*." prefix;
//   - counts are not negative;
//   - result-type is one of §4.3; sending-mta-ip and receiving-ip, when
//     present, are IP addresses; sending-mta-ip and receiving-mx-hostname
//     are present for every result type but the sts-policy-* ones, which
//     concern fetching the policy, not a session with an MX;
//     additional-information, when present, is a URI.
//
// A total-failure-session-count that differs from the sum of the failure
// details is not an error: §4 allows overlapping failure types.
func Validate(r *Report) []error {
	var errs []error
	add := func(path, format string, args ...any) {
		errs = append(errs, &ValidationError{Path: path, Reason: fmt.Sprintf(format, args...)})
	}
	if r == nil {
		add("$", "no report")
		return errs
	}
	if r.OrganizationName == "" {
		add("organization-name", "missing")
	}
	dr := r.DateRange
	if dr.Start.IsZero() {
		add("date-range.start-datetime", "missing")
	}
	if dr.End.IsZero() {
		add("date-range.end-datetime", "missing")
	}
	if !dr.Start.IsZero() && !dr.End.IsZero() && !dr.Start.Before(dr.End) {
		add("date-range", "start-datetime %s is not before end-datetime %s", dr.Start.Format(time.RFC3339), dr.End.Format(time.RFC3339))
	}
	switch {
	case r.ContactInfo == "":
		add("contact-info", "missing")
	case !isAddrSpec(r.ContactInfo):
		add("contact-info", "%q is not an e-mail address (RFC 5322 addr-spec)", clip(r.ContactInfo))
	}
	if r.ReportID == "" {
		add("report-id", "missing")
	}
	if len(r.Policies) == 0 {
		add("policies", "no policy")
	}
	for i, pr := range r.Policies {
		path := index("policies", i)
		p := pr.Policy
		switch {
		case p.Type == "":
			add(path+".policy.policy-type", "missing")
		case !knownPolicyType(p.Type):
			add(path+".policy.policy-type", "%q is not one of \"tlsa\", \"sts\", \"no-policy-found\"", clip(p.Type))
		}
		if (p.Type == PolicySTS || p.Type == PolicyTLSA) && len(p.String) == 0 {
			add(path+".policy.policy-string", "missing for policy type %q (RFC 8460 §4.5)", p.Type)
		}
		if p.Domain == "" {
			add(path+".policy.policy-domain", "missing")
		} else if err := dnsname.Check(p.Domain, dnsname.Host); err != nil {
			add(path+".policy.policy-domain", "%q is not an A-label host name: %s", clip(p.Domain), reason(err))
		}
		if p.Type == PolicySTS && len(p.MXHost) == 0 {
			add(path+".policy.mx-host", "missing for policy type \"sts\"")
		}
		for j, h := range p.MXHost {
			if err := dnsname.CheckPattern(h, dnsname.Host); err != nil {
				add(index(path+".policy.mx-host", j), "%q is not a host name pattern (RFC 8461 §4.1): %s", clip(h), reason(err))
			}
		}
		if pr.Summary.Successful < 0 {
			add(path+".summary.total-successful-session-count", "negative count %d", pr.Summary.Successful)
		}
		if pr.Summary.Failure < 0 {
			add(path+".summary.total-failure-session-count", "negative count %d", pr.Summary.Failure)
		}
		for j, fd := range pr.FailureDetails {
			validateDetail(index(path+".failure-details", j), fd, add)
		}
	}
	return errs
}

// reason returns the reason of a dnsname error, without the name it
// repeats.
func reason(err error) string {
	var de *dnsname.Error
	if errors.As(err, &de) {
		return de.Reason
	}
	return err.Error()
}

func validateDetail(path string, fd FailureDetail, add func(path, format string, args ...any)) {
	switch {
	case fd.ResultType == "":
		add(path+".result-type", "missing")
	case !knownResultType(fd.ResultType):
		add(path+".result-type", "%q is not a result type of RFC 8460 §4.3", clip(fd.ResultType))
	}
	policyFailure := slices.Contains([]string{ResultSTSPolicyFetchError, ResultSTSPolicyInvalid, ResultSTSWebPKIInvalid}, fd.ResultType)
	for _, f := range []struct{ name, value string }{{"sending-mta-ip", fd.SendingMTAIP}, {"receiving-ip", fd.ReceivingIP}} {
		if f.value == "" {
			if f.name == "sending-mta-ip" && !policyFailure {
				add(path+"."+f.name, "missing")
			}
			continue
		}
		if _, err := netip.ParseAddr(f.value); err != nil {
			add(path+"."+f.name, "%q is not an IP address", clip(f.value))
		}
	}
	if fd.ReceivingMXHostname == "" && !policyFailure {
		add(path+".receiving-mx-hostname", "missing")
	}
	if fd.FailedSessionCount < 0 {
		add(path+".failed-session-count", "negative count %d", fd.FailedSessionCount)
	}
	if a := fd.AdditionalInformation; a != "" && !isURI(a) {
		add(path+".additional-information", "%q is not a URI (RFC 3986)", clip(a))
	}
}

// isAddrSpec reports whether s is a bare addr-spec ("local@domain").
func isAddrSpec(s string) bool {
	a, err := mail.ParseAddress(s)
	return err == nil && a.Name == "" && !strings.ContainsAny(s, "<>") && strings.Contains(a.Address, "@")
}
