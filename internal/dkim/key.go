package dkim

import (
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"

	"github.com/moatmail/moat/internal/taglist"
)

// ParseKey parses a DKIM key record, the strings of the TXT record joined
// (RFC 6376 §3.6.1, RFC 8463 §4.2). Errors are *TagError wrapping
// ErrSyntax. A record with an empty p= parses: Revoked is set and Public
// is nil. Problems that do not stop verifiers from using the key are
// returned in Key.Warnings.
func ParseKey(txt string) (k *Key, err error) {
	defer func() {
		// STYLE rule 8: a parser panic is a bug; report it as a syntax error.
		if r := recover(); r != nil {
			k, err = nil, &TagError{Reason: fmt.Sprintf("internal parser error: %v", r)}
		}
	}()
	// RFC 6376 §3.2, with what verifiers commonly tolerate although the
	// ABNF forbids it turned into warnings: empty tag-specs (";;") and
	// non-ASCII bytes in values. Line breaks that are not folds count as
	// white space.
	tags, notes, err := taglist.Parse(txt, taglist.Options{
		SkipEmptySpecs: true,
		Values:         taglist.ValuesNonASCII,
		LooseNewlines:  true,
		MaxLen:         maxRecord,
	})
	if err != nil {
		return nil, tagError(err)
	}
	k = &Key{KeyType: "rsa"}
	for _, n := range notes {
		k.Warnings = append(k.Warnings, n.Text)
	}
	var p *taglist.Tag
	for i, t := range tags {
		switch t.Name {
		case "v":
			// RFC 6376 §3.6.1: if v= is specified, it MUST be the first
			// tag, and its value MUST be "DKIM1".
			if i != 0 {
				return nil, &TagError{Tag: "v", Value: clip(t.Value), Reason: "v= must be the first tag (RFC 6376 §3.6.1)"}
			}
			if t.Value != "DKIM1" {
				return nil, &TagError{Tag: "v", Value: clip(t.Value), Reason: "version must be DKIM1 (RFC 6376 §3.6.1)"}
			}
			k.Version = t.Value
		case "h":
			k.Hashes = splitList(t.Value)
		case "k":
			kt := t.Value
			if lower := strings.ToLower(kt); lower != kt && (lower == "rsa" || lower == "ed25519") {
				k.Warnings = append(k.Warnings, fmt.Sprintf("k=%s: tag values are case-sensitive (RFC 6376 §3.2), some verifiers reject it; write k=%s", kt, lower))
				kt = lower
			}
			switch kt {
			case "rsa", "ed25519":
				k.KeyType = kt
			default:
				// RFC 6376 §3.6.1: unrecognized key types MUST be
				// ignored, so no verifier can use this key.
				return nil, &TagError{Tag: "k", Value: clip(t.Value), Reason: "unknown key type, want rsa or ed25519 (RFC 6376 §3.6.1, RFC 8463)"}
			}
		case "n":
			k.Notes = t.Value
		case "p":
			p = &tags[i]
		case "s":
			k.Services = splitList(t.Value)
		case "t":
			for _, f := range splitList(t.Value) {
				switch f {
				case "y":
					k.Testing = true
				case "s":
					k.Strict = true
				default:
					// RFC 6376 §3.6.1: unrecognized flags MUST be ignored.
					k.Warnings = append(k.Warnings, fmt.Sprintf("t=%s: unknown flag %q is ignored", t.Value, f))
				}
			}
		}
	}
	if p == nil {
		reason := "missing p= (RFC 6376 §3.6.1: REQUIRED)"
		for _, t := range tags {
			if t.Name == "P" {
				reason += `; tag names are case-sensitive and "P=" is not "p="`
			}
		}
		return nil, &TagError{Tag: "p", Reason: reason}
	}
	k.checkHashes()
	k.checkServices()
	data := removeFWS(p.Value)
	if data == "" {
		// RFC 6376 §3.6.1: an empty value means that this public key
		// has been revoked.
		k.Revoked = true
		return k, nil
	}
	der, err := base64.StdEncoding.DecodeString(data)
	if err != nil {
		return nil, &TagError{Tag: "p", Value: clip(data), Reason: fmt.Sprintf("not base64: %s", err.Error())}
	}
	if err := k.setPublic(der); err != nil {
		return nil, err
	}
	return k, nil
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

// setPublic decodes the p= bytes for the record's key type.
func (k *Key) setPublic(der []byte) error {
	switch k.KeyType {
	case "ed25519":
		// RFC 8463 §4.2: the p= value is the base64 encoding of the raw
		// 32-byte public key, not a SubjectPublicKeyInfo.
		if len(der) == ed25519.PublicKeySize {
			k.Public = ed25519.PublicKey(der)
			k.Bits = 256
			return nil
		}
		if pub, err := x509.ParsePKIXPublicKey(der); err == nil {
			if _, ok := pub.(ed25519.PublicKey); ok {
				return &TagError{Tag: "p", Value: clip(base64.StdEncoding.EncodeToString(der)), Reason: "Ed25519 key wrapped in a SubjectPublicKeyInfo; RFC 8463 §4.2 wants the raw 32-byte key, verifiers reject this form"}
			}
		}
		return &TagError{Tag: "p", Value: clip(base64.StdEncoding.EncodeToString(der)), Reason: fmt.Sprintf("Ed25519 key is %d bytes, want %d (RFC 8463 §4.2)", len(der), ed25519.PublicKeySize)}
	default:
		// RFC 6376 §3.6.1 names an RSAPublicKey, but its example and
		// nearly every record in the wild hold a SubjectPublicKeyInfo
		// (erratum 3017); both forms are accepted, as verifiers do.
		var rk *rsa.PublicKey
		if pub, err := x509.ParsePKIXPublicKey(der); err == nil {
			var ok bool
			if rk, ok = pub.(*rsa.PublicKey); !ok {
				return &TagError{Tag: "p", Value: clip(base64.StdEncoding.EncodeToString(der)), Reason: fmt.Sprintf("k=rsa but the key is %s", keyKind(pub))}
			}
		} else if pk, err2 := x509.ParsePKCS1PublicKey(der); err2 == nil {
			rk = pk
			k.Warnings = append(k.Warnings, "p= holds a bare RSAPublicKey rather than a SubjectPublicKeyInfo; most verifiers accept it but some do not")
		} else {
			return &TagError{Tag: "p", Value: clip(base64.StdEncoding.EncodeToString(der)), Reason: fmt.Sprintf("not a SubjectPublicKeyInfo nor an RSAPublicKey: %s", err.Error())}
		}
		k.Public = rk
		k.Bits = rk.N.BitLen()
		return nil
	}
}

// keyKind names the type of a parsed public key for messages.
func keyKind(pub any) string {
	switch pub.(type) {
	case ed25519.PublicKey:
		return "an Ed25519 key (use k=ed25519 and the raw key)"
	case *rsa.PublicKey:
		return "an RSA key"
	default:
		return fmt.Sprintf("a %T key, which DKIM does not define", pub)
	}
}

// checkHashes warns about h= values verifiers will not use.
func (k *Key) checkHashes() {
	if k.Hashes == nil {
		return
	}
	var sha1, sha256 bool
	for _, h := range k.Hashes {
		switch h {
		case "sha1":
			sha1 = true
		case "sha256":
			sha256 = true
		default:
			// RFC 6376 §3.6.1: unrecognized algorithms MUST be ignored.
			k.Warnings = append(k.Warnings, fmt.Sprintf("h=: unknown hash algorithm %q is ignored", h))
		}
	}
	switch {
	case sha1 && !sha256:
		// RFC 8301 §3.1: signers and verifiers MUST NOT use rsa-sha1.
		k.Warnings = append(k.Warnings, "h= allows only sha1, which RFC 8301 §3.1 forbids: signatures with this key fail at current verifiers")
	case sha1:
		k.Warnings = append(k.Warnings, "h= lists sha1, which RFC 8301 §3.1 says MUST NOT be used; remove it")
	case !sha256:
		k.Warnings = append(k.Warnings, "h= lists no algorithm verifiers know (sha256): no signature with this key can verify")
	}
}

// checkServices warns when s= excludes email.
func (k *Key) checkServices() {
	if k.Services == nil {
		return
	}
	for _, s := range k.Services {
		if s == "*" || s == "email" {
			return
		}
	}
	k.Warnings = append(k.Warnings, fmt.Sprintf("s=%s does not include email or *: verifiers must not use this key for mail (RFC 6376 §3.6.1)", strings.Join(k.Services, ":")))
}

// maxRecord bounds the record length parsed. RSA 4096 keys take about
// 740 bytes of base64; 8192-bit keys about 1400. A TXT record over 64 KiB
// cannot be carried in one DNS message.
const maxRecord = 65535

// trimFWS removes folding white space (SP, HTAB, CR, LF) around s.
func trimFWS(s string) string {
	return strings.Trim(s, " \t\r\n")
}

// removeFWS removes every white-space byte of s (RFC 6376 §3.6.1: the p=
// value may be folded).
func removeFWS(s string) string {
	if !strings.ContainsAny(s, " \t\r\n") {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if c := s[i]; c != ' ' && c != '\t' && c != '\r' && c != '\n' {
			b.WriteByte(c)
		}
	}
	return b.String()
}

// clip shortens s for an error message.
func clip(s string) string {
	const limit = 64
	if len(s) <= limit {
		return s
	}
	return s[:limit] + "..."
}

// splitList splits a colon-separated list (h=, s=, t=) into lower-case,
// trimmed, non-empty items.
func splitList(s string) []string {
	var out []string
	for _, item := range strings.Split(s, ":") {
		if item = strings.ToLower(trimFWS(item)); item != "" {
			out = append(out, item)
		}
	}
	return out
}
