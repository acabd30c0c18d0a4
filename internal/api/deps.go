package api

import (
	"errors"
	"fmt"
	"log/slog"
	"time"

	"golang.org/x/time/rate"

	"github.com/moatmail/moat/internal/auth"
	"github.com/moatmail/moat/internal/check"
	"github.com/moatmail/moat/internal/hosting"
	"github.com/moatmail/moat/internal/intake"
	"github.com/moatmail/moat/internal/ratelimit"
	"github.com/moatmail/moat/internal/senders"
	"github.com/moatmail/moat/internal/store"
)

// Deps are what the API (and the dashboard's pages, which share them)
// work with. Every field is required unless its comment says otherwise.
type Deps struct {
	Log *slog.Logger
	// Store is the operator's store: accounts (users, invitations) that are
	// looked up before a scope applies. Every other query goes through the
	// principal's Tenant.
	Store auth.Store
	// Hosting are the settings every hosted domain shares (zone, policy
	// host, rua): the records to publish and the served policy.
	Hosting hosting.Settings
	// Resolver answers the DNS queries of a delegation check ("verify").
	Resolver hosting.Resolver
	// Checker runs domain checks (POST /api/v1/checks, the Check page).
	Checker *check.Checker
	// Password are the argon2id parameters of new password hashes.
	Password auth.Params
	// BaseURL is where the dashboard is reached ("https://app.example.net"),
	// for invitation links.
	BaseURL string
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// MaxUpload bounds an uploaded report (bytes). Zero: 10 MiB.
	MaxUpload int64
	// Ingester stores uploaded reports (POST /api/v1/reports/tlsrpt). Nil:
	// uploads are answered 503.
	Ingester *intake.Ingester
	// SenderCache holds the reverse DNS and SPF facts of DMARC sources
	// that the sender pages and endpoints read (they ask DNS nothing).
	// Nil: Store, when it is one (store.Store is).
	SenderCache store.SenderCache
	// Catalog names the sending services. Nil: the built-in catalogue.
	Catalog *senders.Catalog
	// CheckLimit bounds the domain checks each organization runs (POST
	// /api/v1/checks and the Check page share it): a check sends dozens of
	// DNS queries and connects to the domain's MX hosts, on anyone's
	// behalf. Nil: no limit (tests). moat serve gives NewCheckLimiter().
	CheckLimit *ratelimit.Limiter[int64]
}

// Check rate per organization: CheckBurst at once, then one every
// CheckEvery.
const (
	CheckBurst = 10
	CheckEvery = 6 * time.Second
)

// NewCheckLimiter returns the limiter of Deps.CheckLimit: CheckBurst
// checks, then one every CheckEvery, per organization.
func NewCheckLimiter() *ratelimit.Limiter[int64] {
	return ratelimit.New[int64](rate.Every(CheckEvery), CheckBurst, 100000)
}

// ErrCheckLimit means an organization ran its checks too fast; a
// *CheckLimitError says how long to wait.
var ErrCheckLimit = errors.New("too many domain checks")

// CheckLimitError is ErrCheckLimit with the wait.
type CheckLimitError struct{ Wait time.Duration }

func (e *CheckLimitError) Error() string {
	return fmt.Sprintf("%v for this organization (%d at once, then one every %s); try again in %s",
		ErrCheckLimit, CheckBurst, CheckEvery, e.Wait.Round(time.Second))
}

func (e *CheckLimitError) Unwrap() error { return ErrCheckLimit }

// AllowCheck takes a check from organization org's allowance: nil, or a
// *CheckLimitError.
func (d Deps) AllowCheck(org int64) error {
	if d.CheckLimit == nil {
		return nil
	}
	now := time.Now
	if d.Now != nil {
		now = d.Now
	}
	if ok, wait := d.CheckLimit.Allow(org, now()); !ok {
		return &CheckLimitError{Wait: max(wait, time.Second)}
	}
	return nil
}
