package dmarc

import (
	"errors"
	"fmt"
	"math/bits"
	"net/url"
	"strconv"
	"strings"

	"github.com/moatmail/moat/internal/taglist"
)

// IsRecord reports whether txt is a DMARC record for record selection
// (RFC 7489 §6.6.3 steps 2 and 4, §7.1 step 5): its first tag is "v"
// with the value "DMARC1", exactly (§6.3: "MUST match precisely").
// Leading spaces and spaces around "=" are allowed (§6.4 *WSP).
func IsRecord(txt string) bool {
	name, value, ok := firstTag(txt)
	return ok && strings.EqualFold(name, "v") && value == "DMARC1"
}

// LooksLikeRecord reports whether txt was probably meant as a DMARC
// record but is not one: it starts with "v=DMARC" in some other case or
// version, e.g. "v=dmarc1" or "v=DMARC2". The checker can show these.
func LooksLikeRecord(txt string) bool {
	name, value, ok := firstTag(txt)
	return ok && strings.EqualFold(name, "v") && strings.HasPrefix(strings.ToUpper(value), "DMARC") && !IsRecord(txt)
}

// firstTag returns the name and value of the first tag of txt.
func firstTag(txt string) (name, value string, ok bool) {
	first, _, _ := strings.Cut(txt, ";")
	name, value, ok = strings.Cut(first, "=")
	return trimWSP(name), trimWSP(value), ok
}

func trimWSP(s string) string { return strings.Trim(s, " \t\r\n") }

// ParseRecord parses a DMARC record. The decisions where receivers and
// the two specifications differ:
//
//   - The first tag must be v=DMARC1, exactly (RFC 7489 §6.3); otherwise
//     the error is a *TagError for "v" and the record is nil.
//   - A missing p is an error, as RFC 7489 §6.3 requires it; DMARCbis
//     makes p RECOMMENDED and treats a record without it as p=none, and
//     RFC 7489 §6.6.3 step 6 has receivers act as p=none when rua holds
//     a valid URI. The *TagError says so.
//   - An invalid value of a known tag is a *TagError naming tag and
//     value. RFC 7489 §6.3 has receivers discard such tags in favour of
//     defaults, so the checker should report them as errors. When tags
//     are in error, ParseRecord still returns the record with every
//     other tag applied, and the error joins one *TagError per tag.
//   - A tag written twice is an error: DMARC uses the DKIM tag-list
//     syntax, where a duplicate makes the list invalid (RFC 6376 §3.2).
//   - Upper-case tag names and values ("P=Reject") are accepted with a
//     warning: ABNF literals are case-insensitive (RFC 5234 §2.3), but
//     DKIM tag names are case-sensitive and some receivers compare
//     lower case.
//   - pct is accepted with a warning: DMARCbis makes it historic and
//     replaces its common use by t=y. ri and rf, also historic in
//     DMARCbis, are accepted silently.
//   - p not directly after v, unknown tags, empty tags (";;"), obsolete
//     "!size" suffixes (DMARCbis), fo without ruf and URIs other than
//     mailto are warnings.
func ParseRecord(txt string) (rec *Record, warns []Warning, err error) {
	defer func() {
		// STYLE rule 8: a parser bug must not take the checker down.
		if p := recover(); p != nil {
			rec, warns, err = nil, nil, fmt.Errorf("%w: internal parser error: %v", ErrSyntax, p)
		}
	}()
	first, _, _ := strings.Cut(txt, ";")
	name, value, ok := strings.Cut(first, "=")
	name, value = trimWSP(name), trimWSP(value)
	// RFC 7489 §6.3: v MUST be first and MUST be "DMARC1" exactly.
	if !ok || !strings.EqualFold(name, "v") {
		return nil, nil, &TagError{Tag: "v", Value: trimWSP(first), Reason: `the record must start with "v=DMARC1" (RFC 7489 §6.3)`}
	}
	if value != "DMARC1" {
		return nil, nil, &TagError{Tag: "v", Value: value, Reason: `must be exactly "DMARC1" (RFC 7489 §6.3)`}
	}
	// RFC 7489 §6.4: the tag-list syntax of RFC 6376 §3.2, read leniently.
	// Each value is checked against its tag's grammar below; names are
	// compared in lower case; a bad tag-spec is an error that leaves the
	// other tags applied; empty tags (";;") are warnings. Duplicates are
	// checked below, for known tags only, as unknown tags are ignored.
	tags, notes, err := taglist.Parse(txt, taglist.Options{
		Duplicates:     taglist.DuplicateAllow,
		FoldCase:       true,
		SkipEmptySpecs: true,
		Values:         taglist.ValuesAny,
		LooseNewlines:  true,
		KeepGoing:      true,
	})
	bad := taglist.SyntaxErrors(err)
	if len(tags) == 0 || tags[0].Spec != 0 || tags[0].Key != "v" {
		// Not reached: the first tag-spec was read as v=DMARC1 above.
		return nil, nil, &TagError{Tag: "v", Value: trimWSP(first), Reason: `the record must start with "v=DMARC1" (RFC 7489 §6.3)`}
	}
	p := &parser{rec: &Record{
		Version:        "DMARC1",
		ADKIM:          AlignRelaxed,
		ASPF:           AlignRelaxed,
		Percent:        100,
		ReportInterval: 86400,
		FailureOptions: []string{"0"},
		ReportFormat:   []string{"afrf"},
		PSD:            "u",
		Testing:        "n",
	}, seen: map[string]bool{}}
	if tags[0].Name != "v" {
		p.warn("v", "tag name written in upper case")
	}
	p.rec.Tags = append(p.rec.Tags, Tag{Name: "v", Value: value})
	// before reports, in order, what the tag-list held before tag-spec
	// number spec besides tags: empty tags and bad tag-specs.
	before := func(spec int) {
		for ; len(notes) > 0 && notes[0].Spec < spec; notes = notes[1:] {
			p.warn("", "empty tag between semicolons")
		}
		for ; len(bad) > 0 && bad[0].Spec < spec; bad = bad[1:] {
			p.syntax(bad[0])
		}
	}
	for _, t := range tags[1:] {
		before(t.Spec)
		p.tag(t)
	}
	before(len(txt) + 1)
	if !p.seen["p"] {
		p.errs = append(p.errs, &TagError{Tag: "p", Reason: "missing: RFC 7489 §6.3 requires it in a policy record " +
			"(DMARCbis treats a record without p as p=none; RFC 7489 §6.6.3 receivers act as p=none only when rua holds a valid URI)"})
	}
	if p.seen["fo"] && !p.seen["ruf"] {
		// RFC 7489 §6.3: fo MUST be ignored without ruf.
		p.warn("fo", "ignored without ruf (RFC 7489 §6.3)")
	}
	if len(p.errs) > 0 {
		return p.rec, p.warns, errors.Join(p.errs...)
	}
	return p.rec, p.warns, nil
}

