// Command profserve runs Moat's DNS server and HTTPS policy server in
// process, on a snapshot of N synthetic hosted domains built the way
// `moat serve` builds it, and writes a CPU profile of the time it runs, for
// `go tool pprof`. `moat serve` exposes no profiling endpoint; this is the
// same handler, TLS configuration and DNS query path, minus the store.
//
// With -reuseport the DNS server opens one SO_REUSEPORT UDP socket per
// reader (dnsserver.ListenAndServe); without it one socket read by all
// readers (dnsserver.Serve).
//
// With -intake the HTTPS server also takes TLS-RPT reports (POST /v1/tlsrpt
// for the intake host, as `moat serve --dev` does), and -smtp ADDR runs the
// SMTP intake with STARTTLS: both store through the same group-commit
// ingester into the SQLite database of -data (put it on a disk), with no
// per-client rate limit. bench/cmd/intakeload sends the reports.
package main

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"runtime/pprof"
	"strconv"
	"syscall"
	"time"

	"github.com/moatmail/moat/bench/internal/benchenv"
	"github.com/moatmail/moat/internal/config"
	"github.com/moatmail/moat/internal/devca"
	"github.com/moatmail/moat/internal/dnsserver"
	"github.com/moatmail/moat/internal/hosting"
	"github.com/moatmail/moat/internal/intake"
	"github.com/moatmail/moat/internal/policyserver"
	"github.com/moatmail/moat/internal/snapshot"
	"github.com/moatmail/moat/internal/store"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "profserve:", err)
		os.Exit(1)
	}
}

func run() error {
	n := flag.Int("n", 100000, "hosted domains d1.test … dN.test")
	zone := flag.String("zone", "sts.test", "service zone")
	data := flag.String("data", "", "directory of the development CA (created if absent; required)")
	dnsAddr := flag.String("dns", "", "UDP and TCP address of the DNS server, 127.0.0.1:port; empty: none")
	httpsAddr := flag.String("https", "", "address of the HTTPS policy server, 127.0.0.1:port; empty: none")
	reuseport := flag.Bool("reuseport", false, "one SO_REUSEPORT UDP socket per DNS reader")
	withIntake := flag.Bool("intake", false, "also take TLS-RPT reports by POST on the HTTPS server (SQLite in -data)")
	smtpAddr := flag.String("smtp", "", "address of the SMTP report intake, 127.0.0.1:port (SQLite in -data); empty: none")
	profile := flag.String("cpuprofile", "", "write a CPU profile here (required)")
	dur := flag.Duration("d", time.Minute, "stop after this long (or at SIGTERM/SIGINT)")
	flag.Parse()
	if *data == "" || *profile == "" || (*dnsAddr == "" && *httpsAddr == "" && *smtpAddr == "") {
		return errors.New("-data, -cpuprofile and -dns, -https or -smtp are required")
	}
	if (*withIntake || *smtpAddr != "") && *httpsAddr == "" {
		return errors.New("-intake and -smtp need -https (its certificates)")
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	set, err := benchenv.Settings(*zone, *data)
	if err != nil {
		return err
	}
	served := make([]*snapshot.Domain, *n)
	for i := range served {
		name := "d" + strconv.Itoa(i+1) + ".test"
		served[i] = set.Serving(&store.Domain{
			Name: name, Mode: "enforce", MX: []string{"mx1." + name, "*.mx." + name},
			MaxAge: hosting.DefaultMaxAge, PolicyID: "20261123T110859Z", Version: 1,
		})
	}
	var holder snapshot.Holder
	holder.Store(snapshot.New(1, time.Now(), served))

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, *dur)
	defer cancel()

	f, err := os.Create(*profile)
	if err != nil {
		return err
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		return err
	}
	errc := make(chan error, 3)
	running := 0
	var rep *reportIntake
	if *withIntake || *smtpAddr != "" {
		if rep, err = startIntake(ctx, log, *zone, *data); err != nil {
			return err
		}
		defer rep.stop()
	}
	if *dnsAddr != "" {
		srv, err := dnsserver.New(log, &holder, dnsserver.Options{Zone: *zone})
		if err != nil {
			return err
		}
		running++
		if *reuseport {
			go func() { errc <- srv.ListenAndServe(ctx, *dnsAddr) }()
		} else {
			pc, err := net.ListenPacket("udp", *dnsAddr)
			if err != nil {
				return err
			}
			go func() { errc <- srv.Serve(ctx, pc, nil) }()
		}
	}
	if *httpsAddr != "" {
		ca, err := devca.LoadOrCreate(*data)
		if err != nil {
			return err
		}
		opts := policyserver.Options{DevCA: ca}
		if *withIntake {
			opts.Services = map[string]http.Handler{rep.host: rep.handler}
		}
		ps, err := policyserver.New(log, &holder, nil, opts)
		if err != nil {
			return err
		}
		if *smtpAddr != "" {
			sl, err := net.Listen("tcp", *smtpAddr)
			if err != nil {
				return err
			}
			srv := rep.smtpServer(log, ps)
			running++
			go func() { errc <- srv.Serve(ctx, sl) }()
		}
		l, err := net.Listen("tcp", *httpsAddr)
		if err != nil {
			return err
		}
		running++
		go func() { errc <- ps.Serve(ctx, l, nil) }()
	}
	fmt.Println("profserve: serving")
	var first error
	for ; running > 0; running-- {
		if err := <-errc; err != nil && first == nil && !errors.Is(err, dnsserver.ErrServerClosed) {
			first = err
			cancel()
		}
	}
	pprof.StopCPUProfile()
	return errors.Join(first, f.Close())
}

