// Package tlsrpt implements SMTP TLS Reporting, RFC 8460: the
// "_smtp._tls" TXT record, the aggregate report model, tolerant decoding
// of the reports real senders produce, and their extraction from e-mail
// and HTTPS bodies. Moat's report intake and domain checker build on it.
// Every error names what was wrong and where, through a sentinel
// ([ErrRecordSyntax], [ErrInvalidReport], [ErrTooLarge], [ErrNoReport],
// ...) and a typed error ([*ParseError], [*LookupError], [*DecodeError],
// [*ValidationError]).
//
// What is implemented, per section of RFC 8460:
//
//   - §3 Reporting policy: [ParseRecord] follows the ABNF exactly:
//     "v=TLSRPTv1" first and case-sensitive, *WSP around ";" and around
//     the commas of rua, at most one trailing ";", extension names and
//     values by their grammar, and at least one rua. Each rua URI must be
//     an RFC 3986 URI with "," "!" ";" percent-encoded (a MUST of §3) and
//     the scheme "mailto" (with an address) or "https" (with a host), the
//     two schemes §3 supports. Repeated rua fields are merged. [Record.String]
//     formats a record. [LookupRecord] queries "_smtp._tls.<domain>" (the
//     resolver follows CNAMEs), keeps only records beginning with
//     "v=TLSRPTv1" followed by ";", whitespace or nothing, and reports no
//     record ([ErrNoRecord]), several ([ErrMultipleRecords]: senders MUST
//     then assume no TLSRPT), a DNS failure ([ErrRecordLookup]) or an
//     invalid record ([ErrRecordSyntax]).
//   - §4 Reporting schema: [Report] is the normalized model. [Decode]
//     reads a report through a lenient intermediate tree (encoding/json
//     validates; no strict struct decoding) and accepts, with a [Warning]
//     carrying the JSON path for each deviation: mx-host as a string or an
//     array and entries with an "mx: " prefix; date-times without a zone
//     (UTC assumed), with a space for "T", without seconds, date-only, or
//     Unix numbers (fractional seconds are plain RFC 3339); null, missing
//     or mistyped strings (contact-info: null); missing summary,
//     failure-details, sending-mta-ip, receiving-*, policy-domain and
//     policy-string; counts written as strings or as integral
//     floating-point numbers; Microsoft's TLSA policy-string holding one
//     JSON-encoded array (unwrapped); unknown and upper-case policy-type
//     and result-type (kept, lower-cased); total-failure-session-count that
//     differs from the failure details (kept as reported: §4 allows
//     overlapping failure types); "policies" or "failure-details" as a
//     single object; keys in another case; duplicate keys (the last wins);
//     a UTF-8 or UTF-16 byte order mark; invalid UTF-8; trailing data
//     after the JSON object. Policy domains are lower-cased without a
//     trailing dot and U-labels become A-labels (§4.4: domains MUST be
//     A-labels); IP addresses are written canonically. It rejects, with a
//     [*DecodeError] wrapping [ErrInvalidReport] that gives the path and
//     byte offset: input that is not JSON or not an object, an object with
//     neither "organization-name" nor "policies", policies or details that
//     are not objects, and counts that are negative, fractional or not
//     numbers (a count Moat cannot add up is not guessed). Nesting deeper
//     than [MaxDepth] and arrays longer than [MaxArrayLen] also wrap
//     [ErrTooLarge]. [Validate] is the strict §4.3/§4.4 check of a decoded
//     report: required fields, known types, counts, date order, addresses.
//     [Report.Domains] and [Report.Totals] serve the intake.
//   - §5.1, §5.2 File name and compression: [Decompress] sniffs gzip
//     (concatenated members, trailing garbage tolerated), zip (first file
//     member) and plain JSON by their bytes, unwraps up to two layers, and
//     bounds the output against compression bombs ([ErrTooLarge]).
//   - §5.3 E-mail transport: [ExtractMessage] walks the MIME tree with
//     github.com/emersion/go-message's textproto package and returns the
//     candidate report parts in priority order (application/tlsrpt+gzip,
//     application/tlsrpt+json, the non-standard application/tlsrpt,
//     generic binary parts that sniff as gzip, zip or JSON, text parts
//     holding a report object, a bare message body), with From, Subject,
//     Message-ID, Date and the TLS-Report-Domain and TLS-Report-Submitter
//     fields. [ParseSubject] reads the §5.3 Subject, also without the
//     angle brackets around the Report-ID. DKIM verification (§3: reports
//     lacking a valid signature MUST be ignored) is the caller's, on the
//     raw message.
//   - §5.4 HTTPS transport: [FromHTTP] checks the body against
//     application/tlsrpt+gzip or application/tlsrpt+json and sniffs any
//     other type.
//
// Not implemented here: sending reports (§4.1 time frames, §5.5 retries),
// the TLS-Report-Submitter/contact-info match of §5.3 and the metadata
// comparison of §5.6, which need the message and the report together and
// belong to the intake.
package tlsrpt
