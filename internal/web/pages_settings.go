package web

import (
	"bytes"
	"errors"
	"net/http"
	"net/mail"
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/moatmail/moat/internal/auth"
	"github.com/moatmail/moat/internal/store"
)

// Limits of the settings forms.
const (
	maxLogo        = 256 << 10 // bytes of an uploaded logo
	invitationLife = 7 * 24 * time.Hour
)

var (
	orgNameRE = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$`)
	accentRE  = regexp.MustCompile(`^#[0-9a-fA-F]{6}$`)
)

type settingsData struct {
	Org         *store.Org
	Members     []*store.Membership
	Invitations []*store.Invitation
	Tokens      []*store.Token
	Customers   []*store.Org // an MSP's customers; nil for a customer
	MSP         bool         // the organization may have customers
	CanWrite    bool
	CanMembers  bool
	Me          int64 // the signed-in user's id

	// Shown once, right after creation.
	NewToken *store.Token
	Secret   string
	Link     string

	Errors map[string]string // by form: "members", "invite", "token", "branding", "customer"
	Form   map[string]string // values typed, to show again
}

func (pg *pages) settingsData(r *http.Request, p *auth.Principal) (*settingsData, error) {
	ctx := r.Context()
	data := &settingsData{Org: p.Org, CanWrite: p.Can(auth.PermWrite), CanMembers: p.Can(auth.PermMembers),
		Errors: map[string]string{}, Form: map[string]string{}, MSP: p.Org.ParentID == 0}
	if p.User != nil {
		data.Me = p.User.ID
	}
	var err error
	if data.Members, err = p.Tenant.Members(ctx, p.Org.ID); err != nil {
		return nil, err
	}
	if !data.CanWrite {
		return data, nil
	}
	if data.Invitations, err = p.Tenant.Invitations(ctx, p.Org.ID); err != nil {
		return nil, err
	}
	if data.Tokens, err = p.Tenant.Tokens(ctx, p.Org.ID); err != nil {
		return nil, err
	}
	if data.MSP {
		orgs, err := p.Tenant.Orgs(ctx)
		if err != nil {
			return nil, err
		}
		for _, o := range orgs {
			if o.ParentID == p.Org.ID {
				data.Customers = append(data.Customers, o)
			}
		}
	}
	return data, nil
}

func (pg *pages) settings(w http.ResponseWriter, r *http.Request, p *auth.Principal) {
	data, err := pg.settingsData(r, p)
	if err != nil {
		pg.storeFail(w, r, p, "organization", err)
		return
	}
	pg.render(w, r, p, http.StatusOK, "settings", "settings", "Settings", data, "", notice(r))
}

// settingsError shows the settings page again with a message at form.
func (pg *pages) settingsError(w http.ResponseWriter, r *http.Request, p *auth.Principal, status int, form, msg string, typed map[string]string) {
	data, err := pg.settingsData(r, p)
	if err != nil {
		pg.storeFail(w, r, p, "organization", err)
		return
	}
	data.Errors[form] = msg
	for k, v := range typed {
		data.Form[k] = v
	}
	pg.render(w, r, p, status, "settings", "settings", "Settings", data, msg)
}

