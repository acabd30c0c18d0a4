// Package senders names the sources of a domain's DMARC aggregate reports
// (RFC 7489 §7.2, RFC 9990), classifies them, and computes what an
// enforcing policy (RFC 7489 §6.3 p=quarantine or p=reject, with pct, or
// RFC 9989's t=y testing flag) would do to their mail — from the daily
// rollups only, never from report rows.
//
//   - [Catalog]: the sending services Moat knows (catalog.yaml, embedded
//     and documented there), found by forward-confirmed reverse DNS, by
//     their own DKIM signing domains and envelope-from domains.
//   - [ReverseDNS]: reverse DNS of source addresses in a bounded worker
//     pool with a time-out per lookup, forward-confirmed, cached in the
//     store (names for days, failures for hours); run off the request and
//     intake paths.
//   - [SPFChecker]: whether the domain's own SPF record authorizes a
//     source (RFC 7208 check_host(), blitiri.com.ar/go/spf over a caching
//     resolver), once per domain, source and UTC day, cached in the store.
//   - [Classify] and [ComputeImpact]: pure functions over rollup rows and
//     what DNS said; [Analyzer] puts it together for a domain and period,
//     and lists new sources.
//
// Classes: compliant (DMARC passes), forwarded (a forwarded, mailing_list
// or trusted_forwarder override, or DKIM passing aligned while SPF
// fails), misconfigured (a known service or an SPF-authorized source
// failing DMARC: each gets the exact fix), unknown (possibly spoofing).
package senders
