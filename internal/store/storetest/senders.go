package storetest

import (
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/moatmail/moat/internal/store"
)

// testSenderCache: the reverse DNS and SPF caches of package senders keep
// what was put, replace by key, return expired entries with their expiry,
// answer for many addresses at once, refuse invalid input whole, and prune.
func testSenderCache(t *testing.T, fresh func(t *testing.T) store.Options) {
	s := openFresh(t, fresh)
	ctx := t.Context()
	at := baseTime()
	day := time.Date(2026, 11, 22, 0, 0, 0, 0, time.UTC)

	if got, err := s.PTRs(ctx, []string{"192.0.2.1"}); err != nil || len(got) != 0 {
		t.Fatalf("PTRs of an empty cache = %v, %v; want nothing", got, err)
	}
	recs := []store.PTRRecord{
		{IP: "192.0.2.1", Names: []string{"mail-a.example.net", "other.example.org"}, Confirmed: "mail-a.example.net",
			CheckedAt: at, ExpiresAt: at.Add(7 * 24 * time.Hour)},
		{IP: "2001:db8::25", Error: "nxdomain", CheckedAt: at, ExpiresAt: at.Add(time.Hour)},
		{IP: "198.51.100.7", Error: "timeout", CheckedAt: at.Add(-48 * time.Hour), ExpiresAt: at.Add(-47 * time.Hour)},
	}
	if err := s.PutPTRs(ctx, recs); err != nil {
		t.Fatalf("PutPTRs: %v", err)
	}
	got, err := s.PTRs(ctx, []string{"192.0.2.1", "2001:db8::25", "198.51.100.7", "203.0.113.9"})
	if err != nil {
		t.Fatalf("PTRs: %v", err)
	}
	if len(got) != 3 {
		t.Fatalf("PTRs: %d entries, want 3: %v", len(got), got)
	}
	for _, want := range recs {
		g := got[want.IP]
		if want.Names == nil {
			want.Names = []string{}
		}
		if !slices.Equal(g.Names, want.Names) || g.Confirmed != want.Confirmed || g.Error != want.Error ||
			!g.CheckedAt.Equal(want.CheckedAt.Truncate(time.Microsecond)) || !g.ExpiresAt.Equal(want.ExpiresAt.Truncate(time.Microsecond)) ||
			g.CheckedAt.Location() != time.UTC {
			t.Errorf("PTRs[%s] = %+v, want %+v", want.IP, g, want)
		}
	}
	// Replaced by address.
	if err := s.PutPTRs(ctx, []store.PTRRecord{{IP: "2001:db8::25", Names: []string{"mx.example.com"}, CheckedAt: at,
		ExpiresAt: at.Add(24 * time.Hour)}}); err != nil {
		t.Fatalf("PutPTRs again: %v", err)
	}
	if got, err := s.PTRs(ctx, []string{"2001:db8::25"}); err != nil || got["2001:db8::25"].Error != "" ||
		!slices.Equal(got["2001:db8::25"].Names, []string{"mx.example.com"}) {
		t.Errorf("PTRs after replacing = %+v, %v", got, err)
	}
	// Invalid input writes nothing.
	for _, bad := range []string{"192.0.2.01", "::ffff:192.0.2.1x", "", "2001:DB8::1"} {
		err := s.PutPTRs(ctx, []store.PTRRecord{{IP: "203.0.113.1", CheckedAt: at, ExpiresAt: at}, {IP: bad}})
		if !errors.Is(err, store.ErrInvalidArg) {
			t.Errorf("PutPTRs(%q) = %v, want ErrInvalidArg", bad, err)
		}
	}
	if got, _ := s.PTRs(ctx, []string{"203.0.113.1"}); len(got) != 0 {
		t.Errorf("a refused batch wrote %v", got)
	}

	// Many addresses: more than one statement's worth.
	var many []store.PTRRecord
	var ips []string
	for i := range 1200 {
		ip := fmt.Sprintf("198.18.%d.%d", i/256, i%256)
		many = append(many, store.PTRRecord{IP: ip, Names: []string{fmt.Sprintf("h%d.example.net", i)}, CheckedAt: at, ExpiresAt: at.Add(time.Hour)})
		ips = append(ips, ip)
	}
	if err := s.PutPTRs(ctx, many); err != nil {
		t.Fatalf("PutPTRs of 1200: %v", err)
	}
	if got, err := s.PTRs(ctx, ips); err != nil || len(got) != 1200 || got["198.18.4.175"].Names[0] != "h1199.example.net" {
		t.Fatalf("PTRs of 1200: %d entries, %v", len(got), err)
	}

	// SPF results, per domain and day.
	auths := []store.SPFAuth{
		{Domain: "example.com", SourceIP: "192.0.2.1", Day: day.Add(13 * time.Hour), Result: "pass", CheckedAt: at},
		{Domain: "example.com", SourceIP: "2001:db8::25", Day: day, Result: "softfail", CheckedAt: at},
		{Domain: "example.com", SourceIP: "192.0.2.1", Day: day.Add(-24 * time.Hour), Result: "fail", CheckedAt: at},
		{Domain: "example.org", SourceIP: "192.0.2.1", Day: day, Result: "temperror", Error: "TXT example.org: timeout", CheckedAt: at},
	}
	if err := s.PutSPFAuths(ctx, auths); err != nil {
		t.Fatalf("PutSPFAuths: %v", err)
	}
	sa, err := s.SPFAuths(ctx, "Example.COM.", day.Add(20*time.Hour), []string{"192.0.2.1", "2001:db8::25", "198.51.100.7"})
	if err != nil {
		t.Fatalf("SPFAuths: %v", err)
	}
	if len(sa) != 2 || sa["192.0.2.1"].Result != "pass" || sa["2001:db8::25"].Result != "softfail" || !sa["192.0.2.1"].Day.Equal(day) {
		t.Errorf("SPFAuths(example.com, day) = %+v", sa)
	}
	if sa, err := s.SPFAuths(ctx, "example.org", day, []string{"192.0.2.1"}); err != nil || sa["192.0.2.1"].Error != "TXT example.org: timeout" {
		t.Errorf("SPFAuths(example.org) = %+v, %v", sa, err)
	}
	if err := s.PutSPFAuths(ctx, []store.SPFAuth{{Domain: "example.com", SourceIP: "192.0.2.1", Day: day, Result: "neutral", CheckedAt: at}}); err != nil {
		t.Fatalf("PutSPFAuths again: %v", err)
	}
	if sa, _ := s.SPFAuths(ctx, "example.com", day, []string{"192.0.2.1"}); sa["192.0.2.1"].Result != "neutral" {
		t.Errorf("SPFAuths after replacing = %+v", sa)
	}
	for _, bad := range []store.SPFAuth{
		{Domain: "example.com", SourceIP: "192.0.2.1", Day: day, Result: "Pass"},
		{Domain: "Example.com", SourceIP: "192.0.2.1", Day: day, Result: "pass"},
		{Domain: "", SourceIP: "192.0.2.1", Day: day, Result: "pass"},
		{Domain: "example.com", SourceIP: "192.0.2.300", Day: day, Result: "pass"},
	} {
		if err := s.PutSPFAuths(ctx, []store.SPFAuth{bad}); !errors.Is(err, store.ErrInvalidArg) {
			t.Errorf("PutSPFAuths(%+v) = %v, want ErrInvalidArg", bad, err)
		}
	}

	// Prune: the expired PTR entry (198.51.100.7) and the day before.
	n, err := s.PruneSenderCache(ctx, day)
	if err != nil {
		t.Fatalf("PruneSenderCache: %v", err)
	}
	if n != 2 {
		t.Errorf("PruneSenderCache removed %d rows, want 2", n)
	}
	if got, _ := s.PTRs(ctx, []string{"198.51.100.7", "192.0.2.1"}); len(got) != 1 {
		t.Errorf("after pruning: %v", got)
	}
	if sa, _ := s.SPFAuths(ctx, "example.com", day.Add(-24*time.Hour), []string{"192.0.2.1"}); len(sa) != 0 {
		t.Errorf("after pruning, the day before: %v", sa)
	}
}
