package tlsrptstats_test

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/moatmail/moat/internal/store"
	"github.com/moatmail/moat/internal/tlsrptstats"
)

// judged is the moment readiness is judged in these tests: the default
// window of 14 days is then 2026-11-13 to 2026-11-26 included.
func judged() time.Time { return time.Date(2026, 11, 26, 15, 0, 0, 0, time.UTC) }

func readinessReports() []*store.TLSRPTReport {
	return []*store.TLSRPTReport{
		// ready.example: enough MTA-STS sessions from two senders; the
		// failures are not MTA-STS's (no policy found, DANE).
		report("Google Inc.", day(20), "ready.example", "sts", 1000),
		report("Microsoft", day(21), "ready.example", "sts", 234),
		report("Yahoo", day(22), "ready.example", "no-policy-found", 50, failure{"starttls-not-supported", "203.0.113.1", "mx.ready.example", 5}),
		report("Comcast", day(22), "ready.example", "tlsa", 9, failure{"tlsa-invalid", "203.0.113.2", "mx.ready.example", 3}),

		// failing.example: the policy host's certificate, reported both
		// under sts and by a sender that then found no policy; and one MX
		// with the wrong certificate.
		report("Google Inc.", day(14), "failing.example", "no-policy-found", 0, failure{"sts-webpki-invalid", "192.0.2.1", "", 10}),
		report("Microsoft", day(15), "failing.example", "sts", 500, failure{"sts-webpki-invalid", "198.51.100.1", "", 7}),
		report("Google Inc.", day(16), "failing.example", "sts", 100,
			failure{"certificate-host-mismatch", "192.0.2.1", "mx1.failing.example", 2}),

		// few.example: too few sessions; lonely.example: one sender.
		report("Google Inc.", day(20), "few.example", "sts", 40),
		report("Microsoft", day(21), "few.example", "sts", 30),
		report("Google Inc.", day(20), "lonely.example", "sts", 500),

		// edge.example: a failure the day before the window, successes in
		// it, and a failure on the window's last day (today) for
		// today.example.
		report("Google Inc.", day(12), "edge.example", "sts", 100, failure{"certificate-expired", "192.0.2.1", "mx.edge.example", 5}),
		report("Google Inc.", day(13), "edge.example", "sts", 200),
		report("Microsoft", day(19), "edge.example", "sts", 200, failure{"starttls-not-supported", "198.51.100.1", "mx.edge.example", 1}),
		report("Google Inc.", day(20), "today.example", "sts", 200),
		report("Microsoft", day(20), "today.example", "sts", 200),
		report("Microsoft", day(26), "today.example", "sts", 1, failure{"certificate-expired", "198.51.100.1", "mx.today.example", 1}),

		// many.example: four kinds of failure.
		report("Microsoft", day(20), "many.example", "sts", 100,
			failure{"validation-failure", "198.51.100.1", "mx.many.example", 1},
			failure{"starttls-not-supported", "198.51.100.1", "mx.many.example", 2},
			failure{"certificate-not-trusted", "198.51.100.1", "mx.many.example", 3},
			failure{"certificate-expired", "198.51.100.1", "mx.many.example", 4}),
	}
}

