// Command intakeload delivers TLS-RPT reports (RFC 8460 §5), or with -kind
// dmarc DMARC aggregate reports by mail (RFC 7489 §7.2.1.1), to a report
// intake as fast as it acknowledges them, from C concurrent clients, and
// counts the acknowledgements:
//
//   - -mode https: POST /v1/tlsrpt (§5.4) over HTTPS, application/tlsrpt+gzip
//     or application/tlsrpt+json, over keep-alive connections, or with
//     -per-conn 1 a new connection and a full TLS handshake per report (no
//     session resumption, as tlsload);
//   - -mode smtp: one report per message (§5.3: multipart/report with the
//     report attached), -per-conn messages per connection (1, as most
//     senders deliver), with or without STARTTLS. A connection refused
//     with 421 in the greeting is retried 5 ms later with the same report
//     (Moat bounds the connections per client address, and every client
//     here is 127.0.0.1).
//
// Every report is distinct (its report-id is "<run>.<i>"). The reports are
// built and compressed before the run starts, so that the load generator
// takes as little CPU as possible from the server during the run: it then
// prints "ready" and waits for SIGUSR1 (with -wait) before sending. The run
// ends after -d or -n reports, whichever comes first; reports in flight
// then are finished and counted, so that every report sent was either
// acknowledged or failed.
//
// With -expect-stored each acknowledgement must say the report was stored
// as a new report ("report stored (report N)", Moat's answer to HTTPS and
// SMTP); the stored ids are collected and must all differ. With
// -expect-spooled, likewise for Moat's SMTP answer with intake.smtp_spool
// ("report accepted, queued for storage (spool N)"). Without either any
// 200 or 250 counts (an SMTP sink).
//
// It prints "reports", "errors", "connections", "refused" (SMTP connections
// refused with 421 and retried), "seconds", "reports/s",
// "json-bytes" and "wire-bytes" (the mean report size before compression
// (JSON, or XML with -kind dmarc),
// and the mean HTTP body or SMTP message), "distinct-ids" with
// -expect-stored or -expect-spooled, and exits non-zero when any delivery failed.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"os/signal"
	"regexp"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "intakeload:", err)
		os.Exit(1)
	}
}

// config is what one run does.
type config struct {
	mode, addr, host, rcpt          string
	kind                            string // tlsrpt or dmarc
	gzip, starttls, stored, spooled bool
	clients, perConn                int
}

// load is one prepared run: the payloads, and the counters the clients
// update.
type load struct {
	cfg      config
	payloads [][]byte // HTTP bodies or SMTP messages, one per report
	end      time.Time

	next          atomic.Int64 // index of the next payload to send
	acked, failed atomic.Int64
	conns         atomic.Int64
	refused       atomic.Int64 // SMTP connections refused with 421, retried

	mu       sync.Mutex
	ids      map[int64]bool // stored report ids (-expect-stored)
	firstErr error
}

