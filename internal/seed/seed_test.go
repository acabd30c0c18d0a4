package seed

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/moatmail/moat/internal/dmarcstats"
	"github.com/moatmail/moat/internal/hosting"
	senderspkg "github.com/moatmail/moat/internal/senders"
	"github.com/moatmail/moat/internal/store"
	"github.com/moatmail/moat/internal/tlsrptstats"
)

func openStore(t *testing.T) store.Store {
	t.Helper()
	st, err := store.Open(context.Background(), slog.New(slog.DiscardHandler), store.Options{DataDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

func TestRun(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	now := time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)
	set := hosting.Settings{Zone: "sts.test", PolicyHost: "mta-sts.sts.test", RUA: []string{"mailto:tlsrpt@reports.sts.test"}}
	run := func(st store.Store) Stats {
		org := &store.Org{Name: "seeded"}
		if err := st.CreateOrg(ctx, org); err != nil {
			if o, err2 := st.OrgByName(ctx, "seeded"); err2 == nil {
				org = o
			} else {
				t.Fatal(err)
			}
		}
		stats, err := Run(ctx, st, set, Options{Org: org.ID, Domains: 12, Days: 30, Now: now, Seed: 7})
		if err != nil {
			t.Fatal(err)
		}
		return stats
	}
	st := openStore(t)
	stats := run(st)
	if stats.Domains != 12 || stats.Reports == 0 || stats.Sessions == 0 || stats.Duplicates != 0 {
		t.Fatalf("stats %+v", stats)
	}
	// The summary from the rollups counts exactly the sessions stored.
	sum, err := tlsrptstats.Summarize(ctx, st, tlsrptstats.Query{})
	if err != nil {
		t.Fatal(err)
	}
	if sum.TotalSuccessful+sum.TotalFailed != stats.Sessions || sum.TotalFailed != stats.Failed {
		t.Errorf("summary %d+%d sessions, seed stored %d (%d failed)", sum.TotalSuccessful, sum.TotalFailed, stats.Sessions, stats.Failed)
	}
	if stats.Failed == 0 {
		t.Error("no failures at all: the demo would show nothing to fix")
	}
	// Reports cover the 30 days before now, none today.
	reps, err := st.TLSRPTReports(ctx, store.ReportFilter{Limit: 1})
	if err != nil || len(reps) != 1 || !reps[0].EndTime.Before(now.Truncate(24*time.Hour)) {
		t.Errorf("newest report %+v, %v", reps, err)
	}
	// A domain that went to enforce has two versions, the first in testing.
	domains, _ := st.Domains(ctx)
	enforced := 0
	for _, d := range domains {
		vs, _ := st.PolicyVersions(ctx, d.Name)
		if d.Mode == "enforce" && len(vs) == 2 {
			enforced++
			if vs[1].Mode != "testing" || !vs[0].CreatedAt.After(vs[1].CreatedAt) {
				t.Errorf("%s versions %+v", d.Name, vs)
			}
		}
	}
	if enforced == 0 {
		t.Error("no domain went from testing to enforce")
	}
	// Again: nothing new, everything a duplicate.
	again := run(st)
	if again.Domains != 0 || again.Existing != 12 || again.Reports != 0 || again.Duplicates != stats.Reports {
		t.Errorf("second run %+v, first %+v", again, stats)
	}
	// The same seed in another database gives the same data.
	if other := run(openStore(t)); other != stats {
		t.Errorf("same seed, other data: %+v vs %+v", other, stats)
	}
}

func TestDomainNamesUnique(t *testing.T) {
	t.Parallel()
	seen := map[string]bool{}
	for i := range 20000 {
		n := DomainName(i)
		if seen[n] {
			t.Fatalf("DomainName(%d) = %s repeats", i, n)
		}
		seen[n] = true
	}
}

// TestRunDMARC: with DMARCDays, every domain gets aggregate reports that parse
// without a warning, the DMARC summary counts exactly the messages
// stored, some of them failing DMARC (the CRM and the spoofers), a second
// run stores nothing twice, and the TLS data is the same as without DMARC.
func TestRunDMARC(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	now := time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)
	set := hosting.Settings{Zone: "sts.test", PolicyHost: "mta-sts.sts.test", RUA: []string{"mailto:tlsrpt@reports.sts.test"}}
	run := func(st store.Store, dmarcDays int) Stats {
		org, err := st.OrgByName(ctx, "seeded")
		if err != nil {
			org = &store.Org{Name: "seeded"}
			if err := st.CreateOrg(ctx, org); err != nil {
				t.Fatal(err)
			}
		}
		stats, err := Run(ctx, st, set, Options{Org: org.ID, Domains: 6, Days: 10, Now: now, Seed: 3, DMARCDays: dmarcDays})
		if err != nil {
			t.Fatal(err)
		}
		return stats
	}
	st := openStore(t)
	stats := run(st, 10)
	if stats.DMARCReports < 6*10 || stats.DMARCMessages == 0 {
		t.Fatalf("stats %+v, want at least a DMARC report per domain and day", stats)
	}
	if n, err := st.CountDMARCReports(ctx, store.DMARCFilter{}); err != nil || n != int64(stats.DMARCReports) {
		t.Errorf("%d DMARC reports in the store (%v), seed says %d", n, err, stats.DMARCReports)
	}
	if n, err := st.CountDMARCReports(ctx, store.DMARCFilter{Status: store.ReportOK}); err != nil || n != int64(stats.DMARCReports) {
		t.Errorf("%d DMARC reports without warnings (%v), of %d", n, err, stats.DMARCReports)
	}
	sum, err := dmarcstats.Summarize(ctx, st, dmarcstats.Query{Now: now})
	if err != nil {
		t.Fatal(err)
	}
	if sum.TotalMessages != stats.DMARCMessages || sum.DMARCFail == 0 || sum.DMARCPass <= sum.DMARCFail {
		t.Errorf("summary %d messages (%d pass, %d fail), seed stored %d: want them equal, mostly passing, some failing",
			sum.TotalMessages, sum.DMARCPass, sum.DMARCFail, stats.DMARCMessages)
	}
	// The first domain has every kind of source: the DMARC pages' tabs
	// and the fixes have content, from the catalogue alone (no DNS).
	cat, err := senderspkg.Builtin()
	if err != nil {
		t.Fatal(err)
	}
	an := senderspkg.NewAnalyzer(st, st, nil, cat, senderspkg.Options{CachedOnly: true})
	rep, err := an.Senders(ctx, senderspkg.Query{Domain: DomainName(0)})
	if err != nil {
		t.Fatal(err)
	}
	if c := rep.ByClass; c.Compliant == 0 || c.Forwarded == 0 || c.Misconfigured == 0 || c.Unknown == 0 || len(rep.Fixes) == 0 {
		t.Errorf("senders of %s: %+v, %d fixes; want messages of every class and a fix", DomainName(0), c, len(rep.Fixes))
	}
	again := run(st, 10)
	if again.DMARCReports != 0 || again.Reports != 0 || again.Duplicates != stats.Reports || again.DMARCDuplicates != stats.DMARCReports {
		t.Errorf("second run %+v, first %+v", again, stats)
	}
	without := run(openStore(t), 0)
	if without.DMARCReports != 0 || without.Reports != stats.Reports || without.Sessions != stats.Sessions || without.Failed != stats.Failed {
		t.Errorf("TLS data without DMARC %+v, with %+v: want the same", without, stats)
	}
}
