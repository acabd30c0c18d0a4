package intake

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/moatmail/moat/internal/dmarcrpt"
	"github.com/moatmail/moat/internal/store"
	"github.com/moatmail/moat/internal/tlsrpt"
	"github.com/moatmail/moat/internal/unpack"
)

// The spool (intake.smtp_spool): report mail is acknowledged once the
// message is committed to the store's spool, and its reports are stored
// afterwards by RunSpool, when the intake is quiet or the message has
// waited SpoolOpts.MaxDelay. Reports arrive in bulk at the start of every
// UTC day; the spool lets the SMTP dialogue go at the speed of the disk's
// commits, not at the speed of parsing and rollups. The message is checked
// before it is spooled (SpoolMail runs the same search for reports as
// SubmitMail), so mail that holds no report is still refused in the
// dialogue. A message processed twice (a crash between storing its reports
// and deleting it) stores nothing twice: its reports are duplicates.

// ErrSpoolFull is SpoolMail's error when the spool holds SpoolOpts.MaxQueued
// messages: the sender should retry later (SMTP 452).
var ErrSpoolFull = errors.New("intake: spool full")

// SpoolOpts tunes RunSpool. The zero value is usable.
type SpoolOpts struct {
	// Quiet is how long no message may have been spooled by this process
	// before the processor starts on the spool. Zero means 250 ms.
	Quiet time.Duration
	// MaxDelay is the longest a spooled message waits while mail keeps
	// arriving; after it the processor works beside the intake. Zero
	// means one minute.
	MaxDelay time.Duration
	// Poll is how often the spool is looked at without news of a message
	// spooled here (those of other instances; those left by a process
	// that stopped). Zero means 10 seconds.
	Poll time.Duration
	// Batch is the number of messages claimed at once. Zero means 64.
	Batch int
	// Workers is the number of messages of a batch submitted at once (the
	// writer commits them together). Zero means 16.
	Workers int
	// Lease is how long a claim holds a message: a processor that dies
	// leaves its messages to others (or to itself, restarted) after it.
	// Zero means 5 minutes.
	Lease time.Duration
	// MaxQueued is the largest number of queued messages; beyond it
	// SpoolMail answers ErrSpoolFull. Zero means 200,000.
	MaxQueued int64
}

func (o SpoolOpts) withDefaults() SpoolOpts {
	if o.Quiet <= 0 {
		o.Quiet = 250 * time.Millisecond
	}
	if o.MaxDelay <= 0 {
		o.MaxDelay = time.Minute
	}
	if o.Poll <= 0 {
		o.Poll = 10 * time.Second
	}
	if o.Batch <= 0 {
		o.Batch = 64
	}
	if o.Workers <= 0 {
		o.Workers = 16
	}
	if o.Lease <= 0 {
		o.Lease = 5 * time.Minute
	}
	if o.MaxQueued <= 0 {
		o.MaxQueued = 200_000
	}
	return o
}

// spoolState is what an Ingester keeps of its spool.
type spoolState struct {
	lastPut atomic.Int64  // Unix nanoseconds of the last message spooled here
	queued  atomic.Int64  // messages queued: the store's count, plus those spooled since
	wake    chan struct{} // a message was spooled here (buffered 1)
	done    atomic.Int64  // messages processed (their reports stored), for tests and metrics
	failed  atomic.Int64  // messages failed for good
}

// SpoolReceipt says what SpoolMail kept.
type SpoolReceipt struct {
	ID      int64  // the spooled message's id
	Kind    string // the kind of its first report: store.KindTLSRPT, KindDMARC or KindDMARCFailure
	Reports int    // the reports found: 1 when the quick check decided (a message may hold more)
}

