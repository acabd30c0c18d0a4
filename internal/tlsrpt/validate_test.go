package tlsrpt

import (
	"errors"
	"strings"
	"testing"
	"time"
)

// validReport is a report that conforms to RFC 8460.
func validReport() *Report {
	return &Report{
		OrganizationName: "Example",
		DateRange:        DateRange{Start: time.Date(2024, 3, 1, 0, 0, 0, 0, time.UTC), End: time.Date(2024, 3, 1, 23, 59, 59, 0, time.UTC)},
		ContactInfo:      "tlsrpt@example.org",
		ReportID:         "r1",
		Policies: []PolicyResult{{
			Policy:  Policy{Type: PolicySTS, String: []string{"version: STSv1"}, Domain: "example.com", MXHost: []string{"*.example.com"}},
			Summary: Summary{Successful: 1, Failure: 2},
			FailureDetails: []FailureDetail{
				{ResultType: ResultCertificateExpired, SendingMTAIP: "192.0.2.1", ReceivingMXHostname: "mx.example.com", ReceivingIP: "2001:db8::1", FailedSessionCount: 1, AdditionalInformation: "https://example.org/x"},
				{ResultType: ResultSTSPolicyFetchError, FailedSessionCount: 1},
			},
		}, {
			Policy: Policy{Type: PolicyNoPolicy, Domain: "example.net"},
		}},
	}
}

func TestValidate(t *testing.T) {
	t.Parallel()
	if errs := Validate(validReport()); errs != nil {
		t.Fatalf("Validate(valid report) = %v", errs)
	}
	tests := []struct {
		name   string
		change func(r *Report)
		want   []string // "path: reason" substrings, in order
	}{
		{"nil report", nil, []string{"$: no report"}},
		{"empty metadata", func(r *Report) { r.OrganizationName, r.ContactInfo, r.ReportID = "", "", "" },
			[]string{"organization-name: missing", "contact-info: missing", "report-id: missing"}},
		{"contact-info not an address", func(r *Report) { r.ContactInfo = "Reports <tlsrpt@example.org>" },
			[]string{`contact-info: "Reports <tlsrpt@example.org>" is not an e-mail address`}},
		{"dates", func(r *Report) { r.DateRange.End = r.DateRange.Start },
			[]string{"date-range: start-datetime 2024-03-01T00:00:00Z is not before end-datetime 2024-03-01T00:00:00Z"}},
		{"no dates", func(r *Report) { r.DateRange = DateRange{} },
			[]string{"date-range.start-datetime: missing", "date-range.end-datetime: missing"}},
		{"no policies", func(r *Report) { r.Policies = nil }, []string{"policies: no policy"}},
		{"policy fields", func(r *Report) {
			p := &r.Policies[0].Policy
			p.Type, p.String, p.Domain, p.MXHost = "dane", nil, "bücher.example", []string{"*.", "mx..example"}
			r.Policies[1].Policy.Type = ""
		}, []string{
			`policies[0].policy.policy-type: "dane" is not one of`,
			`policies[0].policy.policy-domain: "bücher.example" is not an A-label host name`,
			`policies[0].policy.mx-host[0]: "*." is not a host name pattern`,
			`policies[0].policy.mx-host[1]: "mx..example" is not a host name pattern`,
			"policies[1].policy.policy-type: missing",
		}},
		{"policy names", func(r *Report) {
			r.Policies[0].Policy.Domain, r.Policies[0].Policy.MXHost = "a_b.example", []string{"*.com", "mx.xn--zz.example", "MX.Example.COM"}
		}, []string{
			`policies[0].policy.policy-domain: "a_b.example" is not an A-label host name: label "a_b" has the character '_'`,
			`policies[0].policy.mx-host[0]: "*.com" is not a host name pattern (RFC 8461 §4.1): wildcard over a whole top-level domain`,
			`policies[0].policy.mx-host[1]: "mx.xn--zz.example" is not a host name pattern (RFC 8461 §4.1): label "xn--zz" begins with "xn--" but is not a valid A-label`,
		}},
		{"sts without policy-string and mx-host", func(r *Report) { r.Policies[0].Policy.String, r.Policies[0].Policy.MXHost = nil, nil },
			[]string{`policies[0].policy.policy-string: missing for policy type "sts"`, `policies[0].policy.mx-host: missing for policy type "sts"`}},
		{"negative counts", func(r *Report) {
			r.Policies[0].Summary = Summary{Successful: -1, Failure: -2}
			r.Policies[0].FailureDetails[1].FailedSessionCount = -3
		}, []string{
			"policies[0].summary.total-successful-session-count: negative count -1",
			"policies[0].summary.total-failure-session-count: negative count -2",
			"policies[0].failure-details[1].failed-session-count: negative count -3",
		}},
		{"failure detail fields", func(r *Report) {
			fd := &r.Policies[0].FailureDetails[0]
			fd.ResultType, fd.SendingMTAIP, fd.ReceivingMXHostname, fd.ReceivingIP, fd.AdditionalInformation = "unspecified", "", "", "mx.example.com", "not a uri"
			r.Policies[0].FailureDetails[1].ResultType = ""
		}, []string{
			`policies[0].failure-details[0].result-type: "unspecified" is not a result type of RFC 8460 §4.3`,
			"policies[0].failure-details[0].sending-mta-ip: missing",
			`policies[0].failure-details[0].receiving-ip: "mx.example.com" is not an IP address`,
			"policies[0].failure-details[0].receiving-mx-hostname: missing",
			`policies[0].failure-details[0].additional-information: "not a uri" is not a URI`,
			"policies[0].failure-details[1].result-type: missing",
			"policies[0].failure-details[1].sending-mta-ip: missing",
			"policies[0].failure-details[1].receiving-mx-hostname: missing",
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var r *Report
			if tc.change != nil {
				r = validReport()
				tc.change(r)
			}
			errs := Validate(r)
			if len(errs) != len(tc.want) {
				t.Fatalf("Validate = %d errors %v, want %d %q", len(errs), errs, len(tc.want), tc.want)
			}
			for i, err := range errs {
				var ve *ValidationError
				if !errors.As(err, &ve) || !errors.Is(err, ErrNonConformant) {
					t.Errorf("error %v is not a *ValidationError wrapping ErrNonConformant", err)
				}
				if !strings.Contains(err.Error(), tc.want[i]) {
					t.Errorf("error %d = %q, want it to contain %q", i, err, tc.want[i])
				}
			}
		})
	}
}
