package senders

import (
	"errors"
	"slices"
	"testing"

	"github.com/moatmail/moat/internal/store"
)

// row builds a rollup row of example.com.
func row(ip string, n int64, f func(r *store.DMARCRow)) store.DMARCRollupRow {
	r := store.DMARCRollupRow{Domain: "example.com", DMARCRow: store.DMARCRow{SourceIP: ip, HeaderFrom: "example.com",
		EnvelopeFrom: "example.com", Disposition: "none", DKIM: "fail", SPF: "fail", Messages: n}}
	f(&r.DMARCRow)
	return r
}

// scenario is one domain's sources, each chosen for one rule.
func scenario() ([]store.DMARCRollupRow, Facts) {
	rows := []store.DMARCRollupRow{
		// Google Workspace by confirmed reverse DNS: passing, and some
		// failing (a DKIM key gone wrong, SPF without Google's include).
		row("192.0.2.10", 100, func(r *store.DMARCRow) {
			r.DKIM, r.SPF = "pass", "pass"
			r.DKIMDomain, r.DKIMSelector, r.DKIMResult, r.DKIMAligned = "example.com", "google", "pass", true
			r.SPFDomain, r.SPFResult, r.SPFAligned = "example.com", "pass", true
		}),
		row("192.0.2.10", 5, func(r *store.DMARCRow) {
			r.DKIMDomain, r.DKIMSelector, r.DKIMResult, r.DKIMAligned = "example.com", "google", "fail", true
			r.SPFDomain, r.SPFResult, r.SPFAligned = "example.com", "softfail", true
		}),
		// Amazon SES, known by its own passing signature, not aligned.
		row("198.51.100.5", 40, func(r *store.DMARCRow) {
			r.EnvelopeFrom = "eu-west-1.amazonses.com"
			r.DKIMDomain, r.DKIMSelector, r.DKIMResult = "amazonses.com", "ug7nbtf4gccmlpwj322ax3p6ow6yfsug", "pass"
			r.SPFDomain, r.SPFResult = "eu-west-1.amazonses.com", "pass"
		}),
		// A forwarder: DKIM survives, SPF of example.com fails.
		row("203.0.113.7", 20, func(r *store.DMARCRow) {
			r.DKIM = "pass"
			r.DKIMDomain, r.DKIMSelector, r.DKIMResult, r.DKIMAligned = "example.com", "s1", "pass", true
			r.SPFDomain, r.SPFResult, r.SPFAligned = "example.com", "fail", true
		}),
		// A mailing list the reporter recognized.
		row("203.0.113.8", 7, func(r *store.DMARCRow) {
			r.Reason = "local_policy,mailing_list"
			r.DKIMDomain, r.DKIMResult, r.DKIMAligned = "example.com", "fail", true
			r.SPFDomain, r.SPFResult = "lists.example.org", "pass"
		}),
		// Nobody we know.
		row("203.0.113.66", 13, func(r *store.DMARCRow) {
			r.EnvelopeFrom = "spoof.example"
			r.SPFDomain, r.SPFResult = "spoof.example", "fail"
		}),
		// In example.com's SPF record, with its own envelope domain.
		row("192.0.2.99", 3, func(r *store.DMARCRow) {
			r.EnvelopeFrom = "bounce.partner.example"
			r.SPFDomain, r.SPFResult = "bounce.partner.example", "pass"
		}),
		// A PTR name claiming Google, not forward-confirmed.
		row("198.51.100.200", 2, func(r *store.DMARCRow) {
			r.SPFDomain, r.SPFResult, r.SPFAligned = "example.com", "fail", true
		}),
	}
	facts := Facts{
		PTR: map[string]store.PTRRecord{
			"192.0.2.10":     {IP: "192.0.2.10", Names: []string{"mail-a.google.com"}, Confirmed: "mail-a.google.com"},
			"198.51.100.5":   {IP: "198.51.100.5", Error: "nxdomain"},
			"192.0.2.99":     {IP: "192.0.2.99", Names: []string{"mail.partner.example"}},
			"198.51.100.200": {IP: "198.51.100.200", Names: []string{"mail-x.google.com"}},
		},
		SPF: map[string]store.SPFAuth{
			"192.0.2.10":   {Result: "pass"},
			"192.0.2.99":   {Result: "pass"},
			"203.0.113.66": {Result: "fail"},
		},
	}
	// The Google source is in the SPF record today, but the failing
	// messages saw softfail: make it unauthorized so that the include fix
	// shows.
	facts.SPF["192.0.2.10"] = store.SPFAuth{Result: "softfail"}
	return rows, facts
}

