package corpora

import (
	"path/filepath"
	"strconv"
)

// DMARCKind says which parser a DMARC corpus file is for.
type DMARCKind string

// Kinds of DMARC files.
const (
	// Aggregate: an aggregate report (RFC 7489 §7.2, RFC 9990) as a file
	// (XML, gzip, zip) or a mail, read by dmarcrpt.Extract and Decode.
	Aggregate DMARCKind = "aggregate"
	// Failure: a failure report mail (RFC 6591), read by
	// dmarcrpt.ParseFailure.
	Failure DMARCKind = "failure"
)

// DMARCFile is the outcome the parsers of package dmarcrpt must give for
// one DMARC file of the corpora.
type DMARCFile struct {
	// Path is relative to the corpora directory (Dir).
	Path string
	Kind DMARCKind
	// Refused is the reason the file is refused: a substring of the
	// error, "" when it must parse.
	Refused string
	// Records and Messages are, for an aggregate report that parses, its
	// number of records and the sum of their <count>s (of the first
	// report found in the file): what a store must hold after importing
	// it.
	Records, Messages int64
	// Warnings are the paths of the warnings the parsers give, in order:
	// the extraction's ("mail/2"), the decompression's, then the
	// decoder's ("feedback/record[0]/row/count"), or the failure report
	// parser's ("feedback-report/Source-IP").
	Warnings []string
}

// Parses reports whether the file must be read without error.
func (f DMARCFile) Parses() bool { return f.Refused == "" }

// File returns the file's path under dir (from Dir).
func (f DMARCFile) File(dir string) string { return filepath.Join(dir, filepath.FromSlash(f.Path)) }

// DMARCGlobs are the patterns, relative to the corpora directory, of the
// files DMARC lists: every DMARC aggregate and failure report of the
// corpora. A file they match that DMARC does not list is new and must be
// added.
func DMARCGlobs() []string {
	return []string{
		"parsedmarc/samples/aggregate/*",
		"parsedmarc/samples/aggregate_invalid/*",
		"parsedmarc/samples/empty.xml",
		"parsedmarc/samples/extract_report/*",
		"parsedmarc/samples/failure/*",
		"mox/testdata/dmarc-reports/*",
		"stalwart-mail-auth/resources/dmarc-feedback/*.xml",
		"stalwart-mail-auth/resources/dmarc-feedback/*.eml",
		"stalwart-mail-auth/resources/arf/*.eml",
		"cry-inc-dmarc-report-viewer/testdata/dmarc-reports/*",
	}
}

