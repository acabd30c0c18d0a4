// Command profserve runs Moat's DNS server and HTTPS policy server in
// process, on a snapshot of N synthetic hosted domains built the way
// `moat serve` builds it, and writes a CPU profile of the time it runs, for
// `go tool pprof`. `moat serve` exposes no profiling endpoint; this is the
// same handler, TLS configuration and DNS query path, minus the store.
//
// With -reuseport the DNS server opens one SO_REUSEPORT UDP socket per
// reader (dnsserver.ListenAndServe); without it one socket read by all
// readers, as `moat serve` does (dnsserver.Serve).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"runtime/pprof"
	"strconv"
	"syscall"
	"time"

	"github.com/moatmail/moat/bench/internal/benchenv"
	"github.com/moatmail/moat/internal/devca"
	"github.com/moatmail/moat/internal/dnsserver"
	"github.com/moatmail/moat/internal/hosting"
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
	profile := flag.String("cpuprofile", "", "write a CPU profile here (required)")
	dur := flag.Duration("d", time.Minute, "stop after this long (or at SIGTERM/SIGINT)")
	flag.Parse()
	if *data == "" || *profile == "" || (*dnsAddr == "" && *httpsAddr == "") {
		return errors.New("-data, -cpuprofile and -dns or -https are required")
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
	errc := make(chan error, 2)
	running := 0
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
		ps, err := policyserver.New(log, &holder, nil, policyserver.Options{DevCA: ca})
		if err != nil {
			return err
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
