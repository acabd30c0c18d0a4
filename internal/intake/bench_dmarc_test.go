package intake

import (
	"bufio"
	"compress/gzip"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"runtime/metrics"
	"sync"
	"testing"
	"time"

	corpuslist "github.com/moatmail/moat/internal/corpora"
	"github.com/moatmail/moat/internal/store"
)

// writeDMARCReport writes a DMARC aggregate report of n records (RFC 7489
// appendix C, the shape Google sends: source IPs, DKIM and SPF results)
// about a.example to w.
func writeDMARCReport(w io.Writer, id string, n int) error {
	bw := bufio.NewWriterSize(w, 64<<10)
	fmt.Fprintf(bw, `<?xml version="1.0" encoding="UTF-8" ?>
<feedback>
  <report_metadata>
    <org_name>google.com</org_name>
    <email>noreply-dmarc-support@google.com</email>
    <extra_contact_info>https://support.google.com/a/answer/2466580</extra_contact_info>
    <report_id>%s</report_id>
    <date_range><begin>1793491200</begin><end>1793577599</end></date_range>
  </report_metadata>
  <policy_published><domain>a.example</domain><adkim>r</adkim><aspf>r</aspf><p>none</p><sp>none</sp><pct>100</pct></policy_published>
`, id)
	for i := range n {
		disp, dkim, spf := "none", "pass", "pass"
		if i%7 == 0 {
			dkim, spf = "fail", "fail"
		}
		fmt.Fprintf(bw, `  <record>
    <row>
      <source_ip>%d.%d.%d.%d</source_ip>
      <count>%d</count>
      <policy_evaluated><disposition>%s</disposition><dkim>%s</dkim><spf>%s</spf></policy_evaluated>
    </row>
    <identifiers><header_from>a.example</header_from></identifiers>
    <auth_results>
      <dkim><domain>a.example</domain><selector>s%d</selector><result>%s</result></dkim>
      <spf><domain>bounce%d.a.example</domain><result>%s</result></spf>
    </auth_results>
  </record>
`, 10+i>>24&0x7f, i>>16&0xff, i>>8&0xff, i&0xff, 1+i%5, disp, dkim, spf, i%3, dkim, i%11, spf)
	}
	bw.WriteString("</feedback>\n")
	return bw.Flush()
}

// heapPeak samples the live heap every 10 ms until stop is called, and
// returns the highest sample.
func heapPeak() (stop func() uint64) {
	sample := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	var (
		peak uint64
		wg   sync.WaitGroup
	)
	done := make(chan struct{})
	wg.Go(func() {
		t := time.NewTicker(10 * time.Millisecond)
		defer t.Stop()
		for {
			metrics.Read(sample)
			peak = max(peak, sample[0].Value.Uint64())
			select {
			case <-done:
				return
			case <-t.C:
			}
		}
	})
	return func() uint64 { close(done); wg.Wait(); return peak }
}

// benchImport imports path into a fresh SQLite store per iteration and
// reports records per second and the peak live heap.
func benchImport(b *testing.B, path string, wantRecords int64) {
	var records int64
	var peak uint64
	for b.Loop() {
		b.StopTimer()
		st := openStore(b)
		ing := startIngester(b, st, nil, IngestOpts{})
		runtime.GC()
		stop := heapPeak()
		b.StartTimer()
		stats, err := Import(context.Background(), ing, []string{path}, ImportOpts{MaxFileBytes: 1 << 30})
		b.StopTimer()
		peak = max(peak, stop())
		if err != nil || len(stats.Stored) != 1 || stats.Stored[0].Outcome != OutcomeStored || stats.Stored[0].Records != wantRecords {
			b.Fatalf("import: %+v, %v", stats, err)
		}
		records += stats.Stored[0].Records
		n, err := st.CountDMARCReports(context.Background(), store.DMARCFilter{})
		if err != nil || n != 1 {
			b.Fatalf("%d reports stored, %v", n, err)
		}
		b.StartTimer()
	}
	b.ReportMetric(float64(records)/b.Elapsed().Seconds(), "records/s")
	b.ReportMetric(float64(peak)/(1<<20), "peak-heap-MB")
}

// BenchmarkImportDMARCLargest imports the largest aggregate report of the
// corpora (909 KB of XML) into SQLite, as moat import does.
func BenchmarkImportDMARCLargest(b *testing.B) {
	dir, err := corpuslist.Dir()
	if err != nil {
		b.Skipf("corpora: %v", err)
	}
	var (
		path    string
		records int64
		size    int64
	)
	for _, f := range corpuslist.DMARC() {
		fi, err := os.Stat(f.File(dir))
		if err == nil && f.Kind == corpuslist.Aggregate && f.Parses() && fi.Size() > size {
			path, records, size = f.File(dir), f.Records, fi.Size()
		}
	}
	if path == "" {
		b.Skip("no aggregate report in the corpora")
	}
	b.ReportMetric(float64(size), "file-bytes")
	benchImport(b, path, records)
}

// BenchmarkImportDMARCMillion imports a generated aggregate report of
// 1,000,000 records (gzip, as reports are sent) into SQLite. The records
// are decoded as a stream: the peak heap does not grow with them.
func BenchmarkImportDMARCMillion(b *testing.B) {
	const n = 1_000_000
	path := filepath.Join(b.TempDir(), "million.xml.gz")
	f, err := os.Create(path)
	if err != nil {
		b.Fatal(err)
	}
	zw := gzip.NewWriter(f)
	if err := writeDMARCReport(zw, "million", n); err != nil {
		b.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		b.Fatal(err)
	}
	if err := f.Close(); err != nil {
		b.Fatal(err)
	}
	benchImport(b, path, n)
}
