package intake

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"

	"github.com/moatmail/moat/internal/dmarcrpt"
	"github.com/moatmail/moat/internal/mailmime"
	"github.com/moatmail/moat/internal/store"
	"github.com/moatmail/moat/internal/tlsrpt"
	"github.com/moatmail/moat/internal/unpack"
)

// Report mail of every kind: a message is a TLS-RPT report (RFC 8460
// §5.3), a DMARC aggregate report (RFC 7489 §7.2.1.1, RFC 9990 §3.5.2) or
// a DMARC failure report (RFC 6591), recognized by its content whatever
// address it came to.

// MailOpts tunes SubmitMail.
type MailOpts struct {
	// All stores every distinct report the message holds (mailbox intake:
	// forwarded collections); false stores the most likely one, as RFC
	// 8460 §5.3 and RFC 7489 §7.2.1.1 put one report in a message.
	All bool
	// Hint is the kind the message was addressed to (store.KindTLSRPT
	// for a TLS-RPT address, store.KindDMARC for a DMARC one), or "". It
	// decides the kind of a damaged report the message does not tell,
	// and which reasons a refusal gives first.
	Hint string
}

// SubmitMail stores the reports of raw, one whole mail message (an mbox
// "From " line before it is skipped), and returns once they are
// committed, at least one result. sub gives Source, SourceDetail and
// DKIM; its Data is ignored.
//
// It tries, in this order: a DMARC failure report (an RFC 5965 feedback
// report of type auth-failure), DMARC aggregate reports (parts that are
// XML, gzip or zip holding XML), TLS-RPT reports (parts holding JSON);
// with the Hint of a TLS-RPT address (and not All), a valid TLS-RPT
// report first.
// A damaged report (data that does not decompress, a <feedback> that
// breaks off) is stored as invalid: of the kind the message names
// (TLS-Report-Domain) or the Hint, else as DMARC. Errors: ErrNotReport
// with the reasons of each kind when the message holds none (nothing is
// stored), ErrTooLarge, and those of Submit; with several reports some
// may be committed before an error.
func (ing *Ingester) SubmitMail(ctx context.Context, sub Submission, raw []byte, opts MailOpts) ([]Result, error) {
	p, err := ing.planMail(sub, raw, opts)
	if err != nil {
		return nil, err
	}
	return ing.storePlan(ctx, p)
}

// withMessageID adds the Message-ID of the message raw to detail.
func withMessageID(detail string, raw []byte) string {
	if id := messageID(raw); id != "" {
		return detail + " message-id=" + id
	}
	return detail
}

// messageID returns the Message-ID of a message, without brackets.
func messageID(raw []byte) string {
	if bytes.HasPrefix(raw, []byte("From ")) {
		if i := bytes.IndexByte(raw, '\n'); i >= 0 {
			raw = raw[i+1:]
		}
	}
	h, _, err := mailmime.ReadHeader(raw)
	if err != nil {
		return ""
	}
	return strings.Trim(strings.TrimSpace(h.Get("Message-Id")), "<>")
}

// mailPlan is what to store of a message: reports of one kind.
type mailPlan struct {
	tls     []*store.TLSRPTReport
	dmarc   []*store.DMARCReport
	failure *store.DMARCFailure
}

