package web

import (
	"context"
	"errors"
	"fmt"
	"html/template"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/moatmail/moat/internal/api"
	"github.com/moatmail/moat/internal/auth"
	"github.com/moatmail/moat/internal/ratelimit"
	"github.com/moatmail/moat/internal/reqid"
	"github.com/moatmail/moat/internal/store"
)

// csp allows scripts, styles and images from Moat itself only: no inline
// script or style (htmx is told not to inject its indicator style), no
// framing, forms posting only here.
const csp = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
	"connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"

// routes builds the whole handler: middleware around the mux.
func (s *Server) routes(t *templates) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /static/", http.StripPrefix("/static/", staticHandler()))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = w.Write([]byte("ok\n"))
	})
	s.authRoutes(mux, t)
	// An organization's accent colour, as a stylesheet: the CSP allows no
	// inline style. The colour is validated; anything else is the default.
	mux.HandleFunc("GET /theme/{id}", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/css; charset=utf-8")
		w.Header().Set("Cache-Control", "public, max-age=86400")
		if c := r.URL.Query().Get("c"); validColour(c) {
			_, _ = fmt.Fprintf(w, ":root { --accent: %s; }\n", c) //nolint:gosec // c is a validated colour
		}
	})
	mux.HandleFunc("GET /logo/{id}", func(w http.ResponseWriter, r *http.Request) {
		p := auth.FromContext(r.Context())
		id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
		if p == nil || err != nil {
			http.NotFound(w, r)
			return
		}
		typ, logo, err := p.Tenant.Logo(r.Context(), id)
		if err != nil {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", typ)
		w.Header().Set("Cache-Control", "private, max-age=300")
		// An SVG logo must not run script even when opened directly.
		w.Header().Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; sandbox")
		_, _ = w.Write(logo)
	})
	if s.opts.API != nil {
		mux.Handle("/api/v1/", s.opts.API)
	}
	if s.opts.Pages != nil {
		s.opts.Pages(mux, s)
	}
	// Go's cross-origin protection (Sec-Fetch-Site, then Origin against
	// Host) on every state-changing request: a cookie-authenticated form or
	// fetch from another site is refused. API clients with a bearer token
	// send neither header and pass, as they carry no ambient credential.
	cop := http.NewCrossOriginProtection()
	cop.SetDenyHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.fail(w, r, http.StatusForbidden, "cross-origin request refused: this action must come from Moat's own pages")
	}))
	return s.recoverer(s.logRequests(s.headers(cop.Handler(s.authenticate(mux)))))
}

// headers sets the security headers of every response.
func (s *Server) headers(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", csp)
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "same-origin")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Cross-Origin-Opener-Policy", "same-origin")
		h.Set("Permissions-Policy", "camera=(), microphone=(), geolocation=(), payment=()")
		if r.TLS != nil {
			h.Set("Strict-Transport-Security", "max-age=31536000")
		}
		next.ServeHTTP(w, r)
	})
}

// statusWriter records the status and size of a response for the log, and
// says in a Server-Timing header how long the server took until the
// response began (pages and API answers are made whole before they are
// written, so that is their server time).
type statusWriter struct {
	http.ResponseWriter
	status int
	size   int64
	start  time.Time
	now    func() time.Time
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
		w.timing()
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) timing() {
	ms := float64(w.now().Sub(w.start).Microseconds()) / 1000
	w.Header().Set("Server-Timing", "app;dur="+strconv.FormatFloat(ms, 'f', 3, 64))
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
		w.timing()
	}
	n, err := w.ResponseWriter.Write(b)
	w.size += int64(n)
	return n, err
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// logRequests gives every request an id (X-Request-Id, also in the log)
// and logs it once, with the principal when there is one.
func (s *Server) logRequests(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := s.opts.Now()
		id := w.Header().Get("X-Request-Id") // set by the listener's request log, at debug level
		if id == "" {
			id = reqid.New()
			w.Header().Set("X-Request-Id", id)
		}
		sw := &statusWriter{ResponseWriter: w, start: start, now: s.opts.Now}
		holder := &principalHolder{}
		r = r.WithContext(withHolder(r.Context(), holder))
		next.ServeHTTP(sw, r)
		attrs := []any{"id", id, "method", r.Method, "path", r.URL.Path, "status", sw.status, "bytes", sw.size,
			"duration", s.opts.Now().Sub(start).Round(time.Microsecond), "client", ratelimit.ClientAddr(r, s.trusted).String()}
		if holder.p != nil {
			attrs = append(attrs, "who", holder.p.Name())
		}
		level := slog.LevelDebug
		if sw.status >= 500 {
			level = slog.LevelError
		}
		s.log.Log(r.Context(), level, "web request", attrs...)
	})
}