// SpoolMail checks that raw holds a report, as SubmitMail would find it,
// and keeps the message in the spool; it returns once the message is
// committed. Errors: those of SubmitMail's search (ErrNotReport,
// ErrTooLarge: nothing is kept), ErrSpoolFull, ErrStore and ErrClosed
// (temporary), ctx's error. IngestOpts.Spool must be set.
func (ing *Ingester) SpoolMail(ctx context.Context, sub Submission, raw []byte, opts MailOpts) (SpoolReceipt, error) {
	if ing.opts.Spool == nil {
		return SpoolReceipt{}, fmt.Errorf("%w: no spool", ErrStore)
	}
	if n := ing.spool.queued.Load(); n >= ing.spoolOpts.MaxQueued {
		return SpoolReceipt{}, fmt.Errorf("%w: %d messages wait to be stored", ErrSpoolFull, n)
	}
	rc, err := ing.checkMail(sub, raw, opts)
	if err != nil {
		return SpoolReceipt{}, err
	}
	item := &store.SpoolItem{
		ReceivedAt: ing.receivedAt(sub), Source: sub.Source, Detail: sub.SourceDetail, DKIM: sub.DKIM,
		Hint: opts.Hint, Data: raw,
	}
	if _, err := ing.enqueue(ctx, &pending{spool: item, done: make(chan outcome, 1)}); err != nil {
		return SpoolReceipt{}, err
	}
	rc.ID = item.ID
	ing.spool.lastPut.Store(time.Now().UnixNano())
	ing.spool.queued.Add(1)
	select {
	case ing.spool.wake <- struct{}{}:
	default:
	}
	return rc, nil
}

// checkHead is how many bytes of each part checkMail decodes: enough for
// the gzip header, the first block's Huffman tables and the first
// hundreds of bytes of the report (gunzipHead reads 512).
const checkHead = 1024

// gzipLook is how many bytes of a gzipped part the check decompresses:
// the gzip header with a report's file name, a block's Huffman tables and
// some hundreds of compressed bytes. A stream whose first 512 bytes need
// more is decided by the whole search, as before.
const gzipLook = 512

// checkMail is SpoolMail's check that raw holds a report, without
// decoding one: a part that SubmitMail would store as a TLS report, a DMARC
// failure report, or a part it would store as a DMARC aggregate report;
// the kind of the message's Hint first; from the first bytes of each part
// only (quickCheck). When none is found it runs SubmitMail's whole
// search, which decides as SubmitMail would (a
// damaged report is kept as invalid, mail without one is refused with
// the reasons). So it refuses nothing SubmitMail would store; what it lets
// through that SubmitMail would refuse (a report larger than the limits
// once decompressed) is kept in the spool, marked failed, when processed.
func (ing *Ingester) checkMail(sub Submission, raw []byte, opts MailOpts) (SpoolReceipt, error) {
	if kind := ing.quickCheck(raw, opts.Hint); kind != "" {
		return SpoolReceipt{Kind: kind, Reports: 1}, nil
	}
	p, err := ing.planMail(sub, raw, opts)
	if err != nil {
		return SpoolReceipt{}, err
	}
	rc := SpoolReceipt{Reports: len(p.tls) + len(p.dmarc)}
	switch {
	case p.failure != nil:
		rc.Kind, rc.Reports = store.KindDMARCFailure, rc.Reports+1
	case len(p.dmarc) > 0:
		rc.Kind = store.KindDMARC
	default:
		rc.Kind = store.KindTLSRPT
	}
	return rc, nil
}

