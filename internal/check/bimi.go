package check

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/moatmail/moat/internal/bimi"
)

// bimiData is what the BIMI lookup and the logo fetch found.
type bimiData struct {
	found    *bimi.Found
	err      error
	logo     *bimi.Fetched
	logoErr  error
	problems []bimi.Problem
}

func (r *run) gatherBIMI(ctx context.Context) {
	done := r.timed("bimi", "")
	r.bimi.found, r.bimi.err = bimi.Lookup(ctx, r.res, "default", r.domain)
	done()
	f := r.bimi.found
	if r.bimi.err != nil || f == nil || f.Record == nil || f.Record.Logo == "" {
		return
	}
	done = r.timed("bimi logo", "bimi")
	r.bimi.logo, r.bimi.logoErr = bimi.Fetch(ctx, f.Record.Logo, bimi.FetchOpts{
		Resolver:  r.res,
		RootCAs:   r.opts.RootCAs,
		AllowAddr: r.allowAddr(),
		Timeout:   r.opts.StepTimeout,
		Port:      r.opts.HTTPSPort,
	})
	done()
	if r.bimi.logoErr == nil {
		r.bimi.problems = bimi.CheckSVG(r.bimi.logo.Body)
	}
}

func (r *run) evalBIMI() {
	if r.mx.null {
		r.add("bimi.not-applicable", fmt.Sprintf("%s has a null MX; BIMI does not apply.", r.domain), "", nil)
		return
	}
	d := &r.bimi
	name := "default._bimi." + r.domain
	suggest := txtRecord(name, fmt.Sprintf("v=BIMI1; l=https://%s/bimi/logo.svg; a=https://%s/bimi/vmc.pem", r.domain, r.domain))
	enforced, why := r.dmarcEnforced()
	switch {
	case errors.Is(d.err, bimi.ErrNoRecord):
		fix := "publish an SVG Tiny PS logo over HTTPS and " + suggest
		if !enforced {
			fix = "first bring DMARC to enforcement (" + why + "), then " + fix
		}
		msg := fmt.Sprintf("No \"v=BIMI1\" record at %s.", name)
		if strings.Contains(d.err.Error(), "discarded") {
			// Near misses such as "v=bimi1; ..." that receivers discard.
			msg += " " + d.err.Error()
		}
		r.add("bimi.missing", msg, fix, nil)
		return
	case errors.Is(d.err, bimi.ErrMultipleRecords):
		r.add("bimi.multiple", fmt.Sprintf("%s: %v", name, d.err), "keep one \"v=BIMI1\" record at "+name, nil)
		return
	case d.err != nil && !errors.Is(d.err, bimi.ErrSyntax):
		r.add("bimi.dns-error", fmt.Sprintf("%s: %v", name, d.err), "Check that the name servers answer TXT queries for "+name+".", nil)
		return
	}
	f := d.found
	if f == nil {
		r.add("bimi.syntax", fmt.Sprintf("%s: %v", name, d.err), "replace it with "+suggest, nil)
		return
	}
	at := strings.TrimSuffix(f.Name, ".")
	if f.Record == nil {
		cause := d.err
		if cause == nil {
			cause = errors.New("invalid record")
		}
		r.add("bimi.syntax", fmt.Sprintf("%s: %q is invalid: %v", at, f.TXT, cause), "replace it with "+suggest, f.TXT)
		return
	}
	rec := f.Record
	if f.Fallback {
		r.add("bimi.org-domain", fmt.Sprintf("%s has no BIMI record; the organizational domain's record at %s applies.", name, at), "", f.TXT)
	}
	if rec.Declined {
		r.add("bimi.declined", fmt.Sprintf("%s declines BIMI (%q).", at, f.TXT), "to show a logo: "+suggest, f.TXT)
		return
	}
	penalized := false
	add := func(id, msg, fix string, details any) {
		if r.c.rules[id].Penalty > 0 {
			penalized = true
		}
		r.add(id, msg, fix, details)
	}
	if !enforced {
		add("bimi.dmarc-not-enforced", fmt.Sprintf("%s publishes a logo but %s: no logo is shown.", at, why),
			"set the DMARC policy to quarantine (pct=100) or reject, without sp=none, at _dmarc."+r.policyDomain(), nil)
	}
	if rec.Logo != "" {
		logoDetails := map[string]any{"url": rec.Logo}
		switch {
		case errors.Is(d.logoErr, bimi.ErrAddressRefused):
			add("bimi.logo-refused", fmt.Sprintf("The logo %s: %v", rec.Logo, d.logoErr), "host the logo at a public address", logoDetails)
		case d.logoErr != nil:
			add("bimi.logo-fetch", fmt.Sprintf("The logo %s cannot be fetched: %v", rec.Logo, d.logoErr),
				"serve the logo at "+rec.Logo+" over HTTPS with a valid certificate, status 200 and Content-Type image/svg+xml", logoDetails)
		default:
			logoDetails["content_type"] = d.logo.ContentType
			logoDetails["bytes"] = len(d.logo.Body)
			for _, p := range d.problems {
				id := "bimi.svg"
				if p.Severity != "error" {
					id = "bimi.svg-warning"
				}
				add(id, fmt.Sprintf("The logo %s: %s", rec.Logo, p.Message), "convert the logo to SVG Tiny PS (version=\"1.2\" baseProfile=\"tiny-ps\", a <title>, no scripts, no external references, square) and republish it at "+rec.Logo, logoDetails)
			}
		}
	}
	if rec.Authority == "" {
		add("bimi.no-evidence", fmt.Sprintf("%s has no a= evidence document (VMC or CMC).", at),
			"obtain a Verified Mark Certificate or Common Mark Certificate for the logo and publish "+txtRecord(at, parseTagList(f.TXT).set("a", "https://"+r.domain+"/bimi/vmc.pem", "l").String()), nil)
	}
	if !penalized {
		r.add("bimi.ok", fmt.Sprintf("%s: logo %s, evidence %s.", at, rec.Logo, rec.Authority), "", f.TXT)
	}
}
