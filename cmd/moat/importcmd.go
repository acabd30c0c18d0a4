package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/moatmail/moat/internal/config"
	"github.com/moatmail/moat/internal/imapintake"
	"github.com/moatmail/moat/internal/intake"
	"github.com/moatmail/moat/internal/store"
)

func newImportCmd(g *globals) *cobra.Command {
	var (
		asJSON   bool
		progress string
		workers  int
		mbOpts   imapintake.Opts
	)
	cmd := &cobra.Command{
		Use:   "import PATH|MAILBOX...",
		Short: "Import TLS-RPT and DMARC reports from files (.json, .xml, .gz, .zip, .eml, mbox, Maildir, directories) or IMAP mailboxes",
		Long: `Import TLS-RPT reports and DMARC aggregate and failure reports from files.
Each PATH may be a report (.json, .json.gz, .xml, .xml.gz, .gz, .zip), a mail
message (.eml), an mbox file, a Maildir folder or a directory (read
recursively); the kind is recognized by content. Reports are stored as if they
had arrived by HTTPS or SMTP (TLS reports deduplicated by organization and
report id; DMARC reports by organization, report id and period, a different
report under the same identity kept aside as a conflict); a report that cannot
be parsed is kept and marked; a file or mail that holds no report is listed
with the reason and not stored. Each report found is listed with what became of
it (stored, invalid, conflict, duplicate). Exit code 1 when a file could not be
read.

A MAILBOX is an IMAP folder, imaps://USER@HOST[:PORT]/FOLDER or
imap://USER@HOST[:PORT]/FOLDER?starttls=1 (password in the URL or
MOAT_IMAP_PASSWORD): every message in it is read once, its reports stored, and
the message moved to --processed-folder once they are committed, or to
--failed-folder when it holds no report or is too large (exit code 1 then).`,
		Args: nArgs(1, -1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if workers < 1 || workers > 256 {
				return fmt.Errorf("--workers %d: want 1 to 256", workers)
			}
			s, err := g.open(cmd)
			if err != nil {
				return err
			}
			defer s.close()
			ctx := cmd.Context()
			hosted, err := hostedSet(ctx, s.st)
			if err != nil {
				return err
			}
			ing := intake.NewIngester(s.log, s.st, hosted, intake.IngestOpts{MaxDecompressed: s.cfg.Intake.MaxReportJSON,
				MaxDMARCXML: s.cfg.Intake.MaxDMARCXML})
			runCtx, stop := context.WithCancel(context.WithoutCancel(ctx))
			var wg sync.WaitGroup
			wg.Go(func() { _ = ing.Run(runCtx) })
			defer func() { stop(); wg.Wait() }()

			showProgress := progress == "always" || (progress == "auto" && isTerminal(g.stderr))
			opts := intake.ImportOpts{Workers: workers}
			if showProgress {
				start := time.Now()
				opts.Progress = func(p intake.ImportProgress) {
					total := "?"
					if p.FilesTotal > 0 {
						total = fmt.Sprint(p.FilesTotal)
					}
					line := fmt.Sprintf("\rimport: %d/%s files, %d messages, %d reports, %s", p.FilesDone, total, p.Messages, p.Reports, time.Since(start).Round(time.Second))
					if p.Done {
						line += "\n"
					}
					fmt.Fprintf(g.stderr, "%-78s", line)
				}
			} else if progress != "never" && progress != "auto" && progress != "always" {
				return fmt.Errorf("--progress %q: want auto, always or never", progress)
			}
			paths, mailboxes := splitMailboxes(args)
			var st intake.ImportStats
			if len(paths) > 0 {
				if st, err = intake.Import(ctx, ing, paths, opts); err != nil {
					return err
				}
			}
			mbOpts.MaxMessageBytes = 2 * s.cfg.Intake.MaxReportSize
			mst, merr := importMailboxes(ctx, s.log, ing, mailboxes, mbOpts)
			if asJSON {
				v := importView(st)
				v.Mailboxes = mailboxViews(mst)
				if err := printJSON(g.stdout, v); err != nil {
					return err
				}
			} else {
				if len(paths) > 0 {
					fmt.Fprintf(g.stdout, "files %d, messages %d, reports stored %d (invalid, kept: %d; conflicts, kept aside: %d), duplicates %d, not reports %d, errors %d\n",
						st.Files, st.Messages, st.Reports, st.Invalid, st.Conflicts, st.Duplicates, len(st.NotReports), len(st.Errors))
					for _, r := range st.Stored {
						fmt.Fprintf(g.stdout, "  %s: %s\n", r.Path, importedLine(r))
					}
					for _, p := range st.NotReports {
						fmt.Fprintf(g.stdout, "  not a report: %s: %s\n", p.Path, p.Reason)
					}
					for _, p := range st.Errors {
						fmt.Fprintf(g.stdout, "  error: %s: %s\n", p.Path, p.Reason)
					}
				}
				printMailboxes(g.stdout, mst)
			}
			if merr != nil {
				return merr
			}
			if n := len(st.Errors) + mailboxErrors(mst); n > 0 {
				return &exitErr{code: exitError, err: fmt.Errorf("%d input(s) could not be read", n)}
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	cmd.Flags().IntVar(&workers, "workers", 16, "reports submitted at once; with 1, of two reports with one identity (organization, report id, period) the first in walk order is stored and the later one kept aside")
	cmd.Flags().StringVar(&progress, "progress", "auto", "progress line on stderr: auto (when a terminal), always or never")
	cmd.Flags().StringVar(&mbOpts.CAFile, "imap-ca-file", "", "PEM roots trusted for IMAP servers besides the system's")
	cmd.Flags().StringVar(&mbOpts.ProcessedFolder, "processed-folder", config.DefaultIMAPProcessed, "IMAP folder each message goes to once its reports are stored")
	cmd.Flags().StringVar(&mbOpts.FailedFolder, "failed-folder", config.DefaultIMAPFailed, "IMAP folder each message without a report goes to")
	return cmd
}

type importJSON struct {
	Files      int            `json:"files"`
	Messages   int            `json:"messages"`
	Reports    int            `json:"reports"`
	Duplicates int            `json:"duplicates"`
	Invalid    int            `json:"invalid"`
	Conflicts  int            `json:"conflicts"`
	Kinds      map[string]int `json:"kinds"`
	// Stored lists every report found, with what became of it.
	Stored     []importedJSON `json:"stored"`
	NotReports []issueJSON    `json:"not_reports"`
	Errors     []issueJSON    `json:"errors"`
	// Mailboxes are the IMAP folders imported, when any.
	Mailboxes []mailboxJSON `json:"mailboxes,omitempty"`
}

type issueJSON struct {
	Path   string `json:"path"`
	Reason string `json:"reason"`
}

func issues(in []intake.ImportIssue) []issueJSON {
	out := make([]issueJSON, 0, len(in))
	for _, i := range in {
		out = append(out, issueJSON{Path: i.Path, Reason: i.Reason})
	}
	return out
}

// importedJSON is one report of an import.
type importedJSON struct {
	Path       string `json:"path"`
	Kind       string `json:"kind"`
	ID         int64  `json:"id"`
	Outcome    string `json:"outcome"`
	ConflictOf int64  `json:"conflict_of,omitempty"`
	Error      string `json:"error,omitempty"`
	Org        string `json:"org,omitempty"`
	ReportID   string `json:"report_id,omitempty"`
	Domain     string `json:"domain,omitempty"`
	Records    int64  `json:"records,omitempty"`
	Messages   int64  `json:"messages,omitempty"`
}

func importView(st intake.ImportStats) importJSON {
	v := importJSON{Files: st.Files, Messages: st.Messages, Reports: st.Reports, Duplicates: st.Duplicates, Invalid: st.Invalid,
		Conflicts: st.Conflicts, Kinds: st.Kinds, Stored: make([]importedJSON, 0, len(st.Stored)),
		NotReports: issues(st.NotReports), Errors: issues(st.Errors)}
	if v.Kinds == nil {
		v.Kinds = map[string]int{}
	}
	for _, r := range st.Stored {
		v.Stored = append(v.Stored, importedJSON{Path: r.Path, Kind: r.Kind, ID: r.ID, Outcome: r.Outcome, ConflictOf: r.ConflictOf,
			Error: r.Error, Org: r.Org, ReportID: r.ReportID, Domain: r.Domain, Records: r.Records, Messages: r.Messages})
	}
	return v
}

// importedLine says what became of one imported report.
func importedLine(r intake.ImportedReport) string {
	what := map[string]string{store.KindTLSRPT: "TLS report", store.KindDMARC: "DMARC aggregate report",
		store.KindDMARCFailure: "DMARC failure report"}[r.Kind]
	var parts []string
	if r.Org != "" {
		parts = append(parts, r.Org)
	}
	if r.ReportID != "" {
		parts = append(parts, "report id "+r.ReportID)
	}
	if r.Domain != "" {
		parts = append(parts, "about "+r.Domain)
	}
	who := strings.Join(parts, " ")
	if r.Kind == store.KindDMARC && r.Outcome != intake.OutcomeInvalid {
		who += fmt.Sprintf(", %d records, %d messages", r.Records, r.Messages)
	}
	who = strings.TrimPrefix(who, ", ")
	switch r.Outcome {
	case intake.OutcomeDuplicate:
		return fmt.Sprintf("%s already stored as %d (%s)", what, r.ID, who)
	case intake.OutcomeConflict:
		return fmt.Sprintf("%s kept aside as %d: %d has its organization, report id and period with another content (%s)", what, r.ID, r.ConflictOf, who)
	case intake.OutcomeInvalid:
		return fmt.Sprintf("invalid %s kept as %d: %s", what, r.ID, r.Error)
	}
	return fmt.Sprintf("%s stored as %d (%s)", what, r.ID, who)
}

// hostedSet returns a lookup of the hosted domains, read once.
func hostedSet(ctx context.Context, st store.Store) (func(string) bool, error) {
	ds, err := st.Domains(ctx)
	if err != nil {
		return nil, err
	}
	set := make(map[string]bool, len(ds))
	for _, d := range ds {
		set[d.Name] = true
	}
	return func(name string) bool { return set[name] }, nil
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}
