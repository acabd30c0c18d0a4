// Package spf parses SPF records (RFC 7208, Sender Policy Framework) and
// walks their include/redirect tree counting DNS lookups, for the domain
// checker. It does not evaluate check_host() for a given client.
//
// What is implemented, by section of RFC 7208:
//
//   - §3.3, §3.4: records split over several strings are read
//     concatenated (the resolver joins them); IsTooLong and AnswerSize
//     give the 255-byte string and 450-byte answer facts.
//   - §4.3: a malformed or single-label domain is "none" at the root and
//     ErrBadTarget at an include or redirect.
//   - §4.4, §4.5: Lookup queries TXT only, keeps records starting with
//     "v=spf1" followed by a space or the end (any case), and returns
//     ErrNoRecord (none), ErrMultipleRecords (permerror) or ErrLookup
//     (temperror).
//   - §4.6, §5, §6, §12: Parse checks the whole record against the
//     collected ABNF: qualifiers, the eight mechanisms with their
//     domain-specs, dual-cidr-lengths (no leading zeros), ip4/ip6
//     networks; redirect, exp and unknown modifiers (whose values are
//     still macro-strings); redirect or exp twice is an error.
//   - §4.6.4: Walk counts the terms that cost a lookup (include, a, mx,
//     ptr, exists, redirect) over the whole tree in evaluation order,
//     with void lookups (limit 2), at most 10 MX names per mx (more is a
//     permerror) and the first 10 PTR names; it names the term where a
//     limit is passed (Result.ExceededAt, VoidExceededAt).
//   - §5.2, §6.1: a missing record at an include or redirect target is a
//     permerror; redirect is evaluated after the mechanisms and ignored
//     when the record has "all".
//   - §7: macro syntax is validated in every domain-spec and unknown
//     modifier (letters, transformers, nonzero digits, delimiters, the
//     escapes %% %_ %-; c, r and t only outside domain-specs). Expansion
//     implements §7.3 (reversal, right-hand parts, delimiters, URL
//     escaping of upper-case macros, truncation to 253 octets). Walk
//     expands %{d} always and the other letters only when
//     WalkOpts.Sender gives a sender context; otherwise such terms are
//     counted but "not evaluated statically" (Step.Unexpanded). %{p} is
//     never expanded.
//
// Not implemented: check_host() results for a client (use
// blitiri.com.ar/go/spf), exp= explanation fetching, Received-SPF.
package spf
