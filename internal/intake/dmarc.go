package intake

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"slices"
	"strings"

	"github.com/moatmail/moat/internal/dmarcrpt"
	"github.com/moatmail/moat/internal/dnsname"
	"github.com/moatmail/moat/internal/store"
	"github.com/moatmail/moat/internal/unpack"
)

// DMARC aggregate reports (RFC 7489 §7.2, RFC 9990). A small report
// (at most maxPreDecodedRecords records, the daily report of almost every
// sender) is decoded whole by the submitter, in its own goroutine, and the
// writer only replays its rows: the single writer, which every commit
// waits for, does no XML. A larger one is read by the submitter up to its
// header only (its identity and policy domain); its records are read by
// the writer, inside the transaction that stores the report
// (store.DMARCRows), decoded as a stream and summed into the rollups, so
// that a report of a million records takes no more memory than one of ten
// and is stored whole or not at all.

// maxPreDecodedRecords is the most records of a report decoded before it
// is queued (about 200 bytes each held until its commit); a report with
// more is decoded again, as a stream, by the writer.
const maxPreDecodedRecords = 1000

// dmarcSource is a report found in a file, a body or a mail, with what
// was found out about its form.
type dmarcSource struct {
	src      *dmarcrpt.Source
	warnings []dmarcrpt.Warning // the mail's (media types, structure)
}

// errNotDMARC marks a source that is not a DMARC report at all (no
// <feedback> element, not XML): nothing to keep.
var errNotDMARC = errors.New("not a DMARC aggregate report")