type parser struct {
	rec   *Record
	warns []Warning
	errs  []error
	seen  map[string]bool
}

func (p *parser) warn(tag, msg string) { p.warns = append(p.warns, Warning{Tag: tag, Message: msg}) }

func (p *parser) fail(tag, value, reason string) {
	p.errs = append(p.errs, &TagError{Tag: tag, Value: value, Reason: reason})
}

// syntax records a tag-spec that the tag-list syntax refused.
func (p *parser) syntax(se *taglist.SyntaxError) {
	switch se.Problem {
	case taglist.NoEquals:
		p.fail(se.Value, "", `no "=": not a tag=value pair (RFC 7489 §6.4)`)
	case taglist.BadName:
		p.fail(se.Tag, se.Value, "tag name must be letters only (RFC 7489 §6.4)")
	default:
		p.fail(se.Tag, se.Value, se.Reason)
	}
}

// tag applies one tag. Its name is ASCII (taglist checks tag-name), so
// Key is the name in lower case.
func (p *parser) tag(t taglist.Tag) {
	rawName, name, value := t.Name, t.Key, t.Value
	if !isAlphaName(name) {
		p.fail(rawName, value, "tag name must be letters only (RFC 7489 §6.4)")
		return
	}
	known := true
	switch name {
	case "v":
		p.fail("v", value, "v must be the first tag only (RFC 7489 §6.3)")
		return
	case "p", "sp", "np", "adkim", "aspf", "pct", "rua", "ruf", "ri", "fo", "rf", "psd", "t":
	default:
		known = false
	}
	if !known {
		// RFC 7489 §6.3: unknown tags MUST be ignored.
		p.warn(rawName, fmt.Sprintf("unknown tag %s=%q ignored (RFC 7489 §6.3)", rawName, value))
		return
	}
	if p.seen[name] {
		p.fail(name, value, "tag appears more than once (DKIM tag-list syntax, RFC 6376 §3.2)")
		return
	}
	p.seen[name] = true
	p.rec.Tags = append(p.rec.Tags, Tag{Name: name, Value: value})
	if rawName != name {
		p.warn(name, fmt.Sprintf("tag name %q in upper case; receivers may not recognise it", rawName))
	}
	if name == "p" && t.Spec != 1 {
		p.warn("p", "RFC 7489 §6.4 wants p directly after v (DMARCbis allows any order)")
	}
	lower := strings.ToLower(value)
	if lower != value && name != "rua" && name != "ruf" {
		p.warn(name, fmt.Sprintf("value %q in upper case; accepted, but %q is the usual form", value, lower))
	}
	switch name {
	case "p", "sp", "np":
		switch Policy(lower) {
		case PolicyNone, PolicyQuarantine, PolicyReject:
		default:
			p.fail(name, value, `must be "none", "quarantine" or "reject"`)
			return
		}
		switch name {
		case "p":
			p.rec.Policy = Policy(lower)
		case "sp":
			p.rec.SubdomainPolicy = Policy(lower)
		default:
			p.rec.NonexistentPolicy = Policy(lower)
		}
	case "adkim", "aspf":
		if lower != "r" && lower != "s" {
			p.fail(name, value, `must be "r" (relaxed) or "s" (strict)`)
			return
		}
		if name == "adkim" {
			p.rec.ADKIM = Alignment(lower)
		} else {
			p.rec.ASPF = Alignment(lower)
		}
	case "pct":
		// RFC 7489 §6.4: 1*3DIGIT, §6.3: 0 to 100.
		n, err := strconv.Atoi(value)
		if err != nil || len(value) > 3 || value[0] == '+' || value[0] == '-' || n > 100 {
			p.fail(name, value, "must be an integer from 0 to 100")
			return
		}
		p.rec.Percent = n
		msg := "pct is historic in DMARCbis: receivers may ignore it"
		if n != 100 {
			msg += "; to test a policy use t=y instead"
		}
		p.warn(name, msg)
	case "ri":
		n, err := strconv.ParseUint(value, 10, 32)
		if err != nil || value[0] == '+' {
			p.fail(name, value, "must be a number of seconds (32-bit unsigned integer)")
			return
		}
		p.rec.ReportInterval = uint32(n)
	case "fo":
		p.failureOptions(value)
	case "rf":
		var formats []string
		for _, f := range strings.Split(lower, ":") {
			f = trimWSP(f)
			// RFC 7489 §6.3: values MUST be registered; only afrf is.
			if f != "afrf" {
				p.fail(name, value, fmt.Sprintf("unknown report format %q: only \"afrf\" is registered, and receivers may ignore the whole record (RFC 7489 §6.3)", f))
				return
			}
			formats = append(formats, f)
		}
		p.rec.ReportFormat = formats
	case "psd":
		if lower != "y" && lower != "n" && lower != "u" {
			p.fail(name, value, `must be "y", "n" or "u" (DMARCbis)`)
			return
		}
		p.rec.PSD = lower
	case "t":
		if lower != "y" && lower != "n" {
			p.fail(name, value, `must be "y" or "n" (DMARCbis)`)
			return
		}
		p.rec.Testing = lower
	case "rua", "ruf":
		uris, ok := p.uriList(name, value)
		if !ok {
			return
		}
		if name == "rua" {
			p.rec.RUA = uris
		} else {
			p.rec.RUF = uris
		}
	}
}