// changeMember changes the role of a member or removes it: owners only,
// and never so that no owner is left.
func (pg *pages) changeMember(w http.ResponseWriter, r *http.Request, p *auth.Principal) {
	ctx := r.Context()
	id, ok := pg.pathID(w, r, p, "user", "such member")
	if !ok {
		return
	}
	members, err := p.Tenant.Members(ctx, p.Org.ID)
	if err != nil {
		pg.storeFail(w, r, p, "organization", err)
		return
	}
	var target *store.Membership
	owners := 0
	for _, m := range members {
		if m.Role == store.RoleOwner {
			owners++
		}
		if m.UserID == id {
			target = m
		}
	}
	if target == nil {
		pg.notFound(w, r, p, "such member")
		return
	}
	remove := r.PostFormValue("action") == "remove"
	role := r.PostFormValue("role")
	if !remove && role != store.RoleOwner && role != store.RoleAdmin && role != store.RoleViewer {
		pg.settingsError(w, r, p, http.StatusUnprocessableEntity, "members", "Choose a role: owner, admin or viewer.", nil)
		return
	}
	if target.Role == store.RoleOwner && owners == 1 && (remove || role != store.RoleOwner) {
		pg.settingsError(w, r, p, http.StatusConflict, "members",
			target.Email+" is the last owner: make another member owner first, so that someone can still manage the organization.", nil)
		return
	}
	var msg string
	if remove {
		err = p.Tenant.RemoveMembership(ctx, id, p.Org.ID)
		msg = target.Email + " is no longer a member."
	} else {
		err = p.Tenant.SetMembership(ctx, id, p.Org.ID, role)
		msg = target.Email + " is " + roleName(role) + " now."
	}
	if err != nil {
		pg.storeFail(w, r, p, "such member", err)
		return
	}
	pg.s.log.Info("dashboard: membership changed", "org", p.Org.Name, "user", target.Email, "role", role, "removed", remove, "who", p.Name())
	if remove && p.User != nil && id == p.User.ID {
		seeOther(w, r, "/", "")
		return
	}
	seeOther(w, r, "/settings", msg)
}

func (pg *pages) invite(w http.ResponseWriter, r *http.Request, p *auth.Principal) {
	email := strings.ToLower(strings.TrimSpace(clip(r.PostFormValue("email"), 254)))
	role := r.PostFormValue("role")
	typed := map[string]string{"invite_email": email, "invite_role": role}
	if a, err := mail.ParseAddress(email); err != nil || a.Address != email {
		pg.settingsError(w, r, p, http.StatusUnprocessableEntity, "invite", "Give the email address of the person you invite.", typed)
		return
	}
	switch role {
	case store.RoleAdmin, store.RoleViewer:
	case store.RoleOwner:
		if !p.Can(auth.PermMembers) {
			pg.settingsError(w, r, p, http.StatusForbidden, "invite", "Only owners invite owners.", typed)
			return
		}
	default:
		pg.settingsError(w, r, p, http.StatusUnprocessableEntity, "invite", "Choose a role: owner, admin or viewer.", typed)
		return
	}
	secret, hash, err := auth.NewSecret(auth.KindInvitation)
	if err != nil {
		pg.fail(w, r, p, http.StatusInternalServerError, err.Error())
		return
	}
	now := pg.now()
	inv := &store.Invitation{OrgID: p.Org.ID, Email: email, Role: role, Hash: hash, CreatedAt: now, ExpiresAt: now.Add(invitationLife)}
	if p.User != nil {
		inv.CreatedBy = p.User.ID
	}
	if err := p.Tenant.CreateInvitation(r.Context(), inv); err != nil {
		pg.storeFail(w, r, p, "organization", err)
		return
	}
	pg.s.log.Info("dashboard: invitation created", "org", p.Org.Name, "email", email, "role", role, "who", p.Name())
	data, err := pg.settingsData(r, p)
	if err != nil {
		pg.storeFail(w, r, p, "organization", err)
		return
	}
	data.Link = strings.TrimSuffix(pg.deps.BaseURL, "/") + "/invite/" + secret
	pg.render(w, r, p, http.StatusOK, "settings", "settings", "Settings", data, "",
		"Invitation created. Send the link to "+email+": it is shown only now, and works once, until "+inv.ExpiresAt.Format("2006-01-02 15:04 UTC")+".")
}

func (pg *pages) withdrawInvitation(w http.ResponseWriter, r *http.Request, p *auth.Principal) {
	id, ok := pg.pathID(w, r, p, "id", "such invitation")
	if !ok {
		return
	}
	if err := pg.ownInvitation(r, p, id); err != nil {
		pg.storeFail(w, r, p, "such invitation", err)
		return
	}
	if err := p.Tenant.DeleteInvitation(r.Context(), id); err != nil {
		pg.storeFail(w, r, p, "such invitation", err)
		return
	}
	seeOther(w, r, "/settings", "The invitation is withdrawn: its link no longer works.")
}

