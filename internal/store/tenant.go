package store

import (
	"context"
	"time"
)

// Scope says whose rows a Tenant sees and may change.
type Scope struct {
	// Operator sees and changes every row, the reports of domains no
	// organization hosts included (the CLI, background work, operator
	// users).
	Operator bool
	// Orgs are the organizations whose rows are visible when Operator is
	// false: the organization a user works in, and for an MSP's owner or
	// admin its customer organizations. Empty: nothing is visible.
	Orgs []int64
}

// DomainStore is the hosted domains and their policy versions: what the
// hosting service works on. Store implements it for the operator; a Tenant
// implements it within its Scope (rows outside are ErrNotFound, as if
// absent, and CreateDomain refuses an organization outside with
// ErrNotFound).
type DomainStore interface {
	CreateDomain(ctx context.Context, d *Domain, v *PolicyVersion) error
	UpdateDomain(ctx context.Context, name string, fn func(d *Domain) (*PolicyVersion, error)) (*Domain, error)
	DeleteDomain(ctx context.Context, name string) error
	Domain(ctx context.Context, name string) (*Domain, error)
	Domains(ctx context.Context) ([]*Domain, error)
	PolicyVersions(ctx context.Context, name string) ([]*PolicyVersion, error)
}

// ReportReader is the read side of the TLS-RPT reports: what summaries,
// lists and the dashboard use. Store implements it for the operator; a
// Tenant sees the reports with at least one policy domain hosted in its
// Scope, and the rollups of those domains only.
type ReportReader interface {
	TLSRPTReports(ctx context.Context, f ReportFilter) ([]*TLSRPTReport, error)
	TLSRPTReportByID(ctx context.Context, id int64) (*TLSRPTReport, error)
	CountTLSRPTReports(ctx context.Context, f ReportFilter) (int64, error)
	TLSRPTRollups(ctx context.Context, q RollupQuery) ([]RollupRow, error)
}

// OverviewQuery asks for one page of the domain overview.
type OverviewQuery struct {
	Match string    // "" for all; else domains whose name contains it
	Name  string    // "" for all; else the domain of this name (stored form: lower case, no trailing dot)
	Mode  string    // "" for all; else "testing", "enforce" or "none"
	Org   int64     // 0 for every organization of the scope
	Sort  string    // "name" (default), "failure_rate", "last_report", "grade", "expiry", "mode"
	Desc  bool      // descending; domains without the key (no report, check, certificate) stay last
	Limit int       // 0: 100; at most 1000
	After string    // the cursor of the previous page's last row ("" for the first page)
	Now   time.Time // the end of the 7-day window
}

// DomainSummary is one row of the overview: the domain's settings and the
// state of the things that make its MTA-STS work.
type DomainSummary struct {
	Domain
	OrgName string

	// From the TLS reports: the newest report received with a policy for
	// the domain, and the sessions of the 7 days before Now.
	LastReport time.Time // zero: none yet
	Sessions7d int64
	Failed7d   int64

	// From the newest stored check, if any.
	Score     int
	Grade     string // "" when never checked
	CheckedAt time.Time

	// The policy host's certificate, as last obtained or renewed.
	CertIssuedAt time.Time // zero: none yet
	CertExpires  time.Time

	// The delegation as last verified (see RecordVerify).
	VerifiedAt time.Time // zero: never
	Verify     []byte    // JSON of the hosting.Check results
	Cursor     string    // pass as OverviewQuery.After for the next page
}

// DomainEvent is something that happened to a hosted domain that the
// dashboard marks on its charts: a certificate obtained or renewed.
// (Policy changes are the PolicyVersions.)
type DomainEvent struct {
	Domain string
	At     time.Time
	Kind   string // "certificate"
	Detail string // e.g. "issued by Let's Encrypt, expires 2027-03-01"
}

