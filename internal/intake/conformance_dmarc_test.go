package intake

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corpuslist "github.com/moatmail/moat/internal/corpora"
	"github.com/moatmail/moat/internal/store"
)

// TestDMARCCorpora imports every DMARC aggregate and failure file of the
// corpora (moat import, one SQLite store): each file that must parse is
// stored with the records and message sum corpora.DMARC gives; each that
// must be refused is kept as invalid with the reason, or listed as no
// report; the rollups count every distinct report once.
func TestDMARCCorpora(t *testing.T) {
	t.Parallel()
	dir, err := corpuslist.Dir()
	if err != nil {
		t.Skipf("SKIP: %v", err)
	}
	files := corpuslist.DMARC()
	var paths []string
	for _, f := range files {
		paths = append(paths, f.File(dir))
	}
	st := openStore(t)
	ing := startIngester(t, st, nil, IngestOpts{})
	stats, err := Import(context.Background(), ing, paths, ImportOpts{})
	if err != nil {
		t.Fatal(err)
	}
	if len(stats.Errors) != 0 {
		t.Errorf("errors: %+v", stats.Errors)
	}
	stored := map[string]ImportedReport{}
	for _, r := range stats.Stored {
		stored[r.Path] = r
	}
	notReport := map[string]string{}
	for _, is := range stats.NotReports {
		notReport[is.Path] = is.Reason
	}
	counted := map[int64]int64{} // stored report: its messages
	for _, f := range files {
		p := f.File(dir)
		r, ok := stored[p]
		if !ok { // a file in mbox form: its first message
			r, ok = stored[p+"#1"]
		}
		switch {
		case f.Parses() && f.Kind == corpuslist.Failure:
			if !ok || r.Kind != store.KindDMARCFailure || (r.Outcome != OutcomeStored && r.Outcome != OutcomeDuplicate) {
				t.Errorf("%s: %+v (not a report: %q), want a failure report stored", f.Path, r, notReport[p])
			}
		case f.Parses():
			// A report of the same organization, report id and period
			// as another file's, with other records (parsedmarc's samples
			// have such), is kept aside and not counted.
			if !ok || r.Kind != store.KindDMARC || r.Records != f.Records || r.Messages != f.Messages ||
				(r.Outcome != OutcomeStored && r.Outcome != OutcomeDuplicate && r.Outcome != OutcomeConflict) {
				t.Errorf("%s: %+v (not a report: %q), want an aggregate report of %d records, %d messages", f.Path, r, notReport[p], f.Records, f.Messages)
				continue
			}
			if r.Outcome != OutcomeConflict {
				counted[r.ID] = r.Messages
			}
		case ok:
			if r.Outcome != OutcomeInvalid || !strings.Contains(r.Error, f.Refused) {
				t.Errorf("%s: %+v, want kept as invalid naming %q", f.Path, r, f.Refused)
			}
		default:
			if why := notReport[p] + notReport[p+"#1"]; !strings.Contains(why, f.Refused) {
				t.Errorf("%s: not stored, and listed as no report with %q, want the reason %q", f.Path, why, f.Refused)
			} else {
				t.Logf("%s: not a report: %s", filepath.Base(p), why)
			}
		}
	}
	var want int64
	for _, m := range counted {
		want += m
	}
	rows, err := st.DMARCRollups(context.Background(), store.DMARCRollupQuery{Since: time.Unix(0, 0).UTC()})
	if err != nil {
		t.Fatal(err)
	}
	var got int64
	for _, r := range rows {
		got += r.Messages
	}
	if got != want {
		t.Errorf("rollups count %d messages, the distinct reports %d", got, want)
	}
	t.Logf("%d files: %d reports stored (%d invalid), %d duplicates, %d not reports; %d messages in the rollups",
		len(files), stats.Reports, stats.Invalid, stats.Duplicates, len(stats.NotReports), got)
}
