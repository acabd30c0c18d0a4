// Package intake receives TLS-RPT aggregate reports (RFC 8460 §5): by HTTPS
// POST (§5.4), by SMTP (§5.3) and from files, and stores each one durably
// before acknowledging it.
//
// Every path hands the report bytes, exactly as received, to an Ingester.
// The Ingester decodes them tolerantly (internal/tlsrpt), builds the stored
// row with its rollup increments, and queues it for a single writer that
// commits whatever is queued in one transaction (group commit). Submit
// returns only after the transaction holding the report has committed, so
// an HTTP 200 or SMTP 250 is never sent for a report that a crash could
// lose. A report that cannot be parsed is stored anyway, marked invalid with
// the reason; nothing a sender delivered is dropped silently. With the SMTP
// spool (spool.go) a report mail is acknowledged once the message itself
// is committed, and its reports are stored afterwards by RunSpool.
package intake

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/url"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/moatmail/moat/internal/store"
	"github.com/moatmail/moat/internal/tlsrpt"
)

// Sentinel errors of Submit and of the listeners built on it.
var (
	// ErrTooLarge: the report, once decompressed, exceeds the limit. It is
	// not stored (keeping it would let anyone fill the disk); tell the
	// sender (HTTP 413, SMTP 552).
	ErrTooLarge = errors.New("intake: report too large")
	// ErrStore: the store failed to commit; the report is not
	// acknowledged. Temporary: tell the sender to retry (HTTP 503, SMTP
	// 451).
	ErrStore = errors.New("intake: store failed")
	// ErrClosed: the Ingester's Run has returned; nothing more is stored.
	// Temporary for the sender (HTTP 503, SMTP 421/451).
	ErrClosed = errors.New("intake: ingester stopped")
	// ErrRunning: Run was called a second time.
	ErrRunning = errors.New("intake: ingester already running")
)

// Sources of a Submission.
const (
	SourceHTTPS  = "https"
	SourceSMTP   = "smtp"
	SourceImport = "import"
)

// IngestOpts tunes an Ingester. The zero value is usable.
type IngestOpts struct {
	// MaxDecompressed is the largest report accepted once decompressed, in
	// bytes. Zero means 64 MiB: a daily report of a very large sender with
	// thousands of failure details stays far below it, and a gzip bomb is
	// stopped before it costs real memory.
	MaxDecompressed int64
	// MaxBatch is the largest number of reports committed in one
	// transaction. Zero means 256.
	MaxBatch int
	// QueueSize is the number of reports that may wait for the writer; when
	// it is full Submit waits (back-pressure). Zero means 4 × MaxBatch.
	QueueSize int
	// CommitTimeout bounds one InsertTLSRPT call. The commit of a batch
	// already taken is finished even after Run's context is cancelled, up
	// to this long. Zero means 30 seconds.
	CommitTimeout time.Duration
	// MaxDMARCXML is the largest DMARC aggregate report accepted once
	// decompressed, in bytes. Zero means 1 GiB: the records are decoded as
	// a stream, so this bounds the time a report takes, not memory.
	MaxDMARCXML int64
	// DMARCCommitTimeout bounds one InsertDMARC call, which decodes the
	// records of its reports inside the transaction (about a second per
	// 100,000 records). Zero means 10 minutes.
	DMARCCommitTimeout time.Duration
	// Now returns the current time (ReceivedAt). Nil means time.Now.
	Now func() time.Time
	// OnCommit, when set, is told of every commit: how long it took, how
	// many reports it held, and its error (metrics).
	OnCommit func(d time.Duration, reports int, err error)
	// Spool keeps report mail acknowledged before its reports are stored
	// (SpoolMail, RunSpool); nil: SpoolMail fails and RunSpool returns.
	Spool store.Spool
	// SpoolOpts tunes RunSpool.
	SpoolOpts SpoolOpts
}

