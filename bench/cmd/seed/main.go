// Command seed prepares the side-by-side benchmarks of bench/run.sh: it
// hosts N domains d1.test … dN.test in a Moat data directory, then writes
// the peers' inputs from what the store holds, so that Moat, Knot DNS and
// nginx serve the same data:
//
//   - zone: a Knot DNS zone file of the service zone with both TXT records
//     of every hosted domain (RFC 8461 §3.1, RFC 8460 §3), built with the
//     same functions Moat's snapshot uses;
//   - policy: the policy file of d1.test, which nginx serves as one static
//     file (RFC 8461 §3.2);
//   - queries: a dnsperf query file of random hosted names, _mta-sts and
//     _smtp._tls alternately.
//
// Domains that are hosted already are kept, so seeding twice is cheap.
package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/moatmail/moat/bench/internal/benchenv"
	"github.com/moatmail/moat/internal/hosting"
	"github.com/moatmail/moat/internal/store"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "seed:", err)
		os.Exit(1)
	}
}

func run() error {
	data := flag.String("data", "", "Moat data directory (required)")
	n := flag.Int("n", 100000, "number of hosted domains d1.test … dN.test")
	zone := flag.String("zone", "sts.test", "service zone")
	zoneOut := flag.String("zone-out", "", "write a Knot DNS zone file of the hosted TXT records here")
	policyOut := flag.String("policy-out", "", "write the policy file of d1.test here")
	queryOut := flag.String("queries-out", "", "write a dnsperf query file here")
	queries := flag.Int("queries", 200000, "lines of the query file")
	workers := flag.Int("workers", 4, "concurrent writers")
	flag.Parse()
	if *data == "" {
		return errors.New("-data is required")
	}
	ctx := context.Background()
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	st, err := store.Open(ctx, log, store.Options{DataDir: *data})
	if err != nil {
		return err
	}
	defer func() { _ = st.Close() }() // read-mostly: Close has nothing to report here
	set, err := benchenv.Settings(*zone, *data)
	if err != nil {
		return err
	}
	org, err := defaultOrg(ctx, st)
	if err != nil {
		return err
	}
	if err := seed(ctx, hosting.New(st, set, nil), org, *n, *workers); err != nil {
		return err
	}
	domains, err := st.Domains(ctx)
	if err != nil {
		return err
	}
	if *zoneOut != "" {
		if err := writeZone(*zoneOut, set, domains); err != nil {
			return err
		}
	}
	if *policyOut != "" {
		var policy []byte
		for _, d := range domains {
			if d.Name == "d1.test" {
				policy = set.Serving(d).Policy
			}
		}
		if policy == nil {
			return errors.New("d1.test is not hosted: seed with -n 1 or more")
		}
		if err := os.WriteFile(*policyOut, policy, 0o644); err != nil {
			return err
		}
	}
	if *queryOut != "" {
		if err := writeQueries(*queryOut, *zone, *n, *queries); err != nil {
			return err
		}
	}
	return nil
}

// defaultOrg returns the organization "default", which moat domains add
// uses too, creating it when absent.
func defaultOrg(ctx context.Context, st store.Store) (int64, error) {
	o, err := st.OrgByName(ctx, "default")
	if errors.Is(err, store.ErrNotFound) {
		o = &store.Org{Name: "default", DisplayName: "Default"}
		err = st.CreateOrg(ctx, o)
	}
	if err != nil {
		return 0, err
	}
	return o.ID, nil
}

// seed hosts d1.test … dN.test for the organization org with workers
// concurrent writers.
func seed(ctx context.Context, svc *hosting.Service, org int64, n, workers int) error {
	start := time.Now()
	var next, added atomic.Int64
	errc := make(chan error, workers)
	var wg sync.WaitGroup
	for range max(workers, 1) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := next.Add(1)
				if i > int64(n) {
					return
				}
				name := "d" + strconv.FormatInt(i, 10) + ".test"
				spec := hosting.Spec{Org: org, Mode: "enforce", MX: []string{"mx1." + name, "*.mx." + name}}
				_, err := svc.Add(ctx, name, spec)
				if errors.Is(err, store.ErrExists) {
					continue
				}
				if err != nil {
					errc <- fmt.Errorf("adding %s: %w", name, err)
					return
				}
				added.Add(1)
			}
		}()
	}
	wg.Wait()
	close(errc)
	if err := <-errc; err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "seed: %d domains hosted (%d new) in %s\n", n, added.Load(), time.Since(start).Round(time.Millisecond))
	return nil
}

// writeZone writes the service zone as Moat serves it: SOA and NS at the
// apex, and the TXT records of every hosted domain, TTL 300 as Moat's
// default.
func writeZone(path string, set hosting.Settings, domains []*store.Domain) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	w := bufio.NewWriter(f)
	fmt.Fprintf(w, "$ORIGIN %s.\n$TTL 300\n", set.Zone)
	fmt.Fprintf(w, "@\tSOA\tns1.%s. hostmaster.%s. 1 3600 600 1209600 300\n", set.Zone, set.Zone)
	fmt.Fprintf(w, "@\tNS\tns1.%s.\n", set.Zone)
	fmt.Fprintf(w, "ns1\tA\t127.0.0.1\n")
	for _, d := range domains {
		s := set.Serving(d)
		fmt.Fprintf(w, "%s.\tTXT\t%q\n", set.STSName(d.Name), s.STSRecord)
		if s.TLSRPTRecord != "" {
			fmt.Fprintf(w, "%s.\tTXT\t%q\n", set.TLSRPTName(d.Name), s.TLSRPTRecord)
		}
	}
	if err := w.Flush(); err != nil {
		_ = f.Close() // the Flush error is the one to report
		return err
	}
	return f.Close()
}

// writeQueries writes lines "<name> TXT" for random hosted domains.
func writeQueries(path, zone string, n, lines int) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	w := bufio.NewWriter(f)
	r := rand.New(rand.NewPCG(1, 2))
	for i := range lines {
		d := "d" + strconv.Itoa(1+r.IntN(n)) + ".test"
		if i%2 == 0 {
			fmt.Fprintf(w, "%s._mta-sts.%s TXT\n", d, zone)
		} else {
			fmt.Fprintf(w, "%s._smtp._tls.%s TXT\n", d, zone)
		}
	}
	if err := w.Flush(); err != nil {
		_ = f.Close() // the Flush error is the one to report
		return err
	}
	return f.Close()
}