func TestReadyToEnforce(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, st store.Store) {
		insert(t, st, readinessReports()...)
		tests := []struct {
			domain   string
			opts     tlsrptstats.ReadinessOpts
			ready    bool
			sessions int64
			failures int64
			orgs     int
			reason   string // the whole Reason, or a prefix ending in "…"
			since    time.Time
		}{
			{"ready.example", tlsrptstats.ReadinessOpts{}, true, 1234, 0, 2,
				"no MTA-STS failures in 1,234 sessions from 2 senders over the last 14 days", day(13)},
			{"READY.example.", tlsrptstats.ReadinessOpts{MinOrganizations: 3}, false, 1234, 0, 2,
				"no MTA-STS failures, but only 1,234 sessions from 2 senders over the last 14 days: wait for at least 100 sessions from 3 senders before enforcing", day(13)},
			{"failing.example", tlsrptstats.ReadinessOpts{}, false, 619, 19, 2,
				"17 sessions failed sts-webpki-invalid from 2 senders since 2026-11-14; 2 sessions failed certificate-host-mismatch from 1 sender since 2026-11-16: " +
					"senders could not validate the certificate of the policy host mta-sts.failing.example. Before enforcing, make sure mta-sts.failing.example serves a valid, trusted certificate that names it", day(13)},
			{"few.example", tlsrptstats.ReadinessOpts{}, false, 70, 0, 2,
				"no MTA-STS failures, but only 70 sessions from 2 senders over the last 14 days: wait for at least 100 sessions from 2 senders before enforcing", day(13)},
			{"few.example", tlsrptstats.ReadinessOpts{MinSessions: 70}, true, 70, 0, 2,
				"no MTA-STS failures in 70 sessions from 2 senders over the last 14 days", day(13)},
			{"lonely.example", tlsrptstats.ReadinessOpts{}, false, 500, 0, 1,
				"no MTA-STS failures, but only 500 sessions from 1 sender over the last 14 days: wait for at least 100 sessions from 2 senders before enforcing", day(13)},
			{"lonely.example", tlsrptstats.ReadinessOpts{MinOrganizations: 1}, true, 500, 0, 1,
				"no MTA-STS failures in 500 sessions from 1 sender over the last 14 days", day(13)},
			// The window starts on 2026-11-13: the failure of the 12th
			// is out, the one of the 19th in.
			{"edge.example", tlsrptstats.ReadinessOpts{}, false, 401, 1, 2,
				"1 session failed starttls-not-supported from 1 sender since 2026-11-19: MX mx.edge.example did not offer STARTTLS. Before enforcing, enable STARTTLS with a valid certificate there", day(13)},
			// Seven days (2026-11-20 to 26): only the 13th's 200 are out
			// too, and the 19th's failure; one sender is left.
			{"edge.example", tlsrptstats.ReadinessOpts{Window: 7 * 24 * time.Hour, MinOrganizations: 1}, false, 0, 0, 0, "no TLS report shows MTA-STS sessions to edge.example over the last 7 days…", day(20)},
			// A window of 15 days reaches the 12th.
			{"edge.example", tlsrptstats.ReadinessOpts{Window: 15 * 24 * time.Hour}, false, 506, 6, 2, "5 sessions failed certificate-expired from 1 sender since 2026-11-12; 1 session failed starttls-not-supported…", day(12)},
			// A partial day counts as a whole one: 14.5 days is 15.
			{"edge.example", tlsrptstats.ReadinessOpts{Window: 14*24*time.Hour + 12*time.Hour}, false, 506, 6, 2, "5 sessions failed certificate-expired…", day(12)},
			// Today's reports count.
			{"today.example", tlsrptstats.ReadinessOpts{}, false, 402, 1, 2, "1 session failed certificate-expired from 1 sender since 2026-11-26: the certificate of MX mx.today.example has expired…", day(13)},
			{"many.example", tlsrptstats.ReadinessOpts{}, false, 110, 10, 1,
				"4 sessions failed certificate-expired from 1 sender since 2026-11-20; 3 sessions failed certificate-not-trusted from 1 sender since 2026-11-20; " +
					"2 sessions failed starttls-not-supported from 1 sender since 2026-11-20; 1 more session failed in 1 other way: " +
					"the certificate of MX mx.many.example has expired. Before enforcing, renew it, and automate renewal", day(13)},
			{"nothing.example", tlsrptstats.ReadinessOpts{}, false, 0, 0, 0, "no TLS report shows MTA-STS sessions to nothing.example over the last 14 days…", day(13)},
		}
		for _, tc := range tests {
			v, err := tlsrptstats.ReadyToEnforce(t.Context(), st, tc.domain, judged(), tc.opts)
			if err != nil {
				t.Fatalf("ReadyToEnforce(%s): %v", tc.domain, err)
			}
			what := tc.domain + " (" + fmtOpts(tc.opts) + ")"
			if v.Ready != tc.ready || v.Sessions != tc.sessions || v.Failures != tc.failures || v.Organizations != tc.orgs {
				t.Errorf("%s: ready %v, %d sessions, %d failures, %d senders; want %v, %d, %d, %d (reason: %s)",
					what, v.Ready, v.Sessions, v.Failures, v.Organizations, tc.ready, tc.sessions, tc.failures, tc.orgs, v.Reason)
			}
			if prefix, ok := strings.CutSuffix(tc.reason, "…"); ok {
				if !strings.HasPrefix(v.Reason, prefix) {
					t.Errorf("%s: reason\n%s\nwant it to start with\n%s", what, v.Reason, prefix)
				}
			} else if v.Reason != tc.reason {
				t.Errorf("%s: reason\n%s\nwant\n%s", what, v.Reason, tc.reason)
			}
			if !v.Since.Equal(tc.since) || !v.Until.Equal(day(27)) {
				t.Errorf("%s: window [%v, %v), want [%v, %v)", what, v.Since, v.Until, tc.since, day(27))
			}
			var sum int64
			for _, h := range v.ByResult {
				sum += h.Sessions
			}
			if sum != v.Failures {
				t.Errorf("%s: failures by result sum to %d, want %d", what, sum, v.Failures)
			}
		}

		// The failure breakdown of failing.example.
		v, err := tlsrptstats.ReadyToEnforce(t.Context(), st, "failing.example", judged(), tlsrptstats.ReadinessOpts{})
		if err != nil {
			t.Fatal(err)
		}
		if len(v.ByResult) != 2 {
			t.Fatalf("failing.example: %d result types, want 2: %+v", len(v.ByResult), v.ByResult)
		}
		w, m := v.ByResult[0], v.ByResult[1]
		if w.ResultType != "sts-webpki-invalid" || w.Sessions != 17 || w.Organizations != 2 || !w.FirstDay.Equal(day(14)) || len(w.MXs) != 0 {
			t.Errorf("first result = %+v, want sts-webpki-invalid, 17 sessions, 2 senders, first on 2026-11-14, no MX", w)
		}
		if m.ResultType != "certificate-host-mismatch" || m.Sessions != 2 || m.Organizations != 1 ||
			!slices.Equal(m.MXs, []string{"mx1.failing.example"}) ||
			!strings.HasPrefix(m.Hint, "the certificate of MX mx1.failing.example does not name mx1.failing.example") {
			t.Errorf("second result = %+v, want certificate-host-mismatch of mx1.failing.example with a hint naming it", m)
		}
	})
}