// isAlphaName reports whether s is one or more ASCII letters.
func isAlphaName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i] | 0x20; c < 'a' || c > 'z' {
			return false
		}
	}
	return true
}

// failureOptions parses fo: ( "0" / "1" / "d" / "s" ) *( *WSP ":" *WSP
// ... ) (RFC 7489 §6.4).
func (p *parser) failureOptions(value string) {
	var opts []string
	seen := map[string]bool{}
	for _, o := range strings.Split(strings.ToLower(value), ":") {
		o = trimWSP(o)
		switch o {
		case "0", "1", "d", "s":
		default:
			p.fail("fo", value, fmt.Sprintf(`option %q is not one of "0", "1", "d", "s"`, o))
			return
		}
		if seen[o] {
			p.warn("fo", fmt.Sprintf("option %q repeated", o))
			continue
		}
		seen[o] = true
		opts = append(opts, o)
	}
	if seen["0"] && seen["1"] {
		p.warn("fo", `"0" and "1" are mutually exclusive in DMARCbis`)
	}
	p.rec.FailureOptions = opts
}

// uriList parses a comma-separated list of DMARC URIs (RFC 7489 §6.4
// dmarc-uri = URI [ "!" 1*DIGIT [ "k" / "m" / "g" / "t" ] ]).
func (p *parser) uriList(tag, value string) ([]ReportURI, bool) {
	var uris []ReportURI
	for _, raw := range strings.Split(value, ",") {
		raw = trimWSP(raw)
		u, reason := ParseReportURI(raw)
		if reason != nil {
			p.fail(tag, value, fmt.Sprintf("URI %q: %v", raw, reason))
			return nil, false
		}
		if u.Size != "" {
			p.warn(tag, fmt.Sprintf("size limit %q of %s is obsolete in DMARCbis: reporters ignore it", "!"+u.Size, u.URI))
		}
		if u.Scheme != "mailto" {
			p.warn(tag, fmt.Sprintf("%s: receivers only have to support mailto: URIs (RFC 7489 §6.3) and ignore others", u.URI))
		}
		uris = append(uris, u)
	}
	return uris, true
}

