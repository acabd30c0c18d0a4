// Command snapmem measures the heap that Moat's serving snapshot holds per
// hosted domain: it builds the snapshot from a data directory the way
// `moat serve` does (hosting.Settings.Serving, snapshot.New) and prints the
// live heap it keeps after garbage collection. DESIGN.md's goal is under
// 2 KB per domain.
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"runtime"
	"time"

	"github.com/moatmail/moat/bench/internal/benchenv"
	"github.com/moatmail/moat/internal/hosting"
	"github.com/moatmail/moat/internal/snapshot"
	"github.com/moatmail/moat/internal/store"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "snapmem:", err)
		os.Exit(1)
	}
}

func run() error {
	data := flag.String("data", "", "Moat data directory (required)")
	zone := flag.String("zone", "sts.test", "service zone")
	flag.Parse()
	if *data == "" {
		return fmt.Errorf("-data is required")
	}
	ctx := context.Background()
	st, err := store.Open(ctx, slog.New(slog.DiscardHandler), store.Options{DataDir: *data})
	if err != nil {
		return err
	}
	defer func() { _ = st.Close() }() // read-only use
	set, err := benchenv.Settings(*zone, *data)
	if err != nil {
		return err
	}

	before := liveHeap()
	snap, err := build(ctx, st, set)
	if err != nil {
		return err
	}
	after := liveHeap()
	n := snap.Len()
	fmt.Printf("serving snapshot: %d domains, %d bytes of live heap, %.0f bytes per domain (goal: under 2048)\n",
		n, after-before, float64(after-before)/float64(max(n, 1)))
	runtime.KeepAlive(snap)
	return nil
}

// build is hosting.Watcher.Refresh without the holder: everything but the
// snapshot is garbage when it returns.
func build(ctx context.Context, st store.Store, set hosting.Settings) (*snapshot.Snapshot, error) {
	domains, err := st.Domains(ctx)
	if err != nil {
		return nil, err
	}
	served := make([]*snapshot.Domain, len(domains))
	for i, d := range domains {
		served[i] = set.Serving(d)
	}
	return snapshot.New(1, time.Now(), served), nil
}

func liveHeap() uint64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}
