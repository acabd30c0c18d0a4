package web

import (
	"cmp"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/moatmail/moat/internal/auth"
	"github.com/moatmail/moat/internal/store"
)

// intakePageSize is the number of submissions per page of the ledger.
const intakePageSize = 50

// Silent senders: a sender that reported on at least silentMinDays of the
// silentWindow days before the last silentQuiet days, and on none of
// those, has gone silent.
const (
	silentWindow  = 14
	silentQuiet   = 2
	silentMinDays = 8
)

type intakeData struct {
	Query   store.IntakeQuery
	Since   string
	Events  []*store.IntakeEvent
	Next    string
	First   string
	Silent  []silentSender
	Sources []string
	Outcome []string
	Kinds   []string
}

// silentSender is a reporting organization that stopped reporting.
type silentSender struct {
	Organization string
	Days         int       // days with reports in the window
	Last         time.Time // the last day with reports
	Sessions     int64     // sessions reported in the window
}

func (pg *pages) intake(w http.ResponseWriter, r *http.Request, p *auth.Principal) {
	ctx := r.Context()
	v := r.URL.Query()
	q := store.IntakeQuery{Outcome: v.Get("outcome"), Source: v.Get("source"), Kind: v.Get("kind"), Limit: intakePageSize}
	data := &intakeData{Sources: []string{"https", "smtp", "imap", "import", "api"}, Outcome: []string{"stored", "duplicate", "invalid", "conflict"},
		Kinds: []string{store.KindTLSRPT, store.KindDMARC, store.KindDMARCFailure}}
	var msg string
	if q.Outcome != "" && !slices.Contains(data.Outcome, q.Outcome) {
		msg, q.Outcome = "Unknown outcome "+strconv.Quote(q.Outcome)+": showing every outcome.", ""
	}
	if q.Kind != "" && !slices.Contains(data.Kinds, q.Kind) {
		msg, q.Kind = "Unknown kind "+strconv.Quote(q.Kind)+": showing every kind.", ""
	}
	if q.Source != "" && !slices.Contains(data.Sources, q.Source) {
		msg, q.Source = "Unknown path "+strconv.Quote(q.Source)+": showing every path.", ""
	}
	if s := v.Get("since"); s != "" {
		t, err := time.Parse(time.DateOnly, s)
		if err != nil {
			msg = "The date " + strconv.Quote(s) + " is not a date (YYYY-MM-DD)."
		} else {
			q.Since, data.Since = t, s
		}
	}
	if b := v.Get("before"); b != "" {
		id, err := strconv.ParseInt(b, 10, 64)
		if err != nil || id <= 0 {
			msg = "The page marker is not valid: showing the newest."
		} else {
			q.Before = id
		}
	}
	data.Query = q
	events, err := p.Tenant.IntakeLog(ctx, q)
	if err != nil {
		pg.storeFail(w, r, p, "intake log", err)
		return
	}
	data.Events = events
	page := url.Values{}
	for _, k := range []string{"outcome", "source", "kind", "since"} {
		if x := v.Get(k); x != "" {
			page.Set(k, x)
		}
	}
	if q.Before != 0 {
		data.First = "/intake?" + page.Encode()
	}
	if len(events) == intakePageSize {
		page.Set("before", strconv.FormatInt(events[len(events)-1].ID, 10))
		data.Next = "/intake?" + page.Encode()
	}
	if data.Silent, err = pg.silentSenders(r, p); err != nil {
		pg.storeFail(w, r, p, "reports", err)
		return
	}
	pg.render(w, r, p, http.StatusOK, "intake", "intake", "Intake", data, msg)
}

// silentSenders finds, from the rollups by organization and day, the
// senders that reported on most days and nothing in the last two.
func (pg *pages) silentSenders(r *http.Request, p *auth.Principal) ([]silentSender, error) {
	today := day(pg.now())
	quiet := today.AddDate(0, 0, 1-silentQuiet)
	since := quiet.AddDate(0, 0, -silentWindow)
	rows, err := p.Tenant.TLSRPTRollups(r.Context(), store.RollupQuery{Since: since, Until: today.AddDate(0, 0, 1),
		GroupBy: []string{"organization", "day"}})
	if err != nil {
		return nil, err
	}
	type seen struct {
		days     map[time.Time]bool
		recent   bool
		last     time.Time
		sessions int64
	}
	byOrg := map[string]*seen{}
	for _, row := range rows {
		if row.Sessions == 0 || row.Organization == "" {
			continue
		}
		s := byOrg[row.Organization]
		if s == nil {
			s = &seen{days: map[time.Time]bool{}}
			byOrg[row.Organization] = s
		}
		d := day(row.Day)
		if !d.Before(quiet) {
			s.recent = true
			continue
		}
		s.days[d] = true
		s.sessions += row.Sessions
		if d.After(s.last) {
			s.last = d
		}
	}
	var out []silentSender
	for org, s := range byOrg {
		if !s.recent && len(s.days) >= silentMinDays {
			out = append(out, silentSender{Organization: org, Days: len(s.days), Last: s.last, Sessions: s.sessions})
		}
	}
	slices.SortFunc(out, func(a, b silentSender) int {
		return cmp.Or(cmp.Compare(b.Sessions, a.Sessions), strings.Compare(a.Organization, b.Organization))
	})
	return out, nil
}
