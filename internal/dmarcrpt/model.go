package dmarcrpt

import (
	"net/netip"
	"time"
)

// Namespaces of the <feedback> element.
const (
	// NamespaceRFC7489 is the target namespace of the RFC 7489 appendix C
	// schema; most RFC 7489-era reports declare no namespace at all.
	NamespaceRFC7489 = "http://dmarc.org/dmarc-xml/0.1"
	// NamespaceRFC9990 is the namespace of RFC 9990 §6.1 (DMARCbis
	// aggregate reports).
	NamespaceRFC9990 = "urn:ietf:params:xml:ns:dmarc-2.0"
)

// Report is an aggregate report without its records: what comes before
// them (version, report_metadata, policy_published, extension), and,
// once the decoder has reached the end, the record and message counts.
// Enumerated values are lower case; values outside the schemas are kept
// (lower-cased) with a warning.
type Report struct {
	// Namespace is the namespace URI of <feedback>: "" (none, as most
	// RFC 7489 reports), NamespaceRFC7489, NamespaceRFC9990, or another
	// (with a warning).
	Namespace string `json:"namespace,omitempty"`
	// Version is <version> as written, trimmed: "1.0" (RFC 7489 appendix
	// C and RFC 9990 §3.1.1.2 say it MUST be), "" when absent (RFC 9990:
	// optional), or another value with a warning.
	Version    string          `json:"version,omitempty"`
	Metadata   Metadata        `json:"report_metadata"`
	Policy     PolicyPublished `json:"policy_published"`
	Extensions []Extension     `json:"extensions,omitempty"` // the children of the top-level <extension> (RFC 9990 §3.1.1.6)

	// Records is the number of records read; Messages the sum of their
	// counts. Both are final once the decoder returned io.EOF.
	Records  int64 `json:"records"`
	Messages int64 `json:"messages"`
}

// Metadata is <report_metadata> (RFC 7489 appendix C, RFC 9990
// §3.1.1.3).
type Metadata struct {
	OrgName          string `json:"org_name"`
	Email            string `json:"email"`
	ExtraContactInfo string `json:"extra_contact_info,omitempty"`
	ReportID         string `json:"report_id"`
	// Begin and End are the reporting period (<date_range>, seconds since
	// the epoch, UTC); zero when absent or unreadable.
	Begin     time.Time `json:"begin"`
	End       time.Time `json:"end"`
	Errors    []string  `json:"errors,omitempty"`    // <error> elements (RFC 9990 §3.1.5)
	Generator string    `json:"generator,omitempty"` // RFC 9990: the name and version of the generating software
}

// PolicyPublished is <policy_published> (RFC 7489 appendix C, RFC 9990
// §3.1.1.5): the DMARC policy record the receiver found.
type PolicyPublished struct {
	Domain string `json:"domain"`          // lower case, without a trailing dot
	ADKIM  string `json:"adkim,omitempty"` // "r", "s"; "" when absent
	ASPF   string `json:"aspf,omitempty"`  // "r", "s"; "" when absent
	P      string `json:"p"`               // "none", "quarantine", "reject"
	SP     string `json:"sp,omitempty"`    // as P; "" when absent
	NP     string `json:"np,omitempty"`    // RFC 9990: as P; "" when absent
	// Pct is RFC 7489's pct (removed by RFC 9989); nil when absent or not
	// an integer from 0 to 100.
	Pct *int   `json:"pct,omitempty"`
	FO  string `json:"fo,omitempty"` // failure reporting options as written ("0", "1", "d:s")
	// Testing is RFC 9990's testing, the RFC 9989 "t" tag: "y", "n", ""
	// when absent.
	Testing string `json:"testing,omitempty"`
	// DiscoveryMethod is RFC 9990's discovery_method: "psl" (RFC 7489
	// §6.6.3) or "treewalk" (RFC 9989); "" when absent.
	DiscoveryMethod string `json:"discovery_method,omitempty"`
}

