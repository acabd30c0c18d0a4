package hosting

import (
	"strconv"

	"github.com/moatmail/moat/internal/store"
)

// Record is one DNS record a domain owner publishes in their zone.
type Record struct {
	Name  string `json:"name"`  // fully qualified, with the trailing dot
	Type  string `json:"type"`  // "CNAME" or "TXT"
	Value string `json:"value"` // CNAME target with trailing dot, or TXT text (unquoted)
	Note  string `json:"note"`
}

// Zone renders the record as a zone-file line.
func (r Record) Zone() string {
	v := r.Value
	if r.Type == "TXT" {
		v = strconv.Quote(v)
	}
	return r.Name + "\t" + r.Type + "\t" + v
}

// STSName is the name in Moat's zone that holds the _mta-sts TXT record of
// domain: "<domain>._mta-sts.<zone>".
func (s Settings) STSName(domain string) string { return domain + "._mta-sts." + s.Zone }

// TLSRPTName is the name in Moat's zone that holds the _smtp._tls TXT
// record of domain: "<domain>._smtp._tls.<zone>".
func (s Settings) TLSRPTName(domain string) string { return domain + "._smtp._tls." + s.Zone }

// Delegation returns the three CNAME records a customer publishes once
// (RFC 8461 §8.2); from then on every policy change is served without
// touching their DNS.
func (s Settings) Delegation(domain string) []Record {
	return []Record{
		{Name: "mta-sts." + domain + ".", Type: "CNAME", Value: s.PolicyHost + ".",
			Note: "policy host: Moat serves https://mta-sts." + domain + "/.well-known/mta-sts.txt with its own certificate"},
		{Name: "_mta-sts." + domain + ".", Type: "CNAME", Value: s.STSName(domain) + ".",
			Note: "MTA-STS TXT record (RFC 8461 §3.1 senders follow the CNAME); its id changes with every policy change"},
		{Name: "_smtp._tls." + domain + ".", Type: "CNAME", Value: s.TLSRPTName(domain) + ".",
			Note: "TLS-RPT TXT record (RFC 8460 §3): where senders send TLS reports"},
	}
}

// SelfPublished returns the records for an owner who publishes the TXT
// records in their own zone instead of CNAMEs: they must update the
// _mta-sts record on every policy change. The policy host still needs its
// CNAME.
func (s Settings) SelfPublished(d *store.Domain) []Record {
	out := []Record{s.Delegation(d.Name)[0]}
	out = append(out, Record{Name: "_mta-sts." + d.Name + ".", Type: "TXT", Value: STSRecord(d.PolicyID),
		Note: "update this record whenever the policy changes, or senders keep the cached policy"})
	if v := s.TLSRPTRecord(d); v != "" {
		out = append(out, Record{Name: "_smtp._tls." + d.Name + ".", Type: "TXT", Value: v,
			Note: "TLS-RPT report destinations"})
	}
	return out
}
