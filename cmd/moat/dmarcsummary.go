package main

import (
	"cmp"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/moatmail/moat/internal/store"
)

// dmarcSummary is the JSON of moat reports dmarc summary: message counts
// of the DMARC aggregate reports' daily rollups over a period.
type dmarcSummary struct {
	Domain string `json:"domain,omitempty"`
	Since  string `json:"since,omitempty"` // first day, UTC
	Until  string `json:"until"`           // last day included, UTC
	By     string `json:"by,omitempty"`
	// TotalMessages is the sum of the records' count over the period.
	TotalMessages int64             `json:"total_messages"`
	dmarcCounts                     // the totals' pass counts
	Rows          []dmarcSummaryRow `json:"rows"`
}

// dmarcCounts are the messages that passed DMARC (an aligned DKIM or SPF
// pass as the reporter evaluated it), and each of the two.
type dmarcCounts struct {
	DMARCPass int64 `json:"dmarc_pass"`
	DMARCFail int64 `json:"dmarc_fail"`
	DKIMPass  int64 `json:"dkim_pass"`
	SPFPass   int64 `json:"spf_pass"`
}

type dmarcSummaryRow struct {
	Key      string `json:"key"`
	Messages int64  `json:"messages"`
	dmarcCounts
}

func (c *dmarcCounts) add(r *store.DMARCRollupRow) {
	dkim, spf := r.DKIM == "pass", r.SPF == "pass"
	if dkim || spf {
		c.DMARCPass += r.Messages
	} else {
		c.DMARCFail += r.Messages
	}
	if dkim {
		c.DKIMPass += r.Messages
	}
	if spf {
		c.SPFPass += r.Messages
	}
}

// dmarcSummaryBy maps --by to the rollup column grouped by.
var dmarcSummaryBy = map[string]string{
	"day": "day", "domain": "domain", "source": "source_ip", "reporter": "reporter",
	"disposition": "disposition", "header-from": "header_from",
}

func newDMARCSummaryCmd(g *globals) *cobra.Command {
	var (
		since, by string
		asJSON    bool
	)
	cmd := &cobra.Command{
		Use:   "summary [DOMAIN] [--since 30d] [--by day|domain|source|reporter|disposition|header-from]",
		Short: "Messages of DMARC aggregate reports over a period: total, passing and failing DMARC, DKIM and SPF, from the daily rollups",
		Args:  nArgs(0, 1),
		RunE: func(cmd *cobra.Command, args []string) error {
			domain, err := optionalDomain(args)
			if err != nil {
				return err
			}
			now := time.Now().UTC()
			from, err := parseSince(since, now)
			if err != nil {
				return err
			}
			col := ""
			if by != "" {
				var ok bool
				if col, ok = dmarcSummaryBy[by]; !ok {
					return fmt.Errorf("--by %q: want day, domain, source, reporter, disposition or header-from", by)
				}
			}
			s, err := g.open(cmd)
			if err != nil {
				return err
			}
			defer s.close()
			q := store.DMARCRollupQuery{Domain: domain, GroupBy: []string{"dkim", "spf"}}
			if !from.IsZero() {
				q.Since = from.Truncate(24 * time.Hour)
			}
			if col != "" {
				q.GroupBy = append([]string{col}, q.GroupBy...)
			}
			rows, err := s.st.DMARCRollups(cmd.Context(), q)
			if err != nil {
				return err
			}
			sum := dmarcSummary{Domain: domain, By: by, Until: now.Format(time.DateOnly), Rows: []dmarcSummaryRow{}}
			if !q.Since.IsZero() {
				sum.Since = q.Since.Format(time.DateOnly)
			}
			index := map[string]int{}
			for i := range rows {
				r := &rows[i]
				sum.TotalMessages += r.Messages
				sum.add(r)
				if col == "" {
					continue
				}
				key := dmarcKey(col, r)
				j, ok := index[key]
				if !ok {
					j = len(sum.Rows)
					index[key] = j
					sum.Rows = append(sum.Rows, dmarcSummaryRow{Key: key})
				}
				sum.Rows[j].Messages += r.Messages
				sum.Rows[j].add(r)
			}
			if col != "day" {
				// The most failing first, then the most messages.
				slices.SortStableFunc(sum.Rows, func(a, b dmarcSummaryRow) int {
					return cmp.Or(cmp.Compare(b.DMARCFail, a.DMARCFail), cmp.Compare(b.Messages, a.Messages))
				})
			}
			if asJSON {
				return printJSON(g.stdout, sum)
			}
			period := "since " + sum.Since
			if sum.Since == "" {
				period = "all time"
			}
			fmt.Fprintf(g.stdout, "%s, %s: %d messages, %d passing DMARC (%s), %d failing; DKIM pass %d, SPF pass %d\n",
				dash(domain), period, sum.TotalMessages, sum.DMARCPass, percent(sum.DMARCPass, sum.TotalMessages),
				sum.DMARCFail, sum.DKIMPass, sum.SPFPass)
			if col == "" || len(sum.Rows) == 0 {
				return nil
			}
			t := [][]string{{strings.ToUpper(by), "MESSAGES", "DMARC PASS", "DMARC FAIL", "DKIM PASS", "SPF PASS"}}
			for _, r := range sum.Rows {
				t = append(t, []string{dash(r.Key), strconv.FormatInt(r.Messages, 10), strconv.FormatInt(r.DMARCPass, 10),
					strconv.FormatInt(r.DMARCFail, 10), strconv.FormatInt(r.DKIMPass, 10), strconv.FormatInt(r.SPFPass, 10)})
			}
			return table(g.stdout, t)
		},
	}
	f := cmd.Flags()
	f.StringVar(&since, "since", "30d", "the period: from this many days back (30d, 2w) or this date on; \"\" for everything")
	f.StringVar(&by, "by", "", "also one row per day, domain, source (IP), reporter, disposition or header-from")
	f.BoolVar(&asJSON, "json", false, "print JSON (the integer field total_messages is the sum of the records' counts)")
	return cmd
}

// dmarcKey is the value of col in r, as text.
func dmarcKey(col string, r *store.DMARCRollupRow) string {
	switch col {
	case "day":
		return r.Day.UTC().Format(time.DateOnly)
	case "domain":
		return r.Domain
	case "source_ip":
		return r.SourceIP
	case "reporter":
		return r.Reporter
	case "disposition":
		return r.Disposition
	default:
		return r.HeaderFrom
	}
}
