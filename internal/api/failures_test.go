package api_test

import (
	"bytes"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"filippo.io/age"

	"github.com/moatmail/moat/internal/intake"
	"github.com/moatmail/moat/internal/store"
)

// failureMail is an RFC 6591 failure report about domain, from a
// reporter named by tag, about a message from jane.doe@domain to
// victim@tag.test with a subject naming tag.
func failureMail(tag, domain string) []byte {
	return []byte(strings.ReplaceAll(fmt.Sprintf(`From: dmarc@reporter-%[1]s.example
To: ruf@reports.moat.test
Subject: DMARC failure report for %[2]s
Date: Wed, 15 Nov 2023 10:00:00 +0000
Message-ID: <ruf-%[1]s@reporter.example>
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
Original-Mail-From: <bounce.person@%[2]s>
Original-Rcpt-To: <victim@%[1]s.test>
Source-IP: 192.0.2.25
Reported-Domain: %[2]s
Authentication-Results: mx.reporter.example; dmarc=fail header.from=%[2]s; spf=fail smtp.mailfrom=bounce.person@%[2]s
Auth-Failure: dmarc
Identity-Alignment: none
DKIM-Domain: %[2]s
DKIM-Selector: s1
SPF-DNS: txt : %[2]s : "v=spf1 -all"
Delivery-Result: reject
--ab
Content-Type: message/rfc822

From: "Jane Doe" <jane.doe@%[2]s>
To: victim@%[1]s.test
Subject: The secret plans of %[1]s
Message-ID: <msg-%[1]s@%[2]s>
Date: Wed, 15 Nov 2023 09:59:50 +0000
DKIM-Signature: v=1; a=rsa-sha256; d=%[2]s; s=s1; i=jane.doe@%[2]s; h=from; bh=x; b=y

Body of %[1]s.
--ab--
`, tag, domain), "\n", "\r\n"))
}

// failureReport stores a failure report, as the intake would.
func (e *env) failureReport(t testing.TB, raw []byte) int64 {
	t.Helper()
	res, err := e.deps.Ingester.SubmitMail(t.Context(), intake.Submission{Source: intake.SourceImport, SourceDetail: "fixture"}, raw, intake.MailOpts{})
	if err != nil || len(res) != 1 || res[0].Kind != store.KindDMARCFailure {
		t.Fatalf("failure fixture: %+v, %v", res, err)
	}
	return res[0].ID
}

