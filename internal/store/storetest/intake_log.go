package storetest

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/moatmail/moat/internal/store"
)

func testIntakeLog(t *testing.T, fresh func(t *testing.T) store.Options) {
	s := openFresh(t, fresh)
	ctx := t.Context()
	o := newOrg(t, s, "acme", 0)
	hostFor(t, s, "example.com", o.ID, "testing")

	a := newReport("Google Inc.", "a", "example.com", day(10), "sts", 5)
	a.ReceivedAt = baseTime()
	bad := invalidReport("{")
	bad.ReceivedAt = baseTime().Add(time.Second)
	b := newReport("Microsoft", "b", "example.net", day(10), "sts", 5)
	b.Source, b.SourceDetail, b.ReceivedAt = "import", "/var/reports/b.json", baseTime().Add(2*time.Second)
	res1 := insert(t, s, a, bad, b)
	dup := *a
	dup.ReceivedAt, dup.SourceDetail = baseTime().Add(time.Hour), "198.51.100.9"
	res2 := insert(t, s, &dup)

	op := s.Scoped(store.Scope{Operator: true})
	l, err := op.IntakeLog(ctx, store.IntakeQuery{})
	if err != nil {
		t.Fatalf("IntakeLog: %v", err)
	}
	want := []store.IntakeEvent{
		{At: dup.ReceivedAt, Source: "https", Detail: "198.51.100.9", Outcome: "duplicate", ReportID: res1[0].ID,
			Reporter: "Google Inc.", ReportName: "a", Domains: []string{"example.com"}},
		{At: b.ReceivedAt, Source: "import", Detail: "/var/reports/b.json", Outcome: "stored", ReportID: res1[2].ID,
			Reporter: "Microsoft", ReportName: "b", Domains: []string{"example.net"}},
		{At: bad.ReceivedAt, Source: "smtp", Detail: bad.SourceDetail, Outcome: "invalid", ReportID: res1[1].ID,
			Reason: bad.Error, Domains: []string{}},
		{At: a.ReceivedAt, Source: "https", Detail: "192.0.2.1", Outcome: "stored", ReportID: res1[0].ID,
			Reporter: "Google Inc.", ReportName: "a", Domains: []string{"example.com"}},
	}
	if res2[0].ID != res1[0].ID || !res2[0].Duplicate {
		t.Fatalf("second insert = %+v, want a duplicate of %d", res2[0], res1[0].ID)
	}
	checkEvents := func(what string, got []*store.IntakeEvent, want []store.IntakeEvent) {
		t.Helper()
		if len(got) != len(want) {
			t.Fatalf("%s: %d events, want %d: %+v", what, len(got), len(want), got)
		}
		for i, e := range got {
			w := want[i]
			if e.ID == 0 || e.Source != w.Source || e.Detail != w.Detail || e.Outcome != w.Outcome || e.ReportID != w.ReportID ||
				e.Reason != w.Reason || e.Reporter != w.Reporter || e.ReportName != w.ReportName || !slices.Equal(e.Domains, w.Domains) {
				t.Errorf("%s: event %d = %+v, want %+v", what, i, *e, w)
			}
			checkTime(t, fmt.Sprintf("%s: event %d At", what, i), e.At, w.At)
			if i > 0 && e.ID >= got[i-1].ID {
				t.Errorf("%s: event ids %d then %d, want newest first", what, got[i-1].ID, e.ID)
			}
		}
	}
	checkEvents("IntakeLog", l, want)

	for _, tc := range []struct {
		q    store.IntakeQuery
		want []store.IntakeEvent
	}{
		{store.IntakeQuery{Outcome: "invalid"}, want[2:3]},
		{store.IntakeQuery{Source: "https"}, []store.IntakeEvent{want[0], want[3]}},
		{store.IntakeQuery{Since: b.ReceivedAt}, want[:2]},
		{store.IntakeQuery{Limit: 2}, want[:2]},
		{store.IntakeQuery{Limit: 2, Before: l[1].ID}, want[2:]},
		{store.IntakeQuery{Before: l[3].ID}, nil},
	} {
		got, err := op.IntakeLog(ctx, tc.q)
		if err != nil {
			t.Fatalf("IntakeLog(%+v): %v", tc.q, err)
		}
		checkEvents(fmt.Sprintf("IntakeLog(%+v)", tc.q), got, tc.want)
	}
	_, err = op.IntakeLog(ctx, store.IntakeQuery{Limit: -1})
	wantErr(t, "IntakeLog(negative limit)", err, store.ErrInvalidArg, "")

	// A tenant sees the submissions of its domains' reports.
	got, err := s.Scoped(store.Scope{Orgs: []int64{o.ID}}).IntakeLog(ctx, store.IntakeQuery{})
	if err != nil {
		t.Fatal(err)
	}
	checkEvents("IntakeLog of acme", got, []store.IntakeEvent{want[0], want[3]})
}