// reportIntake is the TLS-RPT intake of `moat serve`: a store, the
// group-commit ingester writing to it, and the HTTPS handler.
type reportIntake struct {
	cfg     config.Intake
	host    string
	st      store.Store
	handler http.Handler
	ing     *intake.Ingester
	stop    func() // stops the ingester, then closes the store
}

func startIntake(ctx context.Context, log *slog.Logger, zone, data string) (*reportIntake, error) {
	cfg, err := benchenv.Intake(zone, data)
	if err != nil {
		return nil, err
	}
	st, err := store.Open(ctx, log, store.Options{DataDir: data})
	if err != nil {
		return nil, err
	}
	// As cmd/moat: the ingester outlives the listeners, so that every
	// report they accepted is committed.
	ingCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	ing := intake.NewIngester(log, st, nil, intake.IngestOpts{MaxDecompressed: cfg.MaxReportJSON})
	done := make(chan struct{})
	go func() { defer close(done); _ = ing.Run(ingCtx) }()
	r := &reportIntake{
		cfg: cfg, host: cfg.Host, st: st, ing: ing,
		handler: intake.NewHTTPHandler(log, ing, intake.HTTPOpts{MaxBody: cfg.MaxReportSize, RatePerIP: -1}),
	}
	r.stop = func() {
		cancel()
		<-done
		s := ing.Stats()
		fmt.Printf("profserve: %d reports committed in %d transactions\n", s.Reports, s.Batches)
		if err := st.Close(); err != nil {
			log.Warn("closing the store", "err", err)
		}
	}
	return r, nil
}

// smtpServer is the SMTP intake with STARTTLS, the intake host's
// certificate whatever the SNI, as cmd/moat sets it up.
func (r *reportIntake) smtpServer(log *slog.Logger, ps *policyserver.Server) *intake.SMTPServer {
	tc := &tls.Config{MinVersion: tls.VersionTLS12, GetCertificate: func(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
		h := *hello
		h.ServerName = r.host
		return ps.GetCertificate(&h)
	}}
	return intake.NewSMTPServer(log, r.ing, intake.SMTPOpts{
		Hostname: r.host, TLSConfig: tc, Recipients: r.cfg.Addresses, MaxMessageBytes: r.cfg.MaxReportSize * 2,
		// Every client of the benchmark is 127.0.0.1.
		MaxConnectionsPerIP: 1000,
	})
}
