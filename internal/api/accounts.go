package api

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/mail"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/moatmail/moat/internal/auth"
	"github.com/moatmail/moat/internal/store"
)

// invitationTTL is how long an invitation link is valid.
const invitationTTL = 7 * 24 * time.Hour

// Org is the JSON of an organization.
type Org struct {
	ID          int64     `json:"id"`
	Name        string    `json:"name"`
	DisplayName string    `json:"display_name"`
	ParentID    *int64    `json:"parent_id"` // the MSP of a customer; null for none
	CreatedAt   time.Time `json:"created_at"`
}

// OrgOf is the JSON of o; its parent only when visible says it is (a
// customer does not see its MSP).
func OrgOf(o *store.Org, visible func(id int64) bool) Org {
	v := Org{ID: o.ID, Name: o.Name, DisplayName: o.DisplayName, CreatedAt: o.CreatedAt.UTC()}
	if o.ParentID != 0 && visible(o.ParentID) {
		parent := o.ParentID
		v.ParentID = &parent
	}
	return v
}

func (s *server) me(w http.ResponseWriter, r *http.Request, p *auth.Principal) error {
	if _, err := queryOf(r); err != nil {
		return err
	}
	type user struct {
		ID       int64  `json:"id"`
		Email    string `json:"email"`
		Operator bool   `json:"operator"`
	}
	type token struct {
		ID    int64  `json:"id"`
		Name  string `json:"name"`
		Scope string `json:"scope"`
	}
	type scope struct {
		Operator bool     `json:"operator"`
		Orgs     []OrgRef `json:"orgs"`
	}
	out := struct {
		User        *user    `json:"user"`
		Token       *token   `json:"token"`
		Org         *Org     `json:"org"`
		Role        string   `json:"role"`
		Permissions []string `json:"permissions"`
		Scope       scope    `json:"scope"`
	}{Role: p.Role, Permissions: []string{}}
	if p.User != nil {
		out.User = &user{p.User.ID, p.User.Email, p.User.Operator}
	}
	if p.Token != nil {
		out.Token = &token{p.Token.ID, p.Token.Name, p.Token.Scope}
	}
	orgs, err := p.Tenant.Orgs(r.Context())
	if err != nil {
		return err
	}
	visible := visibleIn(orgs)
	if p.Org != nil {
		o := OrgOf(p.Org, visible)
		out.Org = &o
	}
	for _, perm := range []string{auth.PermRead, auth.PermWrite, auth.PermMembers} {
		if p.Can(perm) {
			out.Permissions = append(out.Permissions, perm)
		}
	}
	out.Scope = scope{Operator: p.Tenant.Scope().Operator, Orgs: []OrgRef{}}
	for _, o := range orgs {
		out.Scope.Orgs = append(out.Scope.Orgs, OrgRef{ID: o.ID, Name: o.Name})
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (s *server) listOrgs(w http.ResponseWriter, r *http.Request, p *auth.Principal) error {
	if _, err := queryOf(r); err != nil {
		return err
	}
	orgs, err := p.Tenant.Orgs(r.Context())
	if err != nil {
		return err
	}
	out := struct {
		Orgs []Org `json:"orgs"`
	}{[]Org{}}
	visible := visibleIn(orgs)
	for _, o := range orgs {
		out.Orgs = append(out.Orgs, OrgOf(o, visible))
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// visibleIn reports whether an organization is one of orgs.
func visibleIn(orgs []*store.Org) func(int64) bool {
	ids := map[int64]bool{}
	for _, o := range orgs {
		ids[o.ID] = true
	}
	return func(id int64) bool { return ids[id] }
}

// validSlug reports whether s is an organization name: 1 to 63 of a-z,
// 0-9 and -.
func validSlug(s string) bool {
	if s == "" || len(s) > 63 {
		return false
	}
	for _, c := range []byte(s) {
		if (c < 'a' || c > 'z') && (c < '0' || c > '9') && c != '-' {
			return false
		}
	}
	return true
}

func (s *server) createOrg(w http.ResponseWriter, r *http.Request, p *auth.Principal) error {
	if _, err := queryOf(r); err != nil {
		return err
	}
	var body struct {
		Name        string `json:"name"`
		DisplayName string `json:"display_name"`
	}
	if err := decodeJSON(w, r, &body); err != nil {
		return err
	}
	parent, err := orgOf(p)
	if err != nil {
		return err
	}
	if parent.ParentID != 0 {
		return forbidden("a customer organization cannot have customers of its own; switch to the managing organization")
	}
	if !validSlug(body.Name) {
		return invalid("name", fmt.Sprintf("%q: want 1 to 63 of a-z, 0-9 and -", body.Name))
	}
	if len(body.DisplayName) > 200 || !utf8.ValidString(body.DisplayName) {
		return invalid("display_name", "want at most 200 bytes of UTF-8")
	}
	o := &store.Org{Name: body.Name, DisplayName: strings.TrimSpace(body.DisplayName), ParentID: parent.ID}
	err = p.Tenant.CreateOrg(r.Context(), o)
	if errors.Is(err, store.ErrExists) {
		return conflict(codeExists, fmt.Sprintf("name: an organization called %q exists already", body.Name))
	} else if err != nil {
		return err
	}
	w.Header().Set("Location", Prefix+"/orgs")
	writeJSON(w, http.StatusCreated, OrgOf(o, func(int64) bool { return true }))
	return nil
}

// Token is the JSON of an API token; Secret only in the answer that
// creates it.
type Token struct {
	ID        int64      `json:"id"`
	Name      string     `json:"name"`
	Scope     string     `json:"scope"`
	Prefix    string     `json:"prefix"`
	CreatedBy *int64     `json:"created_by"`
	CreatedAt time.Time  `json:"created_at"`
	LastUsed  *time.Time `json:"last_used"`
	RevokedAt *time.Time `json:"revoked_at"`
	Secret    string     `json:"token,omitempty"`
}

// TokenOf is the JSON of t (without its secret, which is not stored).
func TokenOf(t *store.Token) Token {
	v := Token{ID: t.ID, Name: t.Name, Scope: t.Scope, Prefix: t.Prefix, CreatedAt: t.CreatedAt.UTC(),
		LastUsed: timePtr(t.LastUsed), RevokedAt: timePtr(t.RevokedAt)}
	if t.CreatedBy != 0 {
		by := t.CreatedBy
		v.CreatedBy = &by
	}
	return v
}

func (s *server) listTokens(w http.ResponseWriter, r *http.Request, p *auth.Principal) error {
	if _, err := queryOf(r); err != nil {
		return err
	}
	org, err := orgOf(p)
	if err != nil {
		return err
	}
	ts, err := p.Tenant.Tokens(r.Context(), org.ID)
	if err != nil {
		return err
	}
	out := struct {
		Tokens []Token `json:"tokens"`
	}{[]Token{}}
	for _, t := range ts {
		out.Tokens = append(out.Tokens, TokenOf(t))
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// CreateToken makes an API token of organization org with scope for p
// and returns it with its secret, which only this answer holds (the store
// keeps its hash). A principal may not make a token of more scope than its
// own: a read token makes none. Errors: as the API answers them.
func CreateToken(ctx context.Context, p *auth.Principal, org int64, name, scope string) (*Token, error) {
	name = strings.TrimSpace(name)
	switch {
	case name == "":
		return nil, invalid("name", "required: say what the token is for")
	case utf8.RuneCountInString(name) > 100 || !utf8.ValidString(name):
		return nil, invalid("name", "want at most 100 characters")
	case scope != store.ScopeRead && scope != store.ScopeWrite:
		return nil, invalid("scope", fmt.Sprintf("%q: want read or write", scope))
	case !p.Can(auth.PermWrite) || (p.Token != nil && p.Token.Scope != store.ScopeWrite):
		return nil, forbidden("a read token or a viewer cannot create tokens")
	}
	secret, hash, err := auth.NewSecret(auth.KindToken)
	if err != nil {
		return nil, err
	}
	t := &store.Token{OrgID: org, Name: name, Scope: scope, Hash: hash, Prefix: secret[:len(auth.KindToken)+6]}
	if p.User != nil {
		t.CreatedBy = p.User.ID
	}
	if err := p.Tenant.CreateToken(ctx, t); err != nil {
		return nil, err
	}
	v := TokenOf(t)
	v.Secret = secret
	return &v, nil
}

func (s *server) createToken(w http.ResponseWriter, r *http.Request, p *auth.Principal) error {
	if _, err := queryOf(r); err != nil {
		return err
	}
	var body struct {
		Name  string `json:"name"`
		Scope string `json:"scope"`
	}
	if err := decodeJSON(w, r, &body); err != nil {
		return err
	}
	org, err := orgOf(p)
	if err != nil {
		return err
	}
	t, err := CreateToken(r.Context(), p, org.ID, body.Name, body.Scope)
	if err != nil {
		return err
	}
	w.Header().Set("Location", Prefix+"/tokens")
	writeJSON(w, http.StatusCreated, t)
	return nil
}

func (s *server) revokeToken(w http.ResponseWriter, r *http.Request, p *auth.Principal) error {
	id, err := pathID(r, "id")
	if err != nil {
		return err
	}
	if _, err := queryOf(r); err != nil {
		return err
	}
	err = p.Tenant.RevokeToken(r.Context(), id, s.Now().UTC())
	if errors.Is(err, store.ErrNotFound) {
		return notFound(fmt.Sprintf("no token with id %d", id))
	} else if err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// Member is the JSON of a member of an organization.
type Member struct {
	ID    int64     `json:"id"` // the user's
	Email string    `json:"email"`
	Role  string    `json:"role"`
	Since time.Time `json:"since"`
}

func (s *server) listUsers(w http.ResponseWriter, r *http.Request, p *auth.Principal) error {
	if _, err := queryOf(r); err != nil {
		return err
	}
	org, err := orgOf(p)
	if err != nil {
		return err
	}
	ms, err := p.Tenant.Members(r.Context(), org.ID)
	if err != nil {
		return err
	}
	out := struct {
		Users []Member `json:"users"`
	}{[]Member{}}
	for _, m := range ms {
		out.Users = append(out.Users, Member{ID: m.UserID, Email: m.Email, Role: m.Role, Since: m.CreatedAt.UTC()})
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// member finds the path's user among the members of p's organization and
// counts its owners.
func member(r *http.Request, p *auth.Principal) (*store.Membership, int, error) {
	id, err := pathID(r, "id")
	if err != nil {
		return nil, 0, err
	}
	if _, err := queryOf(r); err != nil {
		return nil, 0, err
	}
	org, err := orgOf(p)
	if err != nil {
		return nil, 0, err
	}
	ms, err := p.Tenant.Members(r.Context(), org.ID)
	if err != nil {
		return nil, 0, err
	}
	var (
		found  *store.Membership
		owners int
	)
	for _, m := range ms {
		if m.Role == store.RoleOwner {
			owners++
		}
		if m.UserID == id {
			found = m
		}
	}
	if found == nil {
		return nil, 0, notFound(fmt.Sprintf("no member with user id %d in %s", id, org.Name))
	}
	return found, owners, nil
}

func (s *server) patchUser(w http.ResponseWriter, r *http.Request, p *auth.Principal) error {
	m, owners, err := member(r, p)
	if err != nil {
		return err
	}
	var body struct {
		Role string `json:"role"`
	}
	if err := decodeJSON(w, r, &body); err != nil {
		return err
	}
	switch body.Role {
	case store.RoleOwner, store.RoleAdmin, store.RoleViewer:
	default:
		return invalid("role", fmt.Sprintf("%q: want owner, admin or viewer", body.Role))
	}
	if m.Role == store.RoleOwner && body.Role != store.RoleOwner && owners == 1 {
		return conflict("last_owner", "role: "+m.Email+" is the organization's last owner; make someone else owner first")
	}
	if err := p.Tenant.SetMembership(r.Context(), m.UserID, m.OrgID, body.Role); err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, Member{ID: m.UserID, Email: m.Email, Role: body.Role, Since: m.CreatedAt.UTC()})
	return nil
}

func (s *server) deleteUser(w http.ResponseWriter, r *http.Request, p *auth.Principal) error {
	m, owners, err := member(r, p)
	if err != nil {
		return err
	}
	if m.Role == store.RoleOwner && owners == 1 {
		return conflict("last_owner", m.Email+" is the organization's last owner; make someone else owner first")
	}
	if err := p.Tenant.RemoveMembership(r.Context(), m.UserID, m.OrgID); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// Invitation is the JSON of an open invitation; Link only in the answer
// that creates it.
type Invitation struct {
	ID        int64     `json:"id"`
	Email     string    `json:"email"`
	Role      string    `json:"role"`
	CreatedBy *int64    `json:"created_by"`
	CreatedAt time.Time `json:"created_at"`
	ExpiresAt time.Time `json:"expires_at"`
	Link      string    `json:"link,omitempty"`
}

// InvitationOf is the JSON of inv.
func InvitationOf(inv *store.Invitation) Invitation {
	v := Invitation{ID: inv.ID, Email: inv.Email, Role: inv.Role, CreatedAt: inv.CreatedAt.UTC(), ExpiresAt: inv.ExpiresAt.UTC()}
	if inv.CreatedBy != 0 {
		by := inv.CreatedBy
		v.CreatedBy = &by
	}
	return v
}

func (s *server) listInvitations(w http.ResponseWriter, r *http.Request, p *auth.Principal) error {
	if _, err := queryOf(r); err != nil {
		return err
	}
	org, err := orgOf(p)
	if err != nil {
		return err
	}
	invs, err := p.Tenant.Invitations(r.Context(), org.ID)
	if err != nil {
		return err
	}
	out := struct {
		Invitations []Invitation `json:"invitations"`
	}{[]Invitation{}}
	for _, inv := range invs {
		out.Invitations = append(out.Invitations, InvitationOf(inv))
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// Invite makes an invitation to organization org with role, valid 7 days
// from now, and returns it with its one-time link (baseURL + "/invite/" +
// secret). Admins invite admins and viewers; only owners invite owners.
// Errors: as the API answers them.
func Invite(ctx context.Context, p *auth.Principal, org int64, email, role, baseURL string, now time.Time) (*Invitation, error) {
	email = strings.ToLower(strings.TrimSpace(email))
	if a, err := mail.ParseAddress(email); err != nil || a.Address != email || len(email) > 254 {
		return nil, invalid("email", fmt.Sprintf("%q: want an email address such as someone@example.com", email))
	}
	switch role {
	case store.RoleAdmin, store.RoleViewer:
	case store.RoleOwner:
		if !p.Can(auth.PermMembers) {
			return nil, forbidden("role: only an owner may invite owners")
		}
	default:
		return nil, invalid("role", fmt.Sprintf("%q: want owner, admin or viewer", role))
	}
	if !p.Can(auth.PermWrite) {
		return nil, forbidden("a viewer or a read token cannot invite")
	}
	secret, hash, err := auth.NewSecret(auth.KindInvitation)
	if err != nil {
		return nil, err
	}
	inv := &store.Invitation{OrgID: org, Email: email, Role: role, Hash: hash, CreatedAt: now, ExpiresAt: now.Add(invitationTTL)}
	if p.User != nil {
		inv.CreatedBy = p.User.ID
	}
	if err := p.Tenant.CreateInvitation(ctx, inv); err != nil {
		return nil, err
	}
	v := InvitationOf(inv)
	v.Link = strings.TrimSuffix(baseURL, "/") + "/invite/" + secret
	return &v, nil
}

func (s *server) createInvitation(w http.ResponseWriter, r *http.Request, p *auth.Principal) error {
	if _, err := queryOf(r); err != nil {
		return err
	}
	var body struct {
		Email string `json:"email"`
		Role  string `json:"role"`
	}
	if err := decodeJSON(w, r, &body); err != nil {
		return err
	}
	org, err := orgOf(p)
	if err != nil {
		return err
	}
	inv, err := Invite(r.Context(), p, org.ID, body.Email, body.Role, s.BaseURL, s.Now().UTC())
	if err != nil {
		return err
	}
	w.Header().Set("Location", Prefix+"/invitations")
	writeJSON(w, http.StatusCreated, inv)
	return nil
}

func (s *server) deleteInvitation(w http.ResponseWriter, r *http.Request, p *auth.Principal) error {
	id, err := pathID(r, "id")
	if err != nil {
		return err
	}
	if _, err := queryOf(r); err != nil {
		return err
	}
	err = p.Tenant.DeleteInvitation(r.Context(), id)
	if errors.Is(err, store.ErrNotFound) {
		return notFound("no open invitation with id " + strconv.FormatInt(id, 10))
	} else if err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}
