package web

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"filippo.io/age"

	"github.com/moatmail/moat/internal/store"
)

// failureMessage is an RFC 6591 failure report about domain with
// addresses and a subject naming tag.
func failureMessage(tag, domain string) string {
	return strings.ReplaceAll(`From: dmarc@reporter.example
Subject: DMARC failure report for `+domain+`
MIME-Version: 1.0
Content-Type: multipart/report; report-type=feedback-report; boundary="ab"

--ab
Content-Type: text/plain

A failure report.
--ab
Content-Type: message/feedback-report

Feedback-Type: auth-failure
User-Agent: Test/1.0
Version: 1
Original-Mail-From: <bounce.`+tag+`@`+domain+`>
Original-Rcpt-To: <victim.`+tag+`@receiver.example>
Source-IP: 192.0.2.25
Reported-Domain: `+domain+`
Authentication-Results: mx.receiver.example; dmarc=fail header.from=`+domain+`
Auth-Failure: dmarc
DKIM-Domain: `+domain+`
DKIM-Selector: sel-`+tag+`
Delivery-Result: reject
--ab
Content-Type: message/rfc822

From: "Jane" <jane.`+tag+`@`+domain+`>
To: victim.`+tag+`@receiver.example
Subject: Secret subject `+tag+`
Message-ID: <m-`+tag+`@`+domain+`>

The body of `+tag+`.
--ab--
`, "\n", "\r\n")
}

// storeFailure stores a failure report of domain, as the intake would
// (the store seals it when the hosting organization has a key).
func (e *env) storeFailure(tag, domain string) int64 {
	e.t.Helper()
	raw := []byte(failureMessage(tag, domain))
	res, err := e.st.InsertDMARC(context.Background(), store.DMARCBatch{Failures: []*store.DMARCFailure{{
		ReceivedAt: testNow, Source: "smtp", Raw: raw, Status: store.ReportOK, Domain: domain, Reporter: "reporter.example",
		FeedbackType: "auth-failure", AuthFailure: "dmarc", SourceIP: "192.0.2.25", DKIMDomain: domain, DKIMSelector: "sel-" + tag,
		DeliveryResult: "reject", Incidents: 1, Parsed: []byte("{}")}}})
	if err != nil {
		e.t.Fatal(err)
	}
	return res.Failures[0].ID
}

// TestFailurePages: the list and the report are redacted for every role;
// owners and admins may show the report unredacted, viewers may not; a
// sealed report says how to decrypt it; the owner sets the key in
// Settings.
func TestFailurePages(t *testing.T) {
	t.Parallel()
	e := pagesEnv(t)
	id := itoa(e.storeFailure("one", "acme.example"))
	secrets := []string{"jane.one@", "victim.one@", "bounce.one@", "Secret subject", "The body of one"}
	for _, who := range []string{owner, admin, viewer} {
		r := e.do(who, "GET", "/dmarc/failures", nil)
		if r.Code != http.StatusOK {
			t.Fatalf("%s list: %d", who, r.Code)
		}
		r.has(t, "/dmarc/failures/"+id, "acme.example", "192.0.2.25", "sel-one", "plain")
		r.lacks(t, secrets...)
		r = e.do(who, "GET", "/dmarc/failures/"+id, nil)
		if r.Code != http.StatusOK {
			t.Fatalf("%s report: %d", who, r.Code)
		}
		r.has(t, "j***@acme.example", "[redacted]", "Authentication-Results")
		r.lacks(t, secrets...)
		if who == viewer {
			r.lacks(t, "show-unredacted")
			if r := e.do(who, "GET", "/dmarc/failures/"+id+"?unredacted=1", nil); r.Code != http.StatusForbidden {
				t.Errorf("viewer unredacted: %d", r.Code)
			}
			continue
		}
		r.has(t, "show-unredacted")
		r = e.do(who, "GET", "/dmarc/failures/"+id+"?unredacted=1", nil)
		if r.Code != http.StatusOK {
			t.Fatalf("%s unredacted: %d", who, r.Code)
		}
		r.has(t, "jane.one@acme.example", "Secret subject one")
	}
	if r := e.do(viewer, "GET", "/dmarc/failures?domain=other-acme.example", nil); r.Code != http.StatusOK {
		t.Errorf("list of another domain: %d", r.Code)
	} else {
		r.lacks(t, "/dmarc/failures/"+id)
	}
	if r := e.do(viewer, "GET", "/dmarc/failures/999999", nil); r.Code != http.StatusNotFound {
		t.Errorf("no such report: %d", r.Code)
	}

	// The key, in Settings: owners only, validated.
	ident, err := age.GenerateX25519Identity()
	if err != nil {
		t.Fatal(err)
	}
	rcpt := ident.Recipient().String()
	if r := e.do(admin, "POST", "/settings/failure-key", url.Values{"recipient": {rcpt}}); r.Code != http.StatusForbidden {
		t.Errorf("admin sets the key: %d", r.Code)
	}
	if r := e.do(owner, "POST", "/settings/failure-key", url.Values{"recipient": {"age1nope"}}); r.Code != http.StatusUnprocessableEntity {
		t.Errorf("a bad key: %d", r.Code)
	} else {
		r.has(t, "age public key")
	}
	if r := e.do(owner, "POST", "/settings/failure-key", url.Values{"recipient": {rcpt}}); r.Code != http.StatusSeeOther && r.Code != http.StatusOK {
		t.Fatalf("owner sets the key: %d", r.Code)
	}
	e.do(owner, "GET", "/settings", nil).has(t, rcpt, "Failure report encryption")
	sid := itoa(e.storeFailure("two", "acme.example"))
	r := e.do(admin, "GET", "/dmarc/failures/"+sid+"?unredacted=1", nil)
	if r.Code != http.StatusOK {
		t.Fatalf("sealed report: %d", r.Code)
	}
	r.has(t, `id="sealed"`, rcpt, "moat reports dmarc decrypt")
	r.lacks(t, "jane.two@", "Secret subject two", `id="unredacted"`)
	e.do(viewer, "GET", "/dmarc/failures", nil).has(t, "encrypted")
}