// ParseReportURI parses one DMARC URI with its optional size limit.
func ParseReportURI(raw string) (ReportURI, error) {
	u := ReportURI{Raw: raw, URI: raw}
	if raw == "" {
		return u, errors.New("empty URI")
	}
	// RFC 7489 §6.4: "!" in the URI MUST be encoded, so the last one
	// starts the size limit.
	if i := strings.LastIndexByte(raw, '!'); i >= 0 {
		size, err := parseSize(raw[i+1:])
		if err != nil {
			return u, fmt.Errorf("size limit %q: %w", raw[i+1:], err)
		}
		u.URI, u.Size, u.MaxSize = raw[:i], raw[i+1:], size
	}
	pu, err := url.Parse(u.URI)
	if err != nil {
		return u, errors.New("not a valid URI")
	}
	if pu.Scheme == "" {
		return u, errors.New(`no scheme: write "mailto:" before the address`)
	}
	u.Scheme = strings.ToLower(pu.Scheme)
	if u.Scheme != "mailto" {
		if pu.Hostname() == "" { // "https://:443/" has a Host but no host name
			return u, errors.New("no host")
		}
		u.Address, u.Domain = u.URI, strings.ToLower(pu.Hostname())
		return u, nil
	}
	addr := pu.Opaque
	if addr == "" {
		addr = pu.Path // "mailto:/x" style oddities
	}
	addr, err = url.PathUnescape(addr)
	if err != nil {
		return u, errors.New("bad percent-encoding")
	}
	at := strings.LastIndexByte(addr, '@')
	if at <= 0 || at == len(addr)-1 || strings.ContainsAny(addr, " ,;<>\"") {
		return u, fmt.Errorf("%q is not an email address", addr)
	}
	domain := strings.ToLower(strings.TrimSuffix(addr[at+1:], "."))
	if !strings.Contains(domain, ".") || strings.Contains(domain, "..") || strings.HasPrefix(domain, ".") {
		return u, fmt.Errorf("%q is not a valid mail domain", addr[at+1:])
	}
	u.Address, u.Domain = addr, domain
	return u, nil
}

// parseSize parses 1*DIGIT [ "k" / "m" / "g" / "t" ] (powers of two,
// RFC 7489 §6.4); the result must fit in 64 bits.
func parseSize(s string) (uint64, error) {
	shift := 0
	if s != "" {
		switch s[len(s)-1] | 0x20 {
		case 'k':
			shift = 10
		case 'm':
			shift = 20
		case 'g':
			shift = 30
		case 't':
			shift = 40
		}
		if shift > 0 {
			s = s[:len(s)-1]
		}
	}
	if s == "" || s[0] == '+' {
		return 0, errors.New("needs a number")
	}
	n, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		return 0, errors.New("not a number that fits in 64 bits")
	}
	if bits.LeadingZeros64(n) < shift {
		return 0, errors.New("does not fit in 64 bits")
	}
	return n << shift, nil
}
