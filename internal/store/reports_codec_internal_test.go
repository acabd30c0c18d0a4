package store

import (
	"bytes"
	"testing"
)

// FuzzRawRoundTrip checks that whatever bytes a report arrives as (JSON,
// gzip, zip, truncated gzip, garbage) come back exactly from what the store
// keeps for them.
func FuzzRawRoundTrip(f *testing.F) {
	// RFC 8460 Appendix B's example, shortened, and compressed forms.
	example := []byte(`{"organization-name":"Company-X","date-range":{"start-datetime":"2016-04-01T00:00:00Z",` +
		`"end-datetime":"2016-04-01T23:59:59Z"},"contact-info":"sts-reporting@company-x.example",` +
		`"report-id":"5065427c-23d3-47ca-b6e0-946ea0e8c4be","policies":[{"policy":{"policy-type":"sts",` +
		`"policy-string":["version: STSv1","mode: testing","mx: *.mail.company-y.example","max_age: 86400"],` +
		`"policy-domain":"company-y.example","mx-host":["*.mail.company-y.example"]},"summary":{` +
		`"total-successful-session-count":5326,"total-failure-session-count":303}}]}`)
	c := compressor{zw: (&gzipWriters{}).get()}
	gz, err := c.gzip(example)
	if err != nil {
		f.Fatal(err)
	}
	for _, seed := range [][]byte{example, gz, gz[:len(gz)/2], {0x1f, 0x8b}, []byte("PK\x03\x04rest"), {}, {0}} {
		f.Add(seed)
	}
	var g gzipWriters
	f.Fuzz(func(t *testing.T, raw []byte) {
		c := compressor{zw: g.get()}
		defer g.put(c.zw)
		stored, zipped, err := c.raw(raw)
		if err != nil {
			t.Fatalf("raw: %v", err)
		}
		back := stored
		if zipped {
			if len(stored) >= len(raw) {
				t.Errorf("compressed %d bytes to %d: should have been kept as is", len(raw), len(stored))
			}
			if back, err = gunzip("raw", stored, int64(len(raw))); err != nil {
				t.Fatalf("gunzip: %v", err)
			}
		}
		if !bytes.Equal(back, raw) {
			t.Errorf("round trip of %d bytes gave %d different bytes", len(raw), len(back))
		}
	})
}
