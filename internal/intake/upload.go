package intake

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/moatmail/moat/internal/store"
)

// SourceAPI is the Source of reports uploaded through the API.
const SourceAPI = "api"

// FileItem is what became of one report, or one message without a report,
// of an uploaded file (SubmitFile).
type FileItem struct {
	// Message is the position of the message in an mbox, from 1; 0 for a
	// single report file or mail.
	Message int
	// Result is set for a report stored (or found stored before).
	Result *Result
	// NotReport, when Result is nil, says why the message holds no report;
	// nothing was stored for it.
	NotReport string
}

// FileOpts tunes SubmitFile.
type FileOpts struct {
	// Allow, when set, is asked about every report found, by kind
	// (store.KindTLSRPT, KindDMARC, KindDMARCFailure) and domain (each
	// policy domain of a TLS report; the policy or reported domain of a
	// DMARC report; "" when the report is unreadable), before anything is
	// stored. An error refuses the whole file: nothing is stored, and
	// SubmitFile returns the error as is.
	Allow func(kind, domain string) error
	// MaxMessageBytes bounds one message of an mbox. Zero means no bound
	// but the size of the data.
	MaxMessageBytes int64
}

// SubmitFile stores the reports of one file as uploaded: a report file
// (TLS-RPT JSON, DMARC XML, gzip or zip of them), one mail message (as
// SubmitMail with every distinct report), or an mbox of messages. It
// returns once every report found is committed, one item per report and
// per message without one, in file order. sub gives Source, SourceDetail
// and MediaType; its Data is the file. Errors: ErrNotReport when the file
// holds no report at all, ErrTooLarge, Allow's error (nothing stored),
// and those of Submit (some reports may be committed before the error).
func (ing *Ingester) SubmitFile(ctx context.Context, sub Submission, opts FileOpts) ([]FileItem, error) {
	type planned struct {
		msg  int
		plan *mailPlan
		why  string
	}
	var plans []planned
	found := 0
	switch data := sub.Data; {
	case bytes.HasPrefix(data, []byte("From ")):
		msgs, err := splitMbox(data, opts.MaxMessageBytes)
		if err != nil {
			return nil, err
		}
		for i, raw := range msgs {
			base := sub
			base.SourceDetail = fmt.Sprintf("%s#%d", sub.SourceDetail, i+1)
			base.MediaType = ""
			p, err := ing.planMail(base, raw, MailOpts{All: true})
			switch {
			case errors.Is(err, ErrNotReport):
				plans = append(plans, planned{msg: i + 1, why: reason(err, ErrNotReport)})
				continue
			case err != nil:
				return nil, fmt.Errorf("message %d: %w", i+1, err)
			}
			plans = append(plans, planned{msg: i + 1, plan: p})
			found++
		}
	case compressed(data) == "" && describe(data) != "JSON" && peek(data) != "xml" && looksLikeMessage(data):
		base := sub
		base.MediaType = ""
		p, err := ing.planMail(base, data, MailOpts{All: true})
		if err != nil {
			return nil, err
		}
		plans = append(plans, planned{plan: p})
		found++
	case fileKind("", data) == store.KindDMARC:
		rep, err := ing.dmarcOfData(sub)
		if err != nil {
			return nil, err
		}
		plans = append(plans, planned{plan: &mailPlan{dmarc: []*store.DMARCReport{rep}}})
		found++
	default:
		if ok, why := ing.looksLikeReport(data); !ok {
			return nil, fmt.Errorf("%w: %s", ErrNotReport, why)
		}
		rep, err := ing.prepare(sub)
		if err != nil {
			return nil, err
		}
		plans = append(plans, planned{plan: &mailPlan{tls: []*store.TLSRPTReport{rep}}})
		found++
	}
	if found == 0 {
		var whys []string
		for _, p := range plans {
			whys = append(whys, fmt.Sprintf("message %d: %s", p.msg, p.why))
		}
		return nil, fmt.Errorf("%w: %s", ErrNotReport, strings.Join(whys, "; "))
	}
	if opts.Allow != nil {
		for _, p := range plans {
			if p.plan == nil {
				continue
			}
			if err := p.plan.allow(opts.Allow); err != nil {
				return nil, err
			}
		}
	}
	var items []FileItem
	for _, p := range plans {
		if p.plan == nil {
			items = append(items, FileItem{Message: p.msg, NotReport: p.why})
			continue
		}
		res, err := ing.storePlan(ctx, p.plan)
		if err != nil {
			return items, err
		}
		for i := range res {
			items = append(items, FileItem{Message: p.msg, Result: &res[i]})
		}
	}
	return items, nil
}

// allow asks fn about every report of p.
func (p *mailPlan) allow(fn func(kind, domain string) error) error {
	for _, r := range p.tls {
		if len(r.Domains) == 0 {
			if err := fn(store.KindTLSRPT, ""); err != nil {
				return err
			}
		}
		for _, d := range r.Domains {
			if err := fn(store.KindTLSRPT, d); err != nil {
				return err
			}
		}
	}
	for _, r := range p.dmarc {
		if err := fn(store.KindDMARC, r.Domain); err != nil {
			return err
		}
	}
	if p.failure != nil {
		return fn(store.KindDMARCFailure, p.failure.Domain)
	}
	return nil
}

// splitMbox splits an mbox held in memory into its messages, as Import
// reads mbox files. A message larger than limit (when not zero) is an
// ErrTooLarge.
func splitMbox(data []byte, limit int64) ([][]byte, error) {
	if limit <= 0 {
		limit = int64(len(data)) + 1
	}
	im := &importer{opts: ImportOpts{MaxFileBytes: limit}.withDefaults(), stats: ImportStats{Kinds: map[string]int{}}}
	jobs := make(chan job)
	done := make(chan error, 1)
	go func() {
		done <- im.mbox(context.Background(), "", bufio.NewReader(bytes.NewReader(data)), jobs)
		close(jobs)
	}()
	var msgs [][]byte
	for j := range jobs {
		msgs = append(msgs, j.data)
	}
	if err := <-done; err != nil {
		return nil, fmt.Errorf("%w: reading the mbox: %w", ErrNotReport, err)
	}
	if len(im.stats.Errors) > 0 {
		return nil, fmt.Errorf("%w: message %s: %s", ErrTooLarge, strings.TrimPrefix(im.stats.Errors[0].Path, "#"), im.stats.Errors[0].Reason)
	}
	return msgs, nil
}
