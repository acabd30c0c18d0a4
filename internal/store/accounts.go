package store

import (
	"context"
	"errors"
	"time"
)

// ErrInvalidArg is returned for a value given to the store that is out of
// range (an empty name, an unknown role or scope, an organization id of 0
// where one is required). The message names the field. It is a
// programming error of the caller, which validates input before.
var ErrInvalidArg = errors.New("store: invalid argument")

// Roles of a member in an organization, from most to least powerful.
const (
	RoleOwner  = "owner"  // everything, members and branding included
	RoleAdmin  = "admin"  // domains, tokens, invitations of admins and viewers
	RoleViewer = "viewer" // read only
)

// Token scopes.
const (
	ScopeRead  = "read"
	ScopeWrite = "write"
)

// Org is an organization (tenant). Names are lower-case slugs, unique.
// A customer organization has the ParentID of its MSP; an MSP's owners and
// admins manage its customers, while a customer never sees its parent or
// siblings.
type Org struct {
	ID          int64
	Name        string // "acme": [a-z0-9-], 1 to 63 characters
	DisplayName string // "ACME Corp.", shown in the dashboard
	ParentID    int64  // 0: none
	Accent      string // "#0b7285", or "" for the default colour
	LogoType    string // media type of the logo, "" for none
	CreatedAt   time.Time
	// FailureKey is the age X25519 recipient ("age1...") to which the DMARC
	// failure reports of the organization's domains are encrypted before
	// they are stored (DMARCFailure.Sealed); "" to store them unencrypted.
	// Set by SetFailureKey.
	FailureKey string
}

// User is a person who signs in with an email address and a password.
// Email is stored lower-case and unique. PasswordHash is the encoded
// argon2id hash (the store does not interpret it).
type User struct {
	ID           int64
	Email        string
	PasswordHash string
	// Operator users see everything, like the CLI: every organization, and
	// the reports of domains no organization hosts.
	Operator          bool
	CreatedAt         time.Time
	PasswordChangedAt time.Time
}

// Membership places a user in an organization with a role.
type Membership struct {
	UserID    int64
	OrgID     int64
	Role      string // RoleOwner, RoleAdmin or RoleViewer
	CreatedAt time.Time

	// Filled by the listing methods.
	Email   string
	OrgName string
}

// Session is a signed-in browser. ID is the SHA-256 (hex) of the secret in
// the cookie: the store never holds the secret itself.
type Session struct {
	ID        string
	UserID    int64
	OrgID     int64 // the organization the user is looking at now
	CreatedAt time.Time
	LastSeen  time.Time
	ExpiresAt time.Time
	IP        string
	UserAgent string
}

// Token is an API token of an organization. Hash is the SHA-256 (hex) of
// the secret; Prefix its first characters, to tell tokens apart in lists.
type Token struct {
	ID        int64
	OrgID     int64
	Name      string
	Scope     string // ScopeRead or ScopeWrite
	Hash      string
	Prefix    string
	CreatedBy int64 // user id, 0 when created by the CLI
	CreatedAt time.Time
	LastUsed  time.Time // zero: never used
	RevokedAt time.Time // zero: active
}

// Invitation is a one-time link to join an organization with a role. Hash
// is the SHA-256 (hex) of the secret in the link.
type Invitation struct {
	ID         int64
	OrgID      int64
	Email      string // who it is for (informative; the link is what counts)
	Role       string
	Hash       string
	CreatedBy  int64
	CreatedAt  time.Time
	ExpiresAt  time.Time
	AcceptedAt time.Time // zero: open
	AcceptedBy int64
}

// CheckRecord is one stored result of `moat check` for a domain of an
// organization: the score, the grade and the whole report as JSON.
type CheckRecord struct {
	ID        int64
	OrgID     int64
	Domain    string
	CheckedAt time.Time
	Score     int
	Grade     string
	Report    []byte // the JSON of check.Report; stored compressed
}

// AccountStore keeps organizations, users, memberships, sessions, tokens
// and invitations. These methods are the operator's (the CLI, sign-in,
// looking up a session or a token before the caller's scope is known);
// what a signed-in user may do in an organization goes through Tenant.
// All methods are safe for concurrent use.
type AccountStore interface {
	// CreateOrg inserts o and sets o.ID and o.CreatedAt. ErrExists if the
	// name is taken; ErrNotFound if o.ParentID names no organization.
	CreateOrg(ctx context.Context, o *Org) error
	// Org returns an organization by id; OrgByName by name. ErrNotFound.
	Org(ctx context.Context, id int64) (*Org, error)
	OrgByName(ctx context.Context, name string) (*Org, error)
	// Orgs lists every organization by name.
	Orgs(ctx context.Context) ([]*Org, error)

	// CreateUser inserts u and sets u.ID and u.CreatedAt. ErrExists if the
	// email is taken.
	CreateUser(ctx context.Context, u *User) error
	// User returns a user by id; UserByEmail by email (any case).
	// ErrNotFound.
	User(ctx context.Context, id int64) (*User, error)
	UserByEmail(ctx context.Context, email string) (*User, error)
	// Users lists every user by email.
	Users(ctx context.Context) ([]*User, error)
	// SetPassword replaces the user's password hash and, in the same
	// transaction, deletes every session of the user except keepSession
	// ("" for none). ErrNotFound if the user does not exist.
	SetPassword(ctx context.Context, userID int64, hash, keepSession string) error
	// DeleteUser removes the user, its memberships and sessions.
	// ErrNotFound.
	DeleteUser(ctx context.Context, userID int64) error

	// SetMembership adds the user to the organization with role, or
	// changes the role. ErrNotFound if either does not exist.
	SetMembership(ctx context.Context, userID, orgID int64, role string) error
	// Memberships lists the organizations of a user (OrgName filled),
	// ordered by organization name.
	Memberships(ctx context.Context, userID int64) ([]*Membership, error)

	// CreateSession inserts a session. SessionByID returns it, ErrNotFound
	// when absent or expired at now. TouchSession sets LastSeen and
	// ExpiresAt (sliding expiry) and the current organization.
	// DeleteSession removes one (sign-out); ErrNotFound when absent.
	CreateSession(ctx context.Context, s *Session) error
	SessionByID(ctx context.Context, id string, now time.Time) (*Session, error)
	TouchSession(ctx context.Context, id string, orgID int64, lastSeen, expires time.Time) error
	DeleteSession(ctx context.Context, id string) error

	// TokenByHash returns the active (not revoked) token with that hash.
	// ErrNotFound otherwise. TouchToken records its use.
	TokenByHash(ctx context.Context, hash string) (*Token, error)
	TouchToken(ctx context.Context, id int64, at time.Time) error

	// InvitationByHash returns an invitation by the hash of its secret,
	// open or not. ErrNotFound.
	InvitationByHash(ctx context.Context, hash string) (*Invitation, error)
	// AcceptInvitation marks the open, unexpired invitation accepted by
	// userID and makes the user a member with its role, in one
	// transaction. ErrNotFound if it is not open or has expired at now.
	AcceptInvitation(ctx context.Context, hash string, userID int64, now time.Time) (*Invitation, error)
}