func TestClassify(t *testing.T) {
	t.Parallel()
	rows, facts := scenario()
	got := Classify("Example.COM.", rows, facts, builtin(t))
	type want struct {
		ip, class, service, by, ptr string
		confirmed, authorized       bool
		messages, passing           int64
		byClass, failing            Counts
		fixes                       []Fix
	}
	wants := []want{
		{ip: "192.0.2.10", class: "compliant", service: "google", by: "ptr", ptr: "mail-a.google.com", confirmed: true,
			messages: 105, passing: 100, byClass: Counts{Compliant: 100, Misconfigured: 5}, failing: Counts{Misconfigured: 5},
			fixes: []Fix{
				{Kind: FixDKIMKey, Service: "google", Messages: 5, Sources: []string{"192.0.2.10"},
					Text: "the DKIM signature d=example.com s=google fails (fail): publish the key Google Workspace / Gmail gives for selector google at google._domainkey.example.com"},
				{Kind: FixSPFInclude, Service: "google", Messages: 5, Sources: []string{"192.0.2.10"},
					Text: "add include:_spf.google.com to the SPF record of example.com"},
			}},
		{ip: "198.51.100.5", class: "misconfigured", service: "amazon-ses", by: "dkim", messages: 40,
			byClass: Counts{Misconfigured: 40}, failing: Counts{Misconfigured: 40},
			fixes: []Fix{{Kind: FixDKIM, Service: "amazon-ses", Messages: 40, Sources: []string{"198.51.100.5"},
				Text: "sign with DKIM d=example.com in Amazon SES (Amazon SES console: Configuration > Identities > the domain > Authentication > Easy DKIM): its mail is signed with d=amazonses.com, which does not align with example.com"}}},
		{ip: "203.0.113.7", class: "forwarded", messages: 20, passing: 20, byClass: Counts{Forwarded: 20}},
		{ip: "203.0.113.66", class: "unknown", messages: 13, byClass: Counts{Unknown: 13}, failing: Counts{Unknown: 13}},
		{ip: "203.0.113.8", class: "forwarded", messages: 7, byClass: Counts{Forwarded: 7}, failing: Counts{Forwarded: 7}},
		{ip: "192.0.2.99", class: "misconfigured", ptr: "mail.partner.example", authorized: true, messages: 3,
			byClass: Counts{Misconfigured: 3}, failing: Counts{Misconfigured: 3},
			fixes: []Fix{
				{Kind: FixDKIM, Messages: 3, Sources: []string{"192.0.2.99"}, Text: "sign the mail of these sources with DKIM d=example.com"},
				{Kind: FixReturnPath, Messages: 3, Sources: []string{"192.0.2.99"},
					Text: "these sources are in the SPF record of example.com but send with envelope-from bounce.partner.example: make them use a return path under example.com"},
			}},
		{ip: "198.51.100.200", class: "unknown", ptr: "mail-x.google.com", messages: 2, byClass: Counts{Unknown: 2}, failing: Counts{Unknown: 2}},
	}
	if len(got) != len(wants) {
		t.Fatalf("%d sources, want %d", len(got), len(wants))
	}
	for i, w := range wants {
		s := got[i]
		svc := ""
		if s.Service != nil {
			svc = s.Service.ID
		}
		if s.IP != w.ip || string(s.Class) != w.class || svc != w.service || s.ServiceBy != w.by || s.PTR != w.ptr ||
			s.PTRConfirmed != w.confirmed || s.SPFAuthorized != w.authorized || s.Messages != w.messages ||
			s.Passing != w.passing || s.ByClass != w.byClass || s.Failing != w.failing {
			t.Errorf("source %d = %s %s service %q by %q ptr %q (%v) authorized %v, %d messages, %d passing, %+v, failing %+v;\nwant %+v",
				i, s.IP, s.Class, svc, s.ServiceBy, s.PTR, s.PTRConfirmed, s.SPFAuthorized, s.Messages, s.Passing, s.ByClass, s.Failing, w)
		}
		if !slices.EqualFunc(s.Fixes, w.fixes, fixEqual) {
			t.Errorf("source %s fixes:\n got %+v\nwant %+v", s.IP, s.Fixes, w.fixes)
		}
	}
	if got[0].HeaderFrom[0] != "example.com" || !slices.Equal(got[1].EnvelopeFrom, []string{"eu-west-1.amazonses.com"}) ||
		!slices.Equal(got[1].DKIMDomains, []string{"amazonses.com"}) {
		t.Errorf("domains seen: %v %v %v", got[0].HeaderFrom, got[1].EnvelopeFrom, got[1].DKIMDomains)
	}
	if got[6].PTRError != "" || got[2].PTRError != "unresolved" || got[1].PTRError != "nxdomain" {
		t.Errorf("PTR errors: %q %q %q", got[6].PTRError, got[2].PTRError, got[1].PTRError)
	}
}

