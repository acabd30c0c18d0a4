// Command profserve runs `moat serve --dev` in process, the same assembly
// (internal/server), and writes a CPU profile of the time it runs, for `go
// tool pprof`: `moat serve` exposes no profiling endpoint.
//
// It serves the data directory -data as it is: seed it first with
// bench/cmd/seed for the DNS and policy profiles. The HTTPS listener also
// takes TLS-RPT reports (POST /v1/tlsrpt for the intake host, as `moat
// serve --dev` does), and -smtp ADDR runs the SMTP intake with STARTTLS;
// both store into the database of -data (put it on a disk), with the
// per-client limits raised for a load generator on one address.
// bench/cmd/intakeload sends the reports.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"runtime/pprof"
	"syscall"
	"time"

	"github.com/moatmail/moat/internal/config"
	"github.com/moatmail/moat/internal/server"
	"github.com/moatmail/moat/internal/store"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "profserve:", err)
		os.Exit(1)
	}
}

func run() error {
	zone := flag.String("zone", "sts.test", "service zone")
	data := flag.String("data", "", "Moat data directory (required; seed it with bench/cmd/seed)")
	dnsAddr := flag.String("dns", "", "UDP and TCP address of the DNS server, 127.0.0.1:port; empty: none")
	httpsAddr := flag.String("https", "", "address of the HTTPS policy server and report intake, 127.0.0.1:port; empty: none")
	smtpAddr := flag.String("smtp", "", "address of the SMTP report intake, 127.0.0.1:port; empty: none")
	profile := flag.String("cpuprofile", "", "write a CPU profile here (required)")
	dur := flag.Duration("d", time.Minute, "stop after this long (or at SIGTERM/SIGINT)")
	spool := flag.Bool("spool", false, "intake.smtp_spool: answer report mail once the message is spooled")
	flag.Parse()
	if *data == "" || *profile == "" || (*dnsAddr == "" && *httpsAddr == "" && *smtpAddr == "") {
		return errors.New("-data, -cpuprofile and -dns, -https or -smtp are required")
	}
	if *smtpAddr != "" && *httpsAddr == "" {
		return errors.New("-smtp needs -https (its certificates)")
	}
	c, err := config.Load(config.Source{
		Flags: map[string]string{
			"dev": "true", "zone": *zone, "data": *data, "log-level": "warn",
			"dns-listen": *dnsAddr, "https-listen": *httpsAddr, "http-listen": "", "smtp-listen": *smtpAddr,
		},
		// Every client of the load generators is 127.0.0.1.
		Environ: []string{"MOAT_INTAKE_RATE_PER_IP=1000000", "MOAT_INTAKE_SMTP_CONNS_PER_IP=10000",
			fmt.Sprintf("MOAT_INTAKE_SMTP_SPOOL=%t", *spool)},
	})
	if err != nil {
		return err
	}
	if err := c.ValidateServe(); err != nil {
		return err
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	st, err := store.Open(ctx, log, store.Options{DataDir: c.DataDir})
	if err != nil {
		return err
	}
	defer func() {
		if err := st.Close(); err != nil {
			log.Warn("closing the store", "err", err)
		}
	}()
	srv, err := server.New(log, c, st, server.Options{})
	if err != nil {
		return err
	}
	f, err := os.Create(*profile)
	if err != nil {
		return err
	}
	if err := srv.Start(ctx); err != nil {
		return errors.Join(err, f.Close())
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		return errors.Join(err, srv.Shutdown(context.Background()), f.Close())
	}
	fmt.Printf("profserve: serving %d domains at %v\n", srv.Snapshots().Load().Len(), srv.Addrs())
	var failed error
	select {
	case <-ctx.Done():
	case <-time.After(*dur):
	case failed = <-srv.Failed():
	}
	pprof.StopCPUProfile()
	sctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	err = srv.Shutdown(sctx)
	s := srv.Ingester().Stats()
	fmt.Printf("profserve: %d reports committed in %d transactions\n", s.Reports, s.Batches)
	return errors.Join(failed, err, f.Close())
}
