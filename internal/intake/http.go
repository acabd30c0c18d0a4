package intake

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"mime"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"golang.org/x/time/rate"

	"github.com/moatmail/moat/internal/ratelimit"
	"github.com/moatmail/moat/internal/reqid"
	"github.com/moatmail/moat/internal/store"
)

// ReportPath is the path reports are POSTed to: the https rua Moat
// publishes is https://<intake host>/v1/tlsrpt.
const ReportPath = "/v1/tlsrpt"

// HTTPOpts tunes the HTTPS intake handler. The zero value is usable.
type HTTPOpts struct {
	// MaxBody is the largest request body accepted, in bytes; larger
	// bodies get 413. Zero means 10 MiB, the receiver limit RFC 8460 §5.2
	// calls common.
	MaxBody int64
	// RatePerIP is the sustained number of reports per second accepted
	// from one client (an IPv4 address or an IPv6 /64); beyond it the
	// answer is 429 with Retry-After. Zero means 10; negative disables the
	// limit.
	RatePerIP float64
	// RateBurst is the number of reports a client may send at once before
	// RatePerIP applies. Zero means 5 × RatePerIP (at least 1).
	RateBurst int
	// MaxClients bounds the number of clients whose rate is tracked; the
	// least recently seen are forgotten first (they start again with a full
	// burst). Zero means 65536.
	MaxClients int
	// TrustedProxies lists the proxies whose X-Forwarded-For header is
	// believed: when the connection comes from one of them, the client is
	// the right-most address of the header that is not itself a trusted
	// proxy. Empty: the connection's address is the client.
	TrustedProxies []netip.Prefix
	// Timeout bounds the wait for the commit of one report. Zero means 60
	// seconds.
	Timeout time.Duration
}

func (o HTTPOpts) withDefaults() HTTPOpts {
	if o.MaxBody <= 0 {
		o.MaxBody = 10 << 20
	}
	if o.RatePerIP == 0 {
		o.RatePerIP = 10
	}
	if o.RateBurst <= 0 {
		o.RateBurst = max(1, int(math.Ceil(5*o.RatePerIP)))
	}
	if o.MaxClients <= 0 {
		o.MaxClients = 65536
	}
	if o.Timeout <= 0 {
		o.Timeout = 60 * time.Second
	}
	return o
}

type httpHandler struct {
	log     *slog.Logger
	ing     *Ingester
	opts    HTTPOpts
	limiter *ratelimit.Limiter[netip.Prefix] // nil: no rate limit
}

// NewHTTPHandler returns the handler of POST /v1/tlsrpt (RFC 8460 §5.4).
// The body is the report, gzip-compressed (application/tlsrpt+gzip) or
// not (application/tlsrpt+json); under any other content type gzip, zip
// and JSON are recognized by their first bytes. Answers:
//
//   - 200 once the report is committed, also for a duplicate (RFC 8460
//     §5.4: the receiver MUST return a successful response);
//   - 400 with the reason for an empty body or a report that does not
//     parse (such a report is stored as invalid all the same, so that
//     nothing delivered is lost silently);
//   - 404 for other paths, 405 for other methods (Allow: POST);
//   - 413 when the body exceeds MaxBody or decompresses beyond the
//     Ingester's limit;
//   - 429 with Retry-After beyond the per-client rate;
//   - 503 with Retry-After when the store fails or the Ingester stopped.
//
// Run it on a TLS listener, or behind a TLS-terminating proxy named in
// TrustedProxies. log gets one line per refused or failed request.
func NewHTTPHandler(log *slog.Logger, ing *Ingester, opts HTTPOpts) http.Handler {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	opts = opts.withDefaults()
	h := &httpHandler{log: log, ing: ing, opts: opts}
	if opts.RatePerIP > 0 {
		h.limiter = ratelimit.New[netip.Prefix](rate.Limit(opts.RatePerIP), opts.RateBurst, opts.MaxClients)
	}
	return h
}