func fixEqual(a, b Fix) bool {
	return a.Kind == b.Kind && a.Service == b.Service && a.Text == b.Text && a.Messages == b.Messages && slices.Equal(a.Sources, b.Sources)
}

// TestRowClass: one rule per line.
func TestRowClass(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name              string
		r                 store.DMARCRow
		known, authorized bool
		want              Class
		pass              bool
	}{
		{"aligned dkim", store.DMARCRow{DKIM: "pass", SPF: "fail", DKIMAligned: true, DKIMResult: "pass", SPFResult: "pass"}, false, false, Compliant, true},
		{"aligned spf", store.DMARCRow{DKIM: "fail", SPF: "pass", SPFResult: "pass"}, false, false, Compliant, true},
		{"dkim through a forwarder", store.DMARCRow{DKIM: "pass", SPF: "fail", DKIMAligned: true, DKIMResult: "pass", SPFResult: "softfail"}, true, false, Forwarded, true},
		{"dkim, spf unknown", store.DMARCRow{DKIM: "pass", SPF: "fail", DKIMAligned: true, DKIMResult: "pass"}, false, false, Compliant, true},
		{"dkim, spf fails but authorized today", store.DMARCRow{DKIM: "pass", SPF: "fail", DKIMAligned: true, DKIMResult: "pass", SPFResult: "fail"}, false, true, Compliant, true},
		{"forwarded override", store.DMARCRow{DKIM: "fail", SPF: "fail", Reason: "forwarded"}, false, false, Forwarded, false},
		{"trusted forwarder", store.DMARCRow{DKIM: "fail", SPF: "fail", Reason: "trusted_forwarder"}, true, false, Forwarded, false},
		{"mailing list among others", store.DMARCRow{DKIM: "fail", SPF: "fail", Reason: "other, mailing_list"}, false, false, Forwarded, false},
		{"sampled out is no forwarding", store.DMARCRow{DKIM: "fail", SPF: "fail", Reason: "sampled_out"}, false, false, Unknown, false},
		{"known failing", store.DMARCRow{DKIM: "fail", SPF: "fail"}, true, false, Misconfigured, false},
		{"authorized failing", store.DMARCRow{DKIM: "fail", SPF: "fail"}, false, true, Misconfigured, false},
		{"unknown failing", store.DMARCRow{DKIM: "fail", SPF: "fail"}, false, false, Unknown, false},
	}
	for _, tc := range tests {
		cl, pass := rowClass(&tc.r, tc.known, tc.authorized)
		if cl != tc.want || pass != tc.pass {
			t.Errorf("%s: %s (pass %v), want %s (pass %v)", tc.name, cl, pass, tc.want, tc.pass)
		}
	}
}

