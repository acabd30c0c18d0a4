package store

import (
	"context"
	"time"
)

// DMARC reports: aggregate reports (RFC 7489 §7.2, RFC 9990) and failure
// reports (RFC 6591). The schema is in migrations/*/00005_dmarc.sql; the
// SQL in dmarc_sql.go (writing), dmarc_query.go (reading) and
// dmarc_failure.go.

// DMARCReport is one received DMARC aggregate report: the raw bytes as
// received, what its header says, and what its records came to. Its
// records are not kept as rows: InsertDMARC adds them to the daily rollups
// (DMARCRollups), and reading the report again means decoding Raw.
type DMARCReport struct {
	ID         int64     // assigned by the store
	ReceivedAt time.Time // UTC
	Source     string    // "https", "smtp", "imap", "import"
	// SourceDetail says where it came from: the envelope and client for
	// SMTP, the mailbox for IMAP, the file path for imports, the user for
	// uploads.
	SourceDetail string
	// Raw is the report as received (XML, gzip or zip), before any
	// decompression. The store keeps it compressed.
	Raw []byte
	// Digest is the hex SHA-256 of Raw: the same bytes again are a
	// duplicate, whatever their status.
	Digest    string
	MediaType string // the content type it came with, if any
	DKIM      string // the DKIM result of the mail that carried it: "pass", "fail", "none"; "" when not applicable

	Status   string   // ReportOK, ReportWarnings or ReportInvalid
	Error    string   // why it is invalid, precisely
	Warnings []string // deviations the decoder accepted, with their element paths
	// ConflictOf, when not 0, is the stored report with the same identity
	// (organization, report id and period) but another content: this one
	// is kept aside and flagged, and its records are not in the rollups.
	ConflictOf int64

	// From the report's header, set when it could be read (also for a
	// report whose records could not).
	OrgName      string
	OrgEmail     string
	ExtraContact string
	ReportID     string
	StartTime    time.Time // the period as stated; zero when absent
	EndTime      time.Time
	Version      string
	// The policy published (RFC 7489 appendix C policy_published): Domain
	// is the policy domain, lower case, the domain the report is about.
	Domain  string
	ADKIM   string // "r", "s" or ""
	ASPF    string
	P       string
	SP      string
	NP      string
	Pct     int // 0 to 100; -1 when absent
	Testing string
	FO      string
	Hosted  bool // Domain is hosted by Moat

	// Records and Messages are the number of records and the sum of their
	// counts; ContentDigest is the hex SHA-256 of the decoded content
	// (header and records), which tells a copy from a different report with
	// the same identity. InsertDMARC sets them from Rows.
	Records       int64
	Messages      int64
	ContentDigest string

	// Rows streams the report's records to InsertDMARC; nil for a report
	// whose header could not be read (Status ReportInvalid). Not stored.
	Rows DMARCRows
}

// DMARCRows streams the records of a report: it calls emit for each
// record, in report order, with the record's rollup row, and returns what
// the whole report came to. It returns emit's error as is, and any other
// error only when the report could not be read for a reason that is not
// the report's (the input went away); a report that turns out not to be
// readable is no error: DMARCEnd.Error says why. InsertDMARC calls it once
// or not at all within a call, from inside its transaction, so that a
// report of any size is stored whole or not at all while its rows never
// all sit in memory; a retried InsertDMARC calls it again, from the start.
type DMARCRows func(emit func(*DMARCRow) error) (DMARCEnd, error)

// DMARCEnd is what a report's records came to.
type DMARCEnd struct {
	Records       int64
	Messages      int64
	ContentDigest string
	// Warnings are every warning of the report, those of its header
	// included: they replace DMARCReport.Warnings.
	Warnings []string
	// Error, when not empty, is why the records could not be read: the
	// report is stored as ReportInvalid with this reason, its rows
	// discarded.
	Error string
}

