package senders

import (
	"errors"
	"strings"
	"testing"
)

func builtin(t testing.TB) *Catalog {
	t.Helper()
	c, err := Builtin()
	if err != nil {
		t.Fatalf("Builtin: %v", err)
	}
	return c
}

func TestCatalogMatch(t *testing.T) {
	t.Parallel()
	c := builtin(t)
	if n := len(c.Services()); n < 25 {
		t.Errorf("the catalogue has %d services, want at least 25", n)
	}
	id := func(s *Service) string {
		if s == nil {
			return ""
		}
		return s.ID
	}
	tests := []struct {
		by, name, want string
	}{
		{"ptr", "mail-sor-f41.google.com", "google"},
		{"ptr", "mail-sor-f41.google.com.", "google"},
		{"ptr", "MAIL-SOR-F41.Google.COM", "google"},
		{"ptr", "google.com", "google"},
		{"ptr", "notgoogle.com", ""},
		{"ptr", "google.com.evil.example", ""},
		{"ptr", "mail-db8eur05on2041.outbound.protection.outlook.com", "microsoft365"},
		{"ptr", "a48-90.smtp-out.amazonses.com", "amazon-ses"},
		{"ptr", "o1.ptr2045.sendgrid.net", "sendgrid"},
		{"ptr", "mail132-5.atl131.mcsv.net", "mailchimp"},
		{"ptr", "mail177-16.suw61.mandrillapp.com", "mandrill"},
		{"ptr", "m228-4.mailgun.net", "mailgun"},
		{"ptr", "mta-201-1.mtasv.net", "postmark"},
		{"ptr", "mta-103-12.sparkpostmail.com", "sparkpost"},
		{"ptr", "mta.e.mc.salesforce.com", "salesforce-mc"},
		{"ptr", "smtp04-ia4-sp3.mta.salesforce.com", "salesforce"},
		{"ptr", "out-21.smtp.github.com", "github"},
		{"ptr", "mail-relay.zoho.com", "zoho"},
		{"ptr", "out1-smtp.messagingengine.com", "fastmail"},
		{"ptr", "mail-4018.protonmail.ch", "proton"},
		{"ptr", "sonic301-20.consmr.mail.bf2.yahoo.com", "yahoo"},
		{"ptr", "smtp1.emailsrvr.com", "rackspace"},
		{"ptr", "", ""},
		{"ptr", "localhost", ""},
		{"ptr", "co.uk", ""},
		{"dkim", "example-com.20230601.gappssmtp.com", "google"},
		{"dkim", "contoso.onmicrosoft.com", "microsoft365"},
		{"dkim", "amazonses.com", "amazon-ses"},
		{"dkim", "sendgrid.info", "sendgrid"},
		{"dkim", "mcsv.net", "mailchimp"},
		{"dkim", "example.com", ""},
		{"dkim", "klaviyomail.com", "klaviyo"},
		{"dkim", "hubspotemail.net", "hubspot"},
		{"envelope", "eu-west-1.amazonses.com", "amazon-ses"},
		{"envelope", "bounces.sendgrid.net", "sendgrid"},
		{"envelope", "pm.mtasv.net", "postmark"},
		{"envelope", "bnc3.mailjet.com", "mailjet"},
		{"envelope", "example.com", ""},
		{"spf", "_spf.google.com", "google"},
		{"spf", "spf.protection.outlook.com", "microsoft365"},
		{"spf", "spf.brevo.com", "brevo"},
		{"spf", "_netblocks.mimecast.com", "mimecast"},
		{"spf", "_spf.example.com", ""},
	}
	for _, tc := range tests {
		var got *Service
		switch tc.by {
		case "ptr":
			got = c.ByPTR(tc.name)
		case "dkim":
			got = c.ByDKIM(tc.name)
		case "envelope":
			got = c.ByEnvelope(tc.name)
		case "spf":
			got = c.ByInclude(tc.name)
		}
		if id(got) != tc.want {
			t.Errorf("By%s(%q) = %q, want %q", tc.by, tc.name, id(got), tc.want)
		}
	}
	for _, want := range []string{"google", "microsoft365", "amazon-ses", "sendgrid", "mailchimp", "mandrill", "mailgun",
		"postmark", "sparkpost", "salesforce", "salesforce-mc", "hubspot", "zendesk", "zoho", "fastmail", "proton", "yahoo",
		"brevo", "klaviyo", "freshdesk", "atlassian", "github", "intercom", "constant-contact"} {
		s := c.ByID(want)
		if s == nil {
			t.Errorf("no service %q in the catalogue", want)
			continue
		}
		if s.DKIMSetup == "" || len(s.PTR) == 0 {
			t.Errorf("service %q: no dkim_setup or no ptr", want)
		}
	}
	if c.ByID("nope") != nil {
		t.Error(`ByID("nope") is not nil`)
	}
}

func TestParseCatalogErrors(t *testing.T) {
	t.Parallel()
	tests := []struct{ name, yaml, want string }{
		{"not a list", "id: x", "cannot unmarshal"},
		{"unknown key", "- {id: a, name: A, kind: esp, colour: red}", "colour"},
		{"bad id", "- {id: A b, name: A, kind: esp}", `entry 1 ("A b"): id`},
		{"duplicate id", "- {id: a, name: A, kind: esp}\n- {id: a, name: B, kind: esp}", `entry 2 ("a"): id listed twice`},
		{"no name", "- {id: a, kind: esp}", "name is empty"},
		{"bad kind", "- {id: a, name: A, kind: bulk}", `kind "bulk"`},
		{"bad domain", "- {id: a, name: A, kind: esp, ptr: [\"a..b\"]}", `ptr: "a..b" is not`},
		{"upper case", "- {id: a, name: A, kind: esp, dkim: [Example.com]}", `dkim: "Example.com" is not`},
		{"shared", "- {id: a, name: A, kind: esp, spf: [x.example]}\n- {id: b, name: B, kind: esp, spf: [x.example]}", `spf: x.example is listed by "a" too`},
		{"public suffix", "- {id: a, name: A, kind: esp, ptr: [co.uk]}", "co.uk is a public suffix"},
		{"single label", "- {id: a, name: A, kind: esp, ptr: [localhost]}", "localhost is a public suffix"},
		{"empty entry", "- {id: a, name: A, kind: esp}\n- ", "entry 2 is empty"},
	}
	for _, tc := range tests {
		_, err := ParseCatalog([]byte(tc.yaml))
		if !errors.Is(err, ErrCatalog) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: ParseCatalog = %v, want ErrCatalog with %q", tc.name, err, tc.want)
		}
	}
	c, err := ParseCatalog([]byte("- {id: a, name: A, kind: relay, ptr: [relay.example]}"))
	if err != nil || c.ByPTR("x.relay.example").ID != "a" {
		t.Errorf("a one-entry catalogue: %v", err)
	}
}

func FuzzParseCatalog(f *testing.F) {
	f.Add(builtinCatalog)
	f.Add([]byte("- {id: a, name: A, kind: esp, ptr: [a.example]}"))
	f.Add([]byte("- id: a\n  name: [x]\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) > 1<<16 {
			return
		}
		c, err := ParseCatalog(data)
		if err != nil {
			if !errors.Is(err, ErrCatalog) {
				t.Fatalf("error %v does not wrap ErrCatalog", err)
			}
			return
		}
		for _, s := range c.Services() {
			for _, d := range s.PTR {
				if c.ByPTR("host."+d) == nil {
					t.Fatalf("ByPTR(host.%s) found nothing", d)
				}
			}
		}
	})
}