func (o IngestOpts) withDefaults() IngestOpts {
	if o.MaxDecompressed <= 0 {
		o.MaxDecompressed = 64 << 20
	}
	if o.MaxBatch <= 0 {
		o.MaxBatch = 256
	}
	if o.QueueSize <= 0 {
		o.QueueSize = 4 * o.MaxBatch
	}
	if o.CommitTimeout <= 0 {
		o.CommitTimeout = 30 * time.Second
	}
	if o.MaxDMARCXML <= 0 {
		o.MaxDMARCXML = 1 << 30
	}
	if o.DMARCCommitTimeout <= 0 {
		o.DMARCCommitTimeout = 10 * time.Minute
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return o
}

// Submission is one report as received.
type Submission struct {
	Source       string // SourceHTTPS, SourceSMTP or SourceImport
	SourceDetail string // client IP, envelope and client, or file path
	MediaType    string // the content type it came with, if any
	// Data is the report as received: gzip, zip or JSON. It is stored
	// unchanged.
	Data []byte
	// DKIM is the DKIM result of the mail that carried it ("pass", "fail",
	// "none"), or "" when not applicable.
	DKIM string
	// ReportSubmitter is the TLS-Report-Submitter field of the mail that
	// carried it, if any. A value that does not match the domain of the
	// report's contact-info is kept as a warning.
	ReportSubmitter string
	// ReceivedAt is when the report was received, if not now: a spooled
	// message is stored later than it was acknowledged.
	ReceivedAt time.Time
}

// receivedAt is the time a submission's report was received.
func (ing *Ingester) receivedAt(sub Submission) time.Time {
	if !sub.ReceivedAt.IsZero() {
		return sub.ReceivedAt.UTC()
	}
	return ing.opts.Now().UTC()
}

// Result says what became of a submitted report. It is returned only once
// the report is committed.
type Result struct {
	// Kind is store.KindTLSRPT, store.KindDMARC (an aggregate report) or
	// store.KindDMARCFailure.
	Kind      string
	ID        int64 // the stored report's id (the earlier one's for a duplicate)
	Duplicate bool  // the same report was stored before; nothing new was stored
	// ConflictOf is set for a DMARC report stored aside: report ConflictOf
	// has its organization, report id and period with another content.
	ConflictOf int64
	Status     string // store.ReportOK, store.ReportWarnings or store.ReportInvalid
	// Error says why the report is invalid (Status store.ReportInvalid);
	// the report is stored all the same.
	Error    string
	Warnings []string // deviations from RFC 8460 that were accepted

	OrganizationName string // when parsed
	ReportID         string // when parsed

	// Of DMARC reports: the policy domain (a failure report's reported
	// domain), and the number of records and the sum of their counts.
	Domain   string
	Records  int64
	Messages int64
}

// IngestStats counts what an Ingester committed since it was created.
type IngestStats struct {
	Reports    int64 // reports acknowledged (new and duplicates)
	Duplicates int64
	Batches    int64 // committed transactions
	Failures   int64 // reports that could not be committed
	// Outcomes counts the answered reports by kind, source and outcome (a
	// copy: the caller may keep it).
	Outcomes map[OutcomeKey]int64
}

// OutcomeKey names one counter of IngestStats.Outcomes.
type OutcomeKey struct {
	Kind    string // store.KindTLSRPT, store.KindDMARC or store.KindDMARCFailure
	Source  string // the path it came by: SourceHTTPS, SourceSMTP, SourceImport, SourceIMAP, "api", ...
	Outcome string // OutcomeStored, OutcomeInvalid, OutcomeConflict, OutcomeDuplicate or OutcomeFailed
}

// The outcomes of OutcomeKey.
const (
	OutcomeStored    = "stored"    // newly stored, parsed (perhaps with warnings)
	OutcomeInvalid   = "invalid"   // newly stored, marked invalid with the reason
	OutcomeConflict  = "conflict"  // a DMARC report kept aside: another one holds its identity
	OutcomeDuplicate = "duplicate" // stored before; nothing new stored
	OutcomeFailed    = "failed"    // not stored: the store failed (the sender is told to retry)
)

// Ingester stores reports durably, batching concurrent submissions into
// one transaction. Create it with NewIngester, start Run once in its own
// goroutine, then call Submit from any number of goroutines.
type Ingester struct {
	log    *slog.Logger
	st     Store
	hosted func(string) bool
	opts   IngestOpts

	queue   chan *pending
	running atomic.Bool
	stopped chan struct{} // closed when Run has returned

	reports, duplicates, batches, failures atomic.Int64

	outcomesMu sync.Mutex
	outcomes   map[OutcomeKey]int64

	gunzips sync.Pool // *gzip.Reader, for peek

	spool     spoolState
	spoolOpts SpoolOpts
}

// count adds one to the outcome counter of a report.
func (ing *Ingester) count(kind, source, outcome string) {
	ing.outcomesMu.Lock()
	ing.outcomes[OutcomeKey{Kind: kind, Source: source, Outcome: outcome}]++
	ing.outcomesMu.Unlock()
}

// Store is what an Ingester writes to; store.Store implements it. Both
// methods must be safe for concurrent use.
type Store interface {
	InsertTLSRPT(ctx context.Context, reports []*store.TLSRPTReport) ([]store.InsertResult, error)
	InsertDMARC(ctx context.Context, b store.DMARCBatch) (store.DMARCBatchResult, error)
}

// pending is a report waiting for its batch to commit: one of rep (a
// TLS-RPT report), dmarc, failure and spool (a message to spool) is set.
type pending struct {
	rep     *store.TLSRPTReport
	dmarc   *store.DMARCReport
	failure *store.DMARCFailure
	spool   *store.SpoolItem
	done    chan outcome // buffered (1): the writer never blocks on it
}

type outcome struct {
	res  store.InsertResult
	dres store.DMARCResult // of a DMARC aggregate report
	err  error
}

// NewIngester returns an Ingester writing to st. hosted reports whether a
// policy domain is hosted by Moat (it sets the report's Hosted flag); nil
// means none is. log receives one line per report that could not be
// stored; nil discards.
func NewIngester(log *slog.Logger, st Store, hosted func(domain string) bool, opts IngestOpts) *Ingester {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if hosted == nil {
		hosted = func(string) bool { return false }
	}
	opts = opts.withDefaults()
	return &Ingester{
		log:       log,
		st:        st,
		hosted:    hosted,
		opts:      opts,
		queue:     make(chan *pending, opts.QueueSize),
		stopped:   make(chan struct{}),
		outcomes:  make(map[OutcomeKey]int64),
		spool:     spoolState{wake: make(chan struct{}, 1)},
		spoolOpts: opts.SpoolOpts.withDefaults(),
	}
}

// MaxDecompressed returns the decompressed size limit in force.
func (ing *Ingester) MaxDecompressed() int64 { return ing.opts.MaxDecompressed }

// QueueDepth is the number of reports waiting for the writer.
func (ing *Ingester) QueueDepth() int { return len(ing.queue) }

// Stats returns counters of what was committed so far.
func (ing *Ingester) Stats() IngestStats {
	ing.outcomesMu.Lock()
	outcomes := maps.Clone(ing.outcomes)
	ing.outcomesMu.Unlock()
	return IngestStats{
		Reports:    ing.reports.Load(),
		Duplicates: ing.duplicates.Load(),
		Batches:    ing.batches.Load(),
		Failures:   ing.failures.Load(),
		Outcomes:   outcomes,
	}
}

// Run is the writer: it commits queued reports in batches until ctx is
// done. It takes whatever is queued, up to MaxBatch, and commits it in one
// InsertTLSRPT: no delay is added when the queue is short (a lone report is
// committed at once), while under load the reports that arrive during a
// commit form the next batch. After ctx is done the batch being committed
// is finished, reports still queued fail with ErrClosed, and Run returns
// nil. Call Run once; any later call returns ErrRunning.
func (ing *Ingester) Run(ctx context.Context) error {
	if !ing.running.CompareAndSwap(false, true) {
		return ErrRunning
	}
	defer close(ing.stopped)
	batch := make([]*pending, 0, ing.opts.MaxBatch)
	for {
		select {
		case <-ctx.Done():
			ing.failQueued()
			return nil
		case p := <-ing.queue:
			batch = append(batch[:0], p)
		drain:
			for len(batch) < ing.opts.MaxBatch {
				select {
				case p := <-ing.queue:
					batch = append(batch, p)
				default:
					break drain
				}
			}
			ing.commit(ctx, batch)
			clear(batch) // let the reports be collected
		}
	}
}

// failQueued answers every queued report with ErrClosed.
func (ing *Ingester) failQueued() {
	for {
		select {
		case p := <-ing.queue:
			p.done <- outcome{err: ErrClosed}
		default:
			return
		}
	}
}

// commit stores one batch and answers each of its reports: the TLS-RPT
// reports in one transaction, the DMARC ones in another, the messages to
// spool in a third.
func (ing *Ingester) commit(ctx context.Context, batch []*pending) {
	var tls, dmarc, spool []*pending
	for _, p := range batch {
		switch {
		case p.rep != nil:
			tls = append(tls, p)
		case p.spool != nil:
			spool = append(spool, p)
		default:
			dmarc = append(dmarc, p)
		}
	}
	if len(spool) > 0 {
		ing.commitSpool(ctx, spool)
	}
	if len(tls) > 0 {
		ing.commitTLS(ctx, tls)
	}
	if len(dmarc) > 0 {
		ing.commitDMARC(ctx, dmarc)
	}
}

// commitTLS stores the TLS-RPT reports of a batch.
func (ing *Ingester) commitTLS(ctx context.Context, batch []*pending) {
	reps := make([]*store.TLSRPTReport, len(batch))
	for i, p := range batch {
		reps[i] = p.rep
	}
	res, err := ing.insert(ctx, reps)
	if err != nil && len(batch) > 1 && !errors.Is(err, context.DeadlineExceeded) {
		// One report the store refuses must not fail the others: retry
		// them one by one (not when the store timed out: it is down, and
		// one by one would only take longer to say so).
		ing.log.Warn("tlsrpt batch commit failed, retrying reports one by one", "reports", len(batch), "err", err)
		for _, p := range batch {
			r, err := ing.insert(ctx, []*store.TLSRPTReport{p.rep})
			ing.answer(p, r, err)
		}
		return
	}
	for i, p := range batch {
		var r []store.InsertResult
		if err == nil {
			r = res[i : i+1]
		}
		ing.answer(p, r, err)
	}
}

func (ing *Ingester) answer(p *pending, res []store.InsertResult, err error) {
	if err != nil {
		ing.failures.Add(1)
		ing.log.Error("tlsrpt report not stored", "source", p.rep.Source, "detail", p.rep.SourceDetail,
			"org", p.rep.OrganizationName, "report_id", p.rep.ReportID, "err", err)
		ing.count(store.KindTLSRPT, p.rep.Source, OutcomeFailed)
		p.done <- outcome{err: err}
		return
	}
	ing.reports.Add(1)
	switch {
	case res[0].Duplicate:
		ing.duplicates.Add(1)
		ing.count(store.KindTLSRPT, p.rep.Source, OutcomeDuplicate)
	case p.rep.Status == store.ReportInvalid:
		ing.count(store.KindTLSRPT, p.rep.Source, OutcomeInvalid)
	default:
		ing.count(store.KindTLSRPT, p.rep.Source, OutcomeStored)
	}
	p.done <- outcome{res: res[0]}
}

// insert runs one InsertTLSRPT, bounded by CommitTimeout and not cut short
// by the cancellation of ctx (a batch taken is finished).
func (ing *Ingester) insert(ctx context.Context, reps []*store.TLSRPTReport) ([]store.InsertResult, error) {
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), ing.opts.CommitTimeout)
	defer cancel()
	start := time.Now()
	res, err := ing.st.InsertTLSRPT(cctx, reps)
	if ing.opts.OnCommit != nil {
		ing.opts.OnCommit(time.Since(start), len(reps), err)
	}
	if err != nil {
		return nil, fmt.Errorf("%w: insert %d reports: %w", ErrStore, len(reps), err)
	}
	if len(res) != len(reps) {
		return nil, fmt.Errorf("%w: insert %d reports: store returned %d results", ErrStore, len(reps), len(res))
	}
	ing.batches.Add(1)
	return res, nil
}

