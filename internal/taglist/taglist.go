// Package taglist parses the tag=value lists of RFC 6376 §3.2, the syntax
// of DKIM key records and signatures, which DMARC policy records (RFC 7489
// §6.4) and BIMI assertion records (draft-brand-indicators-for-message-
// identification-04 §4.2) use too:
//
//	tag-list  =  tag-spec *( ";" tag-spec ) [ ";" ]
//	tag-spec  =  [FWS] tag-name [FWS] "=" [FWS] tag-value [FWS]
//	tag-name  =  ALPHA *ALNUMPUNC
//	tag-value =  [ tval *( 1*(WSP / FWS) tval ) ]
//	tval      =  1*VALCHAR
//	VALCHAR   =  %x21-3A / %x3C-7E
//	ALNUMPUNC =  ALPHA / DIGIT / "_"
//
// where FWS is folding white space, [*WSP CRLF] 1*WSP (RFC 6376 §2.8).
// White space after the final ";" is accepted too.
//
// The protocols read this syntax with different strictness. The zero
// Options applies RFC 6376 to the letter; each field relaxes one rule for
// the protocol that needs it. Parse returns the tags in order, with their
// byte offsets, and notes about what it tolerated, which the caller can
// turn into its own warnings; what it does not tolerate is a *SyntaxError
// wrapping ErrSyntax.
package taglist

import (
	"errors"
	"fmt"
	"strings"
)

// ErrSyntax is wrapped by every *SyntaxError: the input is not a tag-list
// under the Options given. The caller should treat the record as invalid
// and report the *SyntaxError's reason.
var ErrSyntax = errors.New("taglist: syntax error")

// Options relaxes the rules of RFC 6376 §3.2 for one protocol. The zero
// value applies them to the letter.
type Options struct {
	// Duplicates says what a tag name written twice does. The zero value,
	// DuplicateError, makes it a syntax error: RFC 6376 §3.2 says the
	// entire tag-list is then invalid.
	Duplicates Duplicates
	// FoldCase compares tag names in ASCII lower case: Tag.Key is the
	// lower-case name, and a caller can warn when Tag.Name differs from
	// it. By default names are case-sensitive (RFC 6376 §3.2).
	FoldCase bool
	// NoEmptyValues makes "tag=" a syntax error. By default an empty value
	// is allowed, as the ABNF allows (DKIM's revoked p=, BIMI's l=).
	NoEmptyValues bool
	// SkipEmptySpecs skips an empty tag-spec (";;", or a ";" at the start)
	// with a NoteEmptySpec note. By default it is a syntax error. One ";"
	// at the end of the list is always allowed.
	SkipEmptySpecs bool
	// Values says which bytes a tag-value may hold. The zero value,
	// ValuesStrict, allows VALCHAR and white space only.
	Values Values
	// LooseNewlines takes a CR or LF that is not part of a fold (CRLF
	// followed by a space or tab) as white space. By default such a line
	// break is a syntax error (RFC 6376 §2.8 FWS).
	LooseNewlines bool
	// KeepGoing reports every bad tag-spec instead of stopping at the
	// first: Parse skips it and goes on, and returns the other tags and
	// notes with an error joining one *SyntaxError per bad tag-spec (see
	// SyntaxErrors). An input over MaxLen or without any tag-spec still
	// returns no tags.
	KeepGoing bool
	// MaxLen is the longest input parsed, in bytes; 0 means no limit. A
	// TXT record cannot be longer than one DNS message, 65535 bytes.
	MaxLen int
}

// Duplicates is what Parse does with a tag name written twice.
type Duplicates int

// Duplicate tag policies.
const (
	// DuplicateError: a syntax error (RFC 6376 §3.2).
	DuplicateError Duplicates = iota
	// DuplicateKeepFirst: the first is kept, later ones are dropped with a
	// NoteDuplicate note.
	DuplicateKeepFirst
	// DuplicateKeepLast: the last is kept, at its own position; earlier
	// ones are dropped with a NoteDuplicate note.
	DuplicateKeepLast
	// DuplicateAllow: every occurrence is returned, without a note.
	DuplicateAllow
)

// Values says which bytes a tag-value may hold besides white space.
type Values int

// Value rules.
const (
	// ValuesStrict: VALCHAR only (%x21-3A / %x3C-7E, RFC 6376 §3.2).
	ValuesStrict Values = iota
	// ValuesNonASCII: VALCHAR and bytes from 0x80, which DKIM verifiers
	// commonly tolerate; a value holding them gets a NoteNonASCII note.
	// Control characters are still syntax errors.
	ValuesNonASCII
	// ValuesAny: any byte but ";", for a caller that checks each value
	// against its own grammar (DMARC, RFC 7489 §6.4).
	ValuesAny
)

