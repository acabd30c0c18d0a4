package dmarcrpt

import (
	"bufio"
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/moatmail/moat/internal/corpora"
)

// generator is an io.Reader of an aggregate report with n records,
// produced as it is read: a report of any size without holding it.
type generator struct {
	n, next int
	buf     bytes.Buffer
	done    bool
}

func newGenerator(n int) *generator {
	g := &generator{n: n}
	g.buf.WriteString(`<?xml version="1.0" encoding="UTF-8"?>
<feedback xmlns="urn:ietf:params:xml:ns:dmarc-2.0">
  <version>1.0</version>
  <report_metadata>
    <org_name>generator.example</org_name>
    <email>dmarc@generator.example</email>
    <report_id>generated</report_id>
    <date_range><begin>1700000000</begin><end>1700086399</end></date_range>
  </report_metadata>
  <policy_published><domain>example.com</domain><p>reject</p><sp>reject</sp><np>reject</np><testing>n</testing></policy_published>
`)
	return g
}

func (g *generator) Read(p []byte) (int, error) {
	for g.buf.Len() < len(p) && !g.done {
		if g.next == g.n {
			g.buf.WriteString("</feedback>\n")
			g.done = true
			break
		}
		i := g.next
		fmt.Fprintf(&g.buf, `  <record>
    <row><source_ip>10.%d.%d.%d</source_ip><count>%d</count><policy_evaluated><disposition>none</disposition><dkim>pass</dkim><spf>fail</spf></policy_evaluated></row>
    <identifiers><header_from>example.com</header_from><envelope_from>bounce.example.com</envelope_from></identifiers>
    <auth_results><dkim><domain>example.com</domain><selector>s%d</selector><result>pass</result></dkim><spf><domain>bounce.example.com</domain><scope>mfrom</scope><result>softfail</result></spf></auth_results>
  </record>
`, i>>16&255, i>>8&255, i&255, i%7+1, i%4)
		g.next++
	}
	if g.buf.Len() == 0 {
		return 0, io.EOF
	}
	return g.buf.Read(p)
}

// wantMessages is the sum of the counts a generator of n records writes.
func wantMessages(n int) int64 {
	var sum int64
	for i := range n {
		sum += int64(i%7 + 1)
	}
	return sum
}

// countingReader counts the bytes read through it.
type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

// largestSample returns the largest aggregate report of the corpora
// (parsedmarc's 909 KB "!large-example.com!..." file), or skips.
func largestSample(tb testing.TB) (string, []byte) {
	tb.Helper()
	dir, err := corpora.Dir()
	if err != nil {
		tb.Skipf("SKIP: %v", err)
	}
	files, _ := filepath.Glob(filepath.Join(dir, "parsedmarc/samples/aggregate/*.xml"))
	var best string
	var size int64
	for _, f := range files {
		if fi, err := os.Stat(f); err == nil && fi.Size() > size {
			best, size = f, fi.Size()
		}
	}
	if best == "" {
		tb.Skipf("SKIP: no aggregate reports in %s", dir)
	}
	data, err := os.ReadFile(best)
	if err != nil {
		tb.Fatal(err)
	}
	return filepath.Base(best), data
}

// BenchmarkDecodeSample decodes the largest aggregate report of the
// corpora.
func BenchmarkDecodeSample(b *testing.B) {
	_, data := largestSample(b)
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := Decode(bytes.NewReader(data), Options{}, func(*Record) error { return nil }); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkDecodeGenerated decodes a generated report of 1,000,000
// records streamed from the generator, never held in memory.
func BenchmarkDecodeGenerated(b *testing.B) {
	n := benchRecords()
	b.ReportAllocs()
	var bytesRead int64
	for b.Loop() {
		cr := &countingReader{r: newGenerator(n)}
		rep, _, err := Decode(cr, Options{}, func(*Record) error { return nil })
		if err != nil {
			b.Fatal(err)
		}
		if rep.Records != int64(n) || rep.Messages != wantMessages(n) {
			b.Fatalf("%d records, %d messages", rep.Records, rep.Messages)
		}
		bytesRead = cr.n
	}
	b.SetBytes(bytesRead)
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(n), "ns/record")
}

// BenchmarkTokenizer is the floor under BenchmarkDecodeGenerated:
// encoding/xml's RawToken alone over the same generated report.
func BenchmarkTokenizer(b *testing.B) {
	n := benchRecords()
	for b.Loop() {
		cr := &countingReader{r: newGenerator(n)}
		x := xml.NewDecoder(bufio.NewReader(cr))
		for {
			_, err := x.RawToken()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				b.Fatal(err)
			}
		}
		b.SetBytes(cr.n)
	}
}

// BenchmarkRepair is the repair reader alone over the generated report.
func BenchmarkRepair(b *testing.B) {
	n := benchRecords()
	for b.Loop() {
		cr := &countingReader{r: newGenerator(n)}
		rp := newRepair(cr, 1<<20, 0)
		if _, err := io.Copy(io.Discard, rp); err != nil {
			b.Fatal(err)
		}
		b.SetBytes(cr.n)
	}
}

// benchRecords is the size of the generated report: 1,000,000, or
// $MOAT_BENCH_RECORDS.
func benchRecords() int {
	var n int
	if _, err := fmt.Sscan(os.Getenv("MOAT_BENCH_RECORDS"), &n); err == nil && n > 0 {
		return n
	}
	return 1_000_000
}