// Submit stores one report and returns once it is committed. A report that
// cannot be parsed is stored all the same with Status store.ReportInvalid
// and the reason in Result.Error; Submit then succeeds. A report delivered
// before is not stored again and Result.Duplicate is set. Errors: ErrTooLarge
// (not stored), ErrStore and ErrClosed (not stored, temporary), or ctx's
// error when ctx ends first (the report may or may not be committed; the
// sender retries and the retry is a duplicate).
func (ing *Ingester) Submit(ctx context.Context, sub Submission) (Result, error) {
	rep, err := ing.prepare(sub)
	if err != nil {
		return Result{}, err
	}
	return ing.store(ctx, rep)
}

// store queues a prepared report and waits for its commit.
func (ing *Ingester) store(ctx context.Context, rep *store.TLSRPTReport) (Result, error) {
	o, err := ing.enqueue(ctx, &pending{rep: rep, done: make(chan outcome, 1)})
	if err != nil {
		return Result{}, err
	}
	return Result{
		Kind:             store.KindTLSRPT,
		ID:               o.res.ID,
		Duplicate:        o.res.Duplicate,
		Status:           rep.Status,
		Error:            rep.Error,
		Warnings:         rep.Warnings,
		OrganizationName: rep.OrganizationName,
		ReportID:         rep.ReportID,
	}, nil
}

