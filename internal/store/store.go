// Package store is Moat's persistent state: hosted domains and their policy
// versions, a key/value area with locks for certificates (shared by every
// instance), a change serial that lets each instance notice changes made
// by others, TLS-RPT reports and their rollups, and the organizations,
// users, sessions and tokens of the dashboard and API. Store acts for the
// operator; Store.Scoped gives the Tenant view limited to the
// organizations of a Scope.
//
// Two implementations share one contract: SQLite (embedded, the default) and
// PostgreSQL. Open chooses by the database URL. Every method is safe for
// concurrent use, also by several processes on the same database (the CLI
// writes while `moat serve` reads).
package store

import (
	"context"
	"errors"
	"time"
)

// Sentinel errors. Callers test them with errors.Is.
var (
	// ErrNotFound: the domain, key, lock, organization, user, session,
	// token, invitation, check or report does not exist, or is outside the
	// caller's Scope. Report it to the user naming what was looked up.
	ErrNotFound = errors.New("store: not found")
	// ErrExists: a domain, organization or user with that name or email,
	// or a session, token or invitation with that id or hash, exists
	// already.
	ErrExists = errors.New("store: already exists")
	// ErrLocked: a lock is held by another owner and has not expired.
	ErrLocked = errors.New("store: locked by another owner")
)

// Domain is a hosted domain as stored. Name is lower-case, an A-label, no
// trailing dot. The served policy is described by the latest PolicyVersion;
// the fields here are the current settings.
type Domain struct {
	Name   string   // "example.com"
	Mode   string   // "testing", "enforce" or "none"
	MX     []string // MX patterns, e.g. "mx1.example.com", "*.example.net"
	MaxAge int64    // policy max_age in seconds
	RUA    []string // extra TLS-RPT rua URIs published besides Moat's own

	PolicyID string // id of the currently served policy (latest version)
	Version  int64  // number of the latest policy version, 1 for a new domain

	// OrgID is the organization hosting the domain: required by
	// CreateDomain, fixed afterwards.
	OrgID int64

	CreatedAt time.Time // UTC
	UpdatedAt time.Time // UTC
}

// PolicyVersion is one served policy of a domain, recorded in the same
// transaction as the change that produced it. Versions are numbered from 1
// per domain and never reused.
type PolicyVersion struct {
	Domain    string
	Version   int64
	PolicyID  string
	Mode      string
	MX        []string
	MaxAge    int64
	Policy    string // the exact policy file text served
	CreatedAt time.Time
}

// KeyInfo describes a stored key of the key/value area.
type KeyInfo struct {
	Key      string
	Size     int64
	Modified time.Time
}

