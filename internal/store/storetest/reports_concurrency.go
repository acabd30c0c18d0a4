package storetest

import (
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"

	"github.com/moatmail/moat/internal/store"
)

// testReportsConcurrent inserts overlapping batches from several goroutines
// on two Store instances at once (two processes, or two servers sharing
// PostgreSQL): every report is sent by every worker, in a different order
// and batching, half of them in another encoding (same identity, another
// digest). Each report must be stored once, every worker must learn its one
// id, and the rollups must count each once.
func testReportsConcurrent(t *testing.T, fresh func(t *testing.T) store.Options) {
	opts := fresh(t)
	stores := []store.ReportStore{open(t, opts), open(t, opts)}

	var reports []*store.TLSRPTReport
	for i := range 30 {
		// Few rollup keys, so that batches contend for the same rows.
		org := []string{"Google Inc.", "Microsoft", "Yahoo"}[i%3]
		reports = append(reports, newReport(org, fmt.Sprintf("r%d", i), "example.com", day(10+i%2), "sts",
			int64(10+i), fail{"certificate-expired", "192.0.2.1", "mx1.example.com", int64(i%4 + 1)}))
	}
	for i := range 6 {
		reports = append(reports, invalidReport(fmt.Sprintf("broken report %d", i)))
	}

	const (
		workers = 4
		batch   = 9
	)
	type result struct {
		worker int
		store.InsertResult
	}
	results := make([][]result, len(reports)) // by report
	var mu sync.Mutex
	errs := make([]error, workers)
	var wg sync.WaitGroup
	for w := range workers {
		order := make([]int, len(reports))
		for i := range order {
			order[i] = (i + 7*w) % len(reports)
		}
		if w%2 == 1 {
			slices.Reverse(order)
		}
		s := stores[w%2]
		wg.Go(func() {
			for start := 0; start < len(order); start += batch {
				idx := order[start:min(start+batch, len(order))]
				b := make([]*store.TLSRPTReport, len(idx))
				for j, i := range idx {
					b[j] = reports[i]
					if w >= 2 && reports[i].ReportID != "" {
						b[j] = gzipped(reports[i])
					}
				}
				res, err := s.InsertTLSRPT(t.Context(), b)
				if err != nil {
					errs[w] = fmt.Errorf("worker %d: %w", w, err)
					return
				}
				mu.Lock()
				for j, i := range idx {
					results[i] = append(results[i], result{w, res[j]})
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatalf("concurrent InsertTLSRPT: %v", err)
	}

	seen := map[int64]int{}
	for i, rs := range results {
		stored := 0
		for _, r := range rs {
			if !r.Duplicate {
				stored++
			}
			if r.ID != rs[0].ID {
				t.Errorf("report %d: worker %d got id %d, worker %d got %d", i, r.worker, r.ID, rs[0].worker, rs[0].ID)
			}
		}
		if len(rs) != workers || stored != 1 {
			t.Errorf("report %d: %d results, %d not duplicates; want %d and 1", i, len(rs), stored, workers)
		}
		if j, ok := seen[rs[0].ID]; ok {
			t.Errorf("reports %d and %d share id %d", j, i, rs[0].ID)
		}
		seen[rs[0].ID] = i
	}
	for i, s := range stores {
		if n := count(t, s, store.ReportFilter{}); n != int64(len(reports)) {
			t.Errorf("instance %d: %d reports stored, want %d", i, n, len(reports))
		}
		q := store.RollupQuery{GroupBy: []string{"day", "organization", "result_type"}}
		got, err := s.TLSRPTRollups(t.Context(), q)
		if err != nil {
			t.Fatalf("TLSRPTRollups: %v", err)
		}
		if want := expectRollups(reports, q); !sameRollups(got, want) {
			t.Errorf("instance %d: rollups =\n%+v\nwant (each report once)\n%+v", i, got, want)
		}
	}
}