// enqueue queues p for the writer and waits for its commit.
func (ing *Ingester) enqueue(ctx context.Context, p *pending) (outcome, error) {
	select {
	case ing.queue <- p:
	case <-ing.stopped:
		return outcome{}, ErrClosed
	case <-ctx.Done():
		return outcome{}, fmt.Errorf("intake: waiting to queue report: %w", ctx.Err())
	}
	var o outcome
	select {
	case o = <-p.done:
	case <-ing.stopped:
		select {
		case o = <-p.done: // answered just before Run returned
		default:
			return outcome{}, ErrClosed
		}
	case <-ctx.Done():
		return outcome{}, fmt.Errorf("intake: waiting for commit: %w", ctx.Err())
	}
	return o, o.err
}

// prepare decodes a submission into the row to store. It fails only with
// ErrTooLarge; a report that does not parse gives an invalid row.
func (ing *Ingester) prepare(sub Submission) (*store.TLSRPTReport, error) {
	sum := sha256.Sum256(sub.Data)
	rep := &store.TLSRPTReport{
		ReceivedAt:   ing.receivedAt(sub),
		Source:       sub.Source,
		SourceDetail: sub.SourceDetail,
		Raw:          sub.Data,
		Digest:       hex.EncodeToString(sum[:]),
		MediaType:    sub.MediaType,
		DKIM:         sub.DKIM,
	}
	parsed, warnings, err := ing.parse(sub.Data)
	if errors.Is(err, tlsrpt.ErrTooLarge) {
		return nil, fmt.Errorf("%w: more than %d bytes decompressed: %w", ErrTooLarge, ing.opts.MaxDecompressed, err)
	}
	if err != nil {
		// Kept and marked, not refused: the report is stored with the
		// reason it could not be read.
		rep.Status = store.ReportInvalid
		rep.Error = err.Error()
		return rep, nil //nolint:nilerr // the parse error is recorded in rep
	}
	if w := submitterMismatch(sub.ReportSubmitter, parsed.ContactInfo); w != "" {
		warnings = append(warnings, w)
	}
	fill(rep, parsed, warnings, ing.hosted)
	return rep, nil
}

