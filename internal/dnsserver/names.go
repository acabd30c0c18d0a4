package dnsserver

import (
	"fmt"
	"strings"

	"github.com/moatmail/moat/internal/dnsname"
)

// maxNameWire is the longest domain name in wire form (RFC 1035 §3.1).
const maxNameWire = 255

// parseName validates a presentation-form name from the configuration
// ("sts.example.net", a trailing dot allowed) with dnsname.Parse at the
// Owner level (letters, digits, hyphens and underscores; RFC 1035 §2.3.4
// lengths, so the wire form is at most 255 bytes) and returns it
// lower-cased without the trailing dot, with its labels.
func parseName(field, s string) (string, []string, error) {
	name, err := dnsname.Parse(s, dnsname.Owner)
	if err != nil {
		return "", nil, fmt.Errorf("%w: %s: %w", ErrOptions, field, err)
	}
	return name, strings.Split(name, "."), nil
}

// checkLocalPart validates the local part of the hostmaster mailbox, the
// first label of the SOA RNAME (RFC 1035 §8): not a host name label, any
// printable ASCII but "@", 1 to 63 bytes (RFC 1035 §2.3.4).
func checkLocalPart(l string) error {
	if l == "" {
		return fmt.Errorf("empty label")
	}
	if len(l) > dnsname.MaxLabelLen {
		return fmt.Errorf("label %q is longer than %d bytes", l, dnsname.MaxLabelLen)
	}
	for i := 0; i < len(l); i++ {
		if c := l[i]; c <= ' ' || c >= 0x7f || c == '@' {
			return fmt.Errorf("label %q has the character %q", l, c)
		}
	}
	return nil
}

func wireLen(labels []string) int {
	n := 1
	for _, l := range labels {
		n += 1 + len(l)
	}
	return n
}

// parseMailbox turns the SOA RNAME from "hostmaster@example.net" or the DNS
// form "hostmaster.example.net" into labels (RFC 1035 §3.3.13, §8: the
// local part becomes the first label, dots and all).
func parseMailbox(s string) ([]string, error) {
	local, domain, ok := strings.Cut(strings.TrimSpace(s), "@")
	if !ok {
		_, labels, err := parseName("Hostmaster", s)
		return labels, err
	}
	if err := checkLocalPart(local); err != nil {
		return nil, fmt.Errorf("%w: Hostmaster %q: local part: %w", ErrOptions, s, err)
	}
	_, labels, err := parseName("Hostmaster", domain)
	if err != nil {
		return nil, err
	}
	labels = append([]string{strings.ToLower(local)}, labels...)
	if wireLen(labels) > maxNameWire {
		return nil, fmt.Errorf("%w: Hostmaster %q: longer than %d bytes in wire form", ErrOptions, s, maxNameWire)
	}
	return labels, nil
}

// appendLabels appends labels in wire form, without the terminating root
// label.
func appendLabels(b []byte, labels []string) []byte {
	for _, l := range labels {
		b = append(b, byte(len(l)))
		b = append(b, l...)
	}
	return b
}

// appendName appends a name in wire form. When the name lies inside the
// zone (zoneLabels are its last labels) the zone part is replaced by a
// compression pointer to apexOff (RFC 1035 §4.1.4), the offset at which the
// zone apex is written in the message.
func appendName(b []byte, labels, zoneLabels []string, apexOff int) []byte {
	if rel, ok := relativeTo(labels, zoneLabels); ok {
		b = appendLabels(b, rel)
		return append(b, 0xC0|byte(apexOff>>8), byte(apexOff))
	}
	b = appendLabels(b, labels)
	return append(b, 0)
}

// relativeTo returns the labels of name in front of zone, and whether name
// is zone or lies below it. Labels compare case-insensitively.
func relativeTo(name, zone []string) ([]string, bool) {
	if len(name) < len(zone) {
		return nil, false
	}
	k := len(name) - len(zone)
	for i, l := range zone {
		if !strings.EqualFold(name[k+i], l) {
			return nil, false
		}
	}
	return name[:k], true
}

// isBelow reports whether name (dotted, lower-case) is parent or lies below
// it.
func isBelow(name, parent string) bool {
	return name == parent || strings.HasSuffix(name, "."+parent)
}
