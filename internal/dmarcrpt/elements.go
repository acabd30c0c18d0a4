package dmarcrpt

import (
	"fmt"
	"strconv"
	"time"
)

// The handlers below read the children of the element at depth level
// (just pushed). Values are read with d.text and checked by the helpers
// of values.go, which warn at "<current path>/<label>".

// fields tracks which single-valued children an element had.
type fields uint32

// once marks child bit as seen and warns when it already was.
func (d *Decoder) once(f *fields, bit uint, label string) {
	if *f&(1<<bit) != 0 {
		d.warnAt(label, "appears more than once; the last one is used")
	}
	*f |= 1 << bit
}

// unknown skips an element the schema does not have at this place.
func (d *Decoder) unknown(level int) error {
	d.warnHere("unknown element; skipped")
	return d.skip(level)
}

// metadata reads <report_metadata> (RFC 7489 appendix C, RFC 9990
// §3.1.1.3).
func (d *Decoder) metadata(level int, m *Metadata) error {
	var f fields
	for {
		_, ok, err := d.child(level)
		if err != nil || !ok {
			if err == nil {
				d.required(level, f, "org_name", "email", "report_id", "date_range")
			}
			return err
		}
		cl := level + 1
		if d.foreign(cl) {
			if err := d.unknown(cl); err != nil {
				return err
			}
			continue
		}
		name := d.name(cl)
		var v string
		switch name {
		case "org_name", "email", "extra_contact_info", "report_id", "generator", "error":
			if v, err = d.text(cl); err != nil {
				return err
			}
		}
		switch name {
		case "org_name":
			d.once(&f, 0, name)
			m.OrgName = d.vstr(name, v, true)
		case "email":
			d.once(&f, 1, name)
			m.Email = d.vstr(name, v, true)
		case "extra_contact_info":
			d.once(&f, 4, name)
			m.ExtraContactInfo = d.vtext(name, v)
		case "report_id":
			d.once(&f, 2, name)
			m.ReportID = d.vstr(name, v, true)
		case "generator":
			d.once(&f, 5, name)
			m.Generator = d.vtext(name, v)
		case "error":
			label := "error[" + strconv.Itoa(len(m.Errors)) + "]"
			if len(m.Errors) >= d.opts.MaxListLen {
				d.warnAt(label, fmt.Sprintf("more than %d errors; skipped", d.opts.MaxListLen))
				continue
			}
			m.Errors = append(m.Errors, d.vtext(label, v))
		case "date_range":
			d.once(&f, 3, name)
			m.Begin, m.End = time.Time{}, time.Time{}
			err = d.dateRange(cl, m)
		default:
			err = d.unknown(cl)
		}
		if err != nil {
			return err
		}
	}
}

// required warns about the named children (in the order of their bits)
// that f lacks, at the element at depth level, which has just ended.
func (d *Decoder) required(level int, f fields, names ...string) {
	for i, n := range names {
		if f&(1<<uint(i)) == 0 {
			d.warnEnded(level, fmt.Sprintf("no <%s> (required by RFC 7489 appendix C and RFC 9990)", n))
		}
	}
}

// dateRange reads <date_range> (RFC 9990 §3.1.1.4): seconds since the
// epoch.
func (d *Decoder) dateRange(level int, m *Metadata) error {
	var f fields
	for {
		_, ok, err := d.child(level)
		if err != nil {
			return err
		}
		if !ok {
			break
		}
		cl := level + 1
		name := d.name(cl)
		if name != "begin" && name != "end" || d.foreign(cl) {
			if err := d.unknown(cl); err != nil {
				return err
			}
			continue
		}
		v, err := d.text(cl)
		if err != nil {
			return err
		}
		var t time.Time
		if n, ok := d.vint(name, v, true); ok {
			if n < 0 || n > 1<<40 {
				d.warnAt(name, fmt.Sprintf("%d is not a plausible time in seconds since 1970; ignored", n))
			} else {
				t = time.Unix(n, 0).UTC()
			}
		}
		if name == "begin" {
			d.once(&f, 0, name)
			m.Begin = t
		} else {
			d.once(&f, 1, name)
			m.End = t
		}
	}
	d.required(level, f, "begin", "end")
	if !m.Begin.IsZero() && !m.End.IsZero() && m.End.Before(m.Begin) {
		d.warnEnded(level, "end is before begin")
	}
	return nil
}

