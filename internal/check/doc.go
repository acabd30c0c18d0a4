// Package check is Moat's domain checker: it looks at everything that
// secures a domain's email, explains each finding, gives the exact DNS
// record or change that fixes it, and rates the domain from 0 to 100
// (grade A to F). It backs `moat check`.
//
// What it checks, and the specifications it follows:
//
//   - MX (RFC 5321 §5.1, RFC 7505 null MX): present, resolvable.
//   - SPF (RFC 7208): one record, syntax, the 10-lookup and 2-void-lookup
//     limits of §4.6.4 counted through the whole include/redirect tree
//     (package spf), the final "all", ptr (§5.5), record length (§3.4).
//   - DMARC (RFC 7489, DMARCbis np/psd/t): the record at the domain or its
//     organizational domain, p/sp/np/pct/t, rua/ruf and the external
//     report authorization of RFC 7489 §7.1 (package dmarc).
//   - DKIM (RFC 6376, RFC 8301, RFC 8463): the selectors given plus common
//     ones, key type and size, revoked keys, t=y (package dkim).
//   - MTA-STS (RFC 8461): one valid TXT record (§3.1), the policy fetched
//     under every rule of §3.3 (package mtasts), its mode and max_age, MX
//     coverage (§4.1), whether this Moat hosts it.
//   - TLS-RPT (RFC 8460 §3): one valid record, rua schemes and syntax.
//   - BIMI (draft-blank-ietf-bimi-04): the default._bimi record, an HTTPS
//     SVG Tiny PS logo, the a= evidence, DMARC at enforcement (§7.1).
//   - SMTP transport on every MX host (RFC 3207, RFC 8461 §4.2, RFC 8996):
//     STARTTLS, TLS version, certificate chain, name and expiry (package
//     smtpprobe); DNSSEC (the AD bit) and DANE TLSA (RFC 7672) as
//     information only.
//
// Every independent lookup runs in parallel, and each DNS question is
// asked once per check, so a check takes about as long as its longest
// chain of dependent steps (MX → MX host address → SMTP probe), not the
// sum of its lookups; Report.Timings shows the breakdown.
//
// Safety: policies and logos are never fetched from, and MX hosts never
// probed at, private, loopback or link-local addresses unless
// Options.AllowPrivate is set, so that a checker run for others cannot
// reach internal networks. Every lookup, connection and fetch is bounded
// in time (Options.Timeout, Options.StepTimeout) and size.
//
// The scoring scheme (Pillars, Rules) is documented in README.md ("Domain check") so
// that a user can recompute a score by hand from the findings.
package check
