package dkim

import "testing"

func BenchmarkParseKey2048(b *testing.B) {
	txt := "v=DKIM1; k=rsa; p=" + readKey(b, "rsa2048.spki")
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ParseKey(txt); err != nil {
			b.Fatal(err)
		}
	}
}