// policy reads <policy_published> (RFC 7489 appendix C, RFC 9990
// §3.1.1.5).
func (d *Decoder) policy(level int, p *PolicyPublished) error {
	var f fields
	for {
		_, ok, err := d.child(level)
		if err != nil {
			return err
		}
		if !ok {
			break
		}
		cl := level + 1
		name := d.name(cl)
		if d.foreign(cl) {
			if err := d.unknown(cl); err != nil {
				return err
			}
			continue
		}
		b, known := policyField(name)
		if !known {
			if err := d.unknown(cl); err != nil {
				return err
			}
			continue
		}
		v, err := d.text(cl)
		if err != nil {
			return err
		}
		d.once(&f, b, name)
		switch name {
		case "domain":
			p.Domain = d.vdomain(name, v, true)
		case "p":
			p.P = d.venum(name, v, true, isPolicy, "none, quarantine, reject")
		case "sp":
			p.SP = d.venum(name, v, false, isPolicy, "none, quarantine, reject")
		case "np":
			p.NP = d.venum(name, v, false, isPolicy, "none, quarantine, reject")
		case "adkim":
			p.ADKIM = d.venum(name, v, false, isAlignment, "r, s")
		case "aspf":
			p.ASPF = d.venum(name, v, false, isAlignment, "r, s")
		case "pct":
			p.Pct = nil
			if n, ok := d.vint(name, v, false); ok {
				if n < 0 || n > 100 {
					d.warnAt(name, fmt.Sprintf("%d is not a percentage (RFC 7489 §6.3: 0 to 100); ignored", n))
				} else {
					pct := int(n)
					p.Pct = &pct
				}
			}
		case "fo":
			p.FO = d.vstr(name, v, false)
		case "testing":
			p.Testing = d.venum(name, v, false, isYesNo, "y, n")
		case "discovery_method":
			p.DiscoveryMethod = d.venum(name, v, false, isDiscovery, "psl, treewalk")
		}
	}
	d.required(level, f, "domain", "p")
	return nil
}

// policyField numbers the children of <policy_published>.
func policyField(name string) (uint, bool) {
	for i, n := range [...]string{"domain", "p", "adkim", "aspf", "sp", "np", "pct", "fo", "testing", "discovery_method"} {
		if n == name {
			return uint(i), true
		}
	}
	return 0, false
}

// record reads <record> (RFC 9990 §3.1.1.7).
func (d *Decoder) record(level int, r *Record) error {
	var f fields
	for {
		_, ok, err := d.child(level)
		if err != nil {
			return err
		}
		if !ok {
			break
		}
		cl := level + 1
		if d.foreign(cl) {
			// RFC 9990 §3.1.1.7: extensions are namespaced elements after
			// auth_results.
			if err := d.extension(cl, &r.Extensions); err != nil {
				return err
			}
			continue
		}
		switch name := d.name(cl); name {
		case "row":
			d.once(&f, 0, name)
			r.Row = Row{Count: -1}
			err = d.row(cl, &r.Row)
		case "identifiers":
			d.once(&f, 1, name)
			r.Identifiers = Identifiers{}
			err = d.identifiers(cl, &r.Identifiers)
		case "auth_results":
			d.once(&f, 2, name)
			r.AuthResults = AuthResults{}
			err = d.authResults(cl, &r.AuthResults)
		case "extensions", "extension":
			d.warnHere("not an RFC 9990 element (§3.1.1.7: record extensions are namespaced elements); its children are read as extensions")
			err = d.extensions(cl, &r.Extensions)
		default:
			err = d.unknown(cl)
		}
		if err != nil {
			return err
		}
	}
	if f&1 == 0 || r.Row.Count < 0 {
		return d.fail(&DecodeError{Path: d.pathTo(level), Err: fmt.Errorf("%w: the record has no <row><count>: the number of messages it stands for is unknown", ErrInvalidReport)})
	}
	d.required(level, f, "row", "identifiers", "auth_results")
	return nil
}

// row reads <row> (RFC 9990 §3.1.1.8).
func (d *Decoder) row(level int, r *Row) error {
	var f fields
	for {
		_, ok, err := d.child(level)
		if err != nil {
			return err
		}
		if !ok {
			break
		}
		cl := level + 1
		name := d.name(cl)
		if d.foreign(cl) || name != "source_ip" && name != "count" && name != "policy_evaluated" {
			if err := d.unknown(cl); err != nil {
				return err
			}
			continue
		}
		if name == "policy_evaluated" {
			d.once(&f, 2, name)
			r.PolicyEvaluated = PolicyEvaluated{}
			if err := d.policyEvaluated(cl, &r.PolicyEvaluated); err != nil {
				return err
			}
			continue
		}
		v, err := d.text(cl)
		if err != nil {
			return err
		}
		if name == "source_ip" {
			d.once(&f, 0, name)
			r.SourceIP = d.vip(name, v)
			continue
		}
		d.once(&f, 1, name)
		if err := d.count(name, v, r); err != nil {
			return err
		}
	}
	d.required(level, f, "source_ip", "count", "policy_evaluated")
	return nil
}