// Tenant is the store as seen within a Scope: every query it runs is
// limited to the organizations of the scope in SQL, so that no caller
// (a web handler, an API endpoint) can forget to. Methods that name an
// organization return ErrNotFound when it is outside the scope, as if it
// did not exist. All methods are safe for concurrent use.
type Tenant interface {
	Scope() Scope

	DomainStore
	ReportReader
	DMARCReader

	// Overview returns one page of the domain overview, with totals from
	// the rollups and the newest check of each domain: no report rows are
	// scanned.
	Overview(ctx context.Context, q OverviewQuery) ([]*DomainSummary, error)
	// CountDomains counts the domains Overview would list without a limit.
	CountDomains(ctx context.Context, q OverviewQuery) (int64, error)
	// RecordVerify stores the result of verifying a domain's delegation
	// (JSON), shown by the overview until the next one.
	RecordVerify(ctx context.Context, domain string, at time.Time, result []byte) error
	// DomainEvents lists the events of a domain between since and until,
	// oldest first.
	DomainEvents(ctx context.Context, domain string, since, until time.Time) ([]*DomainEvent, error)

	// Orgs lists the organizations of the scope by name (for an operator:
	// all). Org returns one of them.
	Orgs(ctx context.Context) ([]*Org, error)
	Org(ctx context.Context, id int64) (*Org, error)
	// CreateOrg creates a customer organization: o.ParentID must be in the
	// scope (an MSP creating a customer).
	CreateOrg(ctx context.Context, o *Org) error
	// SetBranding sets the display name, accent colour and logo (nil logo
	// with an empty logoType removes it) of an organization of the scope.
	SetBranding(ctx context.Context, orgID int64, displayName, accent, logoType string, logo []byte) error
	// SetFailureKey sets the age X25519 recipient ("age1...") to which the
	// DMARC failure reports of the organization's domains are encrypted
	// from now on, or "" to store them unencrypted again (reports stored
	// before stay as they are). ErrInvalidArg for anything but "" or one
	// X25519 recipient; ErrNotFound outside the scope.
	SetFailureKey(ctx context.Context, orgID int64, recipient string) error
	// Logo returns the logo of an organization of the scope. ErrNotFound
	// when it has none.
	Logo(ctx context.Context, orgID int64) (logoType string, logo []byte, err error)

	// Members lists the members of an organization of the scope, by email.
	Members(ctx context.Context, orgID int64) ([]*Membership, error)
	// SetMembership adds a user to, or changes its role in, an organization
	// of the scope; RemoveMembership takes it out (and ends its sessions
	// in that organization). ErrNotFound.
	SetMembership(ctx context.Context, userID, orgID int64, role string) error
	RemoveMembership(ctx context.Context, userID, orgID int64) error

	// Tokens lists the tokens of an organization of the scope, newest
	// first, revoked ones included. CreateToken inserts t (t.OrgID in the
	// scope) and sets its ID and CreatedAt. RevokeToken revokes a token of
	// an organization of the scope; ErrNotFound otherwise.
	Tokens(ctx context.Context, orgID int64) ([]*Token, error)
	CreateToken(ctx context.Context, t *Token) error
	RevokeToken(ctx context.Context, id int64, at time.Time) error

	// Invitations lists the open invitations of an organization of the
	// scope. CreateInvitation inserts one (sets ID, CreatedAt).
	// DeleteInvitation withdraws one. ErrNotFound.
	Invitations(ctx context.Context, orgID int64) ([]*Invitation, error)
	CreateInvitation(ctx context.Context, inv *Invitation) error
	DeleteInvitation(ctx context.Context, id int64) error

	// InsertCheck stores a check of a domain for an organization of the
	// scope (sets ID). Checks lists the checks of a domain, newest first,
	// without their Report; Check returns one with its Report.
	InsertCheck(ctx context.Context, c *CheckRecord) error
	Checks(ctx context.Context, domain string, limit int) ([]*CheckRecord, error)
	Check(ctx context.Context, id int64) (*CheckRecord, error)

	// IntakeLog lists what arrived for the reports of the scope, newest
	// first: each submission with its path, outcome and reason (see
	// IntakeEvent). A submission is in the scope when its report has a
	// policy domain hosted there; invalid reports, which name no parsed
	// domain, and reports of domains nobody hosts are the operator's only.
	IntakeLog(ctx context.Context, q IntakeQuery) ([]*IntakeEvent, error)
}

// IntakeEvent is one report submission as the ingester handled it.
type IntakeEvent struct {
	ID         int64
	At         time.Time
	Kind       string // KindTLSRPT, KindDMARC or KindDMARCFailure
	Source     string // "https", "smtp", "imap", "import"
	Detail     string // the client, envelope or file
	Outcome    string // "stored", "duplicate", "invalid" or "conflict" (a DMARC report kept aside)
	ReportID   int64  // the stored report of its Kind (the earlier one for a duplicate)
	Reason     string // for invalid reports: why, precisely
	Reporter   string // the reporting organization, when parsed
	ReportName string // the report-id, when parsed
	Domains    []string
}

// IntakeQuery selects intake events.
type IntakeQuery struct {
	Since   time.Time // zero: all
	Kind    string    // "" for all
	Outcome string    // "" for all
	Source  string    // "" for all
	Limit   int       // 0: 100; at most 1000
	Before  int64     // cursor: events with ID below it; 0 for the newest
}