// ownInvitation makes sure invitation id is one of the current
// organization's: the settings act on the organization shown.
func (pg *pages) ownInvitation(r *http.Request, p *auth.Principal, id int64) error {
	invs, err := p.Tenant.Invitations(r.Context(), p.Org.ID)
	if err != nil {
		return err
	}
	for _, inv := range invs {
		if inv.ID == id {
			return nil
		}
	}
	return store.ErrNotFound
}

func (pg *pages) createToken(w http.ResponseWriter, r *http.Request, p *auth.Principal) {
	name := strings.TrimSpace(clip(r.PostFormValue("name"), 100))
	scope := r.PostFormValue("scope")
	typed := map[string]string{"token_name": name, "token_scope": scope}
	if name == "" {
		pg.settingsError(w, r, p, http.StatusUnprocessableEntity, "token", "Name the token after what will use it, such as \"monitoring\".", typed)
		return
	}
	if scope != store.ScopeRead && scope != store.ScopeWrite {
		pg.settingsError(w, r, p, http.StatusUnprocessableEntity, "token", "Choose the token's scope: read or write.", typed)
		return
	}
	secret, hash, err := auth.NewSecret(auth.KindToken)
	if err != nil {
		pg.fail(w, r, p, http.StatusInternalServerError, err.Error())
		return
	}
	t := &store.Token{OrgID: p.Org.ID, Name: name, Scope: scope, Hash: hash, Prefix: secret[:min(len(secret), 12)], CreatedAt: pg.now()}
	if p.User != nil {
		t.CreatedBy = p.User.ID
	}
	if err := p.Tenant.CreateToken(r.Context(), t); err != nil {
		pg.storeFail(w, r, p, "organization", err)
		return
	}
	pg.s.log.Info("dashboard: token created", "org", p.Org.Name, "token", t.ID, "scope", scope, "who", p.Name())
	data, err := pg.settingsData(r, p)
	if err != nil {
		pg.storeFail(w, r, p, "organization", err)
		return
	}
	data.NewToken, data.Secret = t, secret
	pg.render(w, r, p, http.StatusOK, "settings", "settings", "Settings", data, "",
		"Token "+strconv.Quote(name)+" created. Copy its secret now: it is shown only once.")
}

func (pg *pages) revokeToken(w http.ResponseWriter, r *http.Request, p *auth.Principal) {
	id, ok := pg.pathID(w, r, p, "id", "such token")
	if !ok {
		return
	}
	toks, err := p.Tenant.Tokens(r.Context(), p.Org.ID)
	if err != nil {
		pg.storeFail(w, r, p, "such token", err)
		return
	}
	var name string
	for _, t := range toks {
		if t.ID == id {
			name = t.Name
		}
	}
	if name == "" {
		pg.notFound(w, r, p, "such token")
		return
	}
	if err := p.Tenant.RevokeToken(r.Context(), id, pg.now()); err != nil {
		pg.storeFail(w, r, p, "such token", err)
		return
	}
	pg.s.log.Info("dashboard: token revoked", "org", p.Org.Name, "token", id, "who", p.Name())
	seeOther(w, r, "/settings", "Token "+strconv.Quote(name)+" is revoked.")
}