// planMail finds the reports of a message (see SubmitMail).
func (ing *Ingester) planMail(base Submission, raw []byte, opts MailOpts) (*mailPlan, error) {
	// Mail to a TLS-RPT address is a TLS report nearly always: when a part
	// holds a valid one it is stored without the failure-report and DMARC
	// walks of the message (two MIME walks and a gunzip less a message).
	var t *tlsFound
	if opts.Hint == store.KindTLSRPT && !opts.All {
		if t = ing.tlsFromMail(base, raw, false); len(t.valid) > 0 {
			return &mailPlan{tls: t.valid}, nil
		}
	}
	frep, fwarns, ferr := dmarcrpt.ParseFailure(raw, dmarcrpt.FailureOptions{MaxSize: int64(len(raw)) + 1})
	if ferr == nil {
		return &mailPlan{failure: ing.failureRow(base, raw, frep, fwarns)}, nil
	}
	var tooLarge error

	// DMARC aggregate reports: the parts dmarcrpt.Extract finds, but
	// those holding JSON (a TLS report gzipped as application/gzip).
	var (
		dvalid    []*store.DMARCReport
		dfallback *store.DMARCReport
		dreasons  []string
		seen      = map[string]bool{}
	)
	din, derr := dmarcrpt.Extract(raw, ing.extractOpts(raw))
	switch {
	case derr == nil:
		for _, src := range din.Sources {
			if ing.peek(src.Data) == "json" {
				continue
			}
			rep, err := ing.prepareDMARC(base, dmarcSource{src: src, warnings: din.Warnings})
			switch {
			case errors.Is(err, ErrTooLarge):
				tooLarge = cmpErr(tooLarge, err)
			case err != nil:
				dreasons = append(dreasons, fmt.Sprintf("part %s %s", src.Part, err))
			case rep.Status == store.ReportInvalid:
				if dfallback == nil {
					dfallback = rep
				}
			case !seen[dmarcKey(rep)]:
				seen[dmarcKey(rep)] = true
				dvalid = append(dvalid, rep)
			}
			if len(dvalid) > 0 && !opts.All {
				break
			}
		}
		if len(dvalid) == 0 && len(dreasons) == 0 && dfallback == nil && tooLarge == nil {
			dreasons = append(dreasons, "its report parts hold JSON")
		}
	case errors.Is(derr, dmarcrpt.ErrTooLarge):
		tooLarge = cmpErr(tooLarge, fmt.Errorf("%w: %w", ErrTooLarge, derr))
	default:
		dreasons = append(dreasons, reason(derr, dmarcrpt.ErrNoReport))
	}
	if len(dvalid) > 0 {
		return &mailPlan{dmarc: dvalid}, nil
	}

	if t == nil {
		t = ing.tlsFromMail(base, raw, opts.All)
	}
	if t.tooLarge != nil {
		tooLarge = cmpErr(tooLarge, t.tooLarge)
	}
	tvalid, tfallback, treason, tlsNamed := t.valid, t.fallback, t.reason, t.named
	switch {
	case len(tvalid) > 0:
		return &mailPlan{tls: tvalid}, nil
	case tfallback != nil && (dfallback == nil || tlsNamed || opts.Hint == store.KindTLSRPT):
		return &mailPlan{tls: []*store.TLSRPTReport{tfallback}}, nil
	case dfallback != nil:
		return &mailPlan{dmarc: []*store.DMARCReport{dfallback}}, nil
	case tooLarge != nil:
		return nil, tooLarge
	}
	return nil, fmt.Errorf("%w: %s", ErrNotReport, notReportReason(opts.Hint, treason, strings.Join(dreasons, "; "), reason(ferr, dmarcrpt.ErrNotFailureReport)))
}

// tlsFound is what a message holds of TLS reports.
type tlsFound struct {
	valid    []*store.TLSRPTReport // reports that parse
	fallback *store.TLSRPTReport   // else one that does not, kept as invalid
	reason   string                // else why there is none
	named    bool                  // the message names a report domain or submitter (RFC 8460 §5.3)
	tooLarge error
}

// tlsFromMail finds the TLS reports of raw: the parts tlsrpt.ExtractMessage
// finds, but those holding XML (DMARC's); all: every distinct one, else
// the most likely.
func (ing *Ingester) tlsFromMail(base Submission, raw []byte, all bool) *tlsFound {
	t := &tlsFound{}
	msg, err := tlsrpt.ExtractMessage(bytes.NewReader(raw), max(ing.opts.MaxDecompressed, int64(len(raw))))
	switch {
	case err == nil:
	case errors.Is(err, tlsrpt.ErrTooLarge):
		t.tooLarge = fmt.Errorf("%w: %w", ErrTooLarge, err)
		return t
	default:
		t.reason = reason(err, tlsrpt.ErrNoReport)
		return t
	}
	t.named = msg.ReportDomain != "" || msg.ReportSubmitter != ""
	base.ReportSubmitter = msg.ReportSubmitter
	var parts []tlsrpt.Part
	for _, p := range msg.Parts {
		if ing.peek(p.Data) != "xml" {
			parts = append(parts, p)
		}
	}
	reps, err := ing.choose(base, parts, all)
	switch {
	case err == nil && reps[0].Status != store.ReportInvalid:
		t.valid = reps
	case err == nil:
		t.fallback = reps[0]
	case errors.Is(err, ErrTooLarge):
		t.tooLarge = err
	case len(parts) < len(msg.Parts):
		t.reason = "its report parts hold XML"
	default:
		t.reason = reason(err, ErrNotReport)
	}
	return t
}

