package bimi

import (
	"os"
	"testing"
)

func BenchmarkParseRecord(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ParseRecord("v=BIMI1; l=https://example.com/logo.svg; a=https://example.com/vmc.pem;"); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkCheckSVG(b *testing.B) {
	data, err := os.ReadFile("testdata/good-tiny-ps.svg")
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		if p := CheckSVG(data); len(p) != 0 {
			b.Fatal(p)
		}
	}
}
