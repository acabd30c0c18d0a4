package store

import (
	"context"
	"fmt"
	"net/netip"
	"time"
)

// What package senders learns about the sources of DMARC reports from DNS:
// the reverse DNS of source addresses and whether a domain's own SPF record
// authorizes a source. Both are caches of public DNS answers, shared by
// every organization; only the operator's Store reads and writes them. The
// schema is in migrations/*/00006_senders.sql.

// PTRRecord is the cached reverse DNS of one address.
type PTRRecord struct {
	IP    string   // canonical text form (netip.Addr.String)
	Names []string // PTR names, lower case, without the trailing dot
	// Confirmed is the first of Names whose A or AAAA records give IP
	// back (forward-confirmed reverse DNS); "" when none does.
	Confirmed string
	// Error says why Names is empty: "nxdomain", "timeout", "servfail",
	// or another failure; "" when names were found.
	Error     string
	CheckedAt time.Time
	ExpiresAt time.Time // the entry is used until then
}

// SPFAuth is the cached SPF result of one source address under one
// domain's record, for one UTC day.
type SPFAuth struct {
	Domain   string    // lower case, without the trailing dot
	SourceIP string    // canonical text form
	Day      time.Time // the UTC midnight of the day it holds for
	// Result is check_host()'s result (RFC 7208 §2.6): "pass", "fail",
	// "softfail", "neutral", "none", "temperror", "permerror".
	Result    string
	Error     string // the detail of an error result
	CheckedAt time.Time
}

// SenderCache keeps the DNS facts about report sources. Store implements
// it; its methods are safe for concurrent use. Invalid input (an address
// that is not in canonical form, a domain in upper case or with a trailing
// dot, an unknown SPF result) is ErrInvalidArg naming it, and nothing is
// written.
type SenderCache interface {
	// PTRs returns the cached entries of ips, expired ones included
	// (ExpiresAt tells), by address; an address never looked up is
	// absent from the map.
	PTRs(ctx context.Context, ips []string) (map[string]PTRRecord, error)
	// PutPTRs inserts or replaces the entries of their addresses.
	PutPTRs(ctx context.Context, recs []PTRRecord) error
	// SPFAuths returns the cached results of domain for ips on the UTC
	// day of day, by address.
	SPFAuths(ctx context.Context, domain string, day time.Time, ips []string) (map[string]SPFAuth, error)
	// PutSPFAuths inserts or replaces results (Day is taken to its UTC
	// midnight).
	PutSPFAuths(ctx context.Context, recs []SPFAuth) error
	// PruneSenderCache deletes the PTR entries that expired before
	// before and the SPF results of days before before's day, and
	// returns how many rows went.
	PruneSenderCache(ctx context.Context, before time.Time) (int64, error)
}

var _ SenderCache = (*sqlStore)(nil)

// senderChunk bounds the addresses of one statement (SQLite allows 32,766
// parameters, PostgreSQL 65,535).
const senderChunk = 500

// spfResults are the results an SPFAuth may hold.
var spfResults = map[string]bool{"pass": true, "fail": true, "softfail": true, "neutral": true, "none": true,
	"temperror": true, "permerror": true}

func checkIP(what, ip string) error {
	a, err := netip.ParseAddr(ip)
	if err != nil || a.String() != ip {
		return fmt.Errorf("%w: %s: address %q: want the canonical text form of an IP address", ErrInvalidArg, what, ip)
	}
	return nil
}

// PTRs implements SenderCache.
func (s *sqlStore) PTRs(ctx context.Context, ips []string) (map[string]PTRRecord, error) {
	out := make(map[string]PTRRecord, len(ips))
	for start := 0; start < len(ips); start += senderChunk {
		chunk := ips[start:min(start+senderChunk, len(ips))]
		var q sqlq
		vals := make([]any, len(chunk))
		for i, ip := range chunk {
			vals[i] = ip
		}
		rows, err := s.r.QueryContext(ctx, sqlText(`SELECT ip, names, confirmed, error, checked_at, expires_at FROM ptr_cache WHERE ip IN (`,
			q.list(vals...), `)`), q.args...)
		if err != nil {
			return nil, fmt.Errorf("store: read reverse DNS cache: %w", err)
		}
		for rows.Next() {
			var (
				r     PTRRecord
				names string
			)
			if err := rows.Scan(&r.IP, &names, &r.Confirmed, &r.Error, timeCol{&r.CheckedAt}, timeCol{&r.ExpiresAt}); err != nil {
				rows.Close()
				return nil, fmt.Errorf("store: read reverse DNS cache: %w", err)
			}
			if r.Names, err = decodeList("ptr_cache.names", names); err != nil {
				rows.Close()
				return nil, err
			}
			out[r.IP] = r
		}
		err = rows.Err()
		rows.Close()
		if err != nil {
			return nil, fmt.Errorf("store: read reverse DNS cache: %w", err)
		}
	}
	return out, nil
}

