package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"

	"github.com/moatmail/moat/internal/imapintake"
	"github.com/moatmail/moat/internal/intake"
)

// splitMailboxes separates the IMAP mailbox URLs of `moat import` from
// the file paths.
func splitMailboxes(args []string) (paths, mailboxes []string) {
	for _, a := range args {
		if strings.HasPrefix(a, "imap://") || strings.HasPrefix(a, "imaps://") {
			mailboxes = append(mailboxes, a)
		} else {
			paths = append(paths, a)
		}
	}
	return paths, mailboxes
}

// mailboxStats is what the import of one mailbox did.
type mailboxStats struct {
	mailbox string // the URL without password
	st      imapintake.Stats
	err     error
}

// importMailboxes empties each mailbox once (imapintake.ImportOnce). It
// goes on after a mailbox that failed and returns the failures together.
func importMailboxes(ctx context.Context, log *slog.Logger, ing *intake.Ingester, urls []string, opts imapintake.Opts) ([]mailboxStats, error) {
	sink := intake.NewMailSink(ing, intake.SourceIMAP)
	var out []mailboxStats
	var errs []error
	for _, raw := range urls {
		mb, err := imapintake.ParseURL(raw)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		password := mb.Password
		if password == "" {
			password = os.Getenv("MOAT_IMAP_PASSWORD")
		}
		if password == "" {
			errs = append(errs, fmt.Errorf("%s: no password: give it in the URL or in MOAT_IMAP_PASSWORD", mb))
			continue
		}
		st, err := imapintake.ImportOnce(ctx, log, mb, password, sink, opts)
		if err != nil {
			err = fmt.Errorf("%s: %w (messages not moved stay in the folder: run the import again)", mb, err)
			errs = append(errs, err)
		}
		out = append(out, mailboxStats{mailbox: mb.String(), st: st, err: err})
	}
	return out, errors.Join(errs...)
}

func printMailboxes(w io.Writer, ms []mailboxStats) {
	for _, m := range ms {
		st := m.st
		fmt.Fprintf(w, "mailbox %s: messages %d, reports stored %d (invalid, kept: %d), duplicates %d, not reports %d, errors %d\n",
			m.mailbox, st.Messages, st.Reports, st.Invalid, st.Duplicates, len(st.NotReports), len(st.Errors))
		for _, p := range st.NotReports {
			fmt.Fprintf(w, "  not a report: uid %d: %s\n", p.UID, p.Reason)
		}
		for _, p := range st.Errors {
			fmt.Fprintf(w, "  error: uid %d: %s\n", p.UID, p.Reason)
		}
	}
}

func mailboxErrors(ms []mailboxStats) int {
	n := 0
	for _, m := range ms {
		n += len(m.st.Errors)
	}
	return n
}

type mailboxJSON struct {
	Mailbox    string      `json:"mailbox"`
	Messages   int         `json:"messages"`
	Reports    int         `json:"reports"`
	Duplicates int         `json:"duplicates"`
	Invalid    int         `json:"invalid"`
	Processed  int         `json:"processed"`
	Failed     int         `json:"failed"`
	NotReports []issueJSON `json:"not_reports"`
	Errors     []issueJSON `json:"errors"`
	Error      string      `json:"error,omitempty"`
}

func mailboxViews(ms []mailboxStats) []mailboxJSON {
	var out []mailboxJSON
	for _, m := range ms {
		v := mailboxJSON{Mailbox: m.mailbox, Messages: m.st.Messages, Reports: m.st.Reports, Duplicates: m.st.Duplicates,
			Invalid: m.st.Invalid, Processed: m.st.Processed, Failed: m.st.Failed,
			NotReports: uidIssues(m.st.NotReports), Errors: uidIssues(m.st.Errors)}
		if m.err != nil {
			v.Error = m.err.Error()
		}
		out = append(out, v)
	}
	return out
}

func uidIssues(in []imapintake.Issue) []issueJSON {
	out := make([]issueJSON, 0, len(in))
	for _, i := range in {
		out = append(out, issueJSON{Path: fmt.Sprintf("uid %d", i.UID), Reason: i.Reason})
	}
	return out
}