// Tag is one tag=value of the list.
type Tag struct {
	Name string // the tag name as written
	// Key is the name tags are compared by: Name, in ASCII lower case
	// with Options.FoldCase.
	Key string
	// Value is the tag-value without the white space around it; white
	// space inside it, folds included, is kept as written.
	Value string
	// Offset is the byte offset of Name in the input, ValueOffset that of
	// Value (where it would start when empty).
	Offset, ValueOffset int
	// Spec is the index of the tag-spec in the list, counting from 0,
	// empty and rejected tag-specs included.
	Spec int
}

// NoteKind says what a Note is about.
type NoteKind int

// Note kinds.
const (
	// NoteEmptySpec: an empty tag-spec was skipped (Options.SkipEmptySpecs).
	NoteEmptySpec NoteKind = iota + 1
	// NoteNonASCII: a value holds bytes from 0x80 (ValuesNonASCII).
	NoteNonASCII
	// NoteDuplicate: a repeated tag was dropped (DuplicateKeepFirst or
	// DuplicateKeepLast).
	NoteDuplicate
)

// Note is something Parse tolerated that the ABNF does not allow.
type Note struct {
	Kind   NoteKind
	Offset int    // byte offset in the input of what the note is about
	Spec   int    // index of the tag-spec, as in Tag.Spec
	Tag    string // the tag concerned as written; "" for NoteEmptySpec
	Text   string // what was tolerated, in words
}

// Problem says what a SyntaxError is about.
type Problem int

// Problems.
const (
	// Internal: a bug in this package, recovered (STYLE rule 8).
	Internal Problem = iota
	// TooLong: the input is longer than Options.MaxLen.
	TooLong
	// Empty: the input holds no tag-spec at all.
	Empty
	// EmptySpec: ";;", or a ";" at the start of the list.
	EmptySpec
	// NoEquals: a tag-spec without "=". Value holds the tag-spec.
	NoEquals
	// BadName: the tag name is not ALPHA *(ALPHA / DIGIT / "_").
	BadName
	// BadNewline: a CR or LF that is not part of CRLF followed by a space
	// or tab (RFC 6376 §2.8 FWS).
	BadNewline
	// BadValue: the value holds a byte Options.Values does not allow.
	BadValue
	// EmptyValue: "tag=" with Options.NoEmptyValues.
	EmptyValue
	// Duplicate: a tag name written twice, with DuplicateError.
	Duplicate
)

// SyntaxError is a tag-list that breaks RFC 6376 §3.2 as relaxed by the
// Options. It wraps ErrSyntax.
type SyntaxError struct {
	Offset int    // byte offset in the input of the offending text
	Spec   int    // index of the tag-spec, as in Tag.Spec
	Tag    string // the tag name as written, "" when none was read
	// Value is the tag's value, or the whole tag-spec for NoEquals.
	Value   string
	Problem Problem
	Reason  string // what is wrong, in words
}

func (e *SyntaxError) Error() string {
	if e.Tag == "" {
		return fmt.Sprintf("%v at byte %d: %s", ErrSyntax, e.Offset, e.Reason)
	}
	return fmt.Sprintf("%v at byte %d: tag %q: %s", ErrSyntax, e.Offset, e.Tag, e.Reason)
}

// Unwrap returns ErrSyntax.
func (e *SyntaxError) Unwrap() error { return ErrSyntax }

// SyntaxErrors returns the *SyntaxError values in an error of Parse: the
// one it returned, or each of those it joined with Options.KeepGoing, in
// the order of the input.
func SyntaxErrors(err error) []*SyntaxError {
	var errs []error
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		errs = j.Unwrap()
	} else if err != nil {
		errs = []error{err}
	}
	var out []*SyntaxError
	for _, e := range errs {
		var se *SyntaxError
		if errors.As(e, &se) {
			out = append(out, se)
		}
	}
	return out
}