// submitterMismatch checks the mail's TLS-Report-Submitter against the
// report. RFC 8460 §5.3: the TLS-Report-Submitter value MUST match the
// domain of the contact-info; §5.6: where the mail and the report
// disagree the report is authoritative, so a mismatch is only a warning.
func submitterMismatch(submitter, contact string) string {
	submitter = strings.TrimSuffix(strings.ToLower(strings.TrimSpace(submitter)), ".")
	if submitter == "" || contact == "" {
		return ""
	}
	c := strings.ToLower(strings.TrimSpace(contact))
	domain := c
	if at := strings.LastIndexByte(c, '@'); at >= 0 {
		domain = c[at+1:]
	} else if u, err := url.Parse(c); err == nil && u.Hostname() != "" {
		domain = u.Hostname()
	}
	domain = strings.TrimSuffix(strings.TrimRight(domain, ">"), ".")
	if domain == submitter {
		return ""
	}
	return fmt.Sprintf("mail: TLS-Report-Submitter %q does not match the domain %q of contact-info (RFC 8460 §5.3)", submitter, domain)
}

// parse decompresses and decodes a report. A panic of the decoder (a bug
// there) marks the report invalid instead of taking the server down.
func (ing *Ingester) parse(data []byte) (rep *tlsrpt.Report, warnings []string, err error) {
	defer func() {
		if p := recover(); p != nil {
			ing.log.Error("tlsrpt decoder panicked; report kept as invalid", "panic", fmt.Sprint(p))
			rep, warnings, err = nil, nil, fmt.Errorf("%w: decoder failed internally: %v", tlsrpt.ErrInvalidReport, p)
		}
	}()
	if len(data) == 0 {
		return nil, nil, fmt.Errorf("%w: empty report", tlsrpt.ErrInvalidReport)
	}
	js, _, err := tlsrpt.Decompress(data, ing.opts.MaxDecompressed)
	if err != nil {
		return nil, nil, err
	}
	r, ws, err := tlsrpt.Decode(js)
	if err != nil {
		return nil, nil, err
	}
	seen := make(map[string]bool)
	add := func(s string) {
		if !seen[s] {
			seen[s] = true
			warnings = append(warnings, s)
		}
	}
	for _, w := range ws {
		add(w.String())
	}
	for _, e := range tlsrpt.Validate(r) {
		add(e.Error())
	}
	return r, warnings, nil
}