func cmpErr(a, b error) error {
	if a != nil {
		return a
	}
	return b
}

// dmarcKey identifies a report within a message: two copies of one report
// (gzip and plain) are stored once.
func dmarcKey(r *store.DMARCReport) string {
	return fmt.Sprintf("%q %q %d %d", r.OrgName, r.ReportID, r.StartTime.Unix(), r.EndTime.Unix())
}

// notReportReason says why a message holds no report, the kind it was
// addressed to first.
func notReportReason(hint, tls, dmarc, failure string) string {
	switch hint {
	case store.KindTLSRPT:
		return tls
	case store.KindDMARC, store.KindDMARCFailure:
		return fmt.Sprintf("no DMARC aggregate report (%s), and not a DMARC failure report (%s)", dmarc, failure)
	}
	return fmt.Sprintf("no TLS report (%s); no DMARC aggregate report (%s); not a DMARC failure report (%s)", tls, dmarc, failure)
}

// peek is the package's peek, with a gzip reader from the Ingester's pool
// for a report gzipped once (what almost every report is): opening a new
// one allocates about 40 KB, more than the rest of a small mail's reading.
func (ing *Ingester) peek(data []byte) string {
	if unpack.Sniff(data) == unpack.Gzip {
		if head, ok := ing.gunzipHead(data); ok && unpack.Sniff(head) == "" {
			return peekPlain(head)
		}
	}
	return peek(data)
}

// gunzipHead returns up to the first 512 bytes data decompresses to, and
// false when it gets none (peek says why).
func (ing *Ingester) gunzipHead(data []byte) ([]byte, bool) {
	zr, _ := ing.gunzips.Get().(*gzip.Reader)
	if zr == nil {
		zr = new(gzip.Reader)
	}
	defer ing.gunzips.Put(zr)
	if err := zr.Reset(bytes.NewReader(data)); err != nil {
		return nil, false
	}
	buf := make([]byte, 512)
	n, _ := io.ReadFull(zr, buf) // a short or damaged stream: its first bytes are what is asked
	return buf[:n], n > 0
}

// peek names what data holds once decompressed, by its first bytes:
// "json", "xml", "corrupt" (compressed data that does not open), "empty"
// or "other".
func peek(data []byte) string {
	head := data
	if unpack.Sniff(data) != "" {
		r, err := unpack.Open(data, unpack.Options{MaxSize: 1 << 20})
		if err != nil {
			return "corrupt"
		}
		buf := make([]byte, 512)
		n, err := io.ReadFull(r, buf)
		if n == 0 && err != nil {
			return "corrupt"
		}
		head = buf[:n]
	}
	return peekPlain(head)
}

// peekPlain is peek of the first bytes of uncompressed data.
func peekPlain(head []byte) string {
	t := bytes.TrimLeft(head, " \t\r\n\ufeff") // and a byte order mark
	switch {
	case len(t) == 0:
		return "empty"
	case t[0] == '{':
		return "json"
	case t[0] == '<', bytes.HasPrefix(head, []byte{0xff, 0xfe}), bytes.HasPrefix(head, []byte{0xfe, 0xff}):
		return "xml"
	}
	return "other"
}

// storePlan stores the reports of a plan, submitted together so that
// they share one commit, and returns their results in order.
func (ing *Ingester) storePlan(ctx context.Context, p *mailPlan) ([]Result, error) {
	var fns []func() (Result, error)
	for _, r := range p.tls {
		fns = append(fns, func() (Result, error) { return ing.store(ctx, r) })
	}
	for _, r := range p.dmarc {
		fns = append(fns, func() (Result, error) { return ing.storeDMARC(ctx, r) })
	}
	if p.failure != nil {
		fns = append(fns, func() (Result, error) { return ing.storeFailure(ctx, p.failure) })
	}
	if len(fns) == 1 {
		r, err := fns[0]()
		if err != nil {
			return nil, err
		}
		return []Result{r}, nil
	}
	results := make([]Result, len(fns))
	errs := make([]error, len(fns))
	var wg sync.WaitGroup
	for i, fn := range fns {
		wg.Go(func() { results[i], errs[i] = fn() })
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("intake: %d of %d reports of the message not stored: %w", countErrs(errs), len(fns), err)
	}
	return results, nil
}
