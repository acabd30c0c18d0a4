// Package e2e holds the end-to-end tests of hosted MTA-STS (RFC 8461 §8.2
// delegation, DESIGN.md "Hosted MTA-STS: how delegation works"). It has no
// code of its own: its tests start the assembly `moat serve` runs
// (internal/server: snapshot watcher, authoritative DNS server, HTTPS policy
// server with on-demand ACME, report intake) from a configuration file, with
// every listener on 127.0.0.1 port 0, against an in-process Pebble
// ACME server and test DNS servers for a customer zone, and check what a
// sending MTA sees: the TXT record (RFC 8461 §3.1) reached through the
// customer's CNAME, and the policy (RFC 8461 §3.2, §3.3) fetched over HTTPS
// with a certificate the ACME CA issued on demand.
package e2e