// recoverer answers 500 to a handler that panicked, and logs the panic.
func (s *Server) recoverer(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			if p := recover(); p != nil {
				if err, ok := p.(error); ok && errors.Is(err, http.ErrAbortHandler) {
					panic(p)
				}
				s.log.Error("web handler panicked", "path", r.URL.Path, "panic", fmt.Sprint(p))
				http.Error(w, "internal error", http.StatusInternalServerError)
			}
		}()
		next.ServeHTTP(w, r)
	})
}

// authenticate attaches the principal of the request, if any: a bearer
// token (API) or the session cookie. It does not refuse anything: pages
// and API endpoints say what they need.
func (s *Server) authenticate(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx := r.Context()
		var p *auth.Principal
		var err error
		if h := r.Header.Get("Authorization"); h != "" {
			scheme, token, _ := strings.Cut(h, " ")
			if !strings.EqualFold(scheme, "Bearer") || strings.TrimSpace(token) == "" {
				err = fmt.Errorf("%w: Authorization must be \"Bearer TOKEN\"", auth.ErrUnauthenticated)
			} else {
				p, err = auth.Authenticate(ctx, s.st, strings.TrimSpace(token), s.opts.Now())
			}
			if err != nil {
				// A request that presents a credential and fails is refused
				// here, whatever it asks for.
				s.fail(w, r, http.StatusUnauthorized, err.Error())
				return
			}
		} else if p, err = s.sessionPrincipal(w, r); err != nil && !errors.Is(err, auth.ErrUnauthenticated) {
			s.log.Error("session lookup failed", "err", err)
			s.fail(w, r, http.StatusServiceUnavailable, "the database is not answering; try again shortly")
			return
		}
		if p != nil {
			holderOf(ctx).p = p
			ctx = auth.WithPrincipal(ctx, p)
		}
		next.ServeHTTP(w, r.WithContext(ctx))
	})
}

// fail answers an error: JSON under /api/, a page otherwise.
func (s *Server) fail(w http.ResponseWriter, r *http.Request, code int, msg string) {
	if strings.HasPrefix(r.URL.Path, "/api/") {
		api.WriteError(w, code, "", msg)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(code)
	_, _ = fmt.Fprintf(w, "<!doctype html><title>%d %s</title><h1>%s</h1><p>%s</p><p><a href=\"/\">Moat</a></p>\n",
		code, http.StatusText(code), http.StatusText(code), template.HTMLEscapeString(msg))
}

// principalHolder lets the request log see the principal that
// authenticate found deeper in the chain.
type principalHolder struct{ p *auth.Principal }

type holderKey struct{}

func withHolder(ctx context.Context, h *principalHolder) context.Context {
	return context.WithValue(ctx, holderKey{}, h)
}

func holderOf(ctx context.Context) *principalHolder {
	if h, ok := ctx.Value(holderKey{}).(*principalHolder); ok {
		return h
	}
	return &principalHolder{}
}

// roleName is how a role is shown.
func roleName(role string) string {
	switch role {
	case store.RoleOwner:
		return "Owner"
	case store.RoleAdmin:
		return "Admin"
	case store.RoleViewer:
		return "Viewer"
	}
	return role
}
