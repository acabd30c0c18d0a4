package dmarcrpt

import (
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"strings"
)

// maxWrapperDepth is how deep <feedback> is looked for inside other
// elements (an <xs:schema> wrapper).
const maxWrapperDepth = 4

// header reads up to the first record, once.
func (d *Decoder) header() error {
	if d.err != nil {
		return d.err
	}
	if d.state != stBefore {
		return nil
	}
	d.start()
	if err := d.findFeedback(); err != nil {
		return err
	}
	d.state = stInside
	for {
		local, ok, err := d.child(d.level)
		if err != nil {
			return d.truncated(err)
		}
		if !ok {
			d.state = stDone
			d.checkHeader()
			d.warn("feedback", "no <record> (RFC 9990 §3.1.1.2: there MUST be at least one)")
			return d.finish()
		}
		if local == "record" || strings.ToLower(local) == "record" {
			d.pending = true
			d.checkHeader()
			return nil
		}
		if err := d.topLevel(); err != nil {
			return err
		}
	}
}

// findFeedback reads up to the <feedback> start tag, looking inside
// wrapper elements.
func (d *Decoder) findFeedback() error {
	root := ""
	for {
		tok, err := d.token()
		if errors.Is(err, io.EOF) {
			switch {
			case root != "":
				return d.failf("no <feedback> element; the root element is <%s>", root)
			case d.rp.outOff() == 0:
				return d.failf("empty input")
			}
			return d.failf("no XML element in the input")
		}
		if err != nil {
			return err
		}
		switch t := tok.(type) {
		case xml.StartElement:
			if root == "" {
				root = qname(t.Name.Space, t.Name.Local)
			}
			if strings.EqualFold(t.Name.Local, "feedback") {
				d.level = len(d.stack)
				d.name(d.level)
				uri, declared := d.namespace(d.level)
				if declared {
					d.report.Namespace = uri
				}
				switch {
				case !declared:
					d.foreign(d.level) // warns about the prefix
				case uri == "" || uri == NamespaceRFC7489 || uri == NamespaceRFC9990:
				default:
					d.warnHere(fmt.Sprintf("namespace %q is neither RFC 7489's (%s) nor RFC 9990's (%s); read as a DMARC report", clip(uri), NamespaceRFC7489, NamespaceRFC9990))
				}
				if d.level > 1 {
					d.warnHere(fmt.Sprintf("<feedback> is inside <%s>; the wrapper is ignored (RFC 9990 §3.1.1.1: feedback is the root element)", qname(d.stack[0].prefix, d.stack[0].local)))
				}
				return nil
			}
			if len(d.stack) > maxWrapperDepth {
				return d.failf("no <feedback> element within %d levels; the root element is <%s>", maxWrapperDepth, root)
			}
		case xml.CharData:
			if s := strings.TrimSpace(string(t)); s != "" && len(d.stack) == 0 {
				return d.failf("text before the root element: %q; not an XML report", clip(s))
			}
		}
	}
}

// truncated turns the end of the input inside the report into an error.
func (d *Decoder) truncated(err error) error {
	if errors.Is(err, io.EOF) {
		return d.failf("the input ends inside <%s>: the report is truncated", d.stack[len(d.stack)-1].local)
	}
	return err
}

// topLevel reads a first-level element other than record.
func (d *Decoder) topLevel() error {
	level := d.level + 1
	if d.foreign(level) {
		d.warnHere("element of another namespace at the first level (RFC 9990 §3.1.1.6 puts extensions in <extension>); skipped")
		return d.truncated(d.skip(level))
	}
	late := d.state == stRecords
	name := d.name(level)
	once := func(seen *bool) {
		if *seen {
			d.warnHere("appears more than once (RFC 9990 §3.1.1.2: at most once); the last one is used")
		}
		*seen = true
		if late {
			d.warnHere("after the records (RFC 9990 §3.1.1.2: the first-level elements MUST appear in order); read")
		}
	}
	var err error
	switch name {
	case "version":
		once(&d.seen.version)
		var v string
		if v, err = d.text(level); err == nil {
			d.version(v)
		}
	case "report_metadata":
		once(&d.seen.metadata)
		d.report.Metadata = Metadata{}
		err = d.metadata(level, &d.report.Metadata)
	case "policy_published":
		once(&d.seen.policy)
		d.report.Policy = PolicyPublished{}
		err = d.policy(level, &d.report.Policy)
	case "extension", "extensions":
		if name == "extensions" {
			d.warnHere("<extensions> is not an RFC 9990 element (§3.1.1.6 names it <extension>); read as <extension>")
		}
		once(&d.seen.extension)
		err = d.extensions(level, &d.report.Extensions)
	default:
		d.warnHere("unknown element; skipped")
		err = d.skip(level)
	}
	return d.truncated(err)
}

