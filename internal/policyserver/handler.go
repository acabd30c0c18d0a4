package policyserver

import (
	"io"
	"net/http"
	"strconv"
	"strings"

	"github.com/moatmail/moat/internal/snapshot"
)

// PolicyPath is where RFC 8461 §3.2 puts the policy on the policy host.
const PolicyPath = "/.well-known/mta-sts.txt"

// policyHostPrefix is the label RFC 8461 §3.2 prepends to the policy
// domain to form the policy host.
const policyHostPrefix = "mta-sts."

// Header values, assigned to response header maps directly so that the hot
// path does not allocate. They are never modified.
var (
	hdrTextPlain = []string{"text/plain; charset=utf-8"}
	hdrNoStore   = []string{"no-store"}
	hdrNoSniff   = []string{"nosniff"}
	hdrAllow     = []string{"GET, HEAD"}
)

// NewHandler returns the handler serving policy files from the current
// snapshot of snaps: GET and HEAD of PolicyPath on host "mta-sts.<domain>"
// (any case, optional port and trailing dot) where <domain> is hosted.
//
//   - 200 with the policy bytes, Content-Type text/plain (RFC 8461 §3.2),
//     Content-Length and Cache-Control: no-store; HEAD has no body.
//   - 405 with Allow: GET, HEAD for other methods on a hosted policy.
//   - 404 for anything else: unknown hosts, other paths.
//
// It never redirects (RFC 8461 §3.3: senders MUST NOT follow 3xx), ignores
// the query string, and never touches the database: a snapshot swap is
// served from the next request on.
func NewHandler(snaps *snapshot.Holder) http.Handler {
	return &handler{snaps: snaps, counts: new(statusCounts)}
}

type handler struct {
	snaps  *snapshot.Holder
	counts *statusCounts // answers by status class, for metrics
}

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	hdr := w.Header()
	hdr["X-Content-Type-Options"] = hdrNoSniff
	if r.URL.Path != PolicyPath {
		h.counts.add(http.StatusNotFound)
		notFound(w)
		return
	}
	name := policyDomain(r.Host)
	if name == "" {
		h.counts.add(http.StatusNotFound)
		notFound(w)
		return
	}
	d := h.snaps.Load().Lookup(name)
	if d == nil {
		h.counts.add(http.StatusNotFound)
		notFound(w)
		return
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		h.counts.add(http.StatusMethodNotAllowed)
		hdr["Allow"] = hdrAllow
		hdr["Content-Type"] = hdrTextPlain
		w.WriteHeader(http.StatusMethodNotAllowed)
		_, _ = io.WriteString(w, "method not allowed\n")
		return
	}
	// RFC 8461 §3.2: senders SHOULD check the media type is text/plain.
	hdr["Content-Type"] = hdrTextPlain
	// RFC 8461 §3.3: HTTP caching MUST NOT be used by senders; say so to
	// any intermediary too, so that a policy change is seen at once.
	hdr["Cache-Control"] = hdrNoStore
	hdr["Content-Length"] = []string{strconv.Itoa(len(d.Policy))}
	h.counts.add(http.StatusOK)
	w.WriteHeader(http.StatusOK)
	if r.Method == http.MethodGet {
		_, _ = w.Write(d.Policy) //nolint:gosec // the policy Moat built, served as text/plain with nosniff
	}
}

func notFound(w http.ResponseWriter) {
	w.Header()["Content-Type"] = hdrTextPlain
	w.WriteHeader(http.StatusNotFound)
	_, _ = io.WriteString(w, "not found\n")
}

// policyDomain returns the policy domain served at host, an HTTP Host
// header value or a TLS server name: for "mta-sts.<domain>" (any case,
// optional ":port", optional trailing dot) it returns <domain> lower-cased
// without the trailing dot, otherwise "". It does not check that the domain
// is hosted, and allocates only when host has upper-case letters.
func policyDomain(host string) string {
	if i := strings.LastIndexByte(host, ':'); i >= 0 && strings.IndexByte(host[i:], ']') < 0 {
		host = host[:i]
	}
	if len(host) <= len(policyHostPrefix) || !strings.EqualFold(host[:len(policyHostPrefix)], policyHostPrefix) {
		return ""
	}
	return snapshot.Normalize(host[len(policyHostPrefix):])
}
