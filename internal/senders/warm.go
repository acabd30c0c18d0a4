package senders

import (
	"context"
	"fmt"
	"time"

	"github.com/moatmail/moat/internal/store"
)

// Warm looks up the reverse DNS and the SPF results of the sources of
// every domain with DMARC rollups since since, where the cache lacks them
// or holds them expired, with the Analyzer's bounded worker pool, so that
// the request paths (CachedOnly analyzers: the API and the dashboard) find
// them. It returns the number of domains and sources visited. An Analyzer
// made CachedOnly looks up nothing.
func (a *Analyzer) Warm(ctx context.Context, since time.Time) (domains, sources int, err error) {
	rows, err := a.rd.DMARCRollups(ctx, store.DMARCRollupQuery{Since: since, GroupBy: []string{"domain", "source_ip"}})
	if err != nil {
		return 0, 0, fmt.Errorf("senders: warm up: the sources: %w", err)
	}
	var (
		order  []string
		byName = map[string][]store.DMARCRollupRow{}
	)
	for _, r := range rows {
		if _, ok := byName[r.Domain]; !ok {
			order = append(order, r.Domain)
		}
		byName[r.Domain] = append(byName[r.Domain], r)
	}
	for _, d := range order {
		if err := ctx.Err(); err != nil {
			return domains, sources, err
		}
		if _, err := a.facts(ctx, d, byName[d]); err != nil {
			return domains, sources, fmt.Errorf("senders: warm up: %w", err)
		}
		domains++
		sources += len(byName[d])
	}
	return domains, sources, nil
}
