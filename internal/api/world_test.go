package api_test

import (
	"testing"

	"github.com/moatmail/moat/internal/store"
)

// The world of the isolation tests: organizations A and B; MSP P with
// customer C; MSP Q with customer D. Each has an owner, an admin and a
// viewer (signed in), a read and a write token, and rows of every kind:
// a hosted domain with a certificate event, a TLS report with a policy for
// it, a DMARC aggregate report about it, a check, an open invitation. Every name carries the organization's
// key, so that an answer holding another organization's data is found by
// its markers.

// orgKeys are the organizations, parents before customers.
var orgKeys = []string{"a", "b", "p", "c", "q", "d"}

// parentKey is the MSP of each customer.
func parentKey(k string) string {
	return map[string]string{"c": "p", "d": "q"}[k]
}

// fxOrg is one organization of the world with its rows.
type fxOrg struct {
	key      string
	org      *store.Org
	domain   string // "dom-k.example"
	reportID int64
	dmarcID  int64 // a DMARC aggregate report about domain
	// failureID is a DMARC failure report about domain.
	failureID int64
	checkID   int64
	invID     int64
	// users by role, with their user ids; tokens by scope.
	users   map[string]cred
	userIDs map[string]int64
	tokens  map[string]cred
	tokenID map[string]int64
}

// markers are strings that only this organization's rows hold.
func (o *fxOrg) markers() []string {
	k := o.key
	return []string{"org-" + k + `"`, "dom-" + k + ".example", "reporter-" + k, "rid-" + k, "@" + k + ".test", "tok-" + k + "-"}
}

// principal is one way of acting: a signed-in user or a token, with the
// organizations it must see (its scope), no more.
type principal struct {
	cred
	org   string          // the organization it acts in
	role  string          // its effective role
	scope map[string]bool // organizations it sees
}

// world is the fixture of the isolation and tour tests.
type world struct {
	e          *env
	orgs       map[string]*fxOrg
	principals []principal
	operator   cred
	// sharedReport has a policy for dom-a.example and one for
	// dom-b.example.
	sharedReport int64
}

// newWorld builds the world on e.
func newWorld(t *testing.T, e *env) *world {
	t.Helper()
	w := &world{e: e, orgs: map[string]*fxOrg{}}
	for _, k := range orgKeys {
		var parent int64
		if pk := parentKey(k); pk != "" {
			parent = w.orgs[pk].org.ID
		}
		o := &fxOrg{key: k, org: e.org(t, "org-"+k, parent), domain: "dom-" + k + ".example",
			users: map[string]cred{}, userIDs: map[string]int64{}, tokens: map[string]cred{}, tokenID: map[string]int64{}}
		w.orgs[k] = o
		e.domain(t, o.org, o.domain)
		if err := e.st.RecordCertificate(t.Context(), o.domain, e.now(), e.now().AddDate(0, 3, 0), "issued for "+o.domain); err != nil {
			t.Fatal(err)
		}
		o.reportID = e.report(t, "reporter-"+k, "rid-"+k, o.domain)
		o.dmarcID = e.dmarcReport(t, dmarcXML("reporter-"+k, "rid-"+k+"-dmarc", o.domain, 3))
		o.failureID = e.failureReport(t, failureMail(k, o.domain))
		o.checkID = e.check(t, o.org, o.domain)
		o.invID = e.invitation(t, o.org, "invitee@"+k+".test", store.RoleViewer)
		for _, role := range []string{store.RoleOwner, store.RoleAdmin, store.RoleViewer} {
			c, u := e.user(t, role+"@"+k+".test", o.org, role)
			o.users[role], o.userIDs[role] = c, u.ID
			// A second owner, so that owners may demote one another.
			if role == store.RoleOwner {
				e.user(t, "owner2@"+k+".test", o.org, role)
			}
		}
		for _, scope := range []string{store.ScopeRead, store.ScopeWrite} {
			c, tk := e.token(t, o.org, "tok-"+k+"-"+scope, scope)
			o.tokens[scope], o.tokenID[scope] = c, tk.ID
		}
	}
	// A report with policies for A's and B's domains: each sees its part.
	w.sharedReport = e.rawReport(t, sharedReportJSON("shared-sender", "rid-shared", w.orgs["a"].domain, w.orgs["b"].domain))
	// Who sees what: MSP owners, admins and write tokens see their
	// customers; nobody sees a parent or another tree.
	for _, k := range orgKeys {
		o := w.orgs[k]
		child := map[string]string{"p": "c", "q": "d"}[k]
		for _, role := range []string{store.RoleOwner, store.RoleAdmin, store.RoleViewer} {
			p := principal{cred: o.users[role], org: k, role: role, scope: map[string]bool{k: true}}
			if child != "" && role != store.RoleViewer {
				p.scope[child] = true
			}
			w.principals = append(w.principals, p)
		}
		for scope, role := range map[string]string{store.ScopeRead: store.RoleViewer, store.ScopeWrite: store.RoleAdmin} {
			p := principal{cred: o.tokens[scope], org: k, role: role, scope: map[string]bool{k: true}}
			if child != "" && scope == store.ScopeWrite {
				p.scope[child] = true
			}
			w.principals = append(w.principals, p)
		}
	}
	// P's owner acting in its customer C: C only.
	u, err := e.st.User(t.Context(), w.orgs["p"].userIDs[store.RoleOwner])
	if err != nil {
		t.Fatal(err)
	}
	w.principals = append(w.principals, principal{cred: e.session(t, u, w.orgs["c"].org), org: "c", role: store.RoleOwner,
		scope: map[string]bool{"c": true}})
	w.operator = e.operator(t)
	return w
}
