package check

// Pillar names.
const (
	Impersonation = "impersonation" // SPF, DKIM, DMARC
	Transport     = "transport"     // MTA-STS, TLS-RPT, STARTTLS on the MX hosts
	Brand         = "brand"         // BIMI
)

// PillarSpec is a pillar of the scoring scheme: its weight, split among
// its components.
type PillarSpec struct {
	Name       string
	Weight     int
	Components []ComponentSpec
}

// ComponentSpec is a scored component and the most points it gives.
type ComponentSpec struct {
	Name string
	Max  int
}

// Pillars returns the scoring scheme: impersonation 50 (SPF 15, DKIM 10,
// DMARC 25), transport 40 (MTA-STS 20, TLS-RPT 5, STARTTLS 15), brand 10
// (BIMI 10). It returns a new slice on each call.
func Pillars() []PillarSpec {
	return []PillarSpec{
		{Impersonation, 50, []ComponentSpec{{"spf", 15}, {"dkim", 10}, {"dmarc", 25}}},
		{Transport, 40, []ComponentSpec{{"mta-sts", 20}, {"tls-rpt", 5}, {"starttls", 15}}},
		{Brand, 10, []ComponentSpec{{"bimi", 10}}},
	}
}

// Rule is what every finding with one ID has in common: where it scores,
// how urgent it is, what it costs and why it matters.
type Rule struct {
	ID        string
	Pillar    string
	Component string
	Severity  Severity
	Penalty   int
	Why       string
}

