// Package dmarcrpt reads DMARC reports: aggregate reports (RFC 7489 §7.2
// and appendix C, and their DMARCbis successor RFC 9990 with the
// namespace urn:ietf:params:xml:ns:dmarc-2.0) and failure reports (RFC
// 6591 authentication failure reports in the ARF of RFC 5965, with the
// DMARC fields of RFC 7489 §7.3.1 and the DMARCbis failure-reporting
// document). Policy records themselves (RFC 7489, RFC 9989) are package
// dmarc's.
//
// Aggregate reports are decoded as a stream ([Decode], [Decoder]): the
// report's metadata and published policy first, then the records one by
// one, in constant memory whatever their number. The decoder reads what
// real receivers send, and returns one [Warning] with its element path
// ("feedback/record[12]/row/count") for every deviation it accepts:
//   - namespaces: none (most RFC 7489 reports), RFC 7489's
//     http://dmarc.org/dmarc-xml/0.1, RFC 9990's dmarc-2.0, prefixed
//     elements (ns1:feedback), undeclared prefixes, xsd/xsi declarations,
//     a <feedback> inside a wrapper such as an <xs:schema> left open at
//     the end;
//   - <version> absent, 0, 0.1, 1.0 or 2.0 (RFC 7489 appendix C and RFC
//     9990 §3.1.1.2 say 1.0); RFC 9990's np, testing, discovery_method,
//     generator and extensions; RFC 7489's pct, sampled_out and
//     forwarded;
//   - values: whitespace around integers and identifiers, "+" signs and
//     ".0" on integers, enumerations in upper case (Pass) or outside the
//     schemas (hardfail: kept, lower-cased), empty elements, brackets or
//     IPv4-mapped forms of source_ip;
//   - XML: invalid UTF-8 and control characters (replaced by U+FFFD), a
//     "<" or "&" that begins no markup (escaped), ISO-8859-1,
//     windows-1252 and UTF-16 input, single-quoted declarations,
//     mismatched end tags, text between elements, unknown elements
//     (skipped), first-level elements out of order, duplicates (the last
//     one wins).
//
// What cannot be read at all is a [*DecodeError] wrapping
// [ErrInvalidReport], with the element path, line and byte offset: input
// that is empty or not XML, no <feedback> element, XML broken beyond
// these repairs, input ending inside the report, and a record whose
// count is missing, negative or not an integer (a count Moat cannot add
// up is not guessed). Limits ([Options]) bound tokens, lists, records
// and warnings; exceeding them wraps [ErrTooLarge]. The caller keeps such
// reports as invalid, with the error as the reason.
//
// [Extract] finds the reports in what arrives: a file or an HTTP or SMTP
// body (gzip, zip, plain XML, sniffed from the bytes) or a whole mail
// (RFC 7489 §7.2.1.1, RFC 9990 §3.5.2), walking multipart/mixed and
// multipart/report, forwarded messages, application/gzip, application/zip
// (Google, where the RFCs say gzip), application/octet-stream, text/xml,
// XML in a text/plain body, and a message body that is itself the
// archive; base64 is decoded leniently. [Source.Open] decompresses as the
// decoder reads (package unpack: gzip with several members or trailing
// garbage, double gzip, zip members with an empty name), bounded by
// [ExtractOptions], so that a compression bomb stops with [ErrTooLarge].
// Each deviation of the mail's form is a warning.
//
// [ParseFailure] reads a failure report (RFC 6591 §3.1: the fields of
// the message/feedback-report part, Auth-Failure, Source-IP,
// Identity-Alignment and the others of RFC 7489 §7.3.1, and the header
// of the reported message from the message/rfc822 or text/rfc822-headers
// part), tolerant of the shapes receivers send: multipart/mixed instead
// of multipart/report (RFC 5965 §2), the feedback part base64-encoded as
// an attachment (ATT00001) or in a text/plain part, LF or CRLF line ends,
// an mbox "From " line, comments in Source-IP. A message that is not a
// failure report ([ErrNotFailureReport]) says why: not multipart, no
// feedback part (listing the parts it has), an abuse report rather than
// auth-failure.
//
// Not implemented here: DKIM verification of report mail (the caller's,
// on the raw message), the external destination checks of RFC 7489 §7.1
// (package dmarc), storing reports and generating them.
package dmarcrpt
