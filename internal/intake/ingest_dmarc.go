package intake

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/moatmail/moat/internal/dmarcrpt"
	"github.com/moatmail/moat/internal/store"
)

// The DMARC side of the Ingester: the same queue, writer and group commit
// as TLS-RPT reports, with InsertDMARC.

// commitDMARC stores the DMARC reports of a batch in one InsertDMARC and
// answers each; when the batch fails, each report is retried alone, so
// that one the store refuses does not fail the others.
func (ing *Ingester) commitDMARC(ctx context.Context, batch []*pending) {
	res, err := ing.insertDMARC(ctx, batch)
	if err != nil && len(batch) > 1 && !errors.Is(err, context.DeadlineExceeded) {
		ing.log.Warn("dmarc batch commit failed, retrying reports one by one", "reports", len(batch), "err", err)
		for _, p := range batch {
			r, err := ing.insertDMARC(ctx, []*pending{p})
			ing.answerDMARC(p, r, 0, err)
		}
		return
	}
	for i, p := range batch {
		ing.answerDMARC(p, res, i, err)
	}
}

// insertDMARC runs one InsertDMARC of the batch's reports, bounded by
// DMARCCommitTimeout and not cut short by the cancellation of ctx.
// Results are in batch order, an aggregate report's in Reports and a
// failure report's in Failures, each at the pending's position.
func (ing *Ingester) insertDMARC(ctx context.Context, batch []*pending) (store.DMARCBatchResult, error) {
	var b store.DMARCBatch
	for _, p := range batch {
		if p.dmarc != nil {
			b.Reports = append(b.Reports, p.dmarc)
		} else {
			b.Failures = append(b.Failures, p.failure)
		}
	}
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), ing.opts.DMARCCommitTimeout)
	defer cancel()
	start := time.Now()
	res, err := ing.st.InsertDMARC(cctx, b)
	if ing.opts.OnCommit != nil {
		ing.opts.OnCommit(time.Since(start), len(batch), err)
	}
	if err != nil {
		return store.DMARCBatchResult{}, fmt.Errorf("%w: insert %d dmarc reports: %w", ErrStore, len(batch), err)
	}
	if len(res.Reports) != len(b.Reports) || len(res.Failures) != len(b.Failures) {
		return store.DMARCBatchResult{}, fmt.Errorf("%w: insert %d dmarc reports: store returned %d results", ErrStore,
			len(batch), len(res.Reports)+len(res.Failures))
	}
	ing.batches.Add(1)
	// Put the results at the positions of the batch.
	out := store.DMARCBatchResult{Reports: make([]store.DMARCResult, len(batch)), Failures: make([]store.InsertResult, len(batch))}
	ri, fi := 0, 0
	for i, p := range batch {
		if p.dmarc != nil {
			out.Reports[i] = res.Reports[ri]
			ri++
		} else {
			out.Failures[i] = res.Failures[fi]
			fi++
		}
	}
	return out, nil
}

func (ing *Ingester) answerDMARC(p *pending, res store.DMARCBatchResult, i int, err error) {
	var kind, source string
	if p.dmarc != nil {
		kind, source = store.KindDMARC, p.dmarc.Source
	} else {
		kind, source = store.KindDMARCFailure, p.failure.Source
	}
	if err != nil {
		ing.failures.Add(1)
		ing.count(kind, source, OutcomeFailed)
		if p.dmarc != nil {
			ing.log.Error("dmarc report not stored", "source", p.dmarc.Source, "detail", p.dmarc.SourceDetail,
				"org", p.dmarc.OrgName, "report_id", p.dmarc.ReportID, "err", err)
		} else {
			ing.log.Error("dmarc failure report not stored", "source", p.failure.Source, "detail", p.failure.SourceDetail, "err", err)
		}
		p.done <- outcome{err: err}
		return
	}
	ing.reports.Add(1)
	o := outcome{res: res.Failures[i], dres: res.Reports[i]}
	if p.dmarc != nil {
		o.res = store.InsertResult{ID: o.dres.ID, Duplicate: o.dres.Duplicate}
	}
	switch {
	case o.res.Duplicate:
		ing.duplicates.Add(1)
		ing.count(kind, source, OutcomeDuplicate)
	case p.dmarc != nil && o.dres.ConflictOf != 0:
		ing.count(kind, source, OutcomeConflict)
	case p.dmarc != nil && o.dres.Status == store.ReportInvalid,
		p.failure != nil && p.failure.Status == store.ReportInvalid:
		ing.count(kind, source, OutcomeInvalid)
	default:
		ing.count(kind, source, OutcomeStored)
	}
	p.done <- o
}