// DMARCRow is one record of an aggregate report, as the rollups count
// it: the record's source and results, and its message count. Strings are
// lower case; "" when the report left them out.
type DMARCRow struct {
	SourceIP     string
	HeaderFrom   string
	EnvelopeFrom string
	Disposition  string // policy_evaluated: "none", "quarantine", "reject", "pass"
	DKIM         string // policy_evaluated: the DMARC-aligned DKIM result, "pass" or "fail"
	SPF          string // policy_evaluated: the DMARC-aligned SPF result
	Reason       string // the override reason types, comma-separated
	// The DKIM signature of the auth results that best explains the
	// evaluation (an aligned pass first, then any pass, then the first):
	// its domain, selector and result, and whether its domain aligns with
	// HeaderFrom under the report's adkim.
	DKIMDomain   string
	DKIMSelector string
	DKIMResult   string
	DKIMAligned  bool
	// The SPF result of the auth results (scope mfrom first): its domain
	// and result, and whether the domain aligns under aspf.
	SPFDomain  string
	SPFResult  string
	SPFAligned bool
	Messages   int64
}

// DMARCFailure is one received DMARC failure report (RFC 6591). The
// message and everything read from it that may be personal (addresses,
// subjects: Parsed) are kept only compressed, or encrypted to the key of
// the organization hosting the domain (dmarc_seal.go); the other fields
// are searchable and hold nothing of the failed message's people.
type DMARCFailure struct {
	ID           int64
	ReceivedAt   time.Time
	Source       string
	SourceDetail string
	// Raw is the message as received; stored gzip-compressed, never
	// indexed.
	Raw    []byte
	Digest string // hex SHA-256 of Raw
	DKIM   string
	// Sealed is "" while Raw and Parsed are kept as gzip of their plain
	// text. When the organization hosting Domain has a FailureKey, the
	// store seals the report to it: Sealed is that age recipient, and
	// DMARCFailureByID returns Raw and Parsed as age ciphertext (Unseal).
	// Callers of InsertDMARC leave it "".
	Sealed string

	Status   string // ReportOK or ReportWarnings
	Warnings []string

	Domain         string    // the reported domain, lower case
	Reporter       string    // the domain of the report mail's sender
	FeedbackType   string    // "auth-failure"
	AuthFailure    string    // "dmarc", "dkim", "spf", ...
	DeliveryResult string    // "delivered", "spam", "policy", "reject", "other"
	SourceIP       string    // the sending IP address; "" when absent
	ArrivalDate    time.Time // zero when absent
	ReportingMTA   string
	UserAgent      string
	DKIMDomain     string
	DKIMSelector   string
	SPFDNS         string
	// IdentityAlignment lists "dkim", "spf" or "none" (RFC 7489 §7.3.1).
	IdentityAlignment []string
	Incidents         int64
	// Parsed is the JSON of the parsed report, addresses and subject
	// included; stored gzip-compressed, never indexed.
	Parsed []byte
}

// DMARCBatch is what InsertDMARC stores in one transaction.
type DMARCBatch struct {
	Reports  []*DMARCReport
	Failures []*DMARCFailure
}

// DMARCResult says what became of one aggregate report of a batch.
type DMARCResult struct {
	ID        int64 // the stored report (the earlier one's for a duplicate)
	Duplicate bool  // the same bytes, or the same content under the same identity, were stored before
	// ConflictOf is set when the report was stored aside: another report
	// holds its identity with different content.
	ConflictOf int64
	// What the report came to once its records were read (a duplicate:
	// the stored one's status).
	Status   string
	Error    string
	Warnings []string
	Records  int64
	Messages int64
}

// DMARCBatchResult holds the results of a batch, in batch order.
type DMARCBatchResult struct {
	Reports  []DMARCResult
	Failures []InsertResult
}

// DMARCStore is the write side of the DMARC reports. Store implements it.
type DMARCStore interface {
	// InsertDMARC stores a batch of aggregate and failure reports in one
	// transaction, with the aggregate reports' rollup increments, and
	// returns once it is committed. Each aggregate report's Rows is read
	// inside the transaction, its rows summed in memory by rollup key and
	// added to the rollups (counts added) whenever that sum grows past a
	// bound, so that a report of any size is stored whole or not at all.
	//
	// An aggregate report is a duplicate when the same bytes (Digest) were
	// stored before, or a report of the same identity (OrgName, ReportID,
	// StartTime, EndTime) with the same ContentDigest; a report of a known
	// identity with another content is stored aside (ConflictOf), flagged,
	// not counted. A failure report is a duplicate of the same bytes.
	// Every report gets a row in the intake log, in the same transaction.
	// Invalid input (an unknown status, an upper-case domain, a negative
	// count, a wrong digest) fails the batch before anything is written.
	InsertDMARC(ctx context.Context, b DMARCBatch) (DMARCBatchResult, error)
}

