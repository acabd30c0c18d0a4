package mtasts_test

import (
	"testing"

	"github.com/moatmail/moat/internal/mtasts"
)

func BenchmarkParseRecord(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if _, err := mtasts.ParseRecord("v=STSv1; id=20160831085700Z;"); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkParsePolicy(b *testing.B) {
	body := []byte("version: STSv1\r\nmode: enforce\r\nmx: mail.example.com\r\nmx: *.example.net\r\nmx: backupmx.example.com\r\nmax_age: 604800\r\n")
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := mtasts.ParsePolicy(body); err != nil {
			b.Fatal(err)
		}
	}
}

// Format and Validate run for every hosted domain when the serving
// snapshot is rebuilt.
func BenchmarkValidateFormat(b *testing.B) {
	p := &mtasts.Policy{Mode: mtasts.ModeEnforce, MX: []string{"mail.example.com", "*.example.net"}, MaxAge: 604800}
	b.ReportAllocs()
	for b.Loop() {
		if err := p.Validate(); err != nil {
			b.Fatal(err)
		}
		_ = p.Format()
	}
}

func BenchmarkMatchMX(b *testing.B) {
	p := &mtasts.Policy{MX: []string{"mail.example.com", "*.example.net", "backupmx.example.com"}}
	for b.Loop() {
		if !p.Match("BACKUPMX.example.com.") {
			b.Fatal("no match")
		}
	}
}