func (d *Decoder) version(v string) {
	t := strings.TrimSpace(v)
	d.report.Version = t
	switch {
	case t != v:
		d.warnHere("whitespace around the version; trimmed")
	case t == "":
		d.warnHere("empty")
	}
	if t != "1.0" && t != "" {
		d.warnHere(fmt.Sprintf("version %q (RFC 7489 appendix C and RFC 9990 §3.1.1.2: MUST be 1.0); read as a report of this format", clip(t)))
	}
}

// checkHeader warns about what the report should have before its records.
func (d *Decoder) checkHeader() {
	if !d.seen.metadata {
		d.warn("feedback", "no <report_metadata> before the records (RFC 9990 §3.1.1.2: required)")
	}
	if !d.seen.policy {
		d.warn("feedback", "no <policy_published> before the records (RFC 9990 §3.1.1.2: required)")
	}
}

// next reads up to and including the next record.
func (d *Decoder) next() (*Record, error) {
	for {
		if d.state == stDone {
			if d.err != nil {
				return nil, d.err
			}
			return nil, io.EOF
		}
		if !d.pending {
			local, ok, err := d.child(d.level)
			if err != nil {
				return nil, d.truncated(err)
			}
			if !ok {
				d.state = stDone
				if err := d.finish(); err != nil {
					return nil, err
				}
				return nil, io.EOF
			}
			if local != "record" && strings.ToLower(local) != "record" {
				if err := d.topLevel(); err != nil {
					return nil, err
				}
				continue
			}
		}
		d.pending = false
		level := d.level + 1
		d.name(level)
		if d.opts.MaxRecords > 0 && d.records >= d.opts.MaxRecords {
			return nil, d.fail(fmt.Errorf("%w: %w: more than %d records", ErrInvalidReport, ErrTooLarge, d.opts.MaxRecords))
		}
		d.setIndex(level, int(d.records))
		rec := &Record{Index: d.records}
		if err := d.record(level, rec); err != nil {
			return nil, d.truncated(err)
		}
		d.state = stRecords
		d.records++
		d.report.Records = d.records
		if d.report.Messages > (1<<63-1)-rec.Row.Count {
			return nil, d.fail(fmt.Errorf("%w: %w: the counts add up to more than 2^63-1", ErrInvalidReport, ErrTooLarge))
		}
		d.report.Messages += rec.Row.Count
		return rec, nil
	}
}

// finish reads what follows </feedback>: wrapper end tags, comments,
// whitespace. Another element is skipped with a warning; wrappers left
// open at the end of the input are warned about.
func (d *Decoder) finish() error {
	for {
		tok, err := d.token()
		if errors.Is(err, io.EOF) {
			for i := len(d.stack); i > 0; i-- {
				d.warn(d.pathTo(i), fmt.Sprintf("<%s> is not closed at the end of the input; ignored", qname(d.stack[i-1].prefix, d.stack[i-1].local)))
			}
			d.err = nil
			return nil
		}
		if err != nil {
			return d.afterEnd(err)
		}
		switch t := tok.(type) {
		case xml.StartElement:
			d.warnHere(fmt.Sprintf("element <%s> after </feedback>; skipped (one report per file)", qname(t.Name.Space, t.Name.Local)))
			if err := d.skip(len(d.stack)); err != nil {
				return d.afterEnd(err)
			}
		case xml.CharData:
			if s := strings.TrimSpace(string(t)); s != "" {
				d.warnHere(fmt.Sprintf("text %q after </feedback>; ignored", clip(s)))
			}
		}
	}
}

// afterEnd turns an error after </feedback> into a warning: the report
// itself was read whole.
func (d *Decoder) afterEnd(err error) error {
	if errors.Is(err, io.EOF) {
		err = errors.New("the input ends inside an element")
	}
	d.err = nil
	d.warn("", fmt.Sprintf("unreadable input after </feedback>; ignored: %v", err))
	return nil
}