// branding sets the display name, accent colour and logo of the
// organization.
func (pg *pages) branding(w http.ResponseWriter, r *http.Request, p *auth.Principal) {
	ctx := r.Context()
	r.Body = http.MaxBytesReader(w, r.Body, maxLogo+64<<10)
	if err := r.ParseMultipartForm(maxLogo + 64<<10); err != nil && !errors.Is(err, http.ErrNotMultipart) { //nolint:gosec // bounded by MaxBytesReader above
		pg.settingsError(w, r, p, http.StatusRequestEntityTooLarge, "branding", "The logo is too large: at most 256 KiB.", nil)
		return
	}
	display := strings.TrimSpace(clip(r.PostFormValue("display_name"), 100))
	accent := strings.TrimSpace(r.PostFormValue("accent"))
	typed := map[string]string{"display_name": display, "accent": accent}
	if r.PostFormValue("default_accent") == "yes" {
		accent = ""
	} else if !accentRE.MatchString(accent) {
		pg.settingsError(w, r, p, http.StatusUnprocessableEntity, "branding", "The accent colour must be written #rrggbb, such as #0b7285.", typed)
		return
	}
	logoType, logo, err := p.Tenant.Logo(ctx, p.Org.ID)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		pg.storeFail(w, r, p, "organization", err)
		return
	}
	if r.PostFormValue("remove_logo") == "yes" {
		logoType, logo = "", nil
	}
	if f, hdr, err := r.FormFile("logo"); err == nil {
		defer func() { _ = f.Close() }() // a part of the parsed form: nothing to report
		if hdr.Size > maxLogo {
			pg.settingsError(w, r, p, http.StatusRequestEntityTooLarge, "branding", "The logo is too large: at most 256 KiB.", typed)
			return
		}
		var buf bytes.Buffer
		if _, err := buf.ReadFrom(f); err != nil {
			pg.settingsError(w, r, p, http.StatusBadRequest, "branding", "The logo could not be read.", typed)
			return
		}
		if buf.Len() > 0 {
			t := logoMediaType(buf.Bytes())
			if t == "" {
				pg.settingsError(w, r, p, http.StatusUnprocessableEntity, "branding", "The logo must be a PNG, JPEG or SVG image.", typed)
				return
			}
			logoType, logo = t, buf.Bytes()
		}
	}
	if err := p.Tenant.SetBranding(ctx, p.Org.ID, display, accent, logoType, logo); err != nil {
		pg.storeFail(w, r, p, "organization", err)
		return
	}
	seeOther(w, r, "/settings", "Branding saved.")
}

// logoMediaType tells a logo's type by its content, not its name or
// declared type: PNG, JPEG or SVG, else "".
func logoMediaType(b []byte) string {
	switch t := http.DetectContentType(b); t {
	case "image/png", "image/jpeg":
		return t
	}
	if !utf8.Valid(b) {
		return ""
	}
	head := strings.ToLower(string(b[:min(len(b), 2048)]))
	head = strings.TrimPrefix(head, "\ufeff")
	head = strings.TrimSpace(head)
	for strings.HasPrefix(head, "<?") || strings.HasPrefix(head, "<!--") || strings.HasPrefix(head, "<!doctype") {
		end := ">"
		if strings.HasPrefix(head, "<!--") {
			end = "-->"
		}
		i := strings.Index(head, end)
		if i < 0 {
			return ""
		}
		head = strings.TrimSpace(head[i+len(end):])
	}
	if strings.HasPrefix(head, "<svg") {
		return "image/svg+xml"
	}
	return ""
}

func (pg *pages) createCustomer(w http.ResponseWriter, r *http.Request, p *auth.Principal) {
	name := strings.ToLower(strings.TrimSpace(clip(r.PostFormValue("name"), 100)))
	display := strings.TrimSpace(clip(r.PostFormValue("display_name"), 100))
	typed := map[string]string{"customer_name": name, "customer_display": display}
	if p.Org.ParentID != 0 {
		pg.fail(w, r, p, http.StatusForbidden, "A customer organization has no customers of its own.")
		return
	}
	if !orgNameRE.MatchString(name) {
		pg.settingsError(w, r, p, http.StatusUnprocessableEntity, "customer",
			"The short name is 1 to 63 of a-z, 0-9 and -, not starting or ending with -.", typed)
		return
	}
	o := &store.Org{Name: name, DisplayName: display, ParentID: p.Org.ID}
	if err := p.Tenant.CreateOrg(r.Context(), o); errors.Is(err, store.ErrExists) {
		pg.settingsError(w, r, p, http.StatusConflict, "customer", "The short name "+name+" is taken: choose another.", typed)
		return
	} else if err != nil {
		pg.storeFail(w, r, p, "organization", err)
		return
	}
	pg.s.log.Info("dashboard: customer created", "msp", p.Org.Name, "customer", name, "who", p.Name())
	seeOther(w, r, "/settings", "Customer "+displayName(o)+" created. Switch to it to add its domains.")
}
