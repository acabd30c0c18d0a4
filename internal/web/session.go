package web

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/mail"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/moatmail/moat/internal/auth"
	"github.com/moatmail/moat/internal/ratelimit"
	"github.com/moatmail/moat/internal/store"
)

// cookieName is the session cookie's name: with the __Host- prefix where
// the cookie is Secure, so that no subdomain can set or shadow it.
func (s *Server) cookieName(r *http.Request) string {
	if s.secureCookies(r) {
		return "__Host-moat_session"
	}
	return "moat_session"
}

func (s *Server) authRoutes(mux *http.ServeMux, t *templates) {
	mux.HandleFunc("GET /login", func(w http.ResponseWriter, r *http.Request) {
		if auth.FromContext(r.Context()) != nil {
			http.Redirect(w, r, safeNext(r.URL.Query().Get("next")), http.StatusSeeOther) //nolint:gosec // safeNext keeps paths of this site
			return
		}
		t.render(w, r, http.StatusOK, "login", pageData{Title: "Sign in", Next: safeNext(r.URL.Query().Get("next"))})
	})
	mux.HandleFunc("POST /login", func(w http.ResponseWriter, r *http.Request) { s.login(w, r, t) })
	mux.HandleFunc("POST /logout", func(w http.ResponseWriter, r *http.Request) {
		if p := auth.FromContext(r.Context()); p != nil && p.Session != nil {
			if err := s.st.DeleteSession(r.Context(), p.Session.ID); err != nil && !errors.Is(err, store.ErrNotFound) {
				s.log.Error("sign-out: deleting the session", "err", err)
			}
		}
		s.clearCookie(w, r)
		http.Redirect(w, r, "/login", http.StatusSeeOther)
	})
	mux.HandleFunc("POST /switch", func(w http.ResponseWriter, r *http.Request) { s.switchOrg(w, r) })
	mux.HandleFunc("GET /invite/{secret}", func(w http.ResponseWriter, r *http.Request) { s.invitePage(w, r, t) })
	mux.HandleFunc("POST /invite/{secret}", func(w http.ResponseWriter, r *http.Request) { s.acceptInvite(w, r, t) })
	mux.HandleFunc("GET /account", func(w http.ResponseWriter, r *http.Request) {
		p := auth.FromContext(r.Context())
		if p == nil || p.User == nil {
			s.toLogin(w, r)
			return
		}
		t.render(w, r, http.StatusOK, "account", pageData{Title: "Your account", P: p})
	})
	mux.HandleFunc("POST /account/password", func(w http.ResponseWriter, r *http.Request) { s.changePassword(w, r, t) })
}

// safeNext returns next when it is a path on this site, else "/".
func safeNext(next string) string {
	if !strings.HasPrefix(next, "/") || strings.HasPrefix(next, "//") || strings.HasPrefix(next, "/\\") || strings.ContainsAny(next, "\r\n") {
		return "/"
	}
	return next
}

