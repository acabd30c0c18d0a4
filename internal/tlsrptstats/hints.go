package tlsrptstats

import (
	"fmt"
	"strings"
)

// hint says what failures of a result type (RFC 8460 §4.3) usually mean for
// domain, naming the MX hosts involved, and what to fix.
func hint(resultType, domain string, mxs []string) (meaning, fix string) {
	mx := mxPhrase(mxs)
	policyURL := "https://mta-sts." + domain + "/.well-known/mta-sts.txt"
	switch resultType {
	case "starttls-not-supported":
		return mx + " did not offer STARTTLS", "enable STARTTLS with a valid certificate there"
	case "certificate-host-mismatch":
		var m string
		switch len(mxs) {
		case 0:
			m = "the certificate of an MX host does not name it"
		case 1:
			m = fmt.Sprintf("the certificate of MX %s does not name %s", mxs[0], mxs[0])
		default:
			m = "the certificates of " + mx + " do not name their hosts"
		}
		return m + " (or the MX is not matched by the policy's mx lines)",
			"install certificates whose subject alternative names include the MX host names, and list every MX in the policy"
	case "certificate-expired":
		return "the certificate of " + mx + " has expired", "renew it, and automate renewal"
	case "certificate-not-trusted":
		return "senders do not trust the certificate of " + mx + " (self-signed, an unknown CA, or a missing intermediate)",
			"use a certificate from a public CA and serve the full chain"
	case "validation-failure":
		return "TLS with " + mx + " failed for a reason the senders did not classify",
			"read the failure-reason-code of the reports' failure details"
	case "sts-policy-fetch-error":
		return "senders could not fetch " + policyURL,
			"make sure mta-sts." + domain + " resolves (its CNAME to the policy host) and serves the policy over HTTPS"
	case "sts-policy-invalid":
		return "senders found the policy at " + policyURL + " invalid",
			"check the policy's syntax and its mx patterns"
	case "sts-webpki-invalid":
		return "senders could not validate the certificate of the policy host mta-sts." + domain,
			"make sure mta-sts." + domain + " serves a valid, trusted certificate that names it"
	case "tlsa-invalid":
		return "the TLSA records of " + mx + " match none of its certificates",
			"update the TLSA records (or the certificate) so that they match"
	case "dnssec-invalid":
		return "DNSSEC validation failed for " + mx, "repair the DNSSEC signatures of its zone"
	case "dane-required":
		return "senders require DANE, but " + mx + " has no DNSSEC-signed TLSA records",
			"publish TLSA records for it in a signed zone"
	case "unspecified":
		return "senders counted failed sessions without detailing them", "look at the reports themselves"
	}
	return fmt.Sprintf("senders reported failures of type %q", resultType),
		"look at the failure details of the reports"
}

// mxPhrase names MX hosts: "MX a", "MX a and b", "MX a, b and 3 more", or
// "an MX host" when none is known.
func mxPhrase(mxs []string) string {
	switch len(mxs) {
	case 0:
		return "an MX host"
	case 1:
		return "MX " + mxs[0]
	case 2:
		return "MX " + mxs[0] + " and " + mxs[1]
	}
	return fmt.Sprintf("MX %s and %d more", strings.Join(mxs[:2], ", "), len(mxs)-2)
}