func run() error {
	var c config
	flag.StringVar(&c.mode, "mode", "https", "https or smtp")
	flag.StringVar(&c.addr, "addr", "", "server address, 127.0.0.1:port (required)")
	flag.StringVar(&c.host, "host", "reports.sts.moat.test", "HTTP Host and TLS server name of the intake")
	flag.StringVar(&c.rcpt, "rcpt", "", "SMTP recipient (default tlsrpt@ or, with -kind dmarc, dmarc@reports.sts.moat.test)")
	flag.StringVar(&c.kind, "kind", "tlsrpt", "tlsrpt or dmarc (DMARC aggregate reports, SMTP only: 1 KB or 20 KB of XML, gzipped as application/gzip)")
	size := flag.String("size", sizeSmall, "report size: small (one policy, 2 failure details, ~1 KB) or large (80 failure details, ~20 KB)")
	encoding := flag.String("encoding", "gzip", "gzip or json: the POST body, or the attachment (SMTP)")
	flag.BoolVar(&c.starttls, "starttls", false, "SMTP: STARTTLS before MAIL")
	flag.IntVar(&c.perConn, "per-conn", 0, "reports per connection: HTTPS 0 (keep-alive) or 1; SMTP 1 or more (0 means 1)")
	flag.IntVar(&c.clients, "c", 16, "concurrent clients (connections)")
	dur := flag.Duration("d", 10*time.Second, "duration of the run")
	n := flag.Int("n", 50000, "at most this many reports (all built before the run)")
	runID := flag.String("run", "", "prefix of the report-ids, distinct per run (default: from the clock)")
	flag.BoolVar(&c.stored, "expect-stored", false, "require Moat's answer \"report stored (report N)\" for every report")
	flag.BoolVar(&c.spooled, "expect-spooled", false, "require Moat's answer \"report accepted, queued for storage (spool N)\" for every report (intake.smtp_spool)")
	wait := flag.Bool("wait", false, "after building the reports print \"ready\" and wait (at most a minute) for SIGUSR1")
	sizes := flag.Bool("sizes", false, "print the report sizes and exit")
	dmarcOut := flag.String("dmarc-file", "", "write one gzipped DMARC aggregate report of -dmarc-records records to this file and exit (for moat import)")
	dmarcRecords := flag.Int("dmarc-records", 1000000, "records of the -dmarc-file report")
	flag.Parse()
	if *dmarcOut != "" {
		if *runID == "" {
			*runID = "r" + strconv.FormatInt(time.Now().UnixNano(), 36)
		}
		return writeDMARCFile(*dmarcOut, *runID, *dmarcRecords)
	}

	switch {
	case c.mode != "https" && c.mode != "smtp":
		return fmt.Errorf("-mode %q: want https or smtp", c.mode)
	case *size != sizeSmall && *size != sizeLarge:
		return fmt.Errorf("-size %q: want small or large", *size)
	case *encoding != "gzip" && *encoding != "json":
		return fmt.Errorf("-encoding %q: want gzip or json", *encoding)
	case c.kind != "tlsrpt" && c.kind != "dmarc":
		return fmt.Errorf("-kind %q: want tlsrpt or dmarc", c.kind)
	case c.kind == "dmarc" && c.mode != "smtp":
		return errors.New("-kind dmarc: only with -mode smtp")
	case c.mode == "https" && c.perConn > 1:
		return fmt.Errorf("-per-conn %d: HTTPS takes 0 (keep-alive) or 1 (a connection per report)", c.perConn)
	case c.clients < 1 || *n < 1:
		return errors.New("-c and -n must be positive")
	}
	c.gzip = *encoding == "gzip"
	if c.rcpt == "" {
		c.rcpt = c.kind + "@reports.sts.moat.test"
	}
	if c.mode == "smtp" && c.perConn < 1 {
		c.perConn = 1
	}
	if *sizes {
		*n = 1
	} else if host, _, err := net.SplitHostPort(c.addr); err != nil || !net.ParseIP(host).IsLoopback() {
		return fmt.Errorf("-addr %q: want a loopback address and port", c.addr)
	}
	if *runID == "" {
		*runID = "r" + strconv.FormatInt(time.Now().UnixNano(), 36)
	}

	l := &load{cfg: c, ids: make(map[int64]bool)}
	jsonBytes := l.build(*size, *runID, *n)
	var wire int64
	for _, p := range l.payloads {
		wire += int64(len(p))
	}
	if *sizes {
		fmt.Printf("json-bytes %d\nwire-bytes %d\n", jsonBytes, wire)
		return nil
	}
	if *wait {
		if err := waitSignal(); err != nil {
			return err
		}
	}

	start := time.Now()
	l.end = start.Add(*dur)
	// Clients finish the report they are delivering after the end; a
	// server that stops answering is given up on a minute later.
	ctx, cancel := context.WithDeadline(context.Background(), l.end.Add(time.Minute))
	defer cancel()
	var wg sync.WaitGroup
	for range c.clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if c.mode == "https" {
				l.https(ctx)
			} else {
				l.smtp(ctx)
			}
		}()
	}
	wg.Wait()
	secs := time.Since(start).Seconds()
	acked := l.acked.Load()
	fmt.Printf("reports %d\nerrors %d\nconnections %d\nrefused %d\nseconds %.2f\nreports/s %.2f\njson-bytes %d\nwire-bytes %d\n",
		acked, l.failed.Load(), l.conns.Load(), l.refused.Load(), secs, float64(acked)/secs, jsonBytes, wire/int64(len(l.payloads)))
	if c.stored || c.spooled {
		fmt.Printf("distinct-ids %d\n", len(l.ids))
	}
	if l.firstErr != nil {
		return fmt.Errorf("%d deliveries failed, the first: %w", l.failed.Load(), l.firstErr)
	}
	if (c.stored || c.spooled) && int64(len(l.ids)) != acked {
		return fmt.Errorf("%d reports acknowledged with %d distinct stored or spooled ids", acked, len(l.ids))
	}
	return nil
}