// toLogin sends a visitor who is not signed in to the sign-in page, back
// here afterwards.
func (s *Server) toLogin(w http.ResponseWriter, r *http.Request) {
	next := r.URL.RequestURI()
	if r.Method != http.MethodGet {
		next = "/"
	}
	if r.Header.Get("HX-Request") == "true" {
		// htmx follows this header with a full page load.
		w.Header().Set("HX-Redirect", "/login?next="+url.QueryEscape(next))
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	http.Redirect(w, r, "/login?next="+url.QueryEscape(next), http.StatusSeeOther)
}

func (s *Server) login(w http.ResponseWriter, r *http.Request, t *templates) {
	ctx := r.Context()
	email := strings.ToLower(strings.TrimSpace(r.PostFormValue("email")))
	password := r.PostFormValue("password")
	next := safeNext(r.PostFormValue("next"))
	data := pageData{Title: "Sign in", Next: next, Email: email}
	now := s.opts.Now()
	client := ratelimit.ClientAddr(r, s.trusted)
	if ok, wait := s.ipLimit.Allow(ratelimit.ClientKey(client), now); !ok {
		s.log.Warn("sign-in rate limit: client", "client", client, "email", email)
		w.Header().Set("Retry-After", strconv.Itoa(int(wait.Seconds())+1))
		data.Error = fmt.Sprintf("Too many sign-in attempts from your address. Try again in %s.", roundUp(wait))
		t.render(w, r, http.StatusTooManyRequests, "login", data)
		return
	}
	if ok, wait := s.userLimit.Allow(email, now); !ok {
		s.log.Warn("sign-in rate limit: account", "client", client, "email", email)
		w.Header().Set("Retry-After", strconv.Itoa(int(wait.Seconds())+1))
		data.Error = fmt.Sprintf("Too many sign-in attempts for this account. Try again in %s.", roundUp(wait))
		t.render(w, r, http.StatusTooManyRequests, "login", data)
		return
	}
	u, err := s.st.UserByEmail(ctx, email)
	hash := s.dummyHash()
	if err == nil {
		hash = u.PasswordHash
	} else if !errors.Is(err, store.ErrNotFound) {
		s.fail(w, r, http.StatusServiceUnavailable, "the database is not answering; try again shortly")
		return
	}
	ok, rehash, verr := auth.VerifyPassword(hash, password, s.opts.Password)
	if verr != nil {
		s.log.Error("sign-in: unreadable password hash", "email", email, "err", verr)
	}
	if err != nil || !ok {
		s.log.Info("sign-in refused", "client", client, "email", email)
		data.Error = "Wrong email or password."
		t.render(w, r, http.StatusUnauthorized, "login", data)
		return
	}
	sess, err := s.newSession(w, r, u, 0)
	if err != nil {
		s.log.Error("sign-in: creating the session", "err", err)
		data.Error = err.Error()
		t.render(w, r, http.StatusForbidden, "login", data)
		return
	}
	if rehash {
		if h, err := auth.HashPassword(password, s.opts.Password); err == nil {
			if err := s.st.SetPassword(ctx, u.ID, h, sess.ID); err != nil {
				s.log.Warn("sign-in: rehashing the password", "err", err)
			}
		}
	}
	s.log.Info("signed in", "client", client, "email", email)
	http.Redirect(w, r, next, http.StatusSeeOther) //nolint:gosec // next passed safeNext
}

func roundUp(d time.Duration) string {
	if d < time.Minute {
		return strconv.Itoa(int(d.Seconds())+1) + " seconds"
	}
	return strconv.Itoa(int(d.Minutes())+1) + " minutes"
}

// newSession signs u in: a session in the store and its secret in the
// cookie. orgID is the organization to start in (0: the first).
func (s *Server) newSession(w http.ResponseWriter, r *http.Request, u *store.User, orgID int64) (*store.Session, error) {
	ctx := r.Context()
	p, err := auth.ForSession(ctx, s.st, u, nil, orgID)
	if err != nil {
		if errors.Is(err, auth.ErrUnauthenticated) {
			return nil, errors.New("your account belongs to no organization yet; ask an administrator to invite you")
		}
		return nil, err
	}
	secret, hash, err := auth.NewSecret(auth.KindSession)
	if err != nil {
		return nil, err
	}
	now := s.opts.Now().UTC()
	sess := &store.Session{
		ID: hash, UserID: u.ID, CreatedAt: now, LastSeen: now, ExpiresAt: now.Add(s.cfg.Web.SessionIdle),
		IP: ratelimit.ClientAddr(r, s.trusted).String(), UserAgent: clip(r.UserAgent(), 200),
	}
	if p.Org != nil {
		sess.OrgID = p.Org.ID
	}
	if err := s.st.CreateSession(ctx, sess); err != nil {
		return nil, err
	}
	http.SetCookie(w, &http.Cookie{ //nolint:gosec // Secure but on the plain HTTP of --dev (secureCookies)
		Name: s.cookieName(r), Value: secret, Path: "/", HttpOnly: true, Secure: s.secureCookies(r),
		SameSite: http.SameSiteLaxMode, MaxAge: int(s.cfg.Web.SessionLifetime.Seconds()),
	})
	return sess, nil
}

func (s *Server) clearCookie(w http.ResponseWriter, r *http.Request) {
	http.SetCookie(w, &http.Cookie{Name: s.cookieName(r), Value: "", Path: "/", HttpOnly: true, Secure: s.secureCookies(r), //nolint:gosec // as in newSession
		SameSite: http.SameSiteLaxMode, MaxAge: -1})
}

// sessionPrincipal resolves the session cookie: ErrUnauthenticated when
// there is none or it has ended (the cookie is then cleared). Sessions
// slide: each request moves the idle expiry, at most once a minute, and
// never past the session's lifetime.
func (s *Server) sessionPrincipal(w http.ResponseWriter, r *http.Request) (*auth.Principal, error) {
	c, err := r.Cookie(s.cookieName(r))
	if err != nil || c.Value == "" {
		return nil, auth.ErrUnauthenticated
	}
	ctx := r.Context()
	now := s.opts.Now().UTC()
	sess, err := s.st.SessionByID(ctx, auth.HashSecret(c.Value), now)
	if errors.Is(err, store.ErrNotFound) {
		s.clearCookie(w, r)
		return nil, auth.ErrUnauthenticated
	}
	if err != nil {
		return nil, err
	}
	end := sess.CreatedAt.Add(s.cfg.Web.SessionLifetime)
	if !now.Before(end) {
		_ = s.st.DeleteSession(ctx, sess.ID)
		s.clearCookie(w, r)
		return nil, auth.ErrUnauthenticated
	}
	u, err := s.st.User(ctx, sess.UserID)
	if errors.Is(err, store.ErrNotFound) {
		return nil, auth.ErrUnauthenticated
	}
	if err != nil {
		return nil, err
	}
	p, err := auth.ForSession(ctx, s.st, u, sess, sess.OrgID)
	if errors.Is(err, store.ErrNotFound) {
		// The organization was taken from the user: start in another.
		p, err = auth.ForSession(ctx, s.st, u, sess, 0)
	}
	if err != nil {
		return nil, err // ErrUnauthenticated when the user belongs nowhere any more
	}
	orgID := sess.OrgID
	if p.Org != nil {
		orgID = p.Org.ID
	}
	if now.Sub(sess.LastSeen) > time.Minute || orgID != sess.OrgID {
		expires := now.Add(s.cfg.Web.SessionIdle)
		if expires.After(end) {
			expires = end
		}
		if err := s.st.TouchSession(ctx, sess.ID, orgID, now, expires); err != nil {
			s.log.Warn("session touch failed", "err", err)
		}
	}
	return p, nil
}

// switchOrg moves the session to another organization the user may act in.
func (s *Server) switchOrg(w http.ResponseWriter, r *http.Request) {
	p := auth.FromContext(r.Context())
	if p == nil || p.Session == nil {
		s.toLogin(w, r)
		return
	}
	id, err := strconv.ParseInt(r.PostFormValue("org"), 10, 64)
	if err != nil {
		s.fail(w, r, http.StatusBadRequest, "no organization chosen")
		return
	}
	np, err := auth.ForSession(r.Context(), s.st, p.User, p.Session, id)
	if errors.Is(err, store.ErrNotFound) {
		s.fail(w, r, http.StatusNotFound, "no such organization")
		return
	}
	if err != nil {
		s.fail(w, r, http.StatusServiceUnavailable, err.Error())
		return
	}
	now := s.opts.Now().UTC()
	if err := s.st.TouchSession(r.Context(), p.Session.ID, np.Org.ID, now, p.Session.ExpiresAt); err != nil {
		s.fail(w, r, http.StatusServiceUnavailable, err.Error())
		return
	}
	http.Redirect(w, r, safeNext(r.PostFormValue("next")), http.StatusSeeOther) //nolint:gosec // safeNext keeps paths of this site
}

func (s *Server) changePassword(w http.ResponseWriter, r *http.Request, t *templates) {
	p := auth.FromContext(r.Context())
	if p == nil || p.User == nil {
		s.toLogin(w, r)
		return
	}
	data := pageData{Title: "Your account", P: p}
	cur, next, again := r.PostFormValue("current"), r.PostFormValue("new"), r.PostFormValue("again")
	ok, _, err := auth.VerifyPassword(p.User.PasswordHash, cur, s.opts.Password)
	switch {
	case err != nil || !ok:
		data.Error = "Your current password is not right."
	case next != again:
		data.Error = "The new password and its repetition differ."
	default:
		if err := auth.CheckPassword(next); err != nil {
			data.Error = strings.TrimPrefix(err.Error(), "auth: password refused: ")
			data.Error = "The new password is refused: " + data.Error + "."
		}
	}
	if data.Error != "" {
		t.render(w, r, http.StatusBadRequest, "account", data)
		return
	}
	h, err := auth.HashPassword(next, s.opts.Password)
	if err == nil {
		// Every other session of the user ends with the change.
		err = s.st.SetPassword(r.Context(), p.User.ID, h, p.Session.ID)
	}
	if err != nil {
		s.fail(w, r, http.StatusServiceUnavailable, err.Error())
		return
	}
	data.Notice = "Your password is changed. Your other sessions are signed out."
	t.render(w, r, http.StatusOK, "account", data)
}

// invitePage shows an invitation: join as the signed-in user, or create
// an account with a password.
func (s *Server) invitePage(w http.ResponseWriter, r *http.Request, t *templates) {
	inv, org, err := s.openInvitation(r.Context(), r.PathValue("secret"))
	if err != nil {
		t.render(w, r, http.StatusNotFound, "invite", pageData{Title: "Invitation", Error: err.Error()})
		return
	}
	t.render(w, r, http.StatusOK, "invite", pageData{Title: "Invitation", P: auth.FromContext(r.Context()),
		Invite: &inviteView{Org: org, Role: roleName(inv.Role), Email: inv.Email, Secret: r.PathValue("secret")}})
}

func (s *Server) openInvitation(ctx context.Context, secret string) (*store.Invitation, *store.Org, error) {
	inv, err := s.st.InvitationByHash(ctx, auth.HashSecret(secret))
	if err != nil || !inv.AcceptedAt.IsZero() || !s.opts.Now().Before(inv.ExpiresAt) {
		return nil, nil, errors.New("this invitation link is not valid: it was used already, has expired, or was withdrawn; ask for a new one")
	}
	org, err := s.st.Org(ctx, inv.OrgID)
	if err != nil {
		return nil, nil, err
	}
	return inv, org, nil
}

// acceptInvite makes the signed-in user, or a new user with the email and
// password given, a member.
func (s *Server) acceptInvite(w http.ResponseWriter, r *http.Request, t *templates) {
	ctx := r.Context()
	secret := r.PathValue("secret")
	inv, org, err := s.openInvitation(ctx, secret)
	if err != nil {
		t.render(w, r, http.StatusNotFound, "invite", pageData{Title: "Invitation", Error: err.Error()})
		return
	}
	p := auth.FromContext(ctx)
	data := pageData{Title: "Invitation", P: p, Invite: &inviteView{Org: org, Role: roleName(inv.Role), Email: inv.Email, Secret: secret}}
	var u *store.User
	if p != nil && p.User != nil {
		u = p.User
	} else {
		email := strings.ToLower(strings.TrimSpace(r.PostFormValue("email")))
		password := r.PostFormValue("password")
		if _, err := mail.ParseAddress(email); err != nil || !strings.Contains(email, "@") {
			data.Error = "Give your email address."
		} else if err := auth.CheckPassword(password); err != nil {
			data.Error = "The password is refused: " + strings.TrimPrefix(err.Error(), "auth: password refused: ") + "."
		} else if password != r.PostFormValue("again") {
			data.Error = "The password and its repetition differ."
		}
		if data.Error == "" {
			h, err := auth.HashPassword(password, s.opts.Password)
			if err != nil {
				s.fail(w, r, http.StatusInternalServerError, err.Error())
				return
			}
			u = &store.User{Email: email, PasswordHash: h}
			if err := s.st.CreateUser(ctx, u); errors.Is(err, store.ErrExists) {
				data.Error = "An account with this email exists already: sign in first, then open the link again."
			} else if err != nil {
				s.fail(w, r, http.StatusServiceUnavailable, err.Error())
				return
			}
		}
		if data.Error != "" {
			t.render(w, r, http.StatusBadRequest, "invite", data)
			return
		}
	}
	if _, err := s.st.AcceptInvitation(ctx, auth.HashSecret(secret), u.ID, s.opts.Now().UTC()); err != nil {
		data.Error = "This invitation link is not valid any more."
		t.render(w, r, http.StatusNotFound, "invite", data)
		return
	}
	if p == nil || p.Session == nil {
		if _, err := s.newSession(w, r, u, org.ID); err != nil {
			s.fail(w, r, http.StatusServiceUnavailable, err.Error())
			return
		}
	} else if err := s.st.TouchSession(ctx, p.Session.ID, org.ID, s.opts.Now().UTC(), p.Session.ExpiresAt); err != nil {
		s.log.Warn("invitation: switching the session", "err", err)
	}
	s.log.Info("invitation accepted", "org", org.Name, "email", u.Email, "role", inv.Role)
	http.Redirect(w, r, "/", http.StatusSeeOther)
}

// clip shortens s to at most n bytes (a valid UTF-8 boundary).
func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return strings.ToValidUTF8(s[:n], "")
}
