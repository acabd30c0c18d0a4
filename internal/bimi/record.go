package bimi

import (
	"errors"
	"fmt"
	"net/url"
	"path"
	"strings"

	"github.com/moatmail/moat/internal/dnsname"
	"github.com/moatmail/moat/internal/taglist"
)

// maxRecord bounds the record length parsed; no TXT record is longer
// than one DNS message.
const maxRecord = 65535

// ParseRecord parses a BIMI assertion record, the strings of the TXT
// record joined (draft §4.2, §4.4 of RFC 7208 by reference for joining).
// Errors are *TagError wrapping ErrSyntax.
//
// Decisions, per draft-04:
//   - v=BIMI1 MUST be the first tag and match exactly (§4.2); tag names
//     are case-sensitive, as in DKIM's tag-list (RFC 6376 §3.2), and
//     "Mail receivers MUST NOT attempt to fix syntactical or
//     capitalization errors" (§4.2).
//   - l= is REQUIRED by the ABNF (bimi-record); it may be empty.
//   - a= is optional; absent means empty.
//   - A tag repeated makes the record invalid (RFC 6376 §3.2).
//   - Unknown tags MUST be ignored (§4.2): they are kept in Extensions.
//     avp= and lps= come from later drafts of BIMI; under draft-04 they
//     are unknown tags and are ignored with a note.
//   - Only one ";" may close the record ("v=BIMI1; l=;;" is invalid).
//   - White space is that of RFC 6376 §3.2: a line break must be part of
//     a fold (CRLF followed by a space or tab, §2.8), which may also
//     appear inside a value.
func ParseRecord(txt string) (rec *Record, err error) {
	defer func() {
		// STYLE rule 8: a parser panic is a bug; report it as a syntax error.
		if r := recover(); r != nil {
			rec, err = nil, &TagError{Reason: fmt.Sprintf("internal parser error: %v", r)}
		}
	}()
	// RFC 6376 §3.2 to the letter (draft §4.2: receivers MUST NOT fix
	// syntax errors): duplicates, empty tag-specs, line breaks outside
	// folds and bytes outside VALCHAR are errors.
	list, _, err := taglist.Parse(txt, taglist.Options{MaxLen: maxRecord})
	if err != nil {
		return nil, tagError(err)
	}
	tags := make([]Pair, len(list))
	for i, t := range list {
		tags[i] = Pair{Tag: t.Name, Value: t.Value}
	}
	// §4.2: v= MUST be the first tag and MUST have the value "BIMI1";
	// if it does not match or is absent the record MUST be ignored.
	if tags[0].Tag != "v" {
		return nil, &TagError{Tag: tags[0].Tag, Value: clip(tags[0].Value), Reason: "the first tag must be v=BIMI1 (draft §4.2)"}
	}
	if tags[0].Value != "BIMI1" {
		return nil, &TagError{Tag: "v", Value: clip(tags[0].Value), Reason: "version must be exactly BIMI1 (draft §4.2)"}
	}
	rec = &Record{Version: "BIMI1"}
	var haveL bool
	for _, t := range tags[1:] {
		switch t.Tag {
		case "v":
			// taglist.Parse already refused duplicates.
		case "l":
			haveL = true
			if err := checkURI("l", t.Value); err != nil {
				return nil, err
			}
			rec.Logo = t.Value
		case "a":
			if err := checkURI("a", t.Value); err != nil {
				return nil, err
			}
			rec.Authority = t.Value
		default:
			// §4.2: unknown tags MUST be ignored.
			rec.Extensions = append(rec.Extensions, t)
			switch t.Tag {
			case "avp":
				rec.Notes = append(rec.Notes, "avp= (avatar preference) comes from later BIMI drafts; draft-04 does not define it, so it is ignored")
			case "lps":
				rec.Notes = append(rec.Notes, "lps= (local-part selectors) comes from later BIMI drafts; draft-04 does not define it, so it is ignored")
			default:
				rec.Notes = append(rec.Notes, fmt.Sprintf("unknown tag %s= is ignored (draft §4.2)", t.Tag))
			}
		}
	}
	if !haveL {
		reason := "missing l= (draft §4.2: REQUIRED; write l=; to decline)"
		for _, t := range rec.Extensions {
			if t.Tag == "L" {
				reason += `; tag names are case-sensitive and "L=" is not "l="`
			}
		}
		return nil, &TagError{Tag: "l", Reason: reason}
	}
	// §4.2.1: both l= and a= empty is an explicit declination.
	rec.Declined = rec.Logo == "" && rec.Authority == ""
	if rec.Logo == "" && rec.Authority != "" {
		rec.Notes = append(rec.Notes, "l= is empty but a= is not: draft-04 §7.3 finds no indicator without l=")
	}
	return rec, nil
}

// tagError turns a tag-list syntax error into a *TagError.
func tagError(err error) *TagError {
	var se *taglist.SyntaxError
	if !errors.As(err, &se) {
		return &TagError{Reason: err.Error()}
	}
	tag, reason := se.Tag, se.Reason
	switch se.Problem {
	case taglist.BadName:
		tag = clip(tag) // any text before "="
	case taglist.Empty:
		reason = "empty record"
	}
	return &TagError{Tag: tag, Value: clip(se.Value), Reason: reason}
}

// checkURI checks an l= or a= value: empty, or one https URI with a
// fully-qualified domain name (draft §4.2).
func checkURI(tag, v string) error {
	if v == "" {
		return nil
	}
	fail := func(reason string) error { return &TagError{Tag: tag, Value: clip(v), Reason: reason} }
	if strings.ContainsAny(v, " \t") {
		return fail("white space inside the URI")
	}
	// §4.2: commas within a URI MUST be encoded; a comma separated
	// several URIs in earlier drafts.
	if strings.Contains(v, ",") {
		return fail("a single URI is allowed and commas must be percent-encoded (draft §4.2)")
	}
	u, err := url.Parse(v)
	if err != nil {
		return fail("not a URI: " + err.Error())
	}
	// §4.2: the URI MUST specify HTTPS as the scheme.
	if !strings.EqualFold(u.Scheme, "https") {
		if u.Scheme == "" {
			return fail("not an absolute https URI (draft §4.2)")
		}
		return fail(fmt.Sprintf("scheme %q, only https is allowed (draft §4.2)", u.Scheme))
	}
	host := u.Hostname()
	if host == "" {
		return fail("the URI has no host (draft §4.2: MUST contain an FQDN)")
	}
	// §4.2: the URI MUST contain a fully qualified domain name (a host
	// name, dnsname.Host: not an IP address, not a single label).
	if _, err := dnsname.Parse(host, dnsname.Host); err != nil {
		return fail(fmt.Sprintf("%v (draft §4.2 requires a fully qualified domain name)", err))
	}
	if tag == "l" {
		// §4.2.2: an l= URI ending with another image format suffix is a
		// permanent error; only SVG and SVGZ are registered.
		switch ext := strings.ToLower(path.Ext(u.Path)); ext {
		case ".png", ".jpg", ".jpeg", ".gif", ".bmp", ".webp", ".ico", ".tif", ".tiff", ".avif", ".heic":
			return fail(fmt.Sprintf("the indicator must be SVG (draft §4.2.2), not %s", ext))
		}
	}
	return nil
}

// clip shortens s for an error message.
func clip(s string) string {
	const limit = 80
	if len(s) <= limit {
		return s
	}
	return s[:limit] + "..."
}
