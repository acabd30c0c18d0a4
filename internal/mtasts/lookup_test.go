package mtasts_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/moatmail/moat/internal/mtasts"
)

// lookupZone holds the TXT fixtures of TestLookupRecord, each named after
// the quirk it exercises.
const lookupZone = `
_mta-sts.plain.test.          60 IN TXT "v=STSv1; id=20160831085700Z;"
_mta-sts.delegated.test.      60 IN CNAME delegated.test._mta-sts.provider.test.
delegated.test._mta-sts.provider.test. 60 IN TXT "v=STSv1; id=deleg1"
_mta-sts.cname-chain.test.    60 IN CNAME hop1.provider.test.
hop1.provider.test.           60 IN CNAME hop2.provider.test.
hop2.provider.test.           60 IN TXT "v=STSv1; id=chain2"
_mta-sts.split-strings.test.  60 IN TXT "v=STSv1; " "id=split" "1"
_mta-sts.two-records.test.    60 IN TXT "v=STSv1; id=a"
_mta-sts.two-records.test.    60 IN TXT "v=STSv1; id=b"
_mta-sts.with-spf.test.       60 IN TXT "v=spf1 -all"
_mta-sts.with-spf.test.       60 IN TXT "v=STSv1; id=withspf"
_mta-sts.other-version.test.  60 IN TXT "v=STSv10; id=a"
_mta-sts.other-version.test.  60 IN TXT "v=STSv1; id=kept"
_mta-sts.only-other.test.     60 IN TXT "v=STSv2; id=a"
_mta-sts.wsp-before-delim.test. 60 IN TXT "v=STSv1  ;  id=foo"
_mta-sts.version-only.test.   60 IN TXT "v=STSv1"
_mta-sts.bad-id.test.         60 IN TXT "v=STSv1; id=2024-01-01"
_mta-sts.two-invalid.test.    60 IN TXT "v=STSv1"
_mta-sts.two-invalid.test.    60 IN TXT "v=STSv1; id=ok"
_mta-sts.nodata.test.         60 IN A 127.0.0.1
`

func TestLookupRecord(t *testing.T) {
	t.Parallel()
	z := newZone()
	z.add(t, lookupZone)
	// A record longer than a UDP answer: truncated, then retried over TCP.
	long := "v=STSv1; id=long; x=" + strings.Repeat("y", 1500)
	var parts []string
	for s := long; s != ""; {
		n := min(len(s), 255)
		parts = append(parts, `"`+s[:n]+`"`)
		s = s[n:]
	}
	z.add(t, "_mta-sts.truncated.test. 60 IN TXT "+strings.Join(parts, " "))
	z.servfail["_mta-sts.servfail.test."] = true
	addr := startDNS(t, z)

	type want struct {
		id     string
		raw    string
		err    error
		nTXT   int // TXT records reported in the *LookupError
		reason string
	}
	cases := map[string]want{
		"plain.test":            {id: "20160831085700Z", raw: "v=STSv1; id=20160831085700Z;"},
		"PLAIN.test.":           {id: "20160831085700Z", raw: "v=STSv1; id=20160831085700Z;"},
		"delegated.test":        {id: "deleg1", raw: "v=STSv1; id=deleg1"},
		"cname-chain.test":      {id: "chain2", raw: "v=STSv1; id=chain2"},
		"split-strings.test":    {id: "split1", raw: "v=STSv1; id=split1"},
		"with-spf.test":         {id: "withspf", raw: "v=STSv1; id=withspf"},
		"other-version.test":    {id: "kept", raw: "v=STSv1; id=kept"},
		"wsp-before-delim.test": {id: "foo", raw: "v=STSv1  ;  id=foo"},
		"truncated.test":        {id: "long", raw: long},
		"two-records.test":      {err: mtasts.ErrMultipleRecords, nTXT: 2},
		"two-invalid.test":      {err: mtasts.ErrMultipleRecords, nTXT: 2},
		"only-other.test":       {err: mtasts.ErrNoRecord, nTXT: 1, reason: `none of 1 TXT records`},
		"version-only.test":     {err: mtasts.ErrRecordSyntax, raw: "v=STSv1", nTXT: 1, reason: `missing required field "id"`},
		"bad-id.test":           {err: mtasts.ErrRecordSyntax, raw: "v=STSv1; id=2024-01-01", nTXT: 1, reason: `"-" is not allowed`},
		"nodata.test":           {err: mtasts.ErrNoRecord},
		"nxdomain.test":         {err: mtasts.ErrNoRecord},
		"servfail.test":         {err: mtasts.ErrRecordLookup},
		"bad..test":             {err: mtasts.ErrInvalidDomain},
		"under_score.test":      {err: mtasts.ErrInvalidDomain, reason: `label "under_score" has the character '_'`},
		"192.0.2.1":             {err: mtasts.ErrInvalidDomain, reason: "is an IP address"},
		"localhost":             {err: mtasts.ErrInvalidDomain, reason: "not a fully qualified host name"},
	}
	for _, tcp := range []bool{false, true} {
		r := newResolver(addr, tcp)
		for domain, w := range cases {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			rec, raw, err := mtasts.LookupRecord(ctx, r, domain)
			cancel()
			if !errors.Is(err, w.err) {
				t.Errorf("tcp=%v %s: error %v, want %v", tcp, domain, err, w.err)
				continue
			}
			if raw != w.raw {
				t.Errorf("tcp=%v %s: raw %q, want %q", tcp, domain, raw, w.raw)
			}
			if err != nil {
				var le *mtasts.LookupError
				if !errors.As(err, &le) || le.Name != "_mta-sts."+strings.ToLower(domain) || len(le.TXT) != w.nTXT {
					t.Errorf("tcp=%v %s: %#v, want a *LookupError with %d TXT records", tcp, domain, err, w.nTXT)
				}
				if !strings.Contains(err.Error(), w.reason) {
					t.Errorf("tcp=%v %s: message %q lacks %q", tcp, domain, err, w.reason)
				}
				continue
			}
			if rec.ID != w.id {
				t.Errorf("tcp=%v %s: id %q, want %q", tcp, domain, rec.ID, w.id)
			}
		}
	}
	if z.tcpQueries.Load() == 0 {
		t.Error("no query arrived over TCP")
	}
}

// Over UDP, a truncated answer makes the resolver retry over TCP.
func TestLookupRecordTruncation(t *testing.T) {
	t.Parallel()
	z := newZone()
	var parts []string
	for range 8 {
		parts = append(parts, `"`+strings.Repeat("z", 250)+`"`)
	}
	z.add(t, `_mta-sts.big.test. 60 IN TXT "v=STSv1; id=big; x=" `+strings.Join(parts, " "))
	r := newResolver(startDNS(t, z), false)
	rec, _, err := mtasts.LookupRecord(context.Background(), r, "big.test")
	if err != nil || rec.ID != "big" {
		t.Fatalf("got %+v, %v", rec, err)
	}
	if z.tcpQueries.Load() == 0 {
		t.Error("the 2 KB answer did not go over TCP")
	}
}

func TestRecordName(t *testing.T) {
	t.Parallel()
	if got := mtasts.RecordName("Example.COM."); got != "_mta-sts.example.com" {
		t.Errorf("RecordName = %q", got)
	}
}
