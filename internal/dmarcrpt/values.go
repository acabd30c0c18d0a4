package dmarcrpt

import (
	"encoding/xml"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
)

// warnAt warns about the child label of the current element.
func (d *Decoder) warnAt(label, msg string) {
	d.warn(d.path()+"/"+label, msg)
}

// trim removes surrounding whitespace, with a warning: simple values
// carry none in the schemas.
func (d *Decoder) trim(label, v string, required bool) string {
	t := strings.TrimSpace(v)
	switch {
	case t == "" && required:
		d.warnAt(label, "empty")
	case t != v && t != "":
		d.warnAt(label, "whitespace around the value; trimmed")
	}
	return t
}

// vstr reads a string value: an identifier or contact.
func (d *Decoder) vstr(label, v string, required bool) string {
	return d.trim(label, v, required)
}

// vtext reads free text for people (comments, human results, errors):
// trimmed without a warning.
func (d *Decoder) vtext(_ string, v string) string {
	return strings.TrimSpace(v)
}

// venum reads an enumerated value: lower case, as the schemas write
// them. Other case and unknown values are kept, lower-cased, with a
// warning.
func (d *Decoder) venum(label, v string, required bool, known func(string) bool, list string) string {
	t := d.trim(label, v, required)
	if t == "" {
		return ""
	}
	l := strings.ToLower(t)
	if l != t {
		d.warnAt(label, fmt.Sprintf("%q is not lower case (the schema's values are); read as %q", clip(t), clip(l)))
	}
	if !known(l) {
		d.warnAt(label, fmt.Sprintf("unknown value %q (the schemas of RFC 7489 and RFC 9990 allow %s); kept", clip(l), list))
	}
	return l
}

// vint reads an xs:integer: optional sign, digits. Surrounding
// whitespace, a "+" sign and leading zeros are accepted with a warning;
// a decimal point with zeros only after it too. ok is false for
// anything else (with no warning: the caller decides).
func (d *Decoder) vint(label, v string, required bool) (int64, bool) {
	t := strings.TrimSpace(v)
	if t == "" {
		if required || v != "" {
			d.warnAt(label, "empty")
		}
		return 0, false
	}
	if t != v {
		d.warnAt(label, "whitespace around an integer; trimmed")
	}
	s := t
	if whole, frac, ok := strings.Cut(s, "."); ok && frac != "" && strings.Trim(frac, "0") == "" {
		d.warnAt(label, fmt.Sprintf("%q has a decimal point (xs:integer has none); read as %s", clip(t), whole))
		s = whole
	}
	if strings.HasPrefix(s, "+") {
		d.warnAt(label, fmt.Sprintf("%q has a plus sign; read without", clip(t)))
		s = s[1:]
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		if !required {
			d.warnAt(label, fmt.Sprintf("%q is not an integer; ignored", clip(t)))
		}
		return 0, false
	}
	return n, true
}

// vdomain reads a domain name: lower case, without a trailing dot.
func (d *Decoder) vdomain(label, v string, required bool) string {
	t := d.trim(label, v, required)
	l := strings.ToLower(strings.TrimSuffix(t, "."))
	if l != strings.ToLower(t) {
		d.warnAt(label, "trailing dot; removed")
	}
	return l
}

// vip reads <source_ip>: an IPv4 or IPv6 address (RFC 9990 §3.1.1.8,
// RFC 3986 §3.2.2).
func (d *Decoder) vip(label, v string) netip.Addr {
	t := d.trim(label, v, true)
	if t == "" {
		return netip.Addr{}
	}
	s := strings.TrimSuffix(strings.TrimPrefix(t, "["), "]")
	a, err := netip.ParseAddr(s)
	if err != nil || a.Zone() != "" {
		d.warnAt(label, fmt.Sprintf("%q is not an IP address; ignored", clip(t)))
		return netip.Addr{}
	}
	if s != t {
		d.warnAt(label, "IP address in brackets; removed")
	}
	if a.Is4In6() {
		d.warnAt(label, fmt.Sprintf("IPv4-mapped IPv6 address %s; read as %s", a, a.Unmap()))
		a = a.Unmap()
	}
	return a
}

// The enumerations of RFC 7489 appendix C and RFC 9990 §6 (the XSD).

func isPolicy(s string) bool { return s == "none" || s == "quarantine" || s == "reject" }

func isDisposition(s string) bool { return isPolicy(s) || s == "pass" }

func isAlignment(s string) bool { return s == "r" || s == "s" }

func isYesNo(s string) bool { return s == "y" || s == "n" }

func isDiscovery(s string) bool { return s == "psl" || s == "treewalk" }

func isPassFail(s string) bool { return s == "pass" || s == "fail" }

func isOverride(s string) bool {
	switch s {
	case "forwarded", "sampled_out", "trusted_forwarder", "mailing_list", "local_policy", "other", "policy_test_mode":
		return true
	}
	return false
}

func isDKIMResult(s string) bool {
	switch s {
	case "none", "pass", "fail", "policy", "neutral", "temperror", "permerror":
		return true
	}
	return false
}

func isSPFResult(s string) bool {
	switch s {
	case "none", "neutral", "pass", "fail", "softfail", "policy", "temperror", "permerror":
		return true
	}
	return false
}

func isSPFScope(s string) bool { return s == "mfrom" || s == "helo" }

// maxExtensionText bounds Extension.Text.
const maxExtensionText = 1024

// extensions reads an <extension> container (RFC 9990 §3.1.1.6): each
// child is an Extension.
func (d *Decoder) extensions(level int, list *[]Extension) error {
	for {
		_, ok, err := d.child(level)
		if err != nil || !ok {
			return err
		}
		if err := d.extension(level+1, list); err != nil {
			return err
		}
	}
}

// extension reads one extension element (just pushed) into list.
func (d *Decoder) extension(level int, list *[]Extension) error {
	e := d.stack[level-1]
	uri, _ := d.namespace(level)
	x := Extension{Space: uri, Name: e.local}
	if len(*list) >= d.opts.MaxListLen {
		d.warnHere(fmt.Sprintf("more than %d extensions; skipped", d.opts.MaxListLen))
		return d.skip(level)
	}
	x.NameAttr, x.Definition = e.attr("name"), e.attr("definition")
	var b strings.Builder
	for len(d.stack) >= level {
		tok, err := d.token()
		if err != nil {
			return err
		}
		if t, ok := tok.(xml.CharData); ok && b.Len() < maxExtensionText {
			for _, f := range strings.Fields(string(t)) {
				if b.Len() > 0 {
					b.WriteByte(' ')
				}
				b.WriteString(f)
			}
		}
	}
	x.Text = b.String()
	if len(x.Text) > maxExtensionText {
		x.Text = clip(x.Text[:maxExtensionText])
	}
	*list = append(*list, x)
	return nil
}