// quickCheck is checkMail's look at the first bytes of raw's parts: the
// kind of a report SubmitMail surely stores (valid, or kept as invalid),
// or "" when it cannot tell.
func (ing *Ingester) quickCheck(raw []byte, hint string) string {
	// The shapes SubmitMail always stores, valid or kept as invalid, read
	// from the first bytes only: a TLS part that is (gzipped) JSON naming a
	// TLS-RPT field in its first bytes (looksLikeReport), a DMARC part that
	// is gzipped XML (compressed, so kept even when damaged). Anything
	// else goes to SubmitMail's whole search (checkMail).
	head := func(data []byte) ([]byte, bool) {
		switch unpack.Sniff(data) {
		case "":
			return data, true
		case unpack.Gzip:
			// gunzipHead's 512 bytes need far fewer compressed ones:
			// flate decodes all the input it is given, so it gets
			// gzipLook bytes, not the part's checkHead.
			return ing.gunzipHead(data[:min(len(data), gzipLook)])
		}
		return nil, false
	}
	// Only the first checkHead bytes of each part are decoded (and
	// gunzipped, as far as they go): what the check looks at is in them.
	tls := func() bool {
		parts, err := tlsrpt.ReportParts(raw, checkHead)
		if err != nil {
			return false
		}
		for _, p := range parts {
			if h, ok := head(p.Data); ok && peekPlain(h) == "json" && hasTLSField(h) {
				return true
			}
		}
		return false
	}
	dmarc := func() bool {
		eo := ing.extractOpts(raw)
		eo.Head = checkHead
		in, err := dmarcrpt.Extract(raw, eo)
		if err != nil {
			return false
		}
		for _, src := range in.Sources {
			if unpack.Sniff(src.Data) != unpack.Gzip {
				continue
			}
			if h, ok := ing.gunzipHead(src.Data[:min(len(src.Data), gzipLook)]); ok && peekPlain(h) == "xml" {
				return true
			}
		}
		return false
	}
	failure := func() bool {
		_, _, err := dmarcrpt.ParseFailure(raw, dmarcrpt.FailureOptions{MaxSize: int64(len(raw)) + 1})
		return err == nil
	}
	// The kind the address is for first: the check only decides whether
	// the message is taken; the processor decides what it holds.
	checks := []struct {
		kind string
		ok   func() bool
	}{{store.KindDMARC, dmarc}, {store.KindDMARCFailure, failure}, {store.KindTLSRPT, tls}}
	if hint == store.KindTLSRPT {
		checks[0], checks[2] = checks[2], checks[0]
	}
	for _, c := range checks {
		if c.ok() {
			return c.kind
		}
	}
	return ""
}

// commitSpool keeps the spooled messages of a batch in one transaction.
func (ing *Ingester) commitSpool(ctx context.Context, batch []*pending) {
	items := make([]*store.SpoolItem, len(batch))
	for i, p := range batch {
		items[i] = p.spool
	}
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), ing.opts.CommitTimeout)
	defer cancel()
	start := time.Now()
	err := ing.opts.Spool.SpoolPut(cctx, items)
	if ing.opts.OnCommit != nil {
		ing.opts.OnCommit(time.Since(start), len(items), err)
	}
	if err != nil {
		err = fmt.Errorf("%w: spool %d messages: %w", ErrStore, len(items), err)
		ing.failures.Add(int64(len(items)))
		ing.log.Error("report mail not spooled", "source", items[0].Source, "messages", len(items), "err", err)
	} else {
		ing.batches.Add(1)
	}
	for _, p := range batch {
		p.done <- outcome{err: err}
	}
}

// SpoolDone is the number of spooled messages whose reports this process
// stored.
func (ing *Ingester) SpoolDone() int64 { return ing.spool.done.Load() }

// SpoolFailed is the number of spooled messages this process marked
// failed for good.
func (ing *Ingester) SpoolFailed() int64 { return ing.spool.failed.Load() }

// SpoolQueued is the number of messages waiting in the spool, as last
// counted (plus those spooled here since).
func (ing *Ingester) SpoolQueued() int64 { return ing.spool.queued.Load() }

