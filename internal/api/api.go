package api

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/moatmail/moat/internal/auth"
	"github.com/moatmail/moat/internal/hosting"
	"github.com/moatmail/moat/internal/senders"
	"github.com/moatmail/moat/internal/store"
	"github.com/moatmail/moat/internal/tlsrptstats"
)

// Prefix is where the API is mounted.
const Prefix = "/api/v1"

// Route is one endpoint of the API, as the OpenAPI document describes it.
type Route struct {
	Method  string // "GET", "POST", "PATCH" or "DELETE"
	Pattern string // "/api/v1/domains/{name}": net/http's pattern syntax, which is OpenAPI's
	// Perm is what the principal's role must allow (auth.PermRead,
	// PermWrite, PermMembers); "" for a public route (the OpenAPI
	// document).
	Perm string
}

// handlerFunc serves one route for p (nil only on public routes). An error
// it returns is answered by server.fail.
type handlerFunc func(w http.ResponseWriter, r *http.Request, p *auth.Principal) error

type route struct {
	Route
	h handlerFunc
}

// server holds what the handlers share.
type server struct {
	Deps
	log    *slog.Logger
	routes []route
}

// routeTable is every route of the API, in the order of the OpenAPI
// document. The tests enumerate it: a route added here without its
// description or its isolation walk fails them.
func (s *server) routeTable() []route {
	r := func(method, pattern, perm string, h handlerFunc) route {
		return route{Route{method, Prefix + pattern, perm}, h}
	}
	read, write, members := auth.PermRead, auth.PermWrite, auth.PermMembers
	return []route{
		r("GET", "/openapi.json", "", s.openAPI),
		r("GET", "/me", read, s.me),
		r("GET", "/orgs", read, s.listOrgs),
		r("POST", "/orgs", write, s.createOrg),

		r("GET", "/domains", read, s.listDomains),
		r("POST", "/domains", write, s.createDomain),
		r("GET", "/domains/{name}", read, s.getDomain),
		r("PATCH", "/domains/{name}", write, s.patchDomain),
		r("DELETE", "/domains/{name}", write, s.deleteDomain),
		r("GET", "/domains/{name}/records", read, s.domainRecords),
		r("POST", "/domains/{name}/verify", write, s.verifyDomain),
		r("GET", "/domains/{name}/versions", read, s.domainVersions),
		r("GET", "/domains/{name}/events", read, s.domainEvents),
		r("GET", "/domains/{name}/checks", read, s.domainChecks),

		r("GET", "/reports/tlsrpt", read, s.listReports),
		r("POST", "/reports/tlsrpt", write, s.uploadReport),
		r("GET", "/reports/tlsrpt/summary", read, s.reportSummary),
		r("GET", "/reports/tlsrpt/{id}", read, s.getReport),
		r("GET", "/reports/tlsrpt/{id}/raw", read, s.rawReport),

		r("GET", "/reports/dmarc", read, s.listDMARC),
		r("POST", "/reports/dmarc", write, s.uploadDMARC),
		r("GET", "/reports/dmarc/summary", read, s.dmarcSummary),
		r("GET", "/reports/dmarc/senders", read, s.dmarcSenders),
		r("GET", "/reports/dmarc/impact", read, s.dmarcImpact),
		r("GET", "/reports/dmarc/{id}", read, s.getDMARC),
		r("GET", "/reports/dmarc/{id}/raw", read, s.rawDMARC),

		r("GET", "/reports/dmarc-failures", read, s.listFailures),
		r("GET", "/reports/dmarc-failures/key", read, s.getFailureKey),
		r("PUT", "/reports/dmarc-failures/key", members, s.putFailureKey),
		r("GET", "/reports/dmarc-failures/{id}", read, s.getFailure),
		r("GET", "/reports/dmarc-failures/{id}/raw", read, s.rawFailure),

		r("POST", "/checks", write, s.runCheck),
		r("GET", "/checks/{id}", read, s.getCheck),

		r("GET", "/tokens", read, s.listTokens),
		r("POST", "/tokens", write, s.createToken),
		r("DELETE", "/tokens/{id}", write, s.revokeToken),

		r("GET", "/users", read, s.listUsers),
		r("PATCH", "/users/{id}", members, s.patchUser),
		r("DELETE", "/users/{id}", members, s.deleteUser),

		r("GET", "/invitations", read, s.listInvitations),
		r("POST", "/invitations", write, s.createInvitation),
		r("DELETE", "/invitations/{id}", write, s.deleteInvitation),
	}
}

// Routes lists every route of the API.
func Routes() []Route {
	s := &server{}
	var l []Route
	for _, rt := range s.routeTable() {
		l = append(l, rt.Route)
	}
	return l
}

// New returns the API's handler, to be mounted at /api/v1/ behind package
// web's middleware, which puts the request's principal (auth.FromContext)
// in its context. Every answer, errors included, is JSON (but the raw
// bytes of a report).
func New(deps Deps) http.Handler {
	if deps.Log == nil {
		deps.Log = slog.New(slog.DiscardHandler)
	}
	if deps.Now == nil {
		deps.Now = time.Now
	}
	if deps.MaxUpload <= 0 {
		deps.MaxUpload = 10 << 20
	}
	if deps.Catalog == nil {
		// The built-in catalogue is tested to parse; parse it once.
		if cat, err := senders.Builtin(); err == nil {
			deps.Catalog = cat
		}
	}
	s := &server{Deps: deps, log: deps.Log}
	s.routes = s.routeTable()
	mux := http.NewServeMux()
	var patterns []string
	byPattern := map[string][]route{}
	for _, rt := range s.routes {
		if _, ok := byPattern[rt.Pattern]; !ok {
			patterns = append(patterns, rt.Pattern)
		}
		byPattern[rt.Pattern] = append(byPattern[rt.Pattern], rt)
	}
	for _, pat := range patterns {
		mux.Handle(pat, s.dispatch(byPattern[pat]))
	}
	mux.HandleFunc(Prefix+"/", func(w http.ResponseWriter, r *http.Request) {
		WriteError(w, http.StatusNotFound, "not_found", "no such API endpoint: "+r.URL.Path+" (see "+Prefix+"/openapi.json)")
	})
	return mux
}

