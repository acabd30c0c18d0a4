package intake

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/moatmail/moat/internal/store"
)

func TestDMARCUploadAllow(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st := openStore(t)
	org := &store.Org{Name: "a"}
	if err := st.CreateOrg(ctx, org); err != nil {
		t.Fatal(err)
	}
	for name, o := range map[string]int64{"a.example": org.ID, "b.example": 0} {
		if o == 0 {
			other := &store.Org{Name: "b"}
			if err := st.CreateOrg(ctx, other); err != nil {
				t.Fatal(err)
			}
			o = other.ID
		}
		if err := st.CreateDomain(ctx, &store.Domain{Name: name, Mode: "testing", OrgID: o, MaxAge: 86400},
			&store.PolicyVersion{PolicyID: "1", Mode: "testing", Policy: "version: STSv1"}); err != nil {
			t.Fatal(err)
		}
	}
	allow := DMARCUploadAllow(ctx, st.Scoped(store.Scope{Orgs: []int64{org.ID}}))
	for _, tc := range []struct {
		kind, domain, refused string // refused: "" when allowed, else a part of the error
	}{
		{store.KindDMARC, "a.example", ""},
		{store.KindDMARCFailure, "a.example", ""},
		{store.KindDMARC, "b.example", `"b.example", which is not hosted`},
		{store.KindDMARC, "c.example", `"c.example", which is not hosted`},
		{store.KindDMARC, "", "only the operator"},
		{store.KindTLSRPT, "a.example", "TLS report"},
	} {
		err := allow(tc.kind, tc.domain)
		switch {
		case tc.refused == "" && err != nil:
			t.Errorf("%s %q: %v", tc.kind, tc.domain, err)
		case tc.refused != "" && (!errors.Is(err, ErrNotAllowed) || !strings.Contains(err.Error(), tc.refused)):
			t.Errorf("%s %q: %v, want ErrNotAllowed saying %q", tc.kind, tc.domain, err, tc.refused)
		}
	}
	op := DMARCUploadAllow(ctx, st.Scoped(store.Scope{Operator: true}))
	if err := op(store.KindDMARC, ""); err != nil {
		t.Errorf("operator, unreadable report: %v", err)
	}
	if err := op(store.KindTLSRPT, "a.example"); !errors.Is(err, ErrNotAllowed) {
		t.Errorf("operator, TLS report: %v", err)
	}
}

func TestResultOutcome(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		r    Result
		want string
	}{
		{Result{Status: store.ReportOK}, OutcomeStored},
		{Result{Status: store.ReportWarnings}, OutcomeStored},
		{Result{Status: store.ReportInvalid, Error: "x"}, OutcomeInvalid},
		{Result{Status: store.ReportOK, ConflictOf: 3}, OutcomeConflict},
		{Result{Status: store.ReportInvalid, Duplicate: true}, OutcomeDuplicate},
	} {
		if got := tc.r.Outcome(); got != tc.want {
			t.Errorf("%+v: %s, want %s", tc.r, got, tc.want)
		}
	}
}