// Parse splits a tag-list into its tags, in order. Notes list what the
// Options let through although RFC 6376 §3.2 does not allow it. The error
// is a *SyntaxError, or, with Options.KeepGoing, the errors.Join of one
// per rejected tag-spec; without KeepGoing no tags are returned with it.
func Parse(s string, opts Options) (tags []Tag, notes []Note, err error) {
	defer func() {
		// STYLE rule 8: a parser bug must not take the caller down.
		if r := recover(); r != nil {
			tags, notes = nil, nil
			err = &SyntaxError{Problem: Internal, Reason: fmt.Sprintf("internal parser error: %v", r)}
		}
	}()
	if opts.MaxLen > 0 && len(s) > opts.MaxLen {
		return nil, nil, &SyntaxError{Offset: opts.MaxLen, Problem: TooLong,
			Reason: fmt.Sprintf("tag-list is %d bytes, over the %d byte limit", len(s), opts.MaxLen)}
	}
	p := &parser{s: s, opts: opts}
	var errs []error
	for start, spec := 0, 0; ; spec++ {
		end := strings.IndexByte(s[start:], ';')
		last := end < 0
		if last {
			end = len(s)
		} else {
			end += start
		}
		if se := p.spec(spec, start, end, last); se != nil {
			if !opts.KeepGoing {
				return nil, nil, se
			}
			errs = append(errs, se)
		}
		if last {
			break
		}
		start = end + 1
	}
	if len(errs) > 0 {
		return p.tags, p.notes, errors.Join(errs...)
	}
	if len(p.tags) == 0 {
		return nil, nil, &SyntaxError{Offset: len(s), Problem: Empty,
			Reason: "empty tag-list (RFC 6376 §3.2: at least one tag=value)"}
	}
	return p.tags, p.notes, nil
}

type parser struct {
	s     string
	opts  Options
	tags  []Tag
	notes []Note
	seen  map[string]bool
}

// spec parses the tag-spec s[start:end], number spec; last says it is
// the text after the last ";" (or the whole input when there is none).
func (p *parser) spec(spec, start, end int, last bool) *SyntaxError {
	s := p.s
	i, j := trim(s, start, end)
	if i == j {
		if off := p.badNewline(start, end); off >= 0 {
			return p.newlineError(spec, off, "", "")
		}
		if last {
			return nil // one ";" may end the list; nothing at all is Empty
		}
		// RFC 6376 §3.2: tag-list = tag-spec *( ";" tag-spec ) [ ";" ]
		text := fmt.Sprintf(`empty tag-spec at position %d (";;" or a leading ";"): RFC 6376 §3.2 does not allow it`, spec+1)
		if p.opts.SkipEmptySpecs {
			p.notes = append(p.notes, Note{Kind: NoteEmptySpec, Offset: start, Spec: spec, Text: text})
			return nil
		}
		return &SyntaxError{Offset: start, Spec: spec, Problem: EmptySpec, Reason: text}
	}
	eq := strings.IndexByte(s[i:j], '=')
	if eq < 0 {
		text := s[i:j]
		return &SyntaxError{Offset: i, Spec: spec, Value: text, Problem: NoEquals,
			Reason: fmt.Sprintf(`tag-spec %d %q has no "="`, spec+1, clip(text))}
	}
	eq += i
	ni, nj := trim(s, i, eq)
	vi, vj := trim(s, eq+1, j)
	name, value := s[ni:nj], s[vi:vj]
	if !validName(name) {
		return &SyntaxError{Offset: ni, Spec: spec, Tag: name, Value: value, Problem: BadName,
			Reason: `invalid tag name (RFC 6376 §3.2: ALPHA *(ALPHA / DIGIT / "_"))`}
	}
	if se := p.checkValue(spec, name, value, vi); se != nil {
		return se
	}
	if off := p.badNewline(start, end); off >= 0 {
		return p.newlineError(spec, off, name, value)
	}
	if value == "" && p.opts.NoEmptyValues {
		return &SyntaxError{Offset: vi, Spec: spec, Tag: name, Problem: EmptyValue,
			Reason: fmt.Sprintf("%s= has an empty value", name)}
	}
	t := Tag{Name: name, Key: name, Value: value, Offset: ni, ValueOffset: vi, Spec: spec}
	if p.opts.FoldCase {
		t.Key = strings.ToLower(name) // ASCII: validName allows nothing else
	}
	return p.add(t)
}

// add appends t, applying the duplicate policy.
func (p *parser) add(t Tag) *SyntaxError {
	if p.seen == nil {
		p.seen = map[string]bool{}
	}
	if !p.seen[t.Key] || p.opts.Duplicates == DuplicateAllow {
		p.seen[t.Key] = true
		p.tags = append(p.tags, t)
		return nil
	}
	switch p.opts.Duplicates {
	case DuplicateKeepFirst:
		p.notes = append(p.notes, Note{Kind: NoteDuplicate, Offset: t.Offset, Spec: t.Spec, Tag: t.Name,
			Text: fmt.Sprintf("%s= is repeated at byte %d; the first one is kept", t.Name, t.Offset)})
		return nil
	case DuplicateKeepLast:
		for k, old := range p.tags {
			if old.Key == t.Key {
				p.notes = append(p.notes, Note{Kind: NoteDuplicate, Offset: old.Offset, Spec: old.Spec, Tag: old.Name,
					Text: fmt.Sprintf("%s= at byte %d is repeated later; the last one is kept", old.Name, old.Offset)})
				p.tags = append(p.tags[:k], p.tags[k+1:]...)
				break
			}
		}
		p.tags = append(p.tags, t)
		return nil
	}
	// RFC 6376 §3.2: tags with duplicate names MUST NOT occur within a
	// single tag-list; if one does, the entire tag-list is invalid.
	return &SyntaxError{Offset: t.Offset, Spec: t.Spec, Tag: t.Name, Value: t.Value, Problem: Duplicate,
		Reason: "duplicate tag (RFC 6376 §3.2: the entire tag-list is invalid)"}
}

