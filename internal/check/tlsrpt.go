package check

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/moatmail/moat/internal/tlsrpt"
)

// tlsrptData is what the TLS-RPT TXT lookup found.
type tlsrptData struct {
	record *tlsrpt.Record
	raw    string
	err    error
}

func (r *run) gatherTLSRPT(ctx context.Context) {
	done := r.timed("tls-rpt", "")
	r.tlsrpt.record, r.tlsrpt.raw, r.tlsrpt.err = tlsrpt.LookupRecord(ctx, r.res, r.domain)
	done()
}

// tlsrptFix is the record a fix publishes.
func (r *run) tlsrptFix() string {
	return txtRecord(tlsrpt.RecordName(r.domain), "v=TLSRPTv1; rua=mailto:tlsrpt@"+r.domain)
}

func (r *run) evalTLSRPT() {
	if r.mx.null {
		r.add("tls-rpt.not-applicable", fmt.Sprintf("%s has a null MX; TLS-RPT does not apply.", r.domain), "", nil)
		return
	}
	d := &r.tlsrpt
	name := tlsrpt.RecordName(r.domain)
	var le *tlsrpt.LookupError
	errors.As(d.err, &le)
	cause := d.err
	if le != nil {
		cause = le.Err
	}
	switch {
	case d.err == nil:
		r.add("tls-rpt.ok", fmt.Sprintf("%s: reports go to %s.", name, strings.Join(d.record.RUA, ", ")), "", d.raw)
	case errors.Is(d.err, tlsrpt.ErrNoRecord):
		r.add("tls-rpt.missing", fmt.Sprintf("%s has no \"v=TLSRPTv1\" TXT record.", name), "publish "+r.tlsrptFix()+" (or an https:// endpoint; Moat's intake accepts both)", nil)
	case errors.Is(d.err, tlsrpt.ErrMultipleRecords):
		var recs []string
		for _, t := range le.TXT {
			if strings.HasPrefix(t, "v=TLSRPTv1") {
				recs = append(recs, fmt.Sprintf("%q", t))
			}
		}
		r.add("tls-rpt.multiple", fmt.Sprintf("%s has %d \"v=TLSRPTv1\" records: %s.", name, len(recs), strings.Join(recs, ", ")),
			"merge them into one record listing every rua, for example "+txtRecord(name, mergeTLSRPT(r.domain, le.TXT)), le.TXT)
	case errors.Is(d.err, tlsrpt.ErrRecordSyntax):
		fix := "replace it with " + r.tlsrptFix()
		r.add("tls-rpt.syntax", fmt.Sprintf("%s: %q is invalid: %v", name, d.raw, cause), fix, d.raw)
	default:
		r.add("tls-rpt.dns-error", fmt.Sprintf("%s: %v", name, cause), "Check that the domain's name servers answer TXT queries for "+name+".", nil)
	}
}

// mergeTLSRPT joins the rua URIs of several valid records into one record.
func mergeTLSRPT(domain string, txts []string) string {
	var rua []string
	for _, t := range txts {
		if rec, err := tlsrpt.ParseRecord(t); err == nil {
			rua = append(rua, rec.RUA...)
		}
	}
	if len(rua) == 0 {
		return "v=TLSRPTv1; rua=mailto:tlsrpt@" + domain
	}
	return (&tlsrpt.Record{RUA: rua}).String()
}