// count reads <count>: a count Moat cannot add up is not guessed.
func (d *Decoder) count(label, v string, r *Row) error {
	n, ok := d.vint(label, v, true)
	switch {
	case !ok:
		return d.failf("<%s> %q is not an integer: the number of messages of the record is unknown", label, clip(v))
	case n < 0:
		return d.failf("<%s> %d is negative", label, n)
	}
	r.Count = n
	return nil
}

// policyEvaluated reads <policy_evaluated> (RFC 9990 §3.1.1.9).
func (d *Decoder) policyEvaluated(level int, p *PolicyEvaluated) error {
	var f fields
	for {
		_, ok, err := d.child(level)
		if err != nil {
			return err
		}
		if !ok {
			break
		}
		cl := level + 1
		name := d.name(cl)
		if d.foreign(cl) {
			name = ""
		}
		switch name {
		case "reason":
			d.setIndex(cl, len(p.Reasons))
			if len(p.Reasons) >= d.opts.MaxListLen {
				d.warnHere(fmt.Sprintf("more than %d reasons; skipped", d.opts.MaxListLen))
				err = d.skip(cl)
				break
			}
			var r Reason
			if err = d.reason(cl, &r); err == nil {
				p.Reasons = append(p.Reasons, r)
			}
		case "disposition", "dkim", "spf":
			var v string
			if v, err = d.text(cl); err != nil {
				return err
			}
			switch name {
			case "disposition":
				d.once(&f, 0, name)
				p.Disposition = d.venum(name, v, true, isDisposition, "none, pass, quarantine, reject")
			case "dkim":
				d.once(&f, 1, name)
				p.DKIM = d.venum(name, v, true, isPassFail, "pass, fail")
			default:
				d.once(&f, 2, name)
				p.SPF = d.venum(name, v, true, isPassFail, "pass, fail")
			}
		default:
			err = d.unknown(cl)
		}
		if err != nil {
			return err
		}
	}
	d.required(level, f, "disposition", "dkim", "spf")
	return nil
}

// reason reads <reason> (RFC 7489 appendix C, RFC 9990 §3.1.1.14).
func (d *Decoder) reason(level int, r *Reason) error {
	var f fields
	for {
		_, ok, err := d.child(level)
		if err != nil {
			return err
		}
		if !ok {
			break
		}
		cl := level + 1
		name := d.name(cl)
		if d.foreign(cl) || name != "type" && name != "comment" {
			if err := d.unknown(cl); err != nil {
				return err
			}
			continue
		}
		v, err := d.text(cl)
		if err != nil {
			return err
		}
		if name == "type" {
			d.once(&f, 0, name)
			r.Type = d.venum(name, v, true, isOverride, "forwarded, sampled_out, trusted_forwarder, mailing_list, local_policy, other, policy_test_mode")
		} else {
			d.once(&f, 1, name)
			r.Comment = d.vtext(name, v)
		}
	}
	d.required(level, f, "type")
	return nil
}

// identifiers reads <identifiers> (RFC 9990 §3.1.1.10).
func (d *Decoder) identifiers(level int, id *Identifiers) error {
	var f fields
	for {
		_, ok, err := d.child(level)
		if err != nil {
			return err
		}
		if !ok {
			break
		}
		cl := level + 1
		name := d.name(cl)
		if d.foreign(cl) || name != "header_from" && name != "envelope_from" && name != "envelope_to" {
			if err := d.unknown(cl); err != nil {
				return err
			}
			continue
		}
		v, err := d.text(cl)
		if err != nil {
			return err
		}
		switch name {
		case "header_from":
			d.once(&f, 0, name)
			id.HeaderFrom = d.vdomain(name, v, true)
		case "envelope_from":
			// RFC 9990 §3.1.1.10: MAY be empty for a null reverse-path.
			d.once(&f, 1, name)
			id.EnvelopeFrom = d.vdomain(name, v, false)
		default:
			d.once(&f, 2, name)
			id.EnvelopeTo = d.vdomain(name, v, false)
		}
	}
	d.required(level, f, "header_from")
	return nil
}

