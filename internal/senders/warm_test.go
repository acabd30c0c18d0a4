package senders

import (
	"context"
	"testing"
	"time"

	"github.com/moatmail/moat/internal/dnstest"
	"github.com/moatmail/moat/internal/store"
)

// rollupReader is a Reader over fixed rows, grouped by domain and source
// as the store would.
type rollupReader struct{ rows []store.DMARCRollupRow }

func (r rollupReader) DMARCRollups(_ context.Context, q store.DMARCRollupQuery) ([]store.DMARCRollupRow, error) {
	var out []store.DMARCRollupRow
	for _, row := range r.rows {
		if (q.Domain == "" || row.Domain == q.Domain) && !row.Day.Before(q.Since) {
			out = append(out, row)
		}
	}
	return out, nil
}

func (rollupReader) DMARCReports(context.Context, store.DMARCFilter) ([]*store.DMARCReport, error) {
	return nil, nil
}

// TestWarm: the background warm-up fills the cache that a CachedOnly
// analyzer, which asks DNS nothing, then reads.
func TestWarm(t *testing.T) {
	t.Parallel()
	srv := dnstest.Start(t, rdnsZone+"a.example. TXT \"v=spf1 ip4:192.0.2.10 -all\"\n", nil)
	st := openStore(t)
	cat, err := Builtin()
	if err != nil {
		t.Fatal(err)
	}
	today := time.Now().UTC().Truncate(24 * time.Hour)
	rd := rollupReader{rows: []store.DMARCRollupRow{
		{Day: today, Domain: "a.example", DMARCRow: store.DMARCRow{SourceIP: "192.0.2.10", DKIM: "fail", SPF: "fail", Messages: 3}},
		{Day: today, Domain: "b.example", DMARCRow: store.DMARCRow{SourceIP: "192.0.2.12", DKIM: "fail", SPF: "fail", Messages: 1}},
		{Day: today.AddDate(0, 0, -90), Domain: "old.example", DMARCRow: store.DMARCRow{SourceIP: "192.0.2.11", Messages: 1}},
	}}
	cached := NewAnalyzer(rd, st, srv.Resolver(), cat, Options{CachedOnly: true})
	before, err := cached.Senders(t.Context(), Query{Domain: "a.example"})
	if err != nil {
		t.Fatal(err)
	}
	if src := before.Sources[0]; src.PTR != "" || src.PTRError != "unresolved" || srv.Queries() != 0 {
		t.Fatalf("before the warm-up: %+v after %d queries, want unresolved and no DNS", src, srv.Queries())
	}
	// A CachedOnly analyzer warms nothing.
	if _, _, err := cached.Warm(t.Context(), today.AddDate(0, 0, -30)); err != nil || srv.Queries() != 0 {
		t.Fatalf("a CachedOnly warm-up asked DNS %d times (%v)", srv.Queries(), err)
	}

	warm := NewAnalyzer(rd, st, srv.Resolver(), cat, Options{})
	domains, sources, err := warm.Warm(t.Context(), today.AddDate(0, 0, -30))
	if err != nil || domains != 2 || sources != 2 {
		t.Fatalf("Warm: %d domains, %d sources, %v; want the 2 domains of the last 30 days", domains, sources, err)
	}
	after, err := cached.Senders(t.Context(), Query{Domain: "a.example"})
	if err != nil {
		t.Fatal(err)
	}
	src := after.Sources[0]
	if src.PTR != "mail-a.google.com" || !src.PTRConfirmed || src.Service == nil || src.Service.ID != "google" || !src.SPFAuthorized {
		t.Errorf("after the warm-up: %+v (service %+v), want Google by its confirmed PTR and authorized by SPF", src, src.Service)
	}
	if recs, err := st.PTRs(t.Context(), []string{"192.0.2.11"}); err != nil || len(recs) != 0 {
		t.Errorf("the source of a domain outside the period was looked up: %+v, %v", recs, err)
	}

	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, _, err := warm.Warm(ctx, today.AddDate(0, 0, -30)); err == nil {
		t.Error("Warm with a canceled context did not fail")
	}
}