// Record is one <record>: a source IP address and a combination of
// results, with the number of messages that had them.
type Record struct {
	// Index is the record's position in the report, from 0, as in the
	// warning paths ("feedback/record[12]").
	Index       int64       `json:"index"`
	Row         Row         `json:"row"`
	Identifiers Identifiers `json:"identifiers"`
	AuthResults AuthResults `json:"auth_results"`
	// Extensions are the namespaced elements after auth_results (RFC 9990
	// §3.1.1.7).
	Extensions []Extension `json:"extensions,omitempty"`
}

// Row is <row> (RFC 9990 §3.1.1.8).
type Row struct {
	// SourceIP is the connecting IP address; the zero Addr when it did
	// not parse (with a warning). IPv4-mapped IPv6 addresses are unmapped.
	SourceIP netip.Addr `json:"source_ip"`
	// Count is the number of messages, ≥ 0. A count that is missing,
	// negative or not an integer makes the report invalid.
	Count           int64           `json:"count"`
	PolicyEvaluated PolicyEvaluated `json:"policy_evaluated"`
}

// PolicyEvaluated is <policy_evaluated> (RFC 9990 §3.1.1.9).
type PolicyEvaluated struct {
	// Disposition is "none", "quarantine", "reject", or RFC 9990's
	// "pass" (no action, passing DMARC with an enforcing policy).
	Disposition string   `json:"disposition"`
	DKIM        string   `json:"dkim"` // DMARC-aligned DKIM result: "pass", "fail"
	SPF         string   `json:"spf"`  // DMARC-aligned SPF result: "pass", "fail"
	Reasons     []Reason `json:"reasons,omitempty"`
}

// Reason is a policy override reason (RFC 7489 appendix C, RFC 9990
// §3.1.6). Type is "forwarded", "sampled_out" (RFC 7489),
// "trusted_forwarder", "mailing_list", "local_policy", "other", or
// "policy_test_mode" (RFC 9990).
type Reason struct {
	Type    string `json:"type"`
	Comment string `json:"comment,omitempty"`
}

// Identifiers is <identifiers> (RFC 9990 §3.1.1.10): domains, lower case.
type Identifiers struct {
	HeaderFrom   string `json:"header_from"`
	EnvelopeFrom string `json:"envelope_from,omitempty"` // "" for a null reverse-path or when absent
	EnvelopeTo   string `json:"envelope_to,omitempty"`
}

// AuthResults is <auth_results> (RFC 9990 §3.1.1.11): DKIM and SPF
// results, uninterpreted with respect to DMARC.
type AuthResults struct {
	DKIM []DKIMResult `json:"dkim,omitempty"`
	SPF  []SPFResult  `json:"spf,omitempty"` // RFC 7489: one or more; RFC 9990: at most one
}

// DKIMResult is one DKIM signature's result (RFC 9990 §3.1.1.12).
// Result is an RFC 8601 §2.7.1 result: "none", "pass", "fail", "policy",
// "neutral", "temperror", "permerror".
type DKIMResult struct {
	Domain      string `json:"domain"`
	Selector    string `json:"selector,omitempty"`
	Result      string `json:"result"`
	HumanResult string `json:"human_result,omitempty"`
}

// SPFResult is the SPF result (RFC 9990 §3.1.1.13). Scope is "mfrom" or
// RFC 7489's "helo"; Result an RFC 8601 §2.7.2 result: "none", "neutral",
// "pass", "fail", "softfail", "policy", "temperror", "permerror".
type SPFResult struct {
	Domain      string `json:"domain"`
	Scope       string `json:"scope,omitempty"`
	Result      string `json:"result"`
	HumanResult string `json:"human_result,omitempty"`
}

// Extension is an element the schema leaves open (RFC 9990 §5): a child
// of the top-level <extension>, or a namespaced element at the end of a
// record. Its content is summarized, not kept as XML.
type Extension struct {
	Space string `json:"space,omitempty"` // namespace URI; the prefix when undeclared; "" for none
	Name  string `json:"name"`            // local name
	// NameAttr and Definition are its "name" and "definition" attributes
	// (RFC 9990 §5: an extension MUST carry the URI of its definition).
	NameAttr   string `json:"name_attr,omitempty"`
	Definition string `json:"definition,omitempty"`
	// Text is the character data of the element and its descendants,
	// whitespace collapsed, at most 1 KiB.
	Text string `json:"text,omitempty"`
}