// StoredReport is the row the ingester stores for a report that parsed as
// r from raw: what a program that makes reports itself (moat seed) inserts
// with store.InsertTLSRPT, exactly as intake would have.
func StoredReport(raw []byte, r *tlsrpt.Report, received time.Time, source, detail string, hosted func(string) bool) *store.TLSRPTReport {
	sum := sha256.Sum256(raw)
	rep := &store.TLSRPTReport{
		ReceivedAt: received.UTC(), Source: source, SourceDetail: detail, Raw: raw,
		Digest: hex.EncodeToString(sum[:]), MediaType: "application/tlsrpt+json",
	}
	if hosted == nil {
		hosted = func(string) bool { return false }
	}
	fill(rep, r, nil, hosted)
	return rep
}

// fill sets the parsed fields of rep from r.
func fill(rep *store.TLSRPTReport, r *tlsrpt.Report, warnings []string, hosted func(string) bool) {
	rep.OrganizationName = r.OrganizationName
	rep.ReportID = r.ReportID
	rep.ContactInfo = r.ContactInfo
	rep.StartTime = r.DateRange.Start.UTC()
	rep.EndTime = r.DateRange.End.UTC()
	rep.Domains = r.Domains()
	for _, d := range rep.Domains {
		if hosted(d) {
			rep.Hosted = true
			break
		}
	}
	rep.Successful, rep.Failed = r.Totals()
	if norm, err := json.Marshal(r); err == nil {
		rep.Normalized = norm
	} else {
		warnings = append(warnings, "normalized form not kept: "+err.Error())
	}
	for _, p := range r.Policies {
		sp := store.TLSRPTPolicy{
			Type:       p.Policy.Type,
			Domain:     p.Policy.Domain,
			Strings:    p.Policy.String,
			MXHosts:    p.Policy.MXHost,
			Successful: p.Summary.Successful,
			Failed:     p.Summary.Failure,
		}
		for _, f := range p.FailureDetails {
			sp.Failures = append(sp.Failures, store.TLSRPTFailure{
				ResultType:     f.ResultType,
				SendingMTAIP:   f.SendingMTAIP,
				ReceivingMX:    f.ReceivingMXHostname,
				ReceivingHelo:  f.ReceivingMXHelo,
				ReceivingIP:    f.ReceivingIP,
				Sessions:       f.FailedSessionCount,
				ReasonCode:     f.FailureReasonCode,
				AdditionalInfo: f.AdditionalInformation,
			})
		}
		rep.Policies = append(rep.Policies, sp)
	}
	rollups, more := Rollups(r, rep.ReceivedAt)
	rep.Rollups = rollups
	warnings = append(warnings, more...)
	rep.Warnings = warnings
	rep.Status = store.ReportOK
	if len(warnings) > 0 {
		rep.Status = store.ReportWarnings
	}
}

