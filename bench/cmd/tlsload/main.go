// Command tlsload fetches MTA-STS policies (RFC 8461 §3.3) the way sending
// MTAs do: every fetch opens a new TCP connection and does a full TLS
// handshake (no session resumption: the client keeps no session cache),
// sends one GET with Connection: close and reads the response to the end.
// wrk cannot be used for this: it resumes TLS sessions when it reconnects.
//
// Requests ask for Host mta-sts.dK.test with K random in 1..N. The TLS server
// name is mta-sts.d1.test, or with -sni-spread S the same random host as
// the Host header, K in 1..S. Only X25519 is offered for the key exchange,
// which OpenSSL 3.0 (nginx on Debian 12) also uses; Go would otherwise
// prefer the costlier X25519MLKEM768 with Go servers only.
//
// With -rate R the connections together start at most R fetches a second
// (paced by the clock; a fetch that cannot start while a connection is
// free is skipped and counted as "late", not queued), for soak runs at a
// fixed share of the maximum.
//
// It prints "requests", "errors", "seconds" and "req/s" lines (and "late"
// with -rate) and exits non-zero when any fetch failed.
package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "tlsload:", err)
		os.Exit(1)
	}
}

func run() error {
	addr := flag.String("addr", "", "server address, 127.0.0.1:port (required)")
	n := flag.Int("n", 100000, "hosted domains d1.test … dN.test to spread Host headers over")
	spread := flag.Int("sni-spread", 0, "0: TLS server name mta-sts.d1.test; S: the Host's name, K in 1..S")
	conns := flag.Int("c", 50, "concurrent connections")
	dur := flag.Duration("d", 10*time.Second, "duration")
	rate := flag.Float64("rate", 0, "fetches a second over all connections; 0: as fast as the server answers")
	flag.Parse()
	if *rate < 0 {
		return fmt.Errorf("-rate %v: want 0 or more", *rate)
	}
	if *addr == "" {
		return errors.New("-addr is required")
	}
	if host, _, err := net.SplitHostPort(*addr); err != nil || !net.ParseIP(host).IsLoopback() {
		return fmt.Errorf("-addr %q: want a loopback address and port", *addr)
	}
	ctx, cancel := context.WithTimeout(context.Background(), *dur)
	defer cancel()
	end, _ := ctx.Deadline()
	var ok, failed, late atomic.Int64
	// tokens paces the fetches with -rate: by the clock, so that a late
	// wake-up of this goroutine sends the tokens that fell due meanwhile;
	// a token the bucket (one per connection) has no room for is counted
	// late.
	var tokens chan struct{}
	if *rate > 0 {
		tokens = make(chan struct{}, *conns)
		go func() {
			t := time.NewTicker(time.Millisecond)
			defer t.Stop()
			begin, sent := time.Now(), int64(0)
			for {
				for due := int64(time.Since(begin).Seconds() * *rate); sent < due; sent++ {
					select {
					case tokens <- struct{}{}:
					default:
						late.Add(1)
					}
				}
				select {
				case <-ctx.Done():
					return
				case <-t.C:
				}
			}
		}()
	}
	// The first error, whatever its type (atomic.Value would panic on a
	// second error of another concrete type).
	var firstErr atomic.Pointer[error]
	start := time.Now()
	var wg sync.WaitGroup
	for i := range *conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := rand.New(rand.NewPCG(uint64(i), uint64(start.UnixNano())))
			// The context's own timer may fire a moment after its deadline
			// has already failed a dial, so the run's end is read from the
			// clock.
			for time.Now().Before(end) {
				if tokens != nil {
					select {
					case <-tokens:
					case <-ctx.Done():
						return
					}
				}
				k := 1 + r.IntN(*n)
				sni := "mta-sts.d1.test"
				if *spread > 0 {
					k = 1 + r.IntN(*spread)
					sni = "mta-sts.d" + strconv.Itoa(k) + ".test"
				}
				host := "mta-sts.d" + strconv.Itoa(k) + ".test"
				err := fetch(ctx, *addr, sni, host)
				switch {
				case err == nil:
					ok.Add(1)
				case !time.Now().Before(end):
					// cut off by the end of the run: not counted
				default:
					failed.Add(1)
					firstErr.CompareAndSwap(nil, &err)
				}
			}
		}()
	}
	wg.Wait()
	secs := time.Since(start).Seconds()
	fmt.Printf("requests %d\nerrors %d\nseconds %.2f\nreq/s %.2f\n", ok.Load(), failed.Load(), secs, float64(ok.Load())/secs)
	if *rate > 0 {
		fmt.Printf("late %d\n", late.Load())
	}
	if err := firstErr.Load(); err != nil {
		return fmt.Errorf("%d fetches failed, the first: %w", failed.Load(), *err)
	}
	return nil
}

var statusOK = []byte("HTTP/1.1 200 ")

// fetch does one policy fetch on a new connection.
func fetch(ctx context.Context, addr, sni, host string) error {
	cfg := &tls.Config{
		ServerName: sni,
		// Server CPU is what is measured; the client skips verifying the
		// development CA's certificate to leave the CPUs to the servers.
		InsecureSkipVerify: true,
		CurvePreferences:   []tls.CurveID{tls.X25519},
		NextProtos:         []string{"http/1.1"},
	}
	nd := net.Dialer{Timeout: 5 * time.Second}
	start := time.Now()
	tc, err := nd.DialContext(ctx, "tcp", addr)
	if err != nil {
		return fmt.Errorf("connect to %s (after %s): %w", addr, time.Since(start).Round(time.Millisecond), err)
	}
	c := tls.Client(tc, cfg)
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	if err := c.HandshakeContext(ctx); err != nil {
		tc.Close()
		return fmt.Errorf("TLS handshake with %s (server name %s): %w", addr, sni, err)
	}
	defer c.Close()
	req := "GET /.well-known/mta-sts.txt HTTP/1.1\r\nHost: " + host + "\r\nConnection: close\r\n\r\n"
	if _, err := io.WriteString(c, req); err != nil {
		return fmt.Errorf("write to %s: %w", host, err)
	}
	resp, err := io.ReadAll(c)
	if err != nil && len(resp) == 0 {
		return fmt.Errorf("read from %s: %w", host, err)
	}
	if !bytes.HasPrefix(resp, statusOK) || !bytes.Contains(resp, []byte("\r\n\r\nversion: STSv1\r\n")) {
		line, _, _ := bytes.Cut(resp, []byte("\r\n"))
		return fmt.Errorf("%s: unexpected response %q", host, line)
	}
	return nil
}
