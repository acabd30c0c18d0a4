package auth

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/moatmail/moat/internal/store"
)

// ErrUnauthenticated means that a request carries no valid session or
// token: sign in, or send a valid token.
var ErrUnauthenticated = errors.New("auth: not signed in")

// Store is what auth needs of the store: the accounts, and the scoped view
// a principal acts through. store.Store implements it.
type Store interface {
	store.AccountStore
	Scoped(store.Scope) store.Tenant
}

// Principal is who a request acts as, and within what: a signed-in user in
// one of its organizations, or an organization's API token.
type Principal struct {
	User    *store.User    // nil for a token
	Session *store.Session // nil for a token
	Token   *store.Token   // nil for a session

	// Org is the organization the request acts in: the session's current
	// organization, or the token's.
	Org *store.Org
	// Role is the effective role in Org: the membership's (or, in a
	// customer organization, the role in its MSP); for a token, admin for
	// write scope and viewer for read scope; owner for an operator.
	Role string
	// Tenant is the store within the principal's scope: Org, and, for an
	// MSP's owners and admins acting in the MSP, its customers.
	Tenant store.Tenant
	// Orgs are the organizations a signed-in user may switch to (its own
	// and, where it is an owner or admin of an MSP, the MSP's customers);
	// every organization for an operator. Nil for a token.
	Orgs []*store.Org
}

// Permissions, from the weakest.
const (
	PermRead    = "read"    // see everything in scope
	PermWrite   = "write"   // change domains, run checks, upload reports, manage tokens and invitations
	PermMembers = "members" // change members' roles, invite owners, branding
)

// Can reports whether the principal's role allows perm.
func (p *Principal) Can(perm string) bool {
	switch perm {
	case PermRead:
		return p.Role == store.RoleViewer || p.Role == store.RoleAdmin || p.Role == store.RoleOwner
	case PermWrite:
		return p.Role == store.RoleAdmin || p.Role == store.RoleOwner
	case PermMembers:
		return p.Role == store.RoleOwner
	}
	return false
}

// Name is how the principal is written in logs: the user's email or the
// token's name and id.
func (p *Principal) Name() string {
	if p.User != nil {
		return p.User.Email
	}
	if p.Token != nil {
		return fmt.Sprintf("token %d (%s)", p.Token.ID, p.Token.Name)
	}
	return "nobody"
}

// roleRank orders roles.
func roleRank(role string) int {
	switch role {
	case store.RoleOwner:
		return 3
	case store.RoleAdmin:
		return 2
	case store.RoleViewer:
		return 1
	}
	return 0
}

// manages reports whether a role in an MSP extends to its customers.
func manages(role string) bool { return role == store.RoleOwner || role == store.RoleAdmin }

