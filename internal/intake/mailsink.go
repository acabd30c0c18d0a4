package intake

import (
	"context"
	"errors"
	"fmt"

	"github.com/moatmail/moat/internal/store"
)

// SourceIMAP is the Source of reports taken from a mailbox
// (internal/imapintake).
const SourceIMAP = "imap"

// MailOutcome says what became of the reports of one mail message. It is
// final: a mail answered with it needs no second delivery.
type MailOutcome struct {
	Stored     int // reports newly stored, invalid ones and conflicts included
	Invalid    int // of Stored: kept, but they could not be parsed
	Conflicts  int // of Stored: DMARC reports kept aside, another one holding their identity
	Duplicates int // reports stored before; nothing new stored for them
	// NotReport, when not empty, says why the mail holds no report (a
	// bounce, spam); nothing was stored.
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

// MailSink stores the TLS-RPT and DMARC (aggregate and failure) reports of
// whole mail messages, for a mailbox poller. Unlike the SMTP intake, which
// stores the one report a message should carry, it stores every distinct
// report a message holds: a mailbox also holds mail that a person
// forwarded or collected, several reports to one message. The reports are
// found as by the SMTP intake (Ingester.SubmitMail). Its methods are safe
// for concurrent use.
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
	if int64(len(raw)) > max(s.ing.MaxDecompressed(), 32<<20) {
		return MailOutcome{TooLarge: fmt.Sprintf("message of %d bytes exceeds %d bytes", len(raw), max(s.ing.MaxDecompressed(), 32<<20))}, nil
	}
	results, err := s.ing.SubmitMail(ctx, Submission{Source: s.source, SourceDetail: withMessageID(detail, raw)}, raw, MailOpts{All: true})
	switch {
	case errors.Is(err, ErrNotReport):
		return MailOutcome{NotReport: reason(err, ErrNotReport)}, nil
	case errors.Is(err, ErrTooLarge):
		return MailOutcome{TooLarge: err.Error()}, nil
	case err != nil:
		return MailOutcome{}, err
	}
	var o MailOutcome
	for _, r := range results {
		switch {
		case r.Duplicate:
			o.Duplicates++
		case r.ConflictOf != 0:
			o.Stored++
			o.Conflicts++
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