// Rules returns every finding ID the checker can produce, with its pillar,
// component, severity and penalty, in report order. It returns a new slice
// on each call. README.md ("Domain check") lists the same table (a test keeps them in
// step).
func Rules() []Rule {
	const (
		spfWhy    = "Receivers evaluate SPF to know which servers may send mail with this domain in the envelope sender; DMARC builds on it."
		permerror = " Receivers treat the record as a permanent error (RFC 7208 §4.6, §2.6.7): SPF gives no protection and DMARC cannot use it."
		dmarcWhy  = "DMARC (RFC 7489) tells receivers what to do with mail that claims to come from this domain but fails SPF and DKIM alignment: without an enforced policy anyone can send mail as this domain."
		stsWhy    = "MTA-STS (RFC 8461) tells sending servers to require TLS with a valid certificate when delivering to this domain; without a working policy, an attacker on the path can strip STARTTLS and read or alter mail."
		stsFetch  = " Senders MUST treat a policy they cannot fetch under the rules of RFC 8461 §3.3 as no policy: the domain is unprotected."
		tlsWhy    = "Without STARTTLS and a valid certificate, mail to this domain travels in clear text or can be intercepted by anyone who can present a certificate."
		bimiWhy   = "BIMI lets mailbox providers show the brand's logo next to authenticated mail, which helps recipients recognise genuine messages."
	)
	return []Rule{
		// Impersonation: SPF (15).
		{"spf.ok", Impersonation, "spf", OK, 0, ""},
		{"spf.missing", Impersonation, "spf", Error, 15, spfWhy + " Without a record, any server can use the domain in the envelope sender (result \"none\", RFC 7208 §4.5)."},
		{"spf.multiple", Impersonation, "spf", Error, 15, spfWhy + " More than one \"v=spf1\" record is a permanent error (RFC 7208 §4.5)."},
		{"spf.syntax", Impersonation, "spf", Error, 15, spfWhy + permerror},
		{"spf.lookup-limit", Impersonation, "spf", Error, 15, "RFC 7208 §4.6.4 limits an SPF evaluation to 10 DNS-querying terms (include, a, mx, ptr, exists, redirect) counted through every nested include and redirect." + permerror},
		{"spf.void-limit", Impersonation, "spf", Error, 15, "RFC 7208 §4.6.4 limits an SPF evaluation to 2 void lookups (answers with no records); past that receivers return a permanent error." + permerror},
		{"spf.include-error", Impersonation, "spf", Error, 15, "An include or redirect target that has no SPF record, several, or an invalid one makes the evaluation fail when it reaches it (RFC 7208 §5.2, §6.1)." + permerror},
		{"spf.permerror", Impersonation, "spf", Error, 15, "A term that receivers cannot evaluate (an include/redirect loop, more than 10 MX names for one mx, a target that is not a domain name) ends the evaluation in a permanent error (RFC 7208 §4.6.4, §4.8)." + permerror},
		{"spf.dns-error", Impersonation, "spf", Error, 15, "The SPF record could not be looked up; receivers get a temporary error (RFC 7208 §2.6.6) and may defer or accept unauthenticated mail."},
		{"spf.pass-all", Impersonation, "spf", Critical, 15, "\"+all\" (or a bare \"all\") authorises every server on the internet to send as this domain: the record gives no protection at all."},
		{"spf.neutral-all", Impersonation, "spf", Warning, 8, "\"?all\" says nothing about servers that are not listed (RFC 7208 §8.2), so forged mail gets a neutral result rather than a failure."},
		{"spf.no-all", Impersonation, "spf", Warning, 8, "A record without \"all\" or \"redirect\" ends with the default result \"neutral\" (RFC 7208 §4.7): unlisted servers are not refused."},
		{"spf.ptr", Impersonation, "spf", Warning, 3, "The ptr mechanism SHOULD NOT be used (RFC 7208 §5.5): it is slow, unreliable, and some receivers ignore it."},
		{"spf.too-long", Impersonation, "spf", Warning, 2, "RFC 7208 §3.4: a record whose DNS answer exceeds 512 bytes may need TCP, which some resolvers do not fall back to; keep SPF records under about 450 bytes."},
		{"spf.softfail-all", Impersonation, "spf", Info, 0, "\"~all\" marks unlisted servers as suspicious rather than failing them; with an enforced DMARC policy this is the usual choice."},
		{"spf.note", Impersonation, "spf", Info, 0, "Something the walk noticed that does not change the result, such as a redirect ignored because the record has \"all\" (RFC 7208 §6.1) or an MX name without an address."},
		{"spf.unexpanded", Impersonation, "spf", Info, 0, "Terms whose target holds macros (RFC 7208 §7) depend on the message and cannot be followed by a static check; they were counted but not walked."},

		// Impersonation: DKIM (10).
		{"dkim.ok", Impersonation, "dkim", OK, 0, ""},
		{"dkim.not-found", Impersonation, "dkim", Warning, 5, "DKIM signatures (RFC 6376) let receivers verify that mail really comes from this domain and was not altered; DMARC needs DKIM or SPF to align. Selectors cannot be listed from DNS, so only the selectors given with --dkim-selector and a list of common ones were tried."},
		{"dkim.selector-missing", Impersonation, "dkim", Error, 10, "A selector you named has no key record: mail signed with it fails DKIM verification (RFC 6376 §6.1.2)."},
		{"dkim.rsa-weak", Impersonation, "dkim", Error, 10, "RSA keys shorter than 1024 bits can be factored; RFC 8301 §3.2 says verifiers MUST NOT consider signatures with them valid."},
		{"dkim.rsa-short", Impersonation, "dkim", Warning, 3, "RFC 8301 §3.2 says signers SHOULD use RSA keys of at least 2048 bits; 1024-bit keys are within reach of well-funded attackers."},
		{"dkim.testing", Impersonation, "dkim", Warning, 3, "t=y marks the domain as testing DKIM: verifiers MUST NOT treat signed mail differently from unsigned mail (RFC 6376 §3.6.1), so the signature protects nothing."},
		{"dkim.syntax", Impersonation, "dkim", Error, 5, "Verifiers cannot use a malformed key record: every signature with this selector fails (RFC 6376 §6.1.2)."},
		{"dkim.multiple", Impersonation, "dkim", Error, 5, "With several TXT records at one selector, verifiers may pick any of them (RFC 6376 §3.6.2.2), so verification fails at random."},
		{"dkim.key-warning", Impersonation, "dkim", Warning, 1, "The key record is usable but has a problem some verifiers stumble on."},
		{"dkim.dns-error", Impersonation, "dkim", Warning, 2, "The key record could not be looked up; verifiers that meet the same failure return a temporary error (RFC 6376 §6.1.2)."},
		{"dkim.revoked", Impersonation, "dkim", Info, 0, "An empty p= revokes the key (RFC 6376 §3.6.1): signatures with this selector fail. That is right for a retired selector."},
		{"dkim.not-needed", Impersonation, "dkim", Info, 0, "A domain that sends no mail needs no DKIM key; a revoked wildcard key is optional."},

		// Impersonation: DMARC (25).
		{"dmarc.ok", Impersonation, "dmarc", OK, 0, ""},
		{"dmarc.missing", Impersonation, "dmarc", Critical, 25, dmarcWhy},
		{"dmarc.multiple", Impersonation, "dmarc", Error, 25, dmarcWhy + " With more than one record receivers apply no policy (RFC 7489 §6.6.3)."},
		{"dmarc.syntax", Impersonation, "dmarc", Error, 25, dmarcWhy + " Receivers ignore an invalid record (RFC 7489 §6.6.3)."},
		{"dmarc.dns-error", Impersonation, "dmarc", Error, 25, "The DMARC record could not be looked up; receivers that meet the same failure apply no policy."},
		{"dmarc.policy-none", Impersonation, "dmarc", Warning, 15, "p=none only asks for reports: receivers deliver forged mail as usual. It is a first step to watch reports, not protection."},
		{"dmarc.subdomain-none", Impersonation, "dmarc", Warning, 5, "sp=none leaves every subdomain unprotected even though the domain itself is: forged mail from any.sub.domain is delivered."},
		{"dmarc.nonexistent-none", Impersonation, "dmarc", Warning, 2, "np=none (DMARCbis) leaves non-existent subdomains unprotected: attackers can invent subdomains to send from."},
		{"dmarc.pct", Impersonation, "dmarc", Warning, 5, "pct below 100 applies the policy to only part of the failing mail (RFC 7489 §6.3); the rest is treated as p=none. DMARCbis removes pct."},
		{"dmarc.testing", Impersonation, "dmarc", Warning, 5, "t=y (DMARCbis) asks receivers to apply a policy one level weaker than published: quarantine becomes none, reject becomes quarantine."},
		{"dmarc.no-rua", Impersonation, "dmarc", Warning, 3, "Without rua, receivers send no aggregate reports (RFC 7489 §6.3): you cannot see who sends as your domain or whether legitimate mail fails."},
		{"dmarc.report-unauthorized", Impersonation, "dmarc", Error, 3, "Receivers send reports to an address outside the domain only if that domain publishes an authorization record (RFC 7489 §7.1); without it, reports to this address are silently not sent."},
		{"dmarc.report-uri", Impersonation, "dmarc", Warning, 2, "A report URI that receivers cannot use means reports are lost (RFC 7489 §6.2: only mailto: is required to be supported)."},
		{"dmarc.tag-warning", Impersonation, "dmarc", Warning, 1, "The record is usable but has a tag receivers may read differently than intended."},
		{"dmarc.report-unverified", Impersonation, "dmarc", Info, 0, "The authorization record of an external report address (RFC 7489 §7.1) could not be looked up; receivers meeting the same failure do not send reports there."},
		{"dmarc.org-domain", Impersonation, "dmarc", Info, 0, "The domain has no record of its own; receivers use the organizational domain's record (RFC 7489 §6.6.3), whose sp= (or p=) applies to this domain."},

		// Transport: MTA-STS (20).
		{"mta-sts.ok", Transport, "mta-sts", OK, 0, ""},
		{"mta-sts.missing", Transport, "mta-sts", Error, 20, stsWhy},
		{"mta-sts.multiple-records", Transport, "mta-sts", Error, 20, stsWhy + " RFC 8461 §3.1: if there is not exactly one \"v=STSv1\" TXT record, senders MUST assume there is no policy, even when every record is valid."},
		{"mta-sts.record-syntax", Transport, "mta-sts", Error, 20, stsWhy + " RFC 8461 §3.1: senders treat an invalid TXT record as no policy."},
		{"mta-sts.dns-error", Transport, "mta-sts", Error, 20, "The _mta-sts TXT record could not be looked up; senders meeting the same failure use no policy (RFC 8461 §3.1)."},
		{"mta-sts.policy-missing", Transport, "mta-sts", Error, 20, "The TXT record announces a policy but none can be fetched." + stsFetch},
		{"mta-sts.policy-redirect", Transport, "mta-sts", Error, 20, "RFC 8461 §3.3: HTTP 3xx redirects MUST NOT be followed when fetching the policy." + stsFetch},
		{"mta-sts.policy-media-type", Transport, "mta-sts", Error, 20, "RFC 8461 §3.2: the policy is served as text/plain; senders may reject other media types." + stsFetch},
		{"mta-sts.policy-status", Transport, "mta-sts", Error, 20, "RFC 8461 §3.3: only HTTP 200 is a policy." + stsFetch},
		{"mta-sts.policy-tls", Transport, "mta-sts", Error, 20, "RFC 8461 §3.3: the policy host must present a certificate valid for mta-sts.<domain>, chaining to a trusted root and not expired, over TLS 1.2 or later." + stsFetch},
		{"mta-sts.policy-too-large", Transport, "mta-sts", Error, 20, "RFC 8461 §3.3 lets senders refuse large policies (64 KiB is the suggested limit)." + stsFetch},
		{"mta-sts.policy-timeout", Transport, "mta-sts", Error, 20, "The policy host did not answer in time; senders give up too (RFC 8461 §3.3 suggests one minute)." + stsFetch},
		{"mta-sts.policy-refused", Transport, "mta-sts", Error, 20, "The policy host resolves only to private, loopback or link-local addresses, which this checker does not contact (use --allow-private to allow it); senders on the internet cannot reach such addresses either."},
		{"mta-sts.policy-syntax", Transport, "mta-sts", Error, 20, "RFC 8461 §3.2: senders discard a policy that does not follow the grammar or misses a required field." + stsFetch},
		{"mta-sts.policy-without-record", Transport, "mta-sts", Error, 20, "A policy is served but no _mta-sts TXT record announces it: senders look for the TXT record first (RFC 8461 §3.1) and never fetch the policy."},
		{"mta-sts.mode-none", Transport, "mta-sts", Error, 20, "mode: none tells senders the domain has no policy (RFC 8461 §5): it is how a policy is withdrawn, and protects nothing."},
		{"mta-sts.mode-testing", Transport, "mta-sts", Warning, 10, "mode: testing only asks senders to report failures (TLS-RPT); they still deliver over unauthenticated connections (RFC 8461 §5)."},
		{"mta-sts.mx-not-covered", Transport, "mta-sts", Error, 10, "RFC 8461 §4.1: senders check every MX host against the policy's mx patterns; in enforce mode they do not deliver to a host no pattern matches, so mail through it fails."},
		{"mta-sts.max-age-short", Transport, "mta-sts", Warning, 3, "Senders cache the policy for max_age seconds (RFC 8461 §3.2); a short max_age lets an attacker who blocks the policy fetch soon downgrade the domain. RFC 8461 suggests weeks."},
		{"mta-sts.pattern-unused", Transport, "mta-sts", Warning, 1, "An mx pattern that matches none of the domain's MX hosts is a leftover or a typo; it also allows a host that does not receive mail."},
		{"mta-sts.hosted", Transport, "mta-sts", Info, 0, "Whether this Moat instance hosts the domain's MTA-STS policy."},
		{"mta-sts.not-applicable", Transport, "mta-sts", Info, 0, "A domain with a null MX receives no mail and needs no MTA-STS policy."},

		// Transport: TLS-RPT (5).
		{"tls-rpt.ok", Transport, "tls-rpt", OK, 0, ""},
		{"tls-rpt.missing", Transport, "tls-rpt", Warning, 5, "Without a TLS-RPT record (RFC 8460), sending servers do not tell you when they fail to deliver securely, so MTA-STS or certificate problems go unnoticed."},
		{"tls-rpt.multiple", Transport, "tls-rpt", Error, 5, "RFC 8460 §3: with more than one \"v=TLSRPTv1\" record senders assume the domain does not implement TLS-RPT."},
		{"tls-rpt.syntax", Transport, "tls-rpt", Error, 5, "Senders ignore an invalid TLS-RPT record (RFC 8460 §3): no reports are sent."},
		{"tls-rpt.dns-error", Transport, "tls-rpt", Error, 5, "The TLS-RPT record could not be looked up; senders meeting the same failure send no reports."},
		{"tls-rpt.not-applicable", Transport, "tls-rpt", Info, 0, "A domain with a null MX receives no mail and gets no TLS reports."},

		// Transport: MX hosts and STARTTLS (15).
		{"mx.ok", Transport, "starttls", OK, 0, ""},
		{"mx.null", Transport, "starttls", Info, 0, "A null MX (RFC 7505) says the domain accepts no mail: senders fail at once instead of retrying, and transport security does not apply."},
		{"mx.implicit", Transport, "starttls", Warning, 5, "Without MX records, senders deliver to the domain's own address (RFC 5321 §5.1, the implicit MX); publish an MX record, or a null MX if the domain receives no mail."},
		{"mx.none", Transport, "starttls", Error, 15, "The domain has neither MX records nor an address: mail to it bounces after senders retry for days. Publish MX records, or a null MX (RFC 7505) if it receives no mail."},
		{"mx.null-mixed", Transport, "starttls", Error, 5, "RFC 7505 §3: a domain that publishes a null MX MUST NOT publish other MX records."},
		{"mx.dns-error", Transport, "starttls", Error, 15, "The MX records could not be looked up; senders meeting the same failure defer delivery."},
		{"mx.host-unresolvable", Transport, "starttls", Error, 8, "Senders cannot connect to an MX host without an address (RFC 5321 §5.1); mail through it is deferred."},
		{"mx.private-address", Transport, "starttls", Warning, 5, "An MX host that resolves only to private, loopback or link-local addresses cannot receive mail from the internet; this checker does not connect to such addresses unless --allow-private is given."},
		{"starttls.ok", Transport, "starttls", OK, 0, ""},
		{"starttls.unreachable", Transport, "starttls", Error, 8, "The MX host did not accept an SMTP connection or did not speak SMTP; senders cannot deliver through it."},
		{"starttls.missing", Transport, "starttls", Critical, 15, "Without STARTTLS (RFC 3207), mail to this host travels in clear text, and MTA-STS in enforce mode makes delivery to it fail."},
		{"starttls.handshake", Transport, "starttls", Error, 10, "STARTTLS is offered but the TLS handshake fails: senders fall back to clear text or, under MTA-STS enforce, do not deliver."},
		{"starttls.tls-old", Transport, "starttls", Error, 8, "TLS before 1.2 is deprecated (RFC 8996) and MTA-STS requires TLS 1.2 or later (RFC 8461 §7.2)."},
		{"starttls.cert-expired", Transport, "starttls", Error, 10, tlsWhy + " An expired certificate fails validation: under MTA-STS enforce or DANE senders do not deliver."},
		{"starttls.cert-name", Transport, "starttls", Error, 10, tlsWhy + " A certificate that does not name the MX host fails validation (RFC 8461 §4.2, RFC 7817): under MTA-STS enforce senders do not deliver."},
		{"starttls.cert-untrusted", Transport, "starttls", Error, 10, tlsWhy + " A certificate that does not chain to a trusted root fails validation (RFC 8461 §4.2): under MTA-STS enforce senders do not deliver."},
		{"starttls.cert-invalid", Transport, "starttls", Error, 10, tlsWhy + " A certificate that fails validation for another reason stops delivery under MTA-STS enforce."},
		{"starttls.cert-expiring", Transport, "starttls", Warning, 2, "The certificate expires within 14 days; if renewal fails, senders enforcing MTA-STS stop delivering."},
		{"dnssec.signed", Transport, "starttls", Info, 0, "The resolver validated the domain's DNS answers with DNSSEC (the AD bit); this is information only, never a penalty."},
		{"dnssec.unsigned", Transport, "starttls", Info, 0, "The resolver did not mark the domain's DNS answers as DNSSEC-validated (no AD bit); DANE needs DNSSEC. Information only, never a penalty."},
		{"dnssec.not-checked", Transport, "starttls", Info, 0, "DNSSEC and DANE need raw DNS queries to a known server address; no address was available, so they were not checked."},
		{"dane.tlsa", Transport, "starttls", Info, 0, "DANE TLSA records (RFC 7672) let senders authenticate the MX host through DNSSEC; information only, never a penalty."},
		{"dane.none", Transport, "starttls", Info, 0, "No DANE TLSA records (RFC 7672) at this MX host; information only, never a penalty."},

		// Brand: BIMI (10).
		{"bimi.ok", Brand, "bimi", OK, 0, ""},
		{"bimi.missing", Brand, "bimi", Warning, 10, bimiWhy},
		{"bimi.declined", Brand, "bimi", Warning, 10, bimiWhy + " The record declines to publish a logo (empty l= and a=)."},
		{"bimi.syntax", Brand, "bimi", Error, 10, bimiWhy + " Mailbox providers ignore an invalid record."},
		{"bimi.multiple", Brand, "bimi", Error, 10, bimiWhy + " With several records BIMI processing MUST NOT be performed (draft-blank-ietf-bimi §7.2)."},
		{"bimi.dns-error", Brand, "bimi", Error, 10, "The BIMI record could not be looked up; mailbox providers meeting the same failure show no logo."},
		{"bimi.logo-fetch", Brand, "bimi", Error, 10, "The logo (l=) must be reachable over HTTPS with a valid certificate; otherwise no logo is shown."},
		{"bimi.logo-refused", Brand, "bimi", Error, 10, "The logo host resolves only to private, loopback or link-local addresses, which this checker does not contact (use --allow-private to allow it); mailbox providers cannot reach them either."},
		{"bimi.svg", Brand, "bimi", Error, 6, "Mailbox providers only show logos in the SVG Tiny Portable/Secure profile: version 1.2, baseProfile tiny-ps, a title, no scripts, no external references."},
		{"bimi.svg-warning", Brand, "bimi", Warning, 1, "The logo may be shown, but some mailbox providers are stricter."},
		{"bimi.no-evidence", Brand, "bimi", Warning, 3, "Most mailbox providers (Gmail, Apple Mail) show a logo only with a Verified Mark Certificate or Common Mark Certificate named by a= ."},
		{"bimi.dmarc-not-enforced", Brand, "bimi", Error, 10, "BIMI requires DMARC at enforcement: p=quarantine (with pct=100) or p=reject, and no sp=none (draft-blank-ietf-bimi §7.1 steps 7 to 9); otherwise receivers MUST NOT show the logo."},
		{"bimi.org-domain", Brand, "bimi", Info, 0, "The domain has no BIMI record of its own; the organizational domain's record applies (draft-blank-ietf-bimi §7.2)."},
		{"bimi.not-applicable", Brand, "bimi", Info, 0, "A domain with a null MX sends no mail and needs no BIMI record."},
	}
}
