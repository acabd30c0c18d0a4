// Package mtasts implements SMTP MTA Strict Transport Security, RFC 8461:
// the "_mta-sts" TXT record, the policy file, MX pattern matching and the
// HTTPS policy fetch. It is used to format and validate the policies Moat
// serves, by "moat domains verify", and by the domain checker, which must
// explain exactly why a foreign domain's policy fails: every error names
// the rule that failed, through a sentinel, and the place and value,
// through a typed error (*ParseError, *PolicyError, *LookupError,
// *FetchError).
//
// What is implemented, per section of RFC 8461:
//
//   - §3.1 TXT record: [ParseRecord] follows the ABNF exactly: "v=STSv1"
//     first and case-sensitive, "id=" 1*32 ALPHA/DIGIT required, extension
//     names and values by their grammar, *WSP around ";" (so
//     "v=STSv1  ; id=a" is valid) and at most one trailing ";". The first of
//     repeated fields wins (§3.2's last paragraph covers TXT records too).
//     [LookupRecord] queries "_mta-sts.<domain>" (the resolver follows
//     CNAMEs, as senders MUST), keeps only records beginning with "v=STSv1"
//     followed by ";", whitespace or nothing, and reports no record
//     ([ErrNoRecord]), several ([ErrMultipleRecords]), a DNS failure
//     ([ErrRecordLookup]) or an invalid record ([ErrRecordSyntax]); senders
//     MUST treat all of them as "no policy". [Record.String] formats a
//     record and [ValidID] checks an id.
//   - §3.2 Policy: [ParsePolicy] accepts LF or CRLF line ends, applies the
//     ABNF to every line (no blank lines, no BOM, no control characters,
//     valid UTF-8), takes fields in any order, keeps the first of repeated
//     fields except "mx", keeps unknown fields as extensions, and requires
//     version "STSv1", a mode, max_age (1 to 10 digits, at most 31557600)
//     and, unless mode is "none", at least one mx of the form ["*."] Domain
//     (dnsname.LDH: A-labels, no trailing dot, the DNS length limits). [Policy.Format] writes the canonical CRLF
//     form (version, mode, mx..., max_age, extensions) and
//     [Policy.Validate] checks a policy built from user input, reporting
//     every bad field. [PolicyHost], [PolicyURL] and [RecordName] build the
//     names involved.
//   - §3.3 HTTPS fetch: [Fetcher.Fetch] uses HTTPS only, resolves the
//     Policy Host with the given resolver and dials only addresses allowed
//     by an optional hook, sends SNI for the Policy Host (§7.1), requires
//     TLS 1.2 or later (§7.2), verifies the certificate against the
//     "mta-sts" DNS-ID (RFC 6125: DNS-IDs only, "*" only as the whole
//     left-most label), its chain and its validity period, accepts only
//     status 200, never follows redirects, uses no HTTP cache and no proxy,
//     bounds time (default one minute) and size (default 64 KiB, also for
//     chunked and compressed bodies), and checks the media type is
//     text/plain (parameters ignored). Each failed rule has its own
//     sentinel: [ErrFetchDNS], [ErrFetchAddrRefused], [ErrFetchConnect],
//     [ErrFetchTLS], [ErrFetchStatus], [ErrFetchRedirect],
//     [ErrFetchMediaType], [ErrFetchTooLarge], [ErrFetchTimeout], then the
//     policy errors.
//   - §4.1 MX host validation: [MatchMX] and [Policy.Match] compare
//     ASCII case-insensitively, ignore trailing dots, and let "*." match
//     exactly one left-most label. [ValidMXPattern] checks a pattern an
//     author wants to publish, more strictly than the ABNF: at least two
//     labels after any wildcard, no IP addresses, DNS length limits.
//
// Not implemented here: policy caching and proactive refresh (§3.3, §5.1),
// policy application during delivery (§5), TLSRPT reporting (§6),
// certificate revocation checks (optional in §3.3). Internationalized names
// are not converted: patterns and hosts must already be A-labels (§3.2: the
// "mx" value MUST be the Punycode A-label); U-labels are rejected by the
// Domain syntax and never match.
package mtasts
