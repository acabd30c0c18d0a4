package intake

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"strings"

	"github.com/moatmail/moat/internal/dmarcrpt"
	"github.com/moatmail/moat/internal/store"
)

// DMARC failure reports (RFC 6591, RFC 7489 §7.3).

// failureRow returns the row to store for the failure report rep read
// from raw. The message and what was read from it (addresses, the
// subject) go only into the compressed Raw and Parsed; the searchable
// fields hold nothing personal. The store seals Raw and Parsed to the key
// of the organization hosting the domain, if it set one, in the insert
// transaction (store.DMARCFailure.Sealed); views redact them
// (dmarcrpt.RedactFailure).
func (ing *Ingester) failureRow(base Submission, raw []byte, rep *dmarcrpt.FailureReport, warns []dmarcrpt.Warning) *store.DMARCFailure {
	sum := sha256.Sum256(raw)
	f := &store.DMARCFailure{
		ReceivedAt: ing.receivedAt(base), Source: base.Source, SourceDetail: base.SourceDetail, Raw: raw,
		Digest: hex.EncodeToString(sum[:]), DKIM: base.DKIM, Status: store.ReportOK, Warnings: warningStrings(warns),
		Domain: failureDomain(rep), Reporter: domainOf(rep.Mail.From), FeedbackType: rep.FeedbackType,
		AuthFailure: rep.AuthFailure, DeliveryResult: rep.DeliveryResult, ArrivalDate: rep.ArrivalDate.UTC(), // zero stays zero
		ReportingMTA: rep.ReportingMTA, UserAgent: rep.UserAgent, DKIMDomain: storedDomain(rep.DKIMDomain),
		DKIMSelector: rep.DKIMSelector, SPFDNS: rep.SPFDNS, IdentityAlignment: rep.IdentityAlignment,
		Incidents: rep.Incidents,
	}
	if rep.SourceIP.IsValid() {
		f.SourceIP = rep.SourceIP.String()
	}
	if len(f.Warnings) > 0 {
		f.Status = store.ReportWarnings
	}
	if b, err := json.Marshal(rep); err == nil {
		f.Parsed = b
	} else {
		f.Parsed = []byte("{}")
	}
	return f
}

// failureDomain is the domain a failure report is about, as the store
// keeps it: the first Reported-Domain (RFC 6591 §3.1), else the domain of
// the reported message's From, else the DKIM signing domain.
func failureDomain(rep *dmarcrpt.FailureReport) string {
	for _, d := range rep.ReportedDomain {
		if d = storedDomain(d); d != "" {
			return d
		}
	}
	if d := domainOf(rep.Original.From); d != "" {
		return d
	}
	return storedDomain(rep.DKIMDomain)
}

// domainOf is the domain of an address, as the store keeps domains.
func domainOf(addr string) string {
	at := strings.LastIndexByte(addr, '@')
	if at < 0 {
		return ""
	}
	return storedDomain(strings.Trim(addr[at+1:], "<> "))
}