// build makes n payloads on every CPU and returns the mean size of a
// report's JSON.
func (l *load) build(size, runID string, n int) int64 {
	day := time.Now().UTC().Truncate(24 * time.Hour).Add(-24 * time.Hour)
	l.payloads = make([][]byte, n)
	var jsonTotal atomic.Int64
	var wg sync.WaitGroup
	workers := runtime.GOMAXPROCS(0)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < n; i += workers {
				s := newSpec(size, runID, i, day)
				js := reportJSON
				if l.cfg.kind == "dmarc" {
					js = dmarcXML
				}
				doc := js(s)
				jsonTotal.Add(int64(len(doc)))
				report := doc
				if l.cfg.gzip {
					report = gzipped(doc)
				}
				switch {
				case l.cfg.kind == "dmarc":
					report = dmarcMail(s, l.cfg.rcpt, report, l.cfg.gzip)
				case l.cfg.mode == "smtp":
					report = reportMail(s, l.cfg.rcpt, report, l.cfg.gzip)
				}
				l.payloads[i] = report
			}
		}()
	}
	wg.Wait()
	return jsonTotal.Load() / int64(n)
}

// take returns the next payload to send, or false when the run is over.
func (l *load) take() ([]byte, bool) {
	if !time.Now().Before(l.end) {
		return nil, false
	}
	i := l.next.Add(1) - 1
	if i >= int64(len(l.payloads)) {
		return nil, false
	}
	return l.payloads[i], true
}

// storedRe matches Moat's answer for a report stored as a new one (after
// the enhanced status code in SMTP).
// DMARC reports are answered "DMARC report stored (report N: ...)".
var storedRe = regexp.MustCompile(`^(?:[245]\.[0-9]{1,3}\.[0-9]{1,3} )?(?:DMARC )?report stored \(report ([0-9]+)[:)]`)

// spooledRe matches Moat's answer for a report mail kept in the spool
// (intake.smtp_spool).
var spooledRe = regexp.MustCompile(`^(?:[245]\.[0-9]{1,3}\.[0-9]{1,3} )?(?:TLS |DMARC )?report accepted, queued for storage \(spool ([0-9]+)\)$`)

// ack counts an acknowledged report; answer is the server's text.
func (l *load) ack(answer string) error {
	if l.cfg.stored || l.cfg.spooled {
		re, what := storedRe, "a new stored report"
		if l.cfg.spooled {
			re, what = spooledRe, "a spooled report mail"
		}
		m := re.FindStringSubmatch(answer)
		if m == nil {
			return fmt.Errorf("acknowledged, but not as %s: %q", what, answer)
		}
		id, _ := strconv.ParseInt(m[1], 10, 64)
		l.mu.Lock()
		l.ids[id] = true
		l.mu.Unlock()
	}
	l.acked.Add(1)
	return nil
}

func (l *load) fail(err error) {
	l.failed.Add(1)
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.firstErr == nil {
		l.firstErr = err
	}
}

// waitSignal prints "ready" and waits for SIGUSR1.
func waitSignal() error {
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, syscall.SIGUSR1)
	defer signal.Stop(ch)
	fmt.Println("ready")
	select {
	case <-ch:
		return nil
	case <-time.After(time.Minute):
		return errors.New("no SIGUSR1 within a minute of \"ready\"")
	}
}
