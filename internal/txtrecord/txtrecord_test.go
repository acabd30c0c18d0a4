package txtrecord

import (
	"context"
	"errors"
	"net"
	"testing"
)

type fakeResolver map[string][]string

func (f fakeResolver) LookupTXT(_ context.Context, name string) ([]string, error) {
	switch name {
	case "nx.example.":
		return nil, &net.DNSError{Err: "no such host", Name: name, IsNotFound: true}
	case "servfail.example.":
		return nil, &net.DNSError{Err: "server misbehaving", Name: name}
	}
	return f[name], nil
}

func TestLookup(t *testing.T) {
	t.Parallel()
	r := fakeResolver{
		"one.example.":     {"v=spf1 -all", "v=STSv1; id=1"},
		"several.example.": {"v=STSv1; id=1", "v=STSv1 ;id=2"},
		"other.example.":   {"v=STSv10; id=1", "hello"},
	}
	keep := func(t string) bool { return HasVersion(t, "v=STSv1") }
	for _, tc := range []struct {
		name    string
		outcome Outcome
		matched int
		reason  string
	}{
		{"one.example.", One, 1, ""},
		{"several.example.", Several, 2, ""},
		{"other.example.", None, 0, `none of 2 TXT records begins with "v=STSv1"`},
		{"empty.example.", None, 0, "no TXT record"},
		{"nx.example.", None, 0, "no TXT record"},
		{"servfail.example.", Failed, 0, ""},
	} {
		res := Lookup(context.Background(), r, tc.name, keep)
		if res.Outcome != tc.outcome || len(res.Matched) != tc.matched {
			t.Errorf("%s: outcome %d with %d matched, want %d with %d", tc.name, res.Outcome, len(res.Matched), tc.outcome, tc.matched)
		}
		if tc.reason != "" && res.NoneReason("v=STSv1") != tc.reason {
			t.Errorf("%s: reason %q, want %q", tc.name, res.NoneReason("v=STSv1"), tc.reason)
		}
		var dnsErr *net.DNSError
		if (tc.name == "nx.example." || tc.name == "servfail.example.") != errors.As(res.Err, &dnsErr) {
			t.Errorf("%s: Err %v", tc.name, res.Err)
		}
	}
	for txt, want := range map[string]bool{"v=STSv1": true, "v=STSv1;id=1": true, "v=STSv1\t; id=1": true, "v=STSv10": false, "V=STSv1": false, " v=STSv1": false} {
		if HasVersion(txt, "v=STSv1") != want {
			t.Errorf("HasVersion(%q) = %v", txt, !want)
		}
	}
}