// ForSession builds the principal of a signed-in user acting in orgID (the
// session's current organization; 0 for the first organization, by name,
// the user is a member of). It returns ErrUnauthenticated when the user can act in no
// organization at all, and store.ErrNotFound when it may not act in orgID.
func ForSession(ctx context.Context, st Store, u *store.User, sess *store.Session, orgID int64) (*Principal, error) {
	p := &Principal{User: u, Session: sess}
	if u.Operator {
		orgs, err := st.Orgs(ctx)
		if err != nil {
			return nil, err
		}
		p.Orgs, p.Role, p.Tenant = orgs, store.RoleOwner, st.Scoped(store.Scope{Operator: true})
		if len(orgs) == 0 {
			return p, nil // an operator may work before any organization exists
		}
		p.Org = orgs[0]
		if i := slices.IndexFunc(orgs, func(o *store.Org) bool { return o.ID == orgID }); i >= 0 {
			p.Org = orgs[i]
		} else if orgID != 0 {
			return nil, fmt.Errorf("%w: organization %d", store.ErrNotFound, orgID)
		}
		return p, nil
	}
	ms, err := st.Memberships(ctx, u.ID)
	if err != nil {
		return nil, err
	}
	// Where the user may act, with which role: its memberships, and the
	// customers of the MSPs it owns or administers.
	roles := map[int64]string{}
	var orgs []*store.Org
	for _, m := range ms {
		o, err := st.Org(ctx, m.OrgID)
		if err != nil {
			return nil, err
		}
		if roleRank(m.Role) > roleRank(roles[o.ID]) {
			if _, seen := roles[o.ID]; !seen {
				orgs = append(orgs, o)
			}
			roles[o.ID] = m.Role
		}
	}
	all, err := st.Orgs(ctx)
	if err != nil {
		return nil, err
	}
	for _, c := range all {
		if c.ParentID == 0 || !manages(roles[c.ParentID]) {
			continue
		}
		if _, seen := roles[c.ID]; !seen {
			orgs = append(orgs, c)
		}
		if roleRank(roles[c.ParentID]) > roleRank(roles[c.ID]) {
			roles[c.ID] = roles[c.ParentID]
		}
	}
	if len(orgs) == 0 {
		return nil, fmt.Errorf("%w: %s is a member of no organization", ErrUnauthenticated, u.Email)
	}
	slices.SortFunc(orgs, func(a, b *store.Org) int { return strings.Compare(a.Name, b.Name) })
	p.Orgs = orgs
	// Without a choice, start in the first organization the user is a
	// member of (memberships come by name), not in a customer it manages
	// through its MSP that happens to sort first.
	p.Org = orgs[0]
	if len(ms) > 0 {
		if i := slices.IndexFunc(orgs, func(o *store.Org) bool { return o.ID == ms[0].OrgID }); i >= 0 {
			p.Org = orgs[i]
		}
	}
	if orgID != 0 {
		i := slices.IndexFunc(orgs, func(o *store.Org) bool { return o.ID == orgID })
		if i < 0 {
			return nil, fmt.Errorf("%w: organization %d", store.ErrNotFound, orgID)
		}
		p.Org = orgs[i]
	}
	p.Role = roles[p.Org.ID]
	p.Tenant = st.Scoped(scopeOf(p.Org, p.Role, all))
	return p, nil
}

// ForToken builds the principal of an API token.
func ForToken(ctx context.Context, st Store, t *store.Token) (*Principal, error) {
	o, err := st.Org(ctx, t.OrgID)
	if err != nil {
		return nil, err
	}
	role := store.RoleViewer
	if t.Scope == store.ScopeWrite {
		role = store.RoleAdmin
	}
	all, err := st.Orgs(ctx)
	if err != nil {
		return nil, err
	}
	return &Principal{Token: t, Org: o, Role: role, Tenant: st.Scoped(scopeOf(o, role, all))}, nil
}

// scopeOf is what acting in o with role shows: o, and o's customers when
// o is an MSP and the role manages them. A customer never sees its parent
// or its siblings.
func scopeOf(o *store.Org, role string, all []*store.Org) store.Scope {
	s := store.Scope{Orgs: []int64{o.ID}}
	if manages(role) {
		for _, c := range all {
			if c.ParentID == o.ID {
				s.Orgs = append(s.Orgs, c.ID)
			}
		}
	}
	return s
}

// Authenticate resolves a bearer token (API) to its principal; the token
// is looked up by its hash, and its use recorded at now.
func Authenticate(ctx context.Context, st Store, bearer string, now time.Time) (*Principal, error) {
	t, err := st.TokenByHash(ctx, HashSecret(bearer))
	if errors.Is(err, store.ErrNotFound) {
		return nil, fmt.Errorf("%w: unknown or revoked token", ErrUnauthenticated)
	}
	if err != nil {
		return nil, err
	}
	if err := st.TouchToken(ctx, t.ID, now); err != nil {
		return nil, err
	}
	return ForToken(ctx, st, t)
}

type principalKey struct{}

// WithPrincipal returns ctx carrying p.
func WithPrincipal(ctx context.Context, p *Principal) context.Context {
	return context.WithValue(ctx, principalKey{}, p)
}

// FromContext returns the principal of ctx, or nil.
func FromContext(ctx context.Context) *Principal {
	p, _ := ctx.Value(principalKey{}).(*Principal)
	return p
}