// prepareDMARC reads the header of the report of ds and returns the row
// to store, whose Rows decodes the records. A report whose header cannot
// be read is kept as invalid when it is meant as a report (compressed
// data, or XML with a <feedback> element); otherwise the error wraps
// errNotDMARC. ErrTooLarge when it exceeds the decompressed size limit
// before its first record.
func (ing *Ingester) prepareDMARC(base Submission, ds dmarcSource) (*store.DMARCReport, error) {
	rep := &store.DMARCReport{
		ReceivedAt: ing.receivedAt(base), Source: base.Source, SourceDetail: base.SourceDetail, Raw: ds.src.Data,
		MediaType: cmpOr(base.MediaType, ds.src.MediaType), DKIM: base.DKIM, Pct: -1,
	}
	if h, rows, ok := ing.preDecode(ds); ok {
		fillHeader(rep, h, ing.hosted)
		rep.Status = store.ReportOK
		rep.Warnings = warningStrings(ds.warnings)
		if len(rep.Warnings) > 0 {
			rep.Status = store.ReportWarnings
		}
		rep.Rows = rows
		return rep, nil
	}
	h, err := ing.readHeader(ds.src)
	switch {
	case errors.Is(err, dmarcrpt.ErrTooLarge):
		return nil, fmt.Errorf("%w: more than %d bytes decompressed: %w", ErrTooLarge, ing.opts.MaxDMARCXML, err)
	case err != nil:
		var de *dmarcrpt.DecodeError
		if unpack.Sniff(ds.src.Data) == "" && (!errors.As(err, &de) || de.Path == "") {
			// Not even the start of a <feedback> element: some other
			// XML or text, not a report anyone meant.
			return nil, fmt.Errorf("%w: %w", errNotDMARC, err)
		}
		rep.Status, rep.Error = store.ReportInvalid, err.Error()
		rep.Warnings = warningStrings(ds.warnings)
		return rep, nil
	}
	fillHeader(rep, h, ing.hosted)
	rep.Status = store.ReportOK
	rep.Warnings = warningStrings(ds.warnings)
	if len(rep.Warnings) > 0 {
		rep.Status = store.ReportWarnings
	}
	rep.Rows = ing.dmarcRows(ds)
	return rep, nil
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// readHeader decodes a report up to its first record. A panic of the
// decoder (a bug there) is an error instead.
func (ing *Ingester) readHeader(src *dmarcrpt.Source) (rep *dmarcrpt.Report, err error) {
	defer func() {
		if p := recover(); p != nil {
			ing.log.Error("dmarc decoder panicked; report kept as invalid", "panic", fmt.Sprint(p))
			rep, err = nil, fmt.Errorf("%w: decoder failed internally: %v", dmarcrpt.ErrInvalidReport, p)
		}
	}()
	s, err := src.Open()
	if err != nil {
		return nil, err
	}
	return dmarcrpt.NewDecoder(s, dmarcrpt.Options{}).Header()
}

// fillHeader sets the header fields of rep from r.
func fillHeader(rep *store.DMARCReport, r *dmarcrpt.Report, hosted func(string) bool) {
	m, p := r.Metadata, r.Policy
	rep.OrgName, rep.OrgEmail, rep.ExtraContact, rep.ReportID = m.OrgName, m.Email, m.ExtraContactInfo, m.ReportID
	rep.StartTime, rep.EndTime = m.Begin.UTC(), m.End.UTC() // zero stays zero
	rep.Version = r.Version
	rep.Domain = storedDomain(p.Domain)
	rep.Hosted = rep.Domain != "" && hosted(rep.Domain)
	rep.ADKIM, rep.ASPF, rep.P, rep.SP, rep.NP, rep.Testing, rep.FO = p.ADKIM, p.ASPF, p.P, p.SP, p.NP, p.Testing, p.FO
	if p.Pct != nil {
		rep.Pct = *p.Pct
	}
}

// storedDomain is a domain as the store keeps it: lower case, no trailing
// dot.
func storedDomain(d string) string {
	return strings.TrimSuffix(strings.ToLower(strings.TrimSpace(d)), ".")
}

func warningStrings(ws []dmarcrpt.Warning) []string {
	out := make([]string, 0, len(ws))
	for _, w := range ws {
		out = append(out, w.String())
	}
	return out
}

// dmarcRows returns the store.DMARCRows of a report: each call decodes it
// from the start.
func (ing *Ingester) dmarcRows(ds dmarcSource) store.DMARCRows {
	return func(emit func(*store.DMARCRow) error) (end store.DMARCEnd, err error) {
		defer func() {
			if p := recover(); p != nil {
				ing.log.Error("dmarc decoder panicked; report kept as invalid", "panic", fmt.Sprint(p))
				end, err = store.DMARCEnd{Error: fmt.Sprintf("%v: decoder failed internally: %v", dmarcrpt.ErrInvalidReport, p)}, nil
			}
		}()
		return decodeRows(ds, emit)
	}
}

// errManyRecords stops preDecode at maxPreDecodedRecords.
var errManyRecords = errors.New("intake: more records than are decoded before the commit")

// preDecode decodes the whole report of ds when its header reads and it
// has at most maxPreDecodedRecords records, and returns the header and a
// store.DMARCRows that replays the rows (the same rows and end, each call,
// as dmarcRows would give). ok is false otherwise (a damaged header, more
// records, a panic of the decoder): the caller reads the report as before.
func (ing *Ingester) preDecode(ds dmarcSource) (hdr *dmarcrpt.Report, rows store.DMARCRows, ok bool) {
	defer func() {
		if p := recover(); p != nil {
			hdr, rows, ok = nil, nil, false // readHeader or the writer's decoding recovers and says so
		}
	}()
	var kept []store.DMARCRow
	// The header as it is at the first record, as readHeader returns it:
	// the decoder adds the counts (and any late element) to its report.
	end, err := decodeRowsWith(ds, func(r *dmarcrpt.Report) { h := *r; hdr = &h }, func(r *store.DMARCRow) error {
		if len(kept) == maxPreDecodedRecords {
			return errManyRecords
		}
		kept = append(kept, *r)
		return nil
	})
	if err != nil || hdr == nil {
		return nil, nil, false
	}
	return hdr, func(emit func(*store.DMARCRow) error) (store.DMARCEnd, error) {
		for _, r := range kept {
			if err := emit(&r); err != nil {
				return store.DMARCEnd{}, err
			}
		}
		return end, nil
	}, true
}

// errEmit wraps an error of the store's emit, to tell it from the
// report's own.
type errEmit struct{ err error }

func (e *errEmit) Error() string { return e.err.Error() }
func (e *errEmit) Unwrap() error { return e.err }

// decodeRows decodes every record of ds, passing each one's row to emit,
// and digests the report's content on the way.
func decodeRows(ds dmarcSource, emit func(*store.DMARCRow) error) (store.DMARCEnd, error) {
	return decodeRowsWith(ds, nil, emit)
}

// decodeRowsWith is decodeRows, telling header (when not nil) the
// report's header once it is read, before the first record.
func decodeRowsWith(ds dmarcSource, header func(*dmarcrpt.Report), emit func(*store.DMARCRow) error) (store.DMARCEnd, error) {
	s, err := ds.src.Open()
	if err != nil {
		// The report's own failure: kept as invalid with the reason.
		return store.DMARCEnd{Warnings: warningStrings(ds.warnings), Error: err.Error()}, nil //nolint:nilerr // the error is the report's, stored in End
	}
	d := dmarcrpt.NewDecoder(s, dmarcrpt.Options{})
	h := sha256.New()
	rep, err := d.Header()
	var (
		c   rowMaker
		row store.DMARCRow
	)
	if err == nil {
		c = newRowMaker(rep.Policy)
		hashHeader(h, rep)
		if header != nil {
			header(rep)
		}
		for {
			var rec *dmarcrpt.Record
			rec, err = d.Next()
			if err != nil {
				break
			}
			c.hashRecord(h, rec)
			c.row(&row, rec)
			if e := emit(&row); e != nil {
				err = &errEmit{e}
				break
			}
		}
	}
	warnings := append(slices.Clone(ds.warnings), s.Warnings()...)
	warnings = append(warnings, d.Warnings()...)
	end := store.DMARCEnd{Warnings: warningStrings(warnings)}
	var ee *errEmit
	switch {
	case errors.As(err, &ee):
		return store.DMARCEnd{}, ee.err
	case errors.Is(err, io.EOF):
		end.Records, end.Messages = d.Report().Records, d.Report().Messages
		end.ContentDigest = hex.EncodeToString(h.Sum(nil))
	case errors.Is(err, dmarcrpt.ErrTooLarge):
		end.Error = fmt.Sprintf("%v (the limit is intake.max_dmarc_xml)", err)
	default:
		end.Error = err.Error()
	}
	return end, nil
}

// hashHeader digests what identifies a report's content besides its
// records: its header as decoded (the counts are not known yet).
func hashHeader(h hash.Hash, r *dmarcrpt.Report) {
	hdr := *r
	hdr.Records, hdr.Messages = 0, 0
	b, err := json.Marshal(&hdr)
	if err != nil {
		b = []byte(err.Error()) // a Report always marshals
	}
	_, _ = h.Write(b)
}

// rowMaker turns records into rollup rows, remembering the organizational
// domains it computed (the public suffix list is not free, and a report
// names few domains many times).
type rowMaker struct {
	adkim, aspf string
	orgs        map[string]string
	buf         []byte
}

func newRowMaker(p dmarcrpt.PolicyPublished) rowMaker {
	return rowMaker{adkim: p.ADKIM, aspf: p.ASPF, orgs: make(map[string]string)}
}

// maxOrgCache bounds the organizational domains remembered.
const maxOrgCache = 4096

func (c *rowMaker) org(d string) string {
	if o, ok := c.orgs[d]; ok {
		return o
	}
	if len(c.orgs) >= maxOrgCache {
		clear(c.orgs)
	}
	o := dnsname.OrgDomain(d)
	c.orgs[d] = o
	return o
}

// aligned says whether domain aligns with the header From domain (RFC
// 7489 §3.1): equal in strict mode ("s"), the same organizational domain
// in relaxed mode (the default).
func (c *rowMaker) aligned(domain, from, mode string) bool {
	if domain == "" || from == "" {
		return false
	}
	if domain == from {
		return true
	}
	return mode != "s" && c.org(domain) == c.org(from)
}

// row fills r from rec: the evaluated results, the DKIM signature that
// best explains them (an aligned pass, else a pass, else the first), and
// the SPF result (scope mfrom first, an aligned pass first).
func (c *rowMaker) row(r *store.DMARCRow, rec *dmarcrpt.Record) {
	from := rec.Identifiers.HeaderFrom
	pe := rec.Row.PolicyEvaluated
	*r = store.DMARCRow{HeaderFrom: from, EnvelopeFrom: rec.Identifiers.EnvelopeFrom, Disposition: pe.Disposition,
		DKIM: pe.DKIM, SPF: pe.SPF, Messages: rec.Row.Count}
	if rec.Row.SourceIP.IsValid() {
		r.SourceIP = rec.Row.SourceIP.String()
	}
	switch len(pe.Reasons) {
	case 0:
	case 1:
		r.Reason = pe.Reasons[0].Type
	default:
		types := make([]string, 0, len(pe.Reasons))
		for _, rs := range pe.Reasons {
			if rs.Type != "" && !slices.Contains(types, rs.Type) {
				types = append(types, rs.Type)
			}
		}
		slices.Sort(types)
		r.Reason = strings.Join(types, ",")
	}
	best, rank := -1, 0
	for i, k := range rec.AuthResults.DKIM {
		n := 1
		if k.Result == "pass" {
			n = 2
			if c.aligned(k.Domain, from, c.adkim) {
				n = 3
			}
		}
		if n > rank {
			best, rank = i, n
		}
	}
	if best >= 0 {
		k := rec.AuthResults.DKIM[best]
		r.DKIMDomain, r.DKIMSelector, r.DKIMResult = k.Domain, k.Selector, k.Result
		r.DKIMAligned = c.aligned(k.Domain, from, c.adkim)
	}
	best, rank = -1, 0
	for i, s := range rec.AuthResults.SPF {
		n := 1
		if s.Scope == "" || s.Scope == "mfrom" {
			n = 3
		}
		if s.Result == "pass" && c.aligned(s.Domain, from, c.aspf) {
			n++
		}
		if n > rank {
			best, rank = i, n
		}
	}
	if best >= 0 {
		s := rec.AuthResults.SPF[best]
		r.SPFDomain, r.SPFResult = s.Domain, s.Result
		r.SPFAligned = c.aligned(s.Domain, from, c.aspf)
	}
}

// hashRecord digests a record: every field, each with its length, so
// that no two records digest alike.
func (c *rowMaker) hashRecord(h hash.Hash, rec *dmarcrpt.Record) {
	b := c.buf[:0]
	str := func(s string) {
		b = binary.AppendUvarint(b, uint64(len(s)))
		b = append(b, s...)
	}
	num := func(n int64) { b = binary.AppendVarint(b, n) }
	b = append(b, 'R')
	str(rec.Row.SourceIP.String())
	num(rec.Row.Count)
	pe := rec.Row.PolicyEvaluated
	str(pe.Disposition)
	str(pe.DKIM)
	str(pe.SPF)
	num(int64(len(pe.Reasons)))
	for _, rs := range pe.Reasons {
		str(rs.Type)
		str(rs.Comment)
	}
	str(rec.Identifiers.HeaderFrom)
	str(rec.Identifiers.EnvelopeFrom)
	str(rec.Identifiers.EnvelopeTo)
	num(int64(len(rec.AuthResults.DKIM)))
	for _, k := range rec.AuthResults.DKIM {
		str(k.Domain)
		str(k.Selector)
		str(k.Result)
		str(k.HumanResult)
	}
	num(int64(len(rec.AuthResults.SPF)))
	for _, s := range rec.AuthResults.SPF {
		str(s.Domain)
		str(s.Scope)
		str(s.Result)
		str(s.HumanResult)
	}
	num(int64(len(rec.Extensions)))
	for _, e := range rec.Extensions {
		str(e.Space)
		str(e.Name)
		str(e.NameAttr)
		str(e.Definition)
		str(e.Text)
	}
	_, _ = h.Write(b)
	c.buf = b
}