// DMARC returns the expected outcome of every DMARC file of the corpora.
// A change of outcome (a file that parsed and is refused, or the
// reverse, or other warnings or sums) fails dmarcrpt's conformance test:
// change this table only on purpose, saying why in the comment.
func DMARC() []DMARCFile {
	spf := func(from, to int) []string {
		var p []string
		for i := from; i < to; i++ {
			p = append(p, "feedback/record["+strconv.Itoa(i)+"]/auth_results/spf[0]/domain")
		}
		return p
	}
	return []DMARCFile{
		// cry-inc: AOL (ns1 declared, unused), GMX and WEB.DE (dmarc-2.0),
		// Outlook (xsd/xsi), Mail.ru (one line, single-quoted declaration),
		// Yahoo (trailing tabs): all clean.
		{Path: "cry-inc-dmarc-report-viewer/testdata/dmarc-reports/acme.xml", Kind: Aggregate, Records: 1, Messages: 2},
		{Path: "cry-inc-dmarc-report-viewer/testdata/dmarc-reports/aol.xml", Kind: Aggregate, Records: 1, Messages: 1},
		{Path: "cry-inc-dmarc-report-viewer/testdata/dmarc-reports/gmxnet.xml", Kind: Aggregate, Records: 1, Messages: 1},
		{Path: "cry-inc-dmarc-report-viewer/testdata/dmarc-reports/google.xml", Kind: Aggregate, Records: 1, Messages: 1},
		// An empty DKIM domain; SPF result "hardfail" (not an RFC 8601 result).
		{Path: "cry-inc-dmarc-report-viewer/testdata/dmarc-reports/hardfail.xml", Kind: Aggregate, Records: 1, Messages: 1,
			Warnings: []string{"feedback/record[0]/auth_results/dkim[0]/domain", "feedback/record[0]/auth_results/spf[0]/result"}},
		{Path: "cry-inc-dmarc-report-viewer/testdata/dmarc-reports/mailru.xml", Kind: Aggregate, Records: 1, Messages: 1},
		{Path: "cry-inc-dmarc-report-viewer/testdata/dmarc-reports/outlook.xml", Kind: Aggregate, Records: 2, Messages: 3},
		{Path: "cry-inc-dmarc-report-viewer/testdata/dmarc-reports/solamora.xml", Kind: Aggregate, Records: 1, Messages: 2},
		{Path: "cry-inc-dmarc-report-viewer/testdata/dmarc-reports/webde.xml", Kind: Aggregate, Records: 1, Messages: 1},
		{Path: "cry-inc-dmarc-report-viewer/testdata/dmarc-reports/yahoo.xml", Kind: Aggregate, Records: 1, Messages: 1},

		// mox: Google sends a zip as application/zip, the whole body.
		{Path: "mox/testdata/dmarc-reports/google.eml", Kind: Aggregate, Records: 2, Messages: 5, Warnings: []string{"mail/1"}},
		{Path: "mox/testdata/dmarc-reports/mailru.eml", Kind: Aggregate, Records: 1, Messages: 1},
		// Outlook: <version>0</version>.
		{Path: "mox/testdata/dmarc-reports/outlook.eml", Kind: Aggregate, Records: 1, Messages: 2, Warnings: []string{"feedback"}},
		{Path: "mox/testdata/dmarc-reports/xs4all.eml", Kind: Aggregate, Records: 1, Messages: 1},
		// Yahoo: <end>1559606399 </end>.
		{Path: "mox/testdata/dmarc-reports/yahoo.eml", Kind: Aggregate, Records: 1, Messages: 1, Warnings: []string{"feedback/report_metadata/date_range/end"}},

		// parsedmarc: an empty org_name, an empty SPF domain.
		{Path: "parsedmarc/samples/aggregate/!example.com!1538204542!1538463818.xml", Kind: Aggregate, Records: 1, Messages: 1,
			Warnings: []string{"feedback/report_metadata/org_name", "feedback/record[0]/auth_results/spf[0]/domain"}},
		// The ~909 KB one: the same empty SPF domain in each of the 2286
		// records, ten warnings and one that counts the rest.
		{Path: "parsedmarc/samples/aggregate/!large-example.com!1711897200!1711983600.xml", Kind: Aggregate, Records: 2286, Messages: 2286,
			Warnings: append(append([]string{"feedback/report_metadata/org_name"}, spf(0, 10)...), spf(0, 1)...)},
		// Google's zip, forwarded through Outlook (multipart/mixed).
		{Path: "parsedmarc/samples/aggregate/Report domain- borschow.com Submitter- google.com Report-ID- 949348866075514174.eml", Kind: Aggregate, Records: 1, Messages: 1, Warnings: []string{"mail/2"}},
		{Path: "parsedmarc/samples/aggregate/addisonfoods.com!example.com!1536105600!1536191999.xml", Kind: Aggregate, Records: 1, Messages: 1},
		// <reason><type></type><comment></comment></reason>.
		{Path: "parsedmarc/samples/aggregate/empty_reason.xml", Kind: Aggregate, Records: 1, Messages: 2, Warnings: []string{"feedback/record[0]/row/policy_evaluated/reason[0]/type"}},
		{Path: "parsedmarc/samples/aggregate/estadocuenta1.infonacot.gob.mx!example.com!1536853302!1536939702!2940.xml.zip", Kind: Aggregate, Records: 1, Messages: 1},
		// "<sp>none</sp>11": text between elements.
		{Path: "parsedmarc/samples/aggregate/example.net!example.com!1529366400!1529452799.xml", Kind: Aggregate, Records: 1, Messages: 1, Warnings: []string{"feedback/policy_published"}},
		{Path: "parsedmarc/samples/aggregate/fastmail.com!example.com!1516060800!1516147199!102675056.xml.gz", Kind: Aggregate, Records: 1, Messages: 1},
		// An <xs:schema> wrapper, never closed.
		{Path: "parsedmarc/samples/aggregate/ikea.com!example.de!1538690400!1538776800.xml", Kind: Aggregate, Records: 1, Messages: 1, Warnings: []string{"xs:schema/feedback", "xs:schema"}},
		// Byte 0x91 in header_from.
		{Path: "parsedmarc/samples/aggregate/invalid_utf_8.xml", Kind: Aggregate, Records: 1, Messages: 1,
			Warnings: []string{"feedback/report_metadata/org_name", "feedback/record[0]/identifiers/header_from", "feedback/record[0]/auth_results/spf[0]/domain"}},
		// <email><bad-xml@bad-xml.net></email> and bad<xml.net: unescaped "<".
		{Path: "parsedmarc/samples/aggregate/invalid_xml.xml", Kind: Aggregate, Records: 1, Messages: 1,
			Warnings: []string{"feedback/report_metadata/email", "feedback/record[0]/identifiers/header_from", "feedback/record[0]/auth_results/spf[0]/domain"}},
		// Mimecast: gzip followed by garbage.
		{Path: "parsedmarc/samples/aggregate/mimecast-weird-gzip.eml", Kind: Aggregate, Records: 1, Messages: 1, Warnings: []string{"mail/1"}},
		{Path: "parsedmarc/samples/aggregate/old_draft_from_wiki.xml", Kind: Aggregate, Records: 1, Messages: 2},
		{Path: "parsedmarc/samples/aggregate/protection.outlook.com!example.com!1711756800!1711843200.xml", Kind: Aggregate, Records: 1, Messages: 1},
		// <version>2.0</version>.
		{Path: "parsedmarc/samples/aggregate/rfc9990-example.net!example.com!1700000000!1700086399.xml", Kind: Aggregate, Records: 2, Messages: 7, Warnings: []string{"feedback"}},
		{Path: "parsedmarc/samples/aggregate/rfc9990-sample.xml", Kind: Aggregate, Records: 1, Messages: 123},
		{Path: "parsedmarc/samples/aggregate/twilight.eml", Kind: Aggregate, Records: 1, Messages: 1, Warnings: []string{"mail/1"}},
		{Path: "parsedmarc/samples/aggregate/usssa.com!example.com!1538784000!1538870399.xml", Kind: Aggregate, Records: 2, Messages: 2},
		{Path: "parsedmarc/samples/aggregate/veeam.com!example.com!1530133200!1530219600.xml", Kind: Aggregate, Records: 1, Messages: 1, Warnings: []string{"feedback/record[0]/auth_results/spf[0]/domain"}},
		// "example.com " and Pass, None.
		{Path: "parsedmarc/samples/aggregate_invalid/report_with_upper_cased_pass.xml", Kind: Aggregate, Records: 1, Messages: 1,
			Warnings: []string{"feedback/report_metadata/org_name", "feedback/record[0]/row/policy_evaluated/disposition", "feedback/record[0]/row/policy_evaluated/dkim",
				"feedback/record[0]/row/policy_evaluated/spf", "feedback/record[0]/auth_results/dkim[0]/result", "feedback/record[0]/auth_results/spf[0]/result"}},
		{Path: "parsedmarc/samples/empty.xml", Kind: Aggregate, Refused: "not gzip, zip, XML or a mail message: begins with nothing (empty)"},
		{Path: "parsedmarc/samples/extract_report/changed-input.xml", Kind: Aggregate, Records: 20, Messages: 3047},
		{Path: "parsedmarc/samples/extract_report/nice-input.xml", Kind: Aggregate, Records: 20, Messages: 3047},
		{Path: "parsedmarc/samples/extract_report/nice-input.xml.gz", Kind: Aggregate, Records: 20, Messages: 3047},
		{Path: "parsedmarc/samples/extract_report/nice-input.xml.zip", Kind: Aggregate, Records: 20, Messages: 3047},

		// parsedmarc failure reports: Version 1.0, Delivery-Result
		// smg-policy-action, no Identity-Alignment nor SPF-DNS.
		{Path: "parsedmarc/samples/failure/DMARC Failure Report for domain.de (mail-from=sharepoint@domain.de, ip=10.10.10.10).eml", Kind: Failure,
			Warnings: []string{"feedback-report/Version", "feedback-report/Delivery-Result", "feedback-report/Identity-Alignment", "feedback-report/SPF-DNS"}},
		// Netease: multipart/mixed, the feedback part base64 as ATT00001,
		// no Auth-Failure.
		{Path: "parsedmarc/samples/failure/[Netease DMARC Failure Report] Rent Reminder.eml", Kind: Failure,
			Warnings: []string{"mail/Content-Type", "mail/2", "feedback-report/Auth-Failure"}},
		// LinkedIn, CRLF and LF copies: an mbox From_ line, an empty
		// Original-Mail-From.
		{Path: "parsedmarc/samples/failure/dmarc_ruf_report_linkedin.crlf.eml", Kind: Failure,
			Warnings: []string{"mail", "feedback-report/Version", "feedback-report/Original-Mail-From", "feedback-report/Identity-Alignment", "feedback-report/SPF-DNS"}},
		{Path: "parsedmarc/samples/failure/dmarc_ruf_report_linkedin.eml", Kind: Failure,
			Warnings: []string{"mail", "feedback-report/Version", "feedback-report/Original-Mail-From", "feedback-report/Identity-Alignment", "feedback-report/SPF-DNS"}},
		// Exim: multipart/report with one text/plain part, no ARF part.
		{Path: "parsedmarc/samples/failure/exim_plain_text_only_no_arf_part.eml", Kind: Failure,
			Refused:  "no message/feedback-report part (RFC 5965 §2 requires one, with the Feedback-Type field): the message has 1 part, text/plain (part 1) of 1814 bytes, which is not a feedback report",
			Warnings: []string{"mail/Content-Type"}},

		// stalwart: RFC 5965 abuse reports are not failure reports.
		{Path: "stalwart-mail-auth/resources/arf/001.eml", Kind: Failure, Refused: `Feedback-Type is "abuse" (RFC 5965 §7.3), not "auth-failure" (RFC 6591 §3.1)`},
		{Path: "stalwart-mail-auth/resources/arf/002.eml", Kind: Failure, Refused: `Feedback-Type is "abuse" (RFC 5965 §7.3), not "auth-failure" (RFC 6591 §3.1)`},
		// Received-Date instead of Arrival-Date.
		{Path: "stalwart-mail-auth/resources/arf/003.eml", Kind: Failure, Warnings: []string{"feedback-report/Received-Date"}},
		// OpenDMARC: no Identity-Alignment nor SPF-DNS.
		{Path: "stalwart-mail-auth/resources/arf/004.eml", Kind: Failure, Warnings: []string{"feedback-report/Identity-Alignment", "feedback-report/SPF-DNS"}},
		// RFC 6591 appendix B's example.
		{Path: "stalwart-mail-auth/resources/arf/005.eml", Kind: Failure},
		// Version 2.0, unknown elements, <extensions> at both levels, the
		// top-level one after the records.
		{Path: "stalwart-mail-auth/resources/dmarc-feedback/001.xml", Kind: Aggregate, Records: 1, Messages: 123,
			Warnings: []string{"feedback", "feedback/report_metadata/date_range/unknown-tag1", "feedback/policy_published/unknown-tag1", "feedback/record[0]/extensions", "feedback/extensions", "feedback/extensions"}},
		{Path: "stalwart-mail-auth/resources/dmarc-feedback/002.xml", Kind: Aggregate, Records: 1, Messages: 2},
		{Path: "stalwart-mail-auth/resources/dmarc-feedback/003.xml", Kind: Aggregate, Records: 4, Messages: 9},
		{Path: "stalwart-mail-auth/resources/dmarc-feedback/004.xml", Kind: Aggregate, Records: 1, Messages: 123},
		{Path: "stalwart-mail-auth/resources/dmarc-feedback/005.xml", Kind: Aggregate, Records: 1, Messages: 1},
		{Path: "stalwart-mail-auth/resources/dmarc-feedback/100.eml", Kind: Aggregate, Records: 1, Messages: 1, Warnings: []string{"mail/1"}},
		{Path: "stalwart-mail-auth/resources/dmarc-feedback/101.eml", Kind: Aggregate, Records: 1, Messages: 1},
		{Path: "stalwart-mail-auth/resources/dmarc-feedback/102.eml", Kind: Aggregate, Records: 1, Messages: 1},
		{Path: "stalwart-mail-auth/resources/dmarc-feedback/103.eml", Kind: Aggregate, Records: 1, Messages: 1},
		// Amazon SES: application/octet-stream, <version>0.1</version>.
		{Path: "stalwart-mail-auth/resources/dmarc-feedback/104.eml", Kind: Aggregate, Records: 1, Messages: 1, Warnings: []string{"mail/2", "feedback"}},
	}
}
