package check

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"

	"github.com/moatmail/moat/internal/dkim"
)

// dkimData is what one selector's lookup found.
type dkimData struct {
	selector string
	named    bool // given in Options.DKIMSelectors
	txt      string
	err      error
}

// selectors returns the named selectors, then the common ones not named.
func (r *run) selectors() []dkimData {
	var out []dkimData
	seen := map[string]bool{}
	for _, s := range r.opts.DKIMSelectors {
		s = strings.ToLower(strings.TrimSpace(s))
		if s != "" && !seen[s] {
			seen[s] = true
			out = append(out, dkimData{selector: s, named: true})
		}
	}
	for _, s := range dkim.CommonSelectors() {
		if !seen[s] {
			seen[s] = true
			out = append(out, dkimData{selector: s})
		}
	}
	return out
}

func (r *run) gatherDKIM(ctx context.Context) {
	done := r.timed("dkim", "")
	defer done()
	sels := r.selectors()
	var wg sync.WaitGroup
	for i := range sels {
		wg.Go(func() {
			sels[i].txt, sels[i].err = dkim.Lookup(ctx, r.res, sels[i].selector, r.domain)
		})
	}
	wg.Wait()
	r.dkim = sels
}

// looksLikeDKIM reports whether a TXT record found at a guessed selector
// is meant as a DKIM key, not a wildcard record for something else.
func looksLikeDKIM(txt string) bool {
	t := strings.TrimSpace(txt)
	return strings.HasPrefix(t, "v=DKIM1") || strings.Contains(t, "p=") || strings.Contains(t, "k=")
}

func (r *run) evalDKIM() {
	usable := 0
	var tried []string
	for _, d := range r.dkim {
		tried = append(tried, d.selector)
		name := d.selector + "._domainkey." + r.domain
		switch {
		case errors.Is(d.err, dkim.ErrNoKey):
			if d.named {
				r.add("dkim.selector-missing", fmt.Sprintf("Selector %q has no key record at %s.", d.selector, name),
					fmt.Sprintf("publish the public key of the selector your mail is signed with: %s (your mail software or provider gives the value)", txtRecord(name, "v=DKIM1; k=rsa; p=<base64 public key>")), nil)
			}
			continue
		case errors.Is(d.err, dkim.ErrMultipleRecords):
			r.add("dkim.multiple", fmt.Sprintf("%s: %v", name, d.err), "delete all TXT records at "+name+" but the current key", nil)
			continue
		case d.err != nil:
			r.add("dkim.dns-error", fmt.Sprintf("%s: %v", name, d.err), "Check that the name servers answer TXT queries for "+name+" (a CNAME to a provider must lead to a record).", nil)
			continue
		case !d.named && !looksLikeDKIM(d.txt):
			continue
		}
		k, err := dkim.ParseKey(d.txt)
		if err != nil {
			r.add("dkim.syntax", fmt.Sprintf("%s: %v", name, err), "republish the key record exactly as your mail software or provider gives it: "+txtRecord(name, "v=DKIM1; k=rsa; p=<base64 public key>"), d.txt)
			continue
		}
		view := map[string]any{"selector": d.selector, "key_type": k.KeyType, "bits": k.Bits, "testing": k.Testing, "revoked": k.Revoked}
		if k.Revoked {
			r.add("dkim.revoked", fmt.Sprintf("Selector %q is revoked (empty p=).", d.selector), "", view)
			continue
		}
		ok := true
		switch {
		case k.KeyType == "rsa" && k.Bits < 1024:
			ok = false
			r.add("dkim.rsa-weak", fmt.Sprintf("Selector %q has a %d-bit RSA key; verifiers reject keys under 1024 bits.", d.selector, k.Bits),
				fmt.Sprintf("generate a 2048-bit key, sign with it under a new selector, publish %s, then revoke this one with %s", txtRecord("<new selector>._domainkey."+r.domain, "v=DKIM1; k=rsa; p=<base64 public key>"), txtRecord(name, "v=DKIM1; p=")), view)
		case k.KeyType == "rsa" && k.Bits < 2048:
			ok = false
			r.add("dkim.rsa-short", fmt.Sprintf("Selector %q has a %d-bit RSA key; 2048 bits are recommended.", d.selector, k.Bits),
				fmt.Sprintf("generate a 2048-bit key, sign with it under a new selector, publish %s, then revoke this one with %s", txtRecord("<new selector>._domainkey."+r.domain, "v=DKIM1; k=rsa; p=<base64 public key>"), txtRecord(name, "v=DKIM1; p=")), view)
		}
		if k.Testing {
			ok = false
			r.add("dkim.testing", fmt.Sprintf("Selector %q has t=y (testing).", d.selector), "remove t=y: "+txtRecord(name, removeTestFlag(d.txt)), view)
		}
		for _, w := range k.Warnings {
			r.add("dkim.key-warning", fmt.Sprintf("Selector %q: %s", d.selector, w), "correct the record at "+name, view)
		}
		usable++
		if ok {
			r.add("dkim.ok", fmt.Sprintf("Selector %q: %s key of %d bits.", d.selector, keyTypeName(k.KeyType), k.Bits), "", view)
		}
	}
	if usable > 0 || slices.ContainsFunc(r.dkim, func(d dkimData) bool { return d.named }) {
		return
	}
	if r.mx.null {
		r.add("dkim.not-needed", fmt.Sprintf("No DKIM key found for %s, which has a null MX and sends no mail.", r.domain), "", nil)
		return
	}
	r.add("dkim.not-found", fmt.Sprintf("No DKIM key found under the %d selectors tried (%s).", len(tried), strings.Join(tried, ", ")),
		fmt.Sprintf("if you sign mail, name your selector with --dkim-selector; otherwise enable DKIM signing in your mail software or provider and publish %s", txtRecord("<selector>._domainkey."+r.domain, "v=DKIM1; k=rsa; p=<base64 public key>")), tried)
}

// removeTestFlag returns a key record without the y flag of t=.
func removeTestFlag(txt string) string {
	t := parseTagList(txt)
	for i := range t.tags {
		if t.tags[i][0] != "t" {
			continue
		}
		var keep []string
		for _, f := range strings.Split(t.tags[i][1], ":") {
			if strings.TrimSpace(f) != "y" {
				keep = append(keep, strings.TrimSpace(f))
			}
		}
		if len(keep) == 0 {
			t.remove("t")
		} else {
			t.tags[i][1] = strings.Join(keep, ":")
		}
		break
	}
	return t.String()
}

func keyTypeName(t string) string {
	switch t {
	case "rsa":
		return "RSA"
	case "ed25519":
		return "Ed25519"
	}
	return t
}