// tourFailures walks the failure report endpoints: redacted for everyone,
// unredacted and raw for owners and admins, sealed once a key is set.
func tourFailures(t *testing.T, e *env, owner, admin, viewer cred) {
	id := e.failureReport(t, failureMail("tour", "example.com"))
	path := fmt.Sprintf("/api/v1/reports/dmarc-failures/%d", id)
	secrets := []string{"jane.doe@", "victim@tour.test", "bounce.person@", "secret plans", "Body of tour"}
	noSecrets := func(what string, b []byte) {
		t.Helper()
		for _, s := range secrets {
			if bytes.Contains(b, []byte(s)) {
				t.Errorf("%s holds %q: %s", what, s, b)
			}
		}
	}
	l := e.must(t, viewer, get("/api/v1/reports/dmarc-failures?domain=example.com&since=30000d&limit=1"), 200)
	noSecrets("the list", l.body)
	if fl, _ := l.json(t)["failures"].([]any); len(fl) != 1 {
		t.Errorf("list: %s", l.body)
	}
	e.must(t, viewer, get("/api/v1/reports/dmarc-failures?status=ok"), 400)
	show := e.must(t, viewer, get(path), 200)
	noSecrets("the redacted report", show.body)
	if !bytes.Contains(show.body, []byte(`j***@example.com`)) || !bytes.Contains(show.body, []byte(`"redacted"`)) {
		t.Errorf("redacted report: %s", show.body)
	}
	e.must(t, viewer, get(path+"?unredacted=1"), 403)
	e.must(t, viewer, get(path+"/raw"), 403)
	e.must(t, viewer, get(path+"?unredacted=maybe"), 400)
	if un := e.must(t, admin, get(path+"?unredacted=1"), 200); !bytes.Contains(un.body, []byte("jane.doe@example.com")) {
		t.Errorf("unredacted report: %s", un.body)
	}
	if raw := e.must(t, owner, get(path+"/raw"), 200); !bytes.Equal(raw.body, failureMail("tour", "example.com")) ||
		raw.header.Get("Content-Type") != "message/rfc822" {
		t.Errorf("raw: %s %s", raw.header, raw.body)
	}
	e.must(t, viewer, get("/api/v1/reports/dmarc-failures/999999"), 404)
	e.must(t, viewer, get("/api/v1/reports/dmarc-failures/999999/raw"), 404)

	// The key: owners set it; then reports are sealed.
	if k := e.must(t, viewer, get("/api/v1/reports/dmarc-failures/key"), 200).json(t); k["recipient"] != "" {
		t.Errorf("key before: %v", k)
	}
	ident, err := age.GenerateX25519Identity()
	if err != nil {
		t.Fatal(err)
	}
	rcpt := ident.Recipient().String()
	e.must(t, admin, jsonReq("PUT", "/api/v1/reports/dmarc-failures/key", map[string]string{"recipient": rcpt}), 403)
	e.must(t, owner, jsonReq("PUT", "/api/v1/reports/dmarc-failures/key", map[string]string{"recipient": "age1bogus"}), 400)
	e.must(t, owner, jsonReq("PUT", "/api/v1/reports/dmarc-failures/key", map[string]string{"recipient": rcpt}), 200)
	if k := e.must(t, viewer, get("/api/v1/reports/dmarc-failures/key"), 200).json(t); k["recipient"] != rcpt {
		t.Errorf("key after: %v", k)
	}
	sid := e.failureReport(t, failureMail("sealed", "example.com"))
	spath := fmt.Sprintf("/api/v1/reports/dmarc-failures/%d", sid)
	sv := e.must(t, viewer, get(spath), 200)
	if v := sv.json(t); v["sealed_to"] != rcpt || v["redacted"] != nil || !strings.Contains(fmt.Sprint(v["decrypt"]), "moat reports dmarc decrypt") {
		t.Errorf("sealed report: %s", sv.body)
	}
	// Unredacted asks nothing more of a sealed report: there is no plain text.
	e.must(t, admin, get(spath+"?unredacted=1"), 200)
	sraw := e.must(t, viewer, get(spath+"/raw"), 200)
	if sraw.header.Get("Content-Type") != "application/octet-stream" || !bytes.HasPrefix(sraw.body, []byte(store.SealPrefix)) {
		t.Errorf("sealed raw: %s %.60q", sraw.header, sraw.body)
	}
	if plain, err := store.Unseal(sraw.body, ident); err != nil || !bytes.Equal(plain, failureMail("sealed", "example.com")) {
		t.Errorf("Unseal(raw) = %.60q, %v", plain, err)
	}
	e.must(t, owner, jsonReq("PUT", "/api/v1/reports/dmarc-failures/key", map[string]string{"recipient": ""}), 200)
}

// failureWalk is the isolation walk of the failure report routes.
func failureWalk(id func(int64) string) map[string]walkEntry {
	emptyFailures := func(t *testing.T, res resp) {
		t.Helper()
		if l, _ := res.json(t)["failures"].([]any); len(l) != 0 {
			t.Errorf("failure reports of another organization's domain: %s", res.body)
		}
	}
	return map[string]walkEntry{
		"GET /api/v1/reports/dmarc-failures": {target: func(*world, string) req { return get("/api/v1/reports/dmarc-failures?limit=1000") }, ok: 200, selfRead: true,
			foreign: func(w *world, f string) []probe {
				return []probe{{req: get("/api/v1/reports/dmarc-failures?domain=" + w.orgs[f].domain), want: http.StatusOK, check: emptyFailures}}
			}},
		"GET /api/v1/reports/dmarc-failures/key": {target: func(*world, string) req { return get("/api/v1/reports/dmarc-failures/key") }, ok: 200,
			self: "the key of the organization the caller acts in, no other"},
		"PUT /api/v1/reports/dmarc-failures/key": {target: func(*world, string) req {
			return jsonReq("PUT", "/api/v1/reports/dmarc-failures/key", map[string]string{"recipient": ""})
		}, ok: 200, self: "sets the key of the organization the caller acts in, no other"},
		"GET /api/v1/reports/dmarc-failures/{id}": {target: func(w *world, k string) req { return get("/api/v1/reports/dmarc-failures/" + id(w.orgs[k].failureID)) }, ok: 200,
			foreign: func(w *world, f string) []probe {
				return append(notFound(get("/api/v1/reports/dmarc-failures/"+id(w.orgs[f].failureID))),
					notFound(get("/api/v1/reports/dmarc-failures/"+id(w.orgs[f].failureID)+"?unredacted=1"))...)
			}},
		"GET /api/v1/reports/dmarc-failures/{id}/raw": {target: func(w *world, k string) req {
			return get("/api/v1/reports/dmarc-failures/" + id(w.orgs[k].failureID) + "/raw")
		}, ok: 200,
			foreign: func(w *world, f string) []probe {
				return notFound(get("/api/v1/reports/dmarc-failures/" + id(w.orgs[f].failureID) + "/raw"))
			}},
	}
}
