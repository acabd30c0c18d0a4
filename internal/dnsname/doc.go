// Package dnsname is the one place where Moat parses and validates domain
// names, so that every command and protocol package accepts and refuses the
// same names with the same message.
//
// Two entry points per shape of name:
//
//   - [Parse] (and [ParsePattern]) take a name given by a person or by a
//     lenient source: surrounding white space and one trailing dot are
//     removed, ASCII letters are lower-cased and U-labels are converted to
//     A-labels (IDNA2008, RFC 5891 §5 with the UTS 46 mapping for lookup:
//     "ÜBER.example" becomes "xn--ber-goa.example"). The result is the
//     canonical form Moat stores and queries.
//   - [Check] (and [CheckPattern]) take a name as it must appear in
//     protocol text (a policy, a record, a report): no trimming, no mapping,
//     A-labels only, any ASCII case.
//
// Both apply, at every [Level]:
//
//   - RFC 1035 §2.3.4 / RFC 5890 §2.3.1 lengths: labels of 1 to 63 octets,
//     at most 253 octets in text form without the trailing dot; no empty
//     label ("a..b", ".a").
//   - RFC 5890 §2.3.2.1 / RFC 5891 §5.4: a label beginning with "xn--" must
//     be a valid A-label: its Punycode decodes to a valid U-label that
//     encodes back to the same A-label ("xn--zz" is refused).
//
// and then the rules of the level: [LDH], [Host], [Owner] or [Domain].
// Failures are an *[Error] naming the input and the reason, wrapping
// [ErrInvalid]; the same input gives the same message from every caller.
// [CheckLength] applies only the length rules, for names whose labels may
// hold any octet (SPF targets after macro expansion).
//
// [OrgDomain] finds the organizational domain with the Public Suffix List
// (RFC 7489 §3.2), and [IsNotFound] is the one predicate for "no such name
// or no such record" (NXDOMAIN or NODATA, RFC 2308) in a resolver's error.
package dnsname