// storeDMARC queues a prepared aggregate report and waits for its commit.
func (ing *Ingester) storeDMARC(ctx context.Context, rep *store.DMARCReport) (Result, error) {
	o, err := ing.enqueue(ctx, &pending{dmarc: rep, done: make(chan outcome, 1)})
	if err != nil {
		return Result{}, err
	}
	d := o.dres
	return Result{Kind: store.KindDMARC, ID: d.ID, Duplicate: d.Duplicate, ConflictOf: d.ConflictOf, Status: d.Status,
		Error: d.Error, Warnings: d.Warnings, OrganizationName: rep.OrgName, ReportID: rep.ReportID, Domain: rep.Domain,
		Records: d.Records, Messages: d.Messages}, nil
}

// storeFailure queues a failure report and waits for its commit.
func (ing *Ingester) storeFailure(ctx context.Context, f *store.DMARCFailure) (Result, error) {
	o, err := ing.enqueue(ctx, &pending{failure: f, done: make(chan outcome, 1)})
	if err != nil {
		return Result{}, err
	}
	return Result{Kind: store.KindDMARCFailure, ID: o.res.ID, Duplicate: o.res.Duplicate, Status: f.Status,
		Warnings: f.Warnings, OrganizationName: f.Reporter, Domain: f.Domain, Records: 1, Messages: f.Incidents}, nil
}

// SubmitDMARC stores one DMARC aggregate report as received in a file or
// an HTTP body (XML, gzip or zip, recognized by their bytes), and returns
// once it is committed with what its records came to. A report that
// cannot be read is stored as invalid with the reason (Result.Error); one
// sent again is a duplicate; another report with its organization, report
// id and period is stored aside (Result.ConflictOf). Errors: ErrNotReport
// with the reason when the data is no DMARC report at all (not gzip, zip
// or XML, or XML without a <feedback> element: nothing is stored),
// ErrTooLarge, and those of Submit.
func (ing *Ingester) SubmitDMARC(ctx context.Context, sub Submission) (Result, error) {
	rep, err := ing.dmarcOfData(sub)
	if err != nil {
		return Result{}, err
	}
	return ing.storeDMARC(ctx, rep)
}

// dmarcOfData prepares the aggregate report of a file or a body.
func (ing *Ingester) dmarcOfData(sub Submission) (*store.DMARCReport, error) {
	in, err := dmarcrpt.Extract(sub.Data, ing.extractOpts(sub.Data))
	switch {
	case errors.Is(err, dmarcrpt.ErrTooLarge):
		return nil, fmt.Errorf("%w: %w", ErrTooLarge, err)
	case err != nil:
		return nil, fmt.Errorf("%w: %s", ErrNotReport, reason(err, dmarcrpt.ErrNoReport))
	}
	rep, err := ing.prepareDMARC(sub, dmarcSource{src: in.Sources[0], warnings: in.Warnings})
	if errors.Is(err, errNotDMARC) {
		return nil, fmt.Errorf("%w: %s", ErrNotReport, err.Error())
	}
	return rep, err
}

// extractOpts bounds dmarcrpt.Extract of data, which the caller has
// bounded already.
func (ing *Ingester) extractOpts(data []byte) dmarcrpt.ExtractOptions {
	return dmarcrpt.ExtractOptions{MaxCompressed: int64(len(data)) + 1, MaxDecompressed: ing.opts.MaxDMARCXML}
}

// DMARCStoredReport prepares the aggregate report in raw (XML, gzip or
// zip), received at received, exactly as intake would store it, for data
// made elsewhere and stored with store.InsertDMARC: moat seed's demo
// reports. hosted says which domains are hosted (nil: none). Errors:
// ErrNotReport, ErrTooLarge.
func DMARCStoredReport(raw []byte, received time.Time, source, detail string, hosted func(string) bool) (*store.DMARCReport, error) {
	ing := NewIngester(nil, nil, hosted, IngestOpts{Now: func() time.Time { return received }})
	return ing.dmarcOfData(Submission{Source: source, SourceDetail: detail, Data: raw})
}