func (h *httpHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	// Every answer carries the request's id, and every line logged about
	// it: a reporter that quotes it can be matched with the log.
	id := w.Header().Get("X-Request-Id") // set by the listener's request log, at debug level
	if id == "" {
		id = reqid.New()
		w.Header().Set("X-Request-Id", id)
	}
	start := time.Now()
	defer func() {
		if p := recover(); p != nil {
			if err, ok := p.(error); ok && errors.Is(err, http.ErrAbortHandler) {
				panic(p)
			}
			h.log.Error("tlsrpt intake handler panicked", "req", id, "remote", r.RemoteAddr, "panic", fmt.Sprint(p))
			plain(w, http.StatusInternalServerError, "internal error; please retry later")
		}
	}()
	if r.URL.Path != ReportPath {
		plain(w, http.StatusNotFound, "not found: TLS reports are POSTed to "+ReportPath)
		return
	}
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		plain(w, http.StatusMethodNotAllowed, "method "+r.Method+" not allowed: POST a TLS report (RFC 8460 §5.4)")
		return
	}
	client := ratelimit.ClientAddr(r, h.opts.TrustedProxies)
	if h.limiter != nil {
		if ok, wait := h.limiter.Allow(ratelimit.ClientKey(client), time.Now()); !ok {
			secs := int64(math.Ceil(wait.Seconds()))
			w.Header().Set("Retry-After", strconv.FormatInt(max(1, secs), 10))
			plain(w, http.StatusTooManyRequests, "too many reports from "+client.String()+"; retry later")
			return
		}
	}
	if r.ContentLength > h.opts.MaxBody {
		h.tooLarge(w, id, client, fmt.Sprintf("body of %d bytes exceeds the limit of %d bytes", r.ContentLength, h.opts.MaxBody))
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, h.opts.MaxBody))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			h.tooLarge(w, id, client, fmt.Sprintf("body exceeds the limit of %d bytes", h.opts.MaxBody))
			return
		}
		h.log.Info("tlsrpt report upload failed", "req", id, "client", client, "err", err)
		plain(w, http.StatusBadRequest, "reading the body failed: "+err.Error())
		return
	}
	if len(body) == 0 {
		plain(w, http.StatusBadRequest, "empty body: POST the report (application/tlsrpt+gzip or application/tlsrpt+json)")
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), h.opts.Timeout)
	defer cancel()
	res, err := h.ing.Submit(ctx, Submission{
		Source:       SourceHTTPS,
		SourceDetail: client.String(),
		MediaType:    mediaType(r.Header.Get("Content-Type")),
		Data:         body,
	})
	switch {
	case errors.Is(err, ErrTooLarge):
		h.tooLarge(w, id, client, err.Error())
	case err != nil:
		h.log.Warn("tlsrpt report not stored", "req", id, "client", client, "err", err)
		w.Header().Set("Retry-After", "60")
		plain(w, http.StatusServiceUnavailable, "the report could not be stored; please retry later")
	case res.Status == store.ReportInvalid:
		h.log.Info("tlsrpt invalid report kept", "req", id, "client", client, "id", res.ID, "err", res.Error)
		plain(w, http.StatusBadRequest, fmt.Sprintf("invalid report (kept as report %d): %s", res.ID, res.Error))
	case res.Duplicate:
		h.log.Info("tlsrpt report received", "req", id, "client", client, "id", res.ID, "duplicate", true, "duration", time.Since(start))
		plain(w, http.StatusOK, fmt.Sprintf("report already received (report %d)", res.ID))
	default:
		h.log.Info("tlsrpt report received", "req", id, "client", client, "id", res.ID, "status", res.Status, "org", res.OrganizationName,
			"report_id", res.ReportID, "duration", time.Since(start))
		plain(w, http.StatusOK, fmt.Sprintf("report stored (report %d)", res.ID))
	}
}

func (h *httpHandler) tooLarge(w http.ResponseWriter, id string, client netip.Addr, why string) {
	h.log.Info("tlsrpt report refused: too large", "req", id, "client", client, "why", why)
	plain(w, http.StatusRequestEntityTooLarge, "report too large: "+why)
}

// plain writes a text/plain answer.
func plain(w http.ResponseWriter, code int, msg string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(code)
	_, _ = io.WriteString(w, msg+"\n")
}

// mediaType returns the media type of a Content-Type header, lower-case,
// without parameters; a header that does not parse is kept, bounded.
func mediaType(ct string) string {
	if ct == "" {
		return ""
	}
	if mt, _, err := mime.ParseMediaType(ct); err == nil {
		return mt
	}
	ct = strings.ToValidUTF8(strings.TrimSpace(ct), "?")
	if len(ct) > 100 {
		ct = ct[:100]
	}
	return ct
}