// dispatch serves the routes of one path: the one of the request's method,
// or 405 with Allow.
func (s *server) dispatch(routes []route) http.Handler {
	var allow []string
	for _, rt := range routes {
		allow = append(allow, rt.Method)
	}
	slices.Sort(allow)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		i := slices.IndexFunc(routes, func(rt route) bool { return rt.Method == r.Method })
		if i < 0 {
			w.Header().Set("Allow", strings.Join(allow, ", "))
			WriteError(w, http.StatusMethodNotAllowed, "method_not_allowed",
				r.Method+" is not allowed here; allowed: "+strings.Join(allow, ", "))
			return
		}
		rt := routes[i]
		p := auth.FromContext(r.Context())
		if rt.Perm != "" {
			if p == nil {
				WriteError(w, http.StatusUnauthorized, "unauthorized", "sign in, or send an API token: Authorization: Bearer TOKEN")
				return
			}
			if !p.Can(rt.Perm) {
				WriteError(w, http.StatusForbidden, "forbidden", denied(p, rt.Perm))
				return
			}
		}
		if err := rt.h(w, r, p); err != nil {
			s.fail(w, r, err)
		}
	})
}

// denied says why p may not do what perm allows.
func denied(p *auth.Principal, perm string) string {
	if p.Token != nil {
		if perm == auth.PermMembers {
			return "API tokens cannot manage members; sign in as an owner"
		}
		return "this token has read scope; it cannot change anything"
	}
	switch perm {
	case auth.PermMembers:
		return "only an owner of the organization may do this (your role: " + p.Role + ")"
	default:
		return "your role (" + p.Role + ") may only read; an admin or owner may do this"
	}
}

// Error codes besides the status-derived ones.
const (
	codeInvalid     = "invalid"      // 400: a parameter or field is wrong; the message names it
	codeExists      = "exists"       // 409: the name is taken
	codeUnavailable = "unavailable"  // 503: the store or another dependency failed
	codeRateLimited = "rate_limited" // 429: too many of these requests; Retry-After says when
)

// httpError is an answer other than success, with its status and code.
type httpError struct {
	status int
	code   string
	msg    string
}

func (e *httpError) Error() string { return e.msg }

func errStatus(status int, code, msg string) error {
	return &httpError{status: status, code: code, msg: msg}
}

// invalid is a 400 naming the field and what is wrong with it.
func invalid(field, msg string) error {
	return errStatus(http.StatusBadRequest, codeInvalid, field+": "+msg)
}

func notFound(msg string) error       { return errStatus(http.StatusNotFound, "not_found", msg) }
func forbidden(msg string) error      { return errStatus(http.StatusForbidden, "forbidden", msg) }
func conflict(code, msg string) error { return errStatus(http.StatusConflict, code, msg) }

// fail answers err: the status and message of an *httpError or of the
// errors of hosting, tlsrptstats and the store that callers can act on;
// anything else is logged and answered 503 without its cause.
func (s *server) fail(w http.ResponseWriter, r *http.Request, err error) {
	var (
		he  *httpError
		fe  *hosting.FieldError
		nh  *hosting.NotHostedError
		ah  *hosting.AlreadyHostedError
		mbe *http.MaxBytesError
	)
	switch {
	case errors.As(err, &he):
		WriteError(w, he.status, he.code, he.msg)
	case errors.As(err, &fe):
		WriteError(w, http.StatusBadRequest, codeInvalid, fe.Error())
	case errors.As(err, &nh):
		WriteError(w, http.StatusNotFound, "not_found", nh.Error())
	case errors.As(err, &ah):
		WriteError(w, http.StatusConflict, codeExists, ah.Error())
	case errors.As(err, &mbe):
		WriteError(w, http.StatusRequestEntityTooLarge, "too_large",
			"the request body is larger than "+byteSize(mbe.Limit))
	case errors.Is(err, tlsrptstats.ErrInvalidQuery):
		WriteError(w, http.StatusBadRequest, codeInvalid, strings.TrimPrefix(err.Error(), tlsrptstats.ErrInvalidQuery.Error()+": "))
	case errors.Is(err, store.ErrNotFound):
		WriteError(w, http.StatusNotFound, "not_found", "not found")
	case errors.Is(err, store.ErrInvalidArg):
		// The handlers validate first; what is left is a cursor or an
		// argument only the store can judge.
		WriteError(w, http.StatusBadRequest, codeInvalid, strings.TrimPrefix(err.Error(), store.ErrInvalidArg.Error()+": "))
	case errors.Is(err, store.ErrExists):
		WriteError(w, http.StatusConflict, codeExists, "it exists already")
	case errors.Is(err, context.Canceled) && r.Context().Err() != nil:
		// The client went away; nobody reads the answer.
		WriteError(w, http.StatusServiceUnavailable, codeUnavailable, "the request was cancelled")
	default:
		s.log.Error("api request failed", "method", r.Method, "path", r.URL.Path, "err", err)
		WriteError(w, http.StatusServiceUnavailable, codeUnavailable, "the service is not answering; try again shortly")
	}
}
