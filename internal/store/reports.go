package store

import (
	"context"
	"time"
)

// Report statuses.
const (
	ReportOK       = "ok"       // parsed, conforms to RFC 8460
	ReportWarnings = "warnings" // parsed tolerantly; Warnings says what deviated
	ReportInvalid  = "invalid"  // could not be parsed at all; Error says why
)

// TLSRPTReport is one received TLS-RPT report: the raw bytes as received,
// and, when it could be parsed, the normalized report and its totals.
type TLSRPTReport struct {
	ID         int64     // assigned by the store
	ReceivedAt time.Time // UTC
	Source     string    // "https", "smtp", "imap", "import"
	// SourceDetail says where it came from: the client IP for HTTPS, the
	// envelope sender and client IP for SMTP, the file path for imports.
	SourceDetail string
	// Raw is the report as received (JSON, or gzip of JSON), before any
	// decompression. The store keeps it compressed.
	Raw []byte
	// RawPruned is when retention (retention.raw) cleared Raw, which is
	// then empty; zero while Raw is kept. Set by TLSRPTReportByID.
	RawPruned time.Time
	// Digest is the hex SHA-256 of Raw; reports that cannot be parsed are
	// deduplicated by it.
	Digest string
	// MediaType is the content type the report came with, if any.
	MediaType string
	DKIM      string // "pass", "fail", "none", or "" when not applicable (HTTPS, files)

	Status   string   // ReportOK, ReportWarnings or ReportInvalid
	Error    string   // why it is invalid, precisely
	Warnings []string // deviations accepted by the tolerant decoder

	// Set when parsed.
	OrganizationName string
	ReportID         string
	ContactInfo      string
	StartTime        time.Time
	EndTime          time.Time
	Domains          []string // the policy domains, lower-case, sorted, unique
	Hosted           bool     // at least one policy domain is hosted by Moat
	Successful       int64    // sum of total-successful-session-count over the policies
	Failed           int64    // sum of total-failure-session-count over the policies
	// Normalized is the normalized report as JSON (tlsrpt.Report).
	Normalized []byte

	Policies []TLSRPTPolicy
	Rollups  []TLSRPTRollup // the report's contribution to the daily rollups

	// Key is the report's place in lists, set when the report is read:
	// pass the last one of a page as ReportFilter.After for the next.
	Key ReportKey
}

// ReportKey is a report's place in the newest-first order of lists: the
// end of its period (the moment it was received, for an undated report),
// then its id.
type ReportKey struct {
	End time.Time
	ID  int64
}

// IsZero reports whether k is the zero key (no place).
func (k ReportKey) IsZero() bool { return k.ID == 0 && k.End.IsZero() }

// TLSRPTPolicy is one policy of a report, with its failure details.
type TLSRPTPolicy struct {
	Type       string
	Domain     string
	Strings    []string
	MXHosts    []string
	Successful int64
	Failed     int64
	Failures   []TLSRPTFailure
}

// TLSRPTFailure is one failure detail.
type TLSRPTFailure struct {
	ResultType     string
	SendingMTAIP   string
	ReceivingMX    string
	ReceivingHelo  string
	ReceivingIP    string
	Sessions       int64
	ReasonCode     string
	AdditionalInfo string
}

// TLSRPTRollup is a count of sessions for one day, policy domain, policy
// type, result type ("success" or a failure type), sending organization,
// sending MTA IP ("" for successes and when absent) and receiving MX (""
// when absent).
type TLSRPTRollup struct {
	Day          time.Time // UTC midnight
	Domain       string
	PolicyType   string // "sts", "tlsa", "no-policy-found", ...
	ResultType   string
	Organization string
	SendingIP    string
	ReceivingMX  string
	Sessions     int64
}

// InsertResult says what happened to one report of a batch.
type InsertResult struct {
	ID        int64 // the stored report's id (the earlier one's for a duplicate)
	Duplicate bool  // the same report (organization and report id, or digest) was stored before
}

// ReportFilter selects reports.
type ReportFilter struct {
	Domain string    // "" for all; else reports with a policy for this domain
	Since  time.Time // reports whose period ends at or after Since; zero for all
	Until  time.Time // reports whose period starts before Until; zero for all
	Status string    // "" for all
	Limit  int       // 0 for the default (100)
	// After continues a list after the report of this key (keyset
	// pagination, whatever was stored since): the Key of the previous
	// page's last report. Zero: from the newest report.
	After ReportKey
	// Offset skips reports first (after After). Listing by After is as
	// fast on every page; an offset costs the reports it skips.
	Offset int
}

// RollupQuery asks for rollup sums.
type RollupQuery struct {
	Domain     string    // "" for all domains
	PolicyType string    // "" for all policy types
	Since      time.Time // first day included (UTC midnight)
	Until      time.Time // first day excluded; zero for no end
	// GroupBy lists the columns to group by, in order, from "day",
	// "domain", "policy_type", "result_type", "organization", "sending_ip",
	// "receiving_mx". Empty means one total row.
	GroupBy []string
}

// RollupRow is one group of a RollupQuery; only the grouped fields are set.
type RollupRow struct {
	Day          time.Time
	Domain       string
	PolicyType   string
	ResultType   string
	Organization string
	SendingIP    string
	ReceivingMX  string
	Sessions     int64
}

// ReportStore keeps TLS-RPT reports. All methods are safe for concurrent
// use.
type ReportStore interface {
	// InsertTLSRPT stores a batch of reports in one transaction, with their
	// policies, failure details and rollup increments, and returns once it
	// is committed (durable). A report already stored (same organization
	// and report id, or, for reports without them, the same digest) is not
	// stored again and its rollups are not counted again; its result says
	// Duplicate. Every report of the batch, duplicates included, gets a
	// row in the intake log (Tenant.IntakeLog) in the same transaction.
	InsertTLSRPT(ctx context.Context, reports []*TLSRPTReport) ([]InsertResult, error)
	// TLSRPTReports lists reports, newest period first, without Raw,
	// Normalized, Policies and Rollups.
	TLSRPTReports(ctx context.Context, f ReportFilter) ([]*TLSRPTReport, error)
	// TLSRPTReportByID returns one report in full (Raw decompressed as
	// received, Normalized, Policies). ErrNotFound if absent.
	TLSRPTReportByID(ctx context.Context, id int64) (*TLSRPTReport, error)
	// CountTLSRPTReports counts the reports matching f (Limit, After and
	// Offset ignored). It reads every matching report: with a Domain,
	// that domain's; otherwise possibly every report stored.
	CountTLSRPTReports(ctx context.Context, f ReportFilter) (int64, error)
	// TLSRPTRollups sums the daily rollups; it never scans report rows.
	TLSRPTRollups(ctx context.Context, q RollupQuery) ([]RollupRow, error)
}
