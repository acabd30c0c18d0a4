// Package tlsrptstats analyses received SMTP TLS reports (RFC 8460): how
// many sessions succeeded and failed, broken down by result type, sender,
// receiving MX, day or policy domain, and whether a domain publishing its
// MTA-STS policy (RFC 8461) in mode testing can move to enforce.
//
// It reads only the daily rollups of store.ReportStore, never report rows,
// so its cost depends on the number of distinct days, senders and result
// types asked about, not on the number of reports stored. The CLI uses it
// now; the dashboard will.
package tlsrptstats

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/moatmail/moat/internal/store"
)

// ErrInvalidQuery means that a Query or ReadinessOpts value is out of range. The
// error names the field and value; report it to the user as is.
var ErrInvalidQuery = errors.New("tlsrptstats: invalid query")

// resultSuccess is the result type of successful sessions in the rollups
// (store.TLSRPTRollup); every other result type is a failure.
const resultSuccess = "success"

// resultDetailExcess is the rollup entry of failed sessions that reports
// detail beyond their total-failure-session-count (tlsrpt.ResultDetailExcess).
const resultDetailExcess = "detail-excess"

// Groupings of Query.By.
const (
	ByNone   = ""       // totals only
	ByResult = "result" // one row per result type, "success" included
	BySource = "source" // per sending organization and sending MTA IP
	ByMX     = "mx"     // per receiving MX host
	ByDay    = "day"    // per UTC day
	ByDomain = "domain" // per policy domain
)

// Query selects the sessions to summarize.
type Query struct {
	// Domain is the policy domain; "" for all domains. Case and a trailing
	// dot are ignored.
	Domain string
	// Since and Until bound the period. Rollups are daily, so the period is
	// widened to whole UTC days: the day containing Since is the first one
	// included, and Until is rounded up to the next UTC midnight (a day is
	// included when it overlaps [Since, Until)). Zero Since: from the first
	// day stored; zero Until: no end.
	Since, Until time.Time
	// By is the grouping of Summary.Rows: ByNone, ByResult, BySource, ByMX,
	// ByDay or ByDomain.
	By string
}

// Summary is the result of Summarize.
type Summary struct {
	Domain string `json:"domain,omitempty"` // as queried, normalized; "" for all
	// Since and Until are the whole UTC days summarized: [Since, Until).
	// Zero when the query had no bound.
	Since           time.Time `json:"since,omitzero"`
	Until           time.Time `json:"until,omitzero"`
	By              string    `json:"by,omitempty"`
	TotalSuccessful int64     `json:"total_successful_sessions"`
	TotalFailed     int64     `json:"total_failed_sessions"`
	// DetailExcess counts failed sessions that reports detail beyond their
	// total-failure-session-count: the rows add up to TotalFailed plus
	// this.
	DetailExcess int64 `json:"failures_detailed_beyond_totals,omitempty"`
	// Rows are the groups of By, most failed sessions first (ties by key),
	// except for ByDay, which is in day order. Empty for ByNone.
	Rows []Row `json:"rows"`
}

// Row is one group of a Summary. Only the key fields of the grouping are
// set (an empty key is omitted from JSON):
//
//   - ByResult: ResultType.
//   - BySource: Organization and SendingIP. Reports give sending IPs only
//     for failures, so an organization's successful sessions (and failures
//     reported without an IP) are in its row with SendingIP "".
//   - ByMX: ReceivingMX. Reports name MX hosts only for failures, so all
//     successful sessions are in the row with ReceivingMX "".
//   - ByDay: Day (UTC midnight).
//   - ByDomain: Domain.
type Row struct {
	Day          time.Time `json:"day,omitzero"`
	Domain       string    `json:"domain,omitempty"`
	Organization string    `json:"organization,omitempty"`
	SendingIP    string    `json:"sending_ip,omitempty"`
	ReceivingMX  string    `json:"receiving_mx,omitempty"`
	ResultType   string    `json:"result_type,omitempty"`

	Successful int64 `json:"successful_sessions"`
	Failed     int64 `json:"failed_sessions"`
	// FailureRate is Failed / (Successful + Failed): how often sessions of
	// this group failed. 0 without sessions.
	FailureRate float64 `json:"failure_rate"`
	// FailureShare is Failed / Summary.TotalFailed: this group's part of all
	// failures. 0 when nothing failed.
	FailureShare float64 `json:"failure_share"`
	// Failures breaks Failed down by result type, most sessions first (ties
	// by result type). Set for BySource, ByMX, ByDay and ByDomain.
	Failures []ResultCount `json:"failures_by_result,omitempty"`
}

// ResultCount is a number of sessions of one result type.
type ResultCount struct {
	ResultType string `json:"result_type"`
	Sessions   int64  `json:"sessions"`
}

// groupBy returns the rollup columns of a grouping, the key columns first,
// result_type last.
func groupBy(by string) ([]string, error) {
	switch by {
	case ByNone, ByResult:
		return []string{"result_type"}, nil
	case BySource:
		return []string{"organization", "sending_ip", "result_type"}, nil
	case ByMX:
		return []string{"receiving_mx", "result_type"}, nil
	case ByDay:
		return []string{"day", "result_type"}, nil
	case ByDomain:
		return []string{"domain", "result_type"}, nil
	}
	return nil, fmt.Errorf("%w: by %q: want one of result, source, mx, day, domain, or empty for totals", ErrInvalidQuery, by)
}

// day returns the UTC midnight starting the day of t.
func day(t time.Time) time.Time {
	y, m, d := t.UTC().Date()
	return time.Date(y, m, d, 0, 0, 0, 0, time.UTC)
}