// DMARCFilter selects aggregate reports or failure reports.
type DMARCFilter struct {
	Domain string    // "" for all; else the reports about this policy (or reported) domain
	Since  time.Time // reports whose period ends at or after Since (failures: received); zero for all
	Until  time.Time // reports whose period starts before Until; zero for all
	// Status is "" for all, ReportOK, ReportWarnings or ReportInvalid, or
	// DMARCConflict for the reports kept aside.
	Status string
	Limit  int // 0: 100; at most 1000
	Offset int
}

// DMARCConflict is the DMARCFilter.Status of the reports stored aside for
// a conflict, and the intake outcome of such a report.
const DMARCConflict = "conflict"

// DMARCRollupQuery asks for sums of the DMARC daily rollups.
type DMARCRollupQuery struct {
	Domain string    // "" for every domain
	Since  time.Time // first day included (UTC midnight)
	Until  time.Time // first day excluded; zero for no end
	// GroupBy lists the columns to group by, in order, from "day",
	// "domain", "reporter", "source_ip", "header_from", "envelope_from",
	// "disposition", "dkim", "spf", "reason", "dkim_domain",
	// "dkim_selector", "dkim_result", "dkim_aligned", "spf_domain",
	// "spf_result", "spf_aligned". Empty means one total row.
	GroupBy []string
}

// DMARCRollupRow is one group of a DMARCRollupQuery; only the grouped
// fields are set, and Messages is the sum.
type DMARCRollupRow struct {
	Day      time.Time
	Domain   string
	Reporter string
	DMARCRow
}

// DMARCTotalsQuery asks for the DMARC message counts per day and domain
// (the narrow rollup of dmarc_totals), summed over a period.
type DMARCTotalsQuery struct {
	Since time.Time // first day included (UTC midnight)
	Until time.Time // first day excluded; zero for no end
	// By is "day" or "domain" for a row per value, in ascending order,
	// or "" for one total row.
	By string
}

// DMARCTotalsRow is one group of a DMARCTotalsQuery: the messages, and
// those that passed DKIM, SPF and DMARC (either of them) as the reporters
// evaluated them. Day is set when grouped by day, Domain by domain.
type DMARCTotalsRow struct {
	Day       time.Time
	Domain    string
	Messages  int64
	DKIMPass  int64
	SPFPass   int64
	DMARCPass int64
}

// DMARCReader is the read side of the DMARC reports. Store implements it
// for the operator; a Tenant sees the reports whose policy domain (the
// reported domain of a failure report) is hosted in its scope, and the
// rollups of those domains only. Reports of domains nobody hosts are the
// operator's.
type DMARCReader interface {
	// DMARCReports lists aggregate reports, newest period first, without
	// Raw.
	DMARCReports(ctx context.Context, f DMARCFilter) ([]*DMARCReport, error)
	// CountDMARCReports counts the reports DMARCReports would list
	// without a limit.
	CountDMARCReports(ctx context.Context, f DMARCFilter) (int64, error)
	// DMARCReportByID returns one report with Raw as received.
	// ErrNotFound if absent or outside the scope.
	DMARCReportByID(ctx context.Context, id int64) (*DMARCReport, error)
	// DMARCRollups sums the daily rollups; it never reads report rows.
	DMARCRollups(ctx context.Context, q DMARCRollupQuery) ([]DMARCRollupRow, error)
	// DMARCTotals sums the counts per day and domain: what the summaries
	// of many domains by day or by domain read (a row per day and
	// domain, where DMARCRollups reads a row per source and result).
	DMARCTotals(ctx context.Context, q DMARCTotalsQuery) ([]DMARCTotalsRow, error)
	// DMARCFailures lists failure reports, newest first, without Raw and
	// Parsed (Since and Until apply to ReceivedAt).
	DMARCFailures(ctx context.Context, f DMARCFilter) ([]*DMARCFailure, error)
	// DMARCFailureByID returns one failure report with Raw and Parsed.
	// ErrNotFound if absent or outside the scope.
	DMARCFailureByID(ctx context.Context, id int64) (*DMARCFailure, error)
}
