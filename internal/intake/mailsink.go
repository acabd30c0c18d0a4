package intake

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/moatmail/moat/internal/store"
	"github.com/moatmail/moat/internal/tlsrpt"
)

// SourceIMAP is the Source of reports taken from a mailbox
// (internal/imapintake).
const SourceIMAP = "imap"

// MailOutcome says what became of the reports of one mail message. It is
// final: a mail answered with it needs no second delivery.
type MailOutcome struct {
	Stored     int // reports newly stored, invalid ones included
	Invalid    int // of Stored: kept, but they could not be parsed
	Duplicates int // reports stored before; nothing new stored for them
	// NotReport, when not empty, says why the mail holds no TLS report (a
	// DMARC report, a bounce, spam); nothing was stored.
	NotReport string
	// TooLarge, when not empty, says why the mail or its report was
	// refused for its size; nothing was stored.
	TooLarge string
}

// Unstorable is the reason nothing of the mail can be stored, or "" when
// its reports are committed.
func (o MailOutcome) Unstorable() string {
	if o.TooLarge != "" {
		return o.TooLarge
	}
	return o.NotReport
}

// MailSink stores the TLS-RPT reports of whole mail messages, for a
// mailbox poller. Unlike the SMTP intake, which stores the one report
// RFC 8460 §5.3 puts in a message, it stores every distinct report a
// message carries: a mailbox also holds mail that a person forwarded or
// collected, several reports to one message. The parts are found as by the
// SMTP intake (tlsrpt.ExtractMessage, Ingester.SubmitParts's choice). Its
// methods are safe for concurrent use.
type MailSink struct {
	ing    *Ingester
	source string
}

// NewMailSink returns a sink storing through ing with the given Source
// (SourceIMAP).
func NewMailSink(ing *Ingester, source string) *MailSink {
	return &MailSink{ing: ing, source: source}
}

// StoreMail stores every report in raw, one mail message (RFC 5322), and
// returns once all of them are committed. detail says where the message
// came from; its Message-ID is added to it for each report's SourceDetail.
//
// A nil error comes with a final MailOutcome. An error (ErrStore,
// ErrClosed, or ctx's) is temporary: some of the reports may have been
// committed, and a later StoreMail of the same message finds them as
// duplicates.
func (s *MailSink) StoreMail(ctx context.Context, raw []byte, detail string) (MailOutcome, error) {
	msg, err := tlsrpt.ExtractMessage(bytes.NewReader(raw), s.ing.MaxDecompressed())
	switch {
	case errors.Is(err, tlsrpt.ErrTooLarge):
		return MailOutcome{TooLarge: err.Error()}, nil
	case err != nil:
		return MailOutcome{NotReport: reason(err, tlsrpt.ErrNoReport)}, nil
	}
	if msg.MessageID != "" {
		detail += " message-id=" + msg.MessageID
	}
	base := Submission{Source: s.source, SourceDetail: detail, ReportSubmitter: msg.ReportSubmitter}
	reps, err := s.ing.choose(base, msg.Parts, true)
	switch {
	case errors.Is(err, ErrNotReport):
		return MailOutcome{NotReport: reason(err, ErrNotReport)}, nil
	case errors.Is(err, ErrTooLarge):
		return MailOutcome{TooLarge: err.Error()}, nil
	case err != nil:
		return MailOutcome{}, err
	}
	// Submitted together, they share one commit.
	results := make([]Result, len(reps))
	errs := make([]error, len(reps))
	var wg sync.WaitGroup
	for i, rep := range reps {
		wg.Go(func() { results[i], errs[i] = s.ing.store(ctx, rep) })
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return MailOutcome{}, fmt.Errorf("intake: %d of %d reports of the mail not stored: %w", countErrs(errs), len(reps), err)
	}
	var o MailOutcome
	for _, r := range results {
		switch {
		case r.Duplicate:
			o.Duplicates++
		case r.Status == store.ReportInvalid:
			o.Stored++
			o.Invalid++
		default:
			o.Stored++
		}
	}
	return o, nil
}

func countErrs(errs []error) int {
	n := 0
	for _, err := range errs {
		if err != nil {
			n++
		}
	}
	return n
}