// Rollups computes a report's contribution to the daily rollups, with a
// warning for each policy whose failure details count more sessions than
// its summary. Per policy, on the UTC day of the report's start (of
// received when the report has no start):
//   - a "success" row with the summary's successful sessions;
//   - a row per failure detail (result type, sending IP, receiving MX);
//   - when the summary counts more failed sessions than its details, the
//     remainder as result type tlsrpt.ResultUnspecified;
//   - when the details count more than the summary, the details are
//     counted (they are the more specific claim) and a warning says so.
//
// Rows with the same key are merged, rows of zero sessions omitted, and
// the rows sorted by key.
func Rollups(r *tlsrpt.Report, received time.Time) ([]store.TLSRPTRollup, []string) {
	t := r.DateRange.Start
	if t.IsZero() {
		t = received
	}
	t = t.UTC()
	day := time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, time.UTC)
	type key struct{ domain, ptype, result, ip, mx string }
	sums := make(map[key]int64)
	var order []key
	add := func(k key, n int64) {
		if n <= 0 {
			return
		}
		if _, ok := sums[k]; !ok {
			order = append(order, k)
		}
		sums[k] += n
	}
	var warnings []string
	for i, p := range r.Policies {
		dom, pt := p.Policy.Domain, p.Policy.Type
		add(key{dom, pt, tlsrpt.ResultSuccess, "", ""}, p.Summary.Successful)
		var detailed int64
		for _, f := range p.FailureDetails {
			if f.FailedSessionCount > 0 {
				detailed += f.FailedSessionCount
			}
			add(key{dom, pt, f.ResultType, f.SendingMTAIP, f.ReceivingMXHostname}, f.FailedSessionCount)
		}
		switch {
		case p.Summary.Failure > detailed:
			add(key{dom, pt, tlsrpt.ResultUnspecified, "", ""}, p.Summary.Failure-detailed)
		case p.Summary.Failure < detailed:
			add(key{dom, pt, tlsrpt.ResultDetailExcess, "", ""}, detailed-p.Summary.Failure)
			warnings = append(warnings, fmt.Sprintf(
				"policies[%d]: failure-details count %d failed sessions, more than total-failure-session-count %d; totals use the total, breakdowns the details",
				i, detailed, p.Summary.Failure))
		}
	}
	rows := make([]store.TLSRPTRollup, 0, len(order))
	for _, k := range order {
		rows = append(rows, store.TLSRPTRollup{
			Day: day, Domain: k.domain, PolicyType: k.ptype, ResultType: k.result,
			Organization: r.OrganizationName, SendingIP: k.ip, ReceivingMX: k.mx, Sessions: sums[k],
		})
	}
	// A fixed order of rows keeps concurrent writers (several instances on
	// PostgreSQL) from locking rollup rows in opposite orders.
	sort.Slice(rows, func(i, j int) bool {
		a, b := rows[i], rows[j]
		for _, c := range [][2]string{{a.Domain, b.Domain}, {a.PolicyType, b.PolicyType},
			{a.ResultType, b.ResultType}, {a.SendingIP, b.SendingIP}, {a.ReceivingMX, b.ReceivingMX}} {
			if c[0] != c[1] {
				return c[0] < c[1]
			}
		}
		return false
	})
	return rows, warnings
}