// checkValue checks the bytes of value, which starts at offset off.
func (p *parser) checkValue(spec int, name, value string, off int) *SyntaxError {
	if p.opts.Values == ValuesAny {
		return nil
	}
	noted := false
	for k := 0; k < len(value); k++ {
		c := value[k]
		switch {
		case isSpace(c) || c >= 0x21 && c <= 0x7e:
			// VALCHAR and white space; line breaks are checked by
			// badNewline.
		case c >= 0x80 && p.opts.Values == ValuesNonASCII:
			if !noted {
				noted = true
				p.notes = append(p.notes, Note{Kind: NoteNonASCII, Offset: off + k, Spec: spec, Tag: name,
					Text: fmt.Sprintf("%s= holds non-ASCII bytes, which RFC 6376 §3.2 does not allow", name)})
			}
		case p.opts.Values == ValuesNonASCII:
			return &SyntaxError{Offset: off + k, Spec: spec, Tag: name, Value: value, Problem: BadValue,
				Reason: fmt.Sprintf("control character 0x%02x at offset %d of the value", c, k)}
		default:
			return &SyntaxError{Offset: off + k, Spec: spec, Tag: name, Value: value, Problem: BadValue,
				Reason: fmt.Sprintf("byte 0x%02x at offset %d of the value is not allowed (RFC 6376 §3.2: VALCHAR and white space only)", c, k)}
		}
	}
	return nil
}

// badNewline returns the offset of the first CR or LF in s[start:end]
// that is not part of a fold, CRLF followed by a space or tab (RFC 6376
// §2.8 FWS), or -1. With LooseNewlines every line break is white space.
func (p *parser) badNewline(start, end int) int {
	if p.opts.LooseNewlines {
		return -1
	}
	s := p.s
	for k := start; k < end; k++ {
		switch s[k] {
		case '\r':
			if k+2 >= end || s[k+1] != '\n' || !isWSP(s[k+2]) {
				return k
			}
			k++ // the LF of the fold
		case '\n':
			return k // not after a CR: the CR case skips those
		}
	}
	return -1
}

func (p *parser) newlineError(spec, off int, name, value string) *SyntaxError {
	return &SyntaxError{Offset: off, Spec: spec, Tag: name, Value: value, Problem: BadNewline,
		Reason: fmt.Sprintf("byte 0x%02x at byte %d is a line break outside folding white space (RFC 6376 §2.8: CRLF followed by a space or tab)", p.s[off], off)}
}

// Format writes tags in the usual form, "name=value; name=value". For
// tags returned by Parse, Parse reads the result back to the same names
// and values.
func Format(tags []Tag) string {
	var b strings.Builder
	for k, t := range tags {
		if k > 0 {
			b.WriteString("; ")
		}
		b.WriteString(t.Name)
		b.WriteByte('=')
		b.WriteString(t.Value)
	}
	return b.String()
}

// validName reports whether s matches tag-name = ALPHA *ALNUMPUNC.
func validName(s string) bool {
	if s == "" || !isAlpha(s[0]) {
		return false
	}
	for k := 1; k < len(s); k++ {
		if c := s[k]; !isAlpha(c) && (c < '0' || c > '9') && c != '_' {
			return false
		}
	}
	return true
}

// trim returns the bounds of s[i:j] without the white space around it.
func trim(s string, i, j int) (int, int) {
	for i < j && isSpace(s[i]) {
		i++
	}
	for j > i && isSpace(s[j-1]) {
		j--
	}
	return i, j
}

func isAlpha(c byte) bool { return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' }
func isWSP(c byte) bool   { return c == ' ' || c == '\t' }

// isSpace reports white space: WSP and the CR and LF of folds.
func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\r' || c == '\n' }

// clip shortens s for an error message.
func clip(s string) string {
	const limit = 64
	if len(s) <= limit {
		return s
	}
	return s[:limit] + "..."
}