// PutPTRs implements SenderCache: one transaction.
func (s *sqlStore) PutPTRs(ctx context.Context, recs []PTRRecord) error {
	for _, r := range recs {
		if err := checkIP("reverse DNS cache", r.IP); err != nil {
			return err
		}
	}
	if len(recs) == 0 {
		return nil
	}
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("store: write reverse DNS cache: %w", err)
	}
	defer tx.Rollback() //nolint:errcheck // after Commit it does nothing
	for _, r := range recs {
		if _, err := tx.ExecContext(ctx, `INSERT INTO ptr_cache (ip, names, confirmed, error, checked_at, expires_at)
			VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (ip) DO UPDATE SET names = excluded.names,
			confirmed = excluded.confirmed, error = excluded.error, checked_at = excluded.checked_at,
			expires_at = excluded.expires_at`,
			r.IP, encodeList(r.Names), r.Confirmed, r.Error, s.d.timeArg(normTime(r.CheckedAt)), s.d.timeArg(normTime(r.ExpiresAt))); err != nil {
			return fmt.Errorf("store: write reverse DNS cache of %s: %w", r.IP, err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("store: write reverse DNS cache: %w", err)
	}
	return nil
}

// SPFAuths implements SenderCache.
func (s *sqlStore) SPFAuths(ctx context.Context, domain string, day time.Time, ips []string) (map[string]SPFAuth, error) {
	domain = normDomain(domain)
	out := make(map[string]SPFAuth, len(ips))
	d := s.d.timeArg(dayOf(day))
	for start := 0; start < len(ips); start += senderChunk {
		chunk := ips[start:min(start+senderChunk, len(ips))]
		var q sqlq
		vals := make([]any, len(chunk))
		for i, ip := range chunk {
			vals[i] = ip
		}
		text := sqlText(`SELECT domain, source_ip, day, result, error, checked_at FROM spf_auth_cache WHERE domain = `,
			q.arg(domain), ` AND day = `, q.arg(d), ` AND source_ip IN (`, q.list(vals...), `)`)
		rows, err := s.r.QueryContext(ctx, text, q.args...)
		if err != nil {
			return nil, fmt.Errorf("store: read SPF cache of %s: %w", domain, err)
		}
		for rows.Next() {
			var r SPFAuth
			if err := rows.Scan(&r.Domain, &r.SourceIP, timeCol{&r.Day}, &r.Result, &r.Error, timeCol{&r.CheckedAt}); err != nil {
				rows.Close()
				return nil, fmt.Errorf("store: read SPF cache of %s: %w", domain, err)
			}
			out[r.SourceIP] = r
		}
		err = rows.Err()
		rows.Close()
		if err != nil {
			return nil, fmt.Errorf("store: read SPF cache of %s: %w", domain, err)
		}
	}
	return out, nil
}

// PutSPFAuths implements SenderCache: one transaction.
func (s *sqlStore) PutSPFAuths(ctx context.Context, recs []SPFAuth) error {
	for _, r := range recs {
		if err := checkIP("SPF cache", r.SourceIP); err != nil {
			return err
		}
		if why := checkDomainName(r.Domain); why != "" || r.Domain == "" {
			return fmt.Errorf("%w: SPF cache: domain %q: want a lower-case name without a trailing dot", ErrInvalidArg, r.Domain)
		}
		if !spfResults[r.Result] {
			return fmt.Errorf("%w: SPF cache of %s for %s: result %q: want pass, fail, softfail, neutral, none, temperror or permerror",
				ErrInvalidArg, r.SourceIP, r.Domain, r.Result)
		}
	}
	if len(recs) == 0 {
		return nil
	}
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("store: write SPF cache: %w", err)
	}
	defer tx.Rollback() //nolint:errcheck // after Commit it does nothing
	for _, r := range recs {
		if _, err := tx.ExecContext(ctx, `INSERT INTO spf_auth_cache (domain, source_ip, day, result, error, checked_at)
			VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (domain, source_ip, day) DO UPDATE SET result = excluded.result,
			error = excluded.error, checked_at = excluded.checked_at`,
			r.Domain, r.SourceIP, s.d.timeArg(dayOf(r.Day)), r.Result, r.Error, s.d.timeArg(normTime(r.CheckedAt))); err != nil {
			return fmt.Errorf("store: write SPF cache of %s for %s: %w", r.SourceIP, r.Domain, err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("store: write SPF cache: %w", err)
	}
	return nil
}

// PruneSenderCache implements SenderCache.
func (s *sqlStore) PruneSenderCache(ctx context.Context, before time.Time) (int64, error) {
	var n int64
	for _, st := range []struct {
		text string
		arg  any
	}{
		{`DELETE FROM ptr_cache WHERE expires_at < $1`, s.d.timeArg(normTime(before))},
		{`DELETE FROM spf_auth_cache WHERE day < $1`, s.d.timeArg(dayOf(before))},
	} {
		res, err := s.w.ExecContext(ctx, st.text, st.arg)
		if err != nil {
			return n, fmt.Errorf("store: prune sender cache: %w", err)
		}
		k, err := res.RowsAffected()
		if err != nil {
			return n, fmt.Errorf("store: prune sender cache: %w", err)
		}
		n += k
	}
	return n, nil
}