// RunSpool stores the reports of spooled messages until ctx ends, then
// gives back the messages it holds and returns. It runs beside Run (it
// submits to it) on every instance that takes reports; with no
// IngestOpts.Spool it only waits for ctx to end.
func (ing *Ingester) RunSpool(ctx context.Context) error {
	sp := ing.opts.Spool
	if sp == nil {
		<-ctx.Done()
		return nil
	}
	o := ing.spoolOpts
	poll := time.NewTicker(o.Poll)
	defer poll.Stop()
	for {
		// SpoolOldest reads the first rows only: cheap enough for every
		// turn of a burst.
		oldest, queued, err := sp.SpoolOldest(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			ing.log.Warn("spool: looking for queued messages", "err", err)
		}
		// While mail arrives, wait for a pause unless the oldest message
		// has waited long enough.
		if queued {
			since := time.Since(time.Unix(0, ing.spool.lastPut.Load()))
			waited := time.Since(oldest)
			if since < o.Quiet && waited < o.MaxDelay {
				if !sleep(ctx, min(o.Quiet-since, o.MaxDelay-waited)) {
					return nil
				}
				continue
			}
		}
		n := 0
		if queued {
			n = ing.processSpool(ctx, sp, o)
		}
		if ctx.Err() != nil {
			return nil
		}
		if n > 0 {
			continue // more may wait
		}
		// Idle: count the spool exactly (it reads the whole table), for
		// SpoolMail's limit and the metrics; in between, the count follows
		// this process's puts and deletions.
		if err == nil {
			if st, err := sp.SpoolStats(ctx); err == nil {
				ing.spool.queued.Store(st.Queued)
			} else if ctx.Err() == nil {
				ing.log.Warn("spool: counting the queued messages", "err", err)
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case <-ing.spool.wake:
		case <-poll.C:
		}
	}
}

// processSpool claims one batch and stores its reports; it returns the
// number of messages claimed.
func (ing *Ingester) processSpool(ctx context.Context, sp store.Spool, o SpoolOpts) int {
	items, err := sp.SpoolClaim(ctx, o.Batch, o.Lease)
	if err != nil {
		if ctx.Err() == nil {
			ing.log.Warn("spool: claiming messages", "err", err)
			sleep(ctx, time.Second)
		}
		return 0
	}
	var (
		mu   sync.Mutex
		done []int64
		wg   sync.WaitGroup
		sem  = make(chan struct{}, o.Workers)
	)
	for _, it := range items {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			if ing.processItem(ctx, sp, it) {
				mu.Lock()
				done = append(done, it.ID)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	// The reports are committed: the messages go, even when ctx has
	// ended meanwhile. Should this fail, they are processed again once
	// their claim runs out, and store nothing twice.
	dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), ing.opts.CommitTimeout)
	defer cancel()
	if err := sp.SpoolDone(dctx, done); err != nil {
		ing.log.Warn("spool: deleting processed messages", "messages", len(done), "err", err)
	} else {
		ing.spool.done.Add(int64(len(done)))
		ing.spool.queued.Add(-int64(len(done)))
	}
	return len(items)
}

// processItem stores the reports of one spooled message; true when they
// are committed. A message that holds no report (which SpoolMail's check
// makes unlikely) is marked failed for good; a store failure gives the
// message back for a later attempt.
func (ing *Ingester) processItem(ctx context.Context, sp store.Spool, it *store.SpoolItem) (ok bool) {
	log := ing.log.With("spool_id", it.ID, "detail", it.Detail, "attempt", it.Attempts)
	fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), ing.opts.CommitTimeout)
	defer cancel()
	defer func() {
		if v := recover(); v != nil {
			reason := fmt.Sprintf("processing panicked: %v", v)
			log.Error("spool: message failed", "err", reason)
			if err := sp.SpoolFail(fctx, it.ID, reason); err != nil {
				log.Warn("spool: marking the message failed", "err", err)
			}
			ing.spool.failed.Add(1)
			ok = false
		}
	}()
	detail := it.Detail
	if it.Source == SourceSMTP && !strings.Contains(detail, " message-id=") {
		detail = withMessageID(detail, it.Data) // left out of the SMTP dialogue
	}
	sub := Submission{Source: it.Source, SourceDetail: detail, DKIM: it.DKIM, ReceivedAt: it.ReceivedAt}
	results, err := ing.SubmitMail(ctx, sub, it.Data, MailOpts{Hint: it.Hint})
	switch {
	case err == nil:
		for _, r := range results {
			log.Debug("spool: report stored", "kind", r.Kind, "id", r.ID, "duplicate", r.Duplicate, "status", r.Status)
		}
		return true
	case errors.Is(err, ErrNotReport), errors.Is(err, ErrTooLarge):
		log.Error("spool: message failed for good; it is kept", "err", err)
		if ferr := sp.SpoolFail(fctx, it.ID, err.Error()); ferr != nil {
			log.Warn("spool: marking the message failed", "err", ferr)
		}
		ing.spool.failed.Add(1)
		ing.spool.queued.Add(-1)
		return false
	}
	// Temporary: try again later, sooner when only the process stopped.
	retry := time.Now()
	if ctx.Err() == nil {
		retry = retry.Add(min(time.Duration(1<<min(it.Attempts, 10))*time.Second, 10*time.Minute))
		log.Warn("spool: reports not stored; retrying later", "err", err, "retry_at", retry)
	}
	if rerr := sp.SpoolRetry(fctx, it.ID, retry, err.Error()); rerr != nil {
		log.Warn("spool: giving the message back", "err", rerr)
	}
	return false
}

// sleep waits d or until ctx ends; false when ctx ended.
func sleep(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
