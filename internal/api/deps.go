package api

import (
	"log/slog"
	"time"

	"github.com/moatmail/moat/internal/auth"
	"github.com/moatmail/moat/internal/check"
	"github.com/moatmail/moat/internal/hosting"
	"github.com/moatmail/moat/internal/intake"
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
}