// dayAfter rounds t up to a UTC midnight.
func dayAfter(t time.Time) time.Time {
	d := day(t)
	if d.Equal(t) {
		return d
	}
	return d.AddDate(0, 0, 1)
}

// normDomain is a domain as the store keeps it.
func normDomain(d string) string {
	return strings.TrimSuffix(strings.ToLower(strings.TrimSpace(d)), ".")
}

// Summarize sums the sessions of the rollups q selects, grouped by q.By.
// Errors: ErrInvalidQuery for an unknown By or an empty period; the
// store's errors, wrapped.
func Summarize(ctx context.Context, st store.ReportReader, q Query) (*Summary, error) {
	cols, err := groupBy(q.By)
	if err != nil {
		return nil, err
	}
	sum := &Summary{Domain: normDomain(q.Domain), By: q.By, Rows: []Row{}}
	if !q.Since.IsZero() {
		sum.Since = day(q.Since)
	}
	if !q.Until.IsZero() {
		sum.Until = dayAfter(q.Until)
	}
	if !sum.Since.IsZero() && !sum.Until.IsZero() && !sum.Until.After(sum.Since) {
		return nil, fmt.Errorf("%w: until %s is not after since %s", ErrInvalidQuery,
			q.Until.UTC().Format(time.RFC3339), q.Since.UTC().Format(time.RFC3339))
	}
	rows, err := st.TLSRPTRollups(ctx, store.RollupQuery{Domain: sum.Domain, Since: sum.Since, Until: sum.Until, GroupBy: cols})
	if err != nil {
		return nil, fmt.Errorf("tlsrptstats: summarize: %w", err)
	}

	// The rollups come ordered by the key columns then result type, so the
	// rows of one group are adjacent.
	var cur *Row
	for _, rr := range rows {
		key := Row{ResultType: rr.ResultType}
		switch q.By {
		case BySource:
			key = Row{Organization: rr.Organization, SendingIP: rr.SendingIP}
		case ByMX:
			key = Row{ReceivingMX: rr.ReceivingMX}
		case ByDay:
			key = Row{Day: rr.Day}
		case ByDomain:
			key = Row{Domain: rr.Domain}
		}
		switch rr.ResultType {
		case resultSuccess:
			sum.TotalSuccessful += rr.Sessions
		case resultDetailExcess:
			// Failures detailed beyond a report's total: the total is what
			// counts, the rows keep the details.
			sum.TotalFailed -= rr.Sessions
			sum.DetailExcess += rr.Sessions
			continue
		default:
			sum.TotalFailed += rr.Sessions
		}
		if q.By == ByNone {
			continue
		}
		if cur == nil || !sameKey(*cur, key) {
			sum.Rows = append(sum.Rows, key)
			cur = &sum.Rows[len(sum.Rows)-1]
		}
		if rr.ResultType == resultSuccess {
			cur.Successful += rr.Sessions
			continue
		}
		cur.Failed += rr.Sessions
		if q.By != ByResult {
			cur.Failures = append(cur.Failures, ResultCount{rr.ResultType, rr.Sessions})
		}
	}
	for i := range sum.Rows {
		r := &sum.Rows[i]
		if n := r.Successful + r.Failed; n > 0 {
			r.FailureRate = float64(r.Failed) / float64(n)
		}
		if sum.TotalFailed > 0 {
			r.FailureShare = float64(r.Failed) / float64(sum.TotalFailed)
		}
		sortCounts(r.Failures)
	}
	if q.By != ByDay {
		slices.SortStableFunc(sum.Rows, func(a, b Row) int {
			return cmp.Or(cmp.Compare(b.Failed, a.Failed), compareKeys(a, b))
		})
	}
	return sum, nil
}

// SummarizeBy summarizes q once per grouping of bys (q.By is ignored),
// side by side: each summary is one store query, and the store is safe for
// concurrent use. It returns the summaries in the order of bys, or the
// first error (the others are abandoned: ctx is canceled for them).
func SummarizeBy(ctx context.Context, st store.ReportReader, q Query, bys ...string) ([]*Summary, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	out := make([]*Summary, len(bys))
	errs := make([]error, len(bys))
	var wg sync.WaitGroup
	for i, by := range bys {
		wg.Go(func() {
			qq := q
			qq.By = by
			if out[i], errs[i] = Summarize(ctx, st, qq); errs[i] != nil {
				cancel()
			}
		})
	}
	wg.Wait()
	// The first error of the order of bys that is not a consequence of
	// another's cancel.
	for _, err := range errs {
		if err != nil && !errors.Is(err, context.Canceled) {
			return nil, err
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return out, nil
}

func sameKey(a, b Row) bool {
	return a.Day.Equal(b.Day) && a.Domain == b.Domain && a.Organization == b.Organization &&
		a.SendingIP == b.SendingIP && a.ReceivingMX == b.ReceivingMX && a.ResultType == b.ResultType
}

func compareKeys(a, b Row) int {
	return cmp.Or(a.Day.Compare(b.Day), strings.Compare(a.Domain, b.Domain),
		strings.Compare(a.Organization, b.Organization), strings.Compare(a.SendingIP, b.SendingIP),
		strings.Compare(a.ReceivingMX, b.ReceivingMX), strings.Compare(a.ResultType, b.ResultType))
}

// sortCounts orders counts by sessions, most first, then by result type.
func sortCounts(l []ResultCount) {
	slices.SortFunc(l, func(a, b ResultCount) int {
		return cmp.Or(cmp.Compare(b.Sessions, a.Sessions), strings.Compare(a.ResultType, b.ResultType))
	})
}