func fmtOpts(o tlsrptstats.ReadinessOpts) string {
	var parts []string
	if o.Window != 0 {
		parts = append(parts, "window "+o.Window.String())
	}
	if o.MinSessions != 0 {
		parts = append(parts, "min sessions set")
	}
	if o.MinOrganizations != 0 {
		parts = append(parts, "min senders set")
	}
	return strings.Join(parts, ", ")
}

func TestReadyToEnforceInvalid(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, st store.Store) {
		for _, tc := range []struct {
			domain  string
			opts    tlsrptstats.ReadinessOpts
			mention string
		}{
			{"", tlsrptstats.ReadinessOpts{}, "domain"},
			{" . ", tlsrptstats.ReadinessOpts{}, "domain"},
			{"example.com", tlsrptstats.ReadinessOpts{Window: -time.Hour}, "-1h0m0s"},
			{"example.com", tlsrptstats.ReadinessOpts{MinSessions: -5}, "-5"},
			{"example.com", tlsrptstats.ReadinessOpts{MinOrganizations: -2}, "-2"},
		} {
			_, err := tlsrptstats.ReadyToEnforce(t.Context(), st, tc.domain, judged(), tc.opts)
			if !errors.Is(err, tlsrptstats.ErrInvalidQuery) || !strings.Contains(err.Error(), tc.mention) {
				t.Errorf("ReadyToEnforce(%q, %+v): error %v, want ErrInvalidQuery naming %s", tc.domain, tc.opts, err, tc.mention)
			}
		}
	})
}