func TestImpact(t *testing.T) {
	t.Parallel()
	rows, facts := scenario()
	sources := Classify("example.com", rows, facts, builtin(t))
	tests := []struct {
		pol                                  Policy
		applied                              string
		rejected, quarantined                int64
		amazonRejected, amazonQuarantined    int64
		forwardedRejected, unknownQuarantine int64
	}{
		{Policy{P: "reject"}, "reject", 70, 0, 40, 0, 7, 0},
		{Policy{P: "reject", Pct: 100}, "reject", 70, 0, 40, 0, 7, 0},
		{Policy{P: "quarantine"}, "quarantine", 0, 70, 0, 40, 0, 15},
		// pct=50, rounded half up per count: 70→35+35; Amazon 40→20+20;
		// forwarded 7→4+3; unknown 15→8+7.
		{Policy{P: "reject", Pct: 50}, "reject", 35, 35, 20, 20, 4, 7},
		{Policy{P: "quarantine", Pct: 50}, "quarantine", 0, 35, 0, 20, 0, 8},
		// pct=1: 70→1+69, each group rounds to 0.
		{Policy{P: "reject", Pct: 1}, "reject", 1, 69, 0, 40, 0, 15},
		// RFC 9989 t=y: one level below, pct ignored.
		{Policy{P: "reject", Testing: true, Pct: 10}, "quarantine", 0, 70, 0, 40, 0, 15},
		{Policy{P: "quarantine", Testing: true}, "none", 0, 0, 0, 0, 0, 0},
	}
	for _, tc := range tests {
		im, err := ComputeImpact("example.com", sources, tc.pol)
		if err != nil {
			t.Fatalf("%+v: %v", tc.pol, err)
		}
		if im.Applied != tc.applied || im.Messages != 190 || im.Failing != 70 || im.Forwarded != 7 ||
			im.Rejected != tc.rejected || im.Quarantined != tc.quarantined {
			t.Errorf("%+v: applied %s, %d messages, %d failing, %d forwarded, %d rejected, %d quarantined; want %s, 190, 70, 7, %d, %d",
				tc.pol, im.Applied, im.Messages, im.Failing, im.Forwarded, im.Rejected, im.Quarantined, tc.applied, tc.rejected, tc.quarantined)
		}
		g := map[string]ImpactGroup{}
		for _, x := range im.Groups {
			g[string(x.Class)+"/"+x.Service] = x
		}
		if len(g) != 5 || g["misconfigured/amazon-ses"].Rejected != tc.amazonRejected || g["misconfigured/amazon-ses"].Quarantined != tc.amazonQuarantined ||
			g["forwarded/"].Rejected != tc.forwardedRejected || g["unknown/"].Quarantined != tc.unknownQuarantine ||
			g["unknown/"].Sources != 2 || g["unknown/"].Failing != 15 || g["misconfigured/google"].Failing != 5 || g["misconfigured/"].Failing != 3 {
			t.Errorf("%+v: groups %+v", tc.pol, im.Groups)
		}
		if im.Groups[0].Class != Misconfigured || im.Groups[0].Service != "amazon-ses" || im.Groups[len(im.Groups)-1].Class != Forwarded {
			t.Errorf("%+v: group order %+v", tc.pol, im.Groups)
		}
		if len(im.Sources) != 6 || im.Sources[0].IP != "198.51.100.5" || im.Sources[5].IP != "198.51.100.200" {
			t.Errorf("%+v: sources %+v", tc.pol, im.Sources)
		}
		if len(im.Fixes) != 5 || im.Fixes[0].Service != "amazon-ses" || im.Fixes[0].Messages != 40 {
			t.Errorf("%+v: fixes %+v", tc.pol, im.Fixes)
		}
	}
	for _, bad := range []Policy{{P: "none"}, {P: "Reject"}, {P: "reject", Pct: 101}, {P: "reject", Pct: -1}} {
		if _, err := ComputeImpact("example.com", sources, bad); !errors.Is(err, ErrPolicy) {
			t.Errorf("%+v: %v, want ErrPolicy", bad, err)
		}
	}
}

// TestFixesMerge: the same fix of two sources of one service is one fix.
func TestFixesMerge(t *testing.T) {
	t.Parallel()
	var rows []store.DMARCRollupRow
	for _, ip := range []string{"54.240.8.31", "54.240.8.33"} {
		rows = append(rows, row(ip, 10, func(r *store.DMARCRow) {
			r.DKIMDomain, r.DKIMResult = "amazonses.com", "pass"
			r.EnvelopeFrom, r.SPFDomain, r.SPFResult = "amazonses.com", "amazonses.com", "pass"
		}))
	}
	sources := Classify("example.com", rows, Facts{}, builtin(t))
	im, err := ComputeImpact("example.com", sources, Policy{P: "reject"})
	if err != nil {
		t.Fatal(err)
	}
	if len(im.Fixes) != 1 || im.Fixes[0].Messages != 20 || !slices.Equal(im.Fixes[0].Sources, []string{"54.240.8.31", "54.240.8.33"}) {
		t.Errorf("fixes %+v", im.Fixes)
	}
}
