package dmarcrpt

import (
	"runtime"
	"testing"
)

// TestDecodeConstantMemory decodes a generated report of 1,000,000
// records (about 500 MB of XML, produced as it is read) and checks that
// the live heap stays under 20 MB throughout: the decoder holds one
// record at a time, whatever the report's size. Under the race detector,
// which makes it twenty times slower, it decodes 30,000; with -short it
// is skipped. It is not parallel, so that no other test's heap is counted.
func TestDecodeConstantMemory(t *testing.T) {
	if testing.Short() {
		t.Skip("SKIP: -short: the 1,000,000-record decode takes about 20 s")
	}
	n := 1_000_000
	if raceEnabled {
		n = 30_000
	}
	const bound = 20 << 20
	runtime.GC()
	var ms runtime.MemStats
	var peak uint64
	sample := func() {
		runtime.ReadMemStats(&ms)
		peak = max(peak, ms.HeapAlloc)
	}
	sample()
	base := peak
	cr := &countingReader{r: newGenerator(n)}
	var seen int
	rep, warns, err := Decode(cr, Options{}, func(r *Record) error {
		if seen++; seen%20_000 == 0 {
			sample()
		}
		return nil
	})
	sample()
	if err != nil || len(warns) != 0 {
		t.Fatalf("Decode: %v, warnings %v", err, warns)
	}
	if rep.Records != int64(n) || rep.Messages != wantMessages(n) {
		t.Fatalf("%d records, %d messages; want %d, %d", rep.Records, rep.Messages, n, wantMessages(n))
	}
	t.Logf("%d records, %d MB of XML: peak heap %.1f MB (%.1f MB before), %d GCs", n, cr.n>>20, float64(peak)/(1<<20), float64(base)/(1<<20), ms.NumGC)
	if peak > bound {
		t.Errorf("peak heap %d bytes exceeds %d bytes", peak, bound)
	}
	if cr.n < int64(n)*400 {
		t.Errorf("only %d bytes read: the generator is not what the test thinks", cr.n)
	}
}