// Store is the persistent state. Implementations: SQLite and PostgreSQL.
// All methods are safe for concurrent use by goroutines and processes.
type Store interface {
	// CreateDomain inserts d together with its first policy version v
	// (v.Version must be 1) in one transaction. ErrExists if d.Name is
	// taken; ErrInvalidArg if d.OrgID is not set; ErrNotFound if it names
	// no organization.
	CreateDomain(ctx context.Context, d *Domain, v *PolicyVersion) error

	// UpdateDomain runs fn inside one write transaction with the current
	// row of name. fn changes d in place and returns a new policy version to
	// record, or nil when the served policy is unchanged. If fn returns an
	// error nothing is written and that error is returned. ErrNotFound if the
	// domain does not exist. fn cannot change the name or the organization.
	// The updated domain is returned.
	UpdateDomain(ctx context.Context, name string, fn func(d *Domain) (*PolicyVersion, error)) (*Domain, error)

	// DeleteDomain removes the domain, its versions and its events; its
	// reports, rollups and checks stay (history). ErrNotFound if absent.
	DeleteDomain(ctx context.Context, name string) error

	// Domain returns one domain. ErrNotFound if absent.
	Domain(ctx context.Context, name string) (*Domain, error)

	// Domains returns every hosted domain ordered by name.
	Domains(ctx context.Context) ([]*Domain, error)

	// PolicyVersions returns the versions of a domain, newest first.
	// ErrNotFound if the domain does not exist.
	PolicyVersions(ctx context.Context, name string) ([]*PolicyVersion, error)

	// Serial returns the change serial: a number that grows with every
	// committed change to domains. It is cheap; instances poll it to
	// notice changes made by other processes.
	Serial(ctx context.Context) (int64, error)

	// Put stores value under key, replacing any earlier value.
	Put(ctx context.Context, key string, value []byte) error
	// Get returns the value of key. ErrNotFound if absent.
	Get(ctx context.Context, key string) ([]byte, error)
	// Stat describes key. ErrNotFound if absent.
	Stat(ctx context.Context, key string) (KeyInfo, error)
	// Delete removes key and every key under key+"/". ErrNotFound if none
	// existed.
	Delete(ctx context.Context, key string) error
	// List returns the keys under prefix+"/" (all depths when recursive,
	// otherwise the direct children, a child directory listed once as its
	// path). ErrNotFound if there are none.
	List(ctx context.Context, prefix string, recursive bool) ([]string, error)

	// TryLock takes the named lock for owner until ttl has passed. It returns
	// ErrLocked if another owner holds an unexpired lock. Taking a lock one
	// already holds extends it.
	TryLock(ctx context.Context, name, owner string, ttl time.Duration) error
	// Unlock releases the named lock if owner holds it. ErrNotFound if
	// owner does not hold it.
	Unlock(ctx context.Context, name, owner string) error

	// ReportStore keeps TLS-RPT reports (reports.go).
	ReportStore

	// DMARCStore and DMARCReader keep DMARC reports (dmarc.go); the
	// reading methods act for the operator.
	DMARCStore
	DMARCReader

	// Spool keeps report mail acknowledged before its reports are stored
	// (spool.go).
	Spool

	// SenderCache keeps the reverse DNS and SPF facts about the sources of
	// DMARC reports (senders.go).
	SenderCache

	// AccountStore keeps organizations, users and what signs them in
	// (accounts.go).
	AccountStore

	// Scoped returns the store as seen within scope (tenant.go). The
	// methods of Store above act for the operator: they see every row.
	Scoped(scope Scope) Tenant

	// Changes delivers a value soon after another process (or this one)
	// commits a change that advances the change serial; several changes
	// may give one value, and one is delivered when listening starts. The
	// channel is closed when ctx ends. A store that cannot notify (SQLite)
	// returns nil: its users poll Serial.
	Changes(ctx context.Context) <-chan struct{}

	// RecordCertificate records that the policy host of the hosted domain
	// obtained or renewed its certificate: the overview shows issuedAt and
	// expires, and a "certificate" DomainEvent at issuedAt with detail is
	// added. ErrNotFound if the domain is not hosted (nothing is written).
	RecordCertificate(ctx context.Context, domain string, issuedAt, expires time.Time, detail string) error

	// CertificateExpiries returns when every recorded policy-host
	// certificate expires (for metrics).
	CertificateExpiries(ctx context.Context) ([]time.Time, error)

	// Prune deletes what is older than the retention periods r (or with
	// opts.DryRun counts it), in transactions of opts.Batch rows so that
	// writers beside it wait little, and on SQLite gives the freed pages
	// back to the file system (incremental vacuum). It returns the rows
	// per table and action; ErrRetention if r does not validate.
	// Concurrent prunes (two instances) are safe: each row goes once.
	Prune(ctx context.Context, r Retention, opts PruneOptions) (PruneResult, error)

	// EnableIncrementalVacuum converts an SQLite database created without
	// auto_vacuum=INCREMENTAL (by an older Moat) with a VACUUM, which
	// blocks writers while it copies the database; it reports whether it
	// converted. A no-op on PostgreSQL.
	EnableIncrementalVacuum(ctx context.Context) (bool, error)

	// Backup writes a consistent copy of the database to file while it is
	// in use (SQLite); ErrUnsupported on PostgreSQL (pg_dump).
	Backup(ctx context.Context, file string) error

	// Close releases the database.
	Close() error
}
