package seed

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/moatmail/moat/internal/hosting"
	"github.com/moatmail/moat/internal/intake"
	"github.com/moatmail/moat/internal/store"
)

// Options say what to make.
type Options struct {
	// Org is the organization the domains are hosted for (its id).
	Org int64
	// Domains is how many domains to host: DomainName(First) ... The ones
	// hosted already are kept (their reports are still made).
	Domains int
	// First is the index of the first domain name (see DomainName), so
	// that two organizations get different names.
	First int
	// Days of reports, the last one ending yesterday (UTC).
	Days int
	// Now is the end of the period; zero means time.Now.
	Now time.Time
	// Seed makes the data; the same seed gives the same data.
	Seed uint64
	// Broken gives every domain a period of failures (an expired or wrong
	// certificate, STARTTLS missing, the policy host unreachable), as a
	// demo needs; otherwise about a third of the domains have one.
	Broken bool
	// Batch is how many reports go into one transaction. Zero: 500.
	Batch int
	// Progress, when set, is told how many of the days are done.
	Progress func(day, days int)
	// DMARCDays is how many of the last Days get DMARC aggregate reports
	// too (dmarc.go): one a day per domain from each of up to three
	// receivers. Zero: none.
	DMARCDays int
}

// Stats say what was made.
type Stats struct {
	Domains    int   // domains hosted by this run
	Existing   int   // domains that were hosted already
	Reports    int   // reports stored
	Duplicates int   // TLS reports that were stored already (a run repeated)
	Sessions   int64 // sessions the stored reports count
	Failed     int64 // of which failed
	// DMARC aggregate reports stored, those stored already, and the
	// messages the stored ones count.
	DMARCReports    int
	DMARCDuplicates int
	DMARCMessages   int64
}

// Store is what seeding writes to.
type Store interface {
	store.DomainStore
	InsertTLSRPT(ctx context.Context, reports []*store.TLSRPTReport) ([]store.InsertResult, error)
	InsertDMARC(ctx context.Context, b store.DMARCBatch) (store.DMARCBatchResult, error)
}

// Run hosts the domains, with their policy history (a domain that went to
// enforce during the period has a testing version first, dated then), and
// stores the reports of every day, through the same row-making code as
// intake.
func Run(ctx context.Context, st Store, set hosting.Settings, opts Options) (Stats, error) {
	var stats Stats
	if opts.Org == 0 {
		return stats, errors.New("seed: no organization")
	}
	if opts.Domains < 0 || opts.Days < 0 || opts.DMARCDays < 0 {
		return stats, errors.New("seed: negative counts")
	}
	if opts.Now.IsZero() {
		opts.Now = time.Now()
	}
	if opts.Batch <= 0 {
		opts.Batch = 500
	}
	end := opts.Now.UTC().Truncate(24 * time.Hour) // today, 00:00: reports end yesterday
	start := end.AddDate(0, 0, -opts.Days)
	rnd := rand.New(rand.NewPCG(opts.Seed, 0x6d6f6174)) //nolint:gosec // reproducible demo data, not secrets

	profiles := make([]*profile, opts.Domains)
	hosted := map[string]bool{}
	for i := range profiles {
		profiles[i] = newProfile(rnd, opts.First+i, start, end, opts.Broken)
		hosted[profiles[i].domain] = true
	}
	for _, p := range profiles {
		created, err := host(ctx, st, set, opts.Org, p, start)
		if err != nil {
			return stats, err
		}
		if created {
			stats.Domains++
		} else {
			stats.Existing++
		}
	}

	var batch []*store.TLSRPTReport
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		res, err := st.InsertTLSRPT(ctx, batch)
		if err != nil {
			return fmt.Errorf("seed: storing reports: %w", err)
		}
		for i, r := range res {
			if r.Duplicate {
				stats.Duplicates++
				continue
			}
			stats.Reports++
			stats.Sessions += batch[i].Successful + batch[i].Failed
			stats.Failed += batch[i].Failed
		}
		batch = batch[:0]
		return nil
	}
	isHosted := func(d string) bool { return hosted[d] }
	// The DMARC reports have a random source of their own, so that the
	// TLS data of a seed is the same with them or without.
	drnd := rand.New(rand.NewPCG(opts.Seed, 0x646d617263)) //nolint:gosec // reproducible demo data
	var dbatch []*store.DMARCReport
	dflush := func() error {
		if len(dbatch) == 0 {
			return nil
		}
		res, err := st.InsertDMARC(ctx, store.DMARCBatch{Reports: dbatch})
		if err != nil {
			return fmt.Errorf("seed: storing DMARC reports: %w", err)
		}
		for _, r := range res.Reports {
			if r.Duplicate {
				stats.DMARCDuplicates++
				continue
			}
			stats.DMARCReports++
			stats.DMARCMessages += r.Messages
		}
		dbatch = dbatch[:0]
		return nil
	}
	for day := 0; day < opts.Days; day++ {
		date := start.AddDate(0, 0, day)
		// Reports arrive in the morning after the day they cover.
		received := date.Add(24*time.Hour + 6*time.Hour + time.Duration(rnd.IntN(4*3600))*time.Second)
		for _, p := range profiles {
			for _, r := range p.reportsOn(rnd, date) {
				raw, err := json.Marshal(r)
				if err != nil {
					return stats, err
				}
				batch = append(batch, intake.StoredReport(raw, r, received, intake.SourceHTTPS, "seed", isHosted))
				if len(batch) >= opts.Batch {
					if err := flush(); err != nil {
						return stats, err
					}
				}
			}
			if day < opts.Days-opts.DMARCDays {
				continue
			}
			for _, raw := range dmarcReportsOn(drnd, p.domain, p.index, p.volume, date) {
				rep, err := intake.DMARCStoredReport(raw, received, intake.SourceSMTP, "seed", isHosted)
				if err != nil {
					return stats, fmt.Errorf("seed: a generated DMARC report does not parse: %w", err)
				}
				dbatch = append(dbatch, rep)
				if len(dbatch) >= opts.Batch {
					if err := dflush(); err != nil {
						return stats, err
					}
				}
			}
		}
		if opts.Progress != nil {
			opts.Progress(day+1, opts.Days)
		}
		if err := ctx.Err(); err != nil {
			return stats, err
		}
	}
	if err := flush(); err != nil {
		return stats, err
	}
	return stats, dflush()
}

// host hosts p's domain as it was at start, and records the switch to
// enforce on its day, as a policy version of that time.
func host(ctx context.Context, st Store, set hosting.Settings, org int64, p *profile, start time.Time) (bool, error) {
	if _, err := st.Domain(ctx, p.domain); err == nil {
		return false, nil
	} else if !errors.Is(err, store.ErrNotFound) {
		return false, err
	}
	mode := p.mode
	if mode == "enforce" && !p.enforced.IsZero() {
		mode = "testing"
	}
	at := start.Add(-time.Duration(1+len(p.domain)%20) * time.Hour)
	clock := func() time.Time { return at }
	svc := hosting.New(st, set, clock)
	if _, err := svc.Add(ctx, p.domain, hosting.Spec{Org: org, Mode: mode, MX: p.mx}); err != nil {
		return false, fmt.Errorf("seed: hosting %s: %w", p.domain, err)
	}
	if mode != p.mode {
		at = p.enforced.Add(10 * time.Hour)
		enforce := "enforce"
		if _, _, err := svc.Set(ctx, p.domain, hosting.Change{Mode: &enforce}); err != nil {
			return false, fmt.Errorf("seed: enforcing %s: %w", p.domain, err)
		}
	}
	return true, nil
}