// authResults reads <auth_results> (RFC 9990 §3.1.1.11).
func (d *Decoder) authResults(level int, a *AuthResults) error {
	for {
		_, ok, err := d.child(level)
		if err != nil || !ok {
			return err
		}
		cl := level + 1
		name := d.name(cl)
		if d.foreign(cl) {
			name = ""
		}
		switch name {
		case "dkim":
			d.setIndex(cl, len(a.DKIM))
			if len(a.DKIM) >= d.opts.MaxListLen {
				d.warnHere(fmt.Sprintf("more than %d DKIM results (RFC 9990 §3.1.3: SHOULD be at most 100); skipped", d.opts.MaxListLen))
				err = d.skip(cl)
				break
			}
			var r DKIMResult
			if err = d.dkim(cl, &r); err == nil {
				a.DKIM = append(a.DKIM, r)
			}
		case "spf":
			d.setIndex(cl, len(a.SPF))
			if len(a.SPF) == 1 && d.report.Namespace == NamespaceRFC9990 {
				d.warnHere("a second SPF result (RFC 9990 §3.1.1.11: at most one); read")
			}
			if len(a.SPF) >= d.opts.MaxListLen {
				d.warnHere(fmt.Sprintf("more than %d SPF results; skipped", d.opts.MaxListLen))
				err = d.skip(cl)
				break
			}
			var r SPFResult
			if err = d.spf(cl, &r); err == nil {
				a.SPF = append(a.SPF, r)
			}
		default:
			err = d.unknown(cl)
		}
		if err != nil {
			return err
		}
	}
}

// dkim reads a DKIM result (RFC 9990 §3.1.1.12).
func (d *Decoder) dkim(level int, r *DKIMResult) error {
	var f fields
	for {
		_, ok, err := d.child(level)
		if err != nil {
			return err
		}
		if !ok {
			break
		}
		cl := level + 1
		name := d.name(cl)
		if d.foreign(cl) || name != "domain" && name != "selector" && name != "result" && name != "human_result" {
			if err := d.unknown(cl); err != nil {
				return err
			}
			continue
		}
		v, err := d.text(cl)
		if err != nil {
			return err
		}
		switch name {
		case "domain":
			d.once(&f, 0, name)
			r.Domain = d.vdomain(name, v, true)
		case "result":
			d.once(&f, 1, name)
			r.Result = d.venum(name, v, true, isDKIMResult, "none, pass, fail, policy, neutral, temperror, permerror")
		case "selector":
			d.once(&f, 2, name)
			// RFC 9990 §3.1.1.12 requires it, RFC 7489 did not: no warning
			// when absent.
			r.Selector = d.vstr(name, v, false)
		default:
			d.once(&f, 3, name)
			r.HumanResult = d.vtext(name, v)
		}
	}
	d.required(level, f, "domain", "result")
	if f&(1<<2) == 0 && d.report.Namespace == NamespaceRFC9990 {
		d.warnEnded(level, "no <selector> (RFC 9990 §3.1.1.12: required)")
	}
	return nil
}

// spf reads an SPF result (RFC 9990 §3.1.1.13).
func (d *Decoder) spf(level int, r *SPFResult) error {
	var f fields
	for {
		_, ok, err := d.child(level)
		if err != nil {
			return err
		}
		if !ok {
			break
		}
		cl := level + 1
		name := d.name(cl)
		if d.foreign(cl) || name != "domain" && name != "scope" && name != "result" && name != "human_result" {
			if err := d.unknown(cl); err != nil {
				return err
			}
			continue
		}
		v, err := d.text(cl)
		if err != nil {
			return err
		}
		switch name {
		case "domain":
			d.once(&f, 0, name)
			r.Domain = d.vdomain(name, v, true)
		case "result":
			d.once(&f, 1, name)
			r.Result = d.venum(name, v, true, isSPFResult, "none, neutral, pass, fail, softfail, policy, temperror, permerror")
		case "scope":
			d.once(&f, 2, name)
			r.Scope = d.venum(name, v, false, isSPFScope, "mfrom, helo")
			if r.Scope == "helo" && d.report.Namespace == NamespaceRFC9990 {
				// RFC 7489 allowed helo; DMARC uses the MAIL FROM identity only.
				d.warnAt(name, `"helo" (RFC 9990 §3.1.1.13: the only valid value is "mfrom")`)
			}
		default:
			d.once(&f, 3, name)
			r.HumanResult = d.vtext(name, v)
		}
	}
	d.required(level, f, "domain", "result")
	return nil
}
