package dmarcrpt

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/moatmail/moat/internal/corpora"
)

// addSeeds adds the files matching each pattern as seeds: our fixtures,
// the RFC 9990 examples (../specs beside the corpora) and the corpora
// themselves when they are there.
func addSeeds(f *testing.F, patterns ...string) {
	dir, _ := corpora.Dir()
	for _, p := range patterns {
		if dir == "" && filepath.IsAbs(p) {
			continue
		}
		p = os.Expand(p, func(string) string { return dir })
		files, _ := filepath.Glob(p)
		for _, file := range files {
			if data, err := os.ReadFile(file); err == nil && len(data) < 1<<20 {
				f.Add(data)
			}
		}
	}
}

// fuzzOptions keep each input small in time and memory.
var fuzzOptions = Options{MaxTokenSize: 4 << 10, MaxRecords: 1000, MaxListLen: 20, MaxWarnings: 50}

func FuzzDecode(f *testing.F) {
	addSeeds(f, "testdata/aggregate/*.xml", "$C/../specs/dmarcbis/*.xml", "$C/*/samples/aggregate/*.xml", "$C/*/resources/dmarc-feedback/*.xml", "$C/*/testdata/dmarc-reports/*.xml")
	f.Add([]byte(`<feedback><record><row><count>1</count></row></record></feedback>`))
	f.Add([]byte("\xff\xfe<\x00f\x00e\x00e\x00d\x00b\x00a\x00c\x00k\x00/\x00>\x00"))
	f.Fuzz(func(t *testing.T, data []byte) {
		var n, sum int64
		rep, warns, err := Decode(bytes.NewReader(data), fuzzOptions, func(r *Record) error {
			if r.Row.Count < 0 || r.Index != n {
				t.Fatalf("record %d: index %d, count %d", n, r.Index, r.Row.Count)
			}
			n++
			sum += r.Row.Count
			return nil
		})
		if errors.Is(err, errInternal) {
			t.Fatalf("Decode panicked: %v", err)
		}
		for _, w := range warns {
			if w.Message == "" {
				t.Fatalf("empty warning %+v", w)
			}
		}
		if len(warns) > 3*fuzzOptions.MaxWarnings+1 {
			t.Fatalf("%d warnings", len(warns))
		}
		if err != nil {
			var de *DecodeError
			if !errors.As(err, &de) || !errors.Is(err, ErrInvalidReport) || de.Offset < 0 || de.Offset > 4*int64(len(data))+16 {
				t.Fatalf("Decode error %#v is not a well-formed *DecodeError", err)
			}
			return
		}
		if rep.Records != n || rep.Messages != sum {
			t.Fatalf("report says %d records, %d messages; the callback saw %d, %d", rep.Records, rep.Messages, n, sum)
		}
	})
}

func FuzzExtract(f *testing.F) {
	addSeeds(f, "testdata/extract/*[a-z]", "$C/*/samples/aggregate/*.eml", "$C/mox/testdata/dmarc-reports/*.eml", "$C/*/resources/dmarc-feedback/*.eml")
	f.Fuzz(func(t *testing.T, data []byte) {
		in, err := Extract(data, ExtractOptions{MaxDecompressed: 1 << 16})
		if errors.Is(err, errInternal) {
			t.Fatalf("Extract panicked: %v", err)
		}
		if err != nil {
			if !errors.Is(err, ErrNoReport) && !errors.Is(err, ErrTooLarge) {
				t.Fatalf("Extract error %v wraps neither ErrNoReport nor ErrTooLarge", err)
			}
			return
		}
		if len(in.Sources) == 0 {
			t.Fatal("no sources and no error")
		}
		for _, s := range in.Sources {
			if len(s.Data) > len(data) {
				t.Fatalf("a source of %d bytes from an input of %d", len(s.Data), len(data))
			}
			st, err := s.Open()
			if err != nil {
				if !errors.Is(err, ErrInvalidReport) && !errors.Is(err, ErrTooLarge) {
					t.Fatalf("Open error %v wraps neither ErrInvalidReport nor ErrTooLarge", err)
				}
				continue
			}
			n, err := io.Copy(io.Discard, st)
			if n > 1<<16 {
				t.Fatalf("%d bytes decompressed, more than the bound", n)
			}
			if err != nil && !errors.Is(err, errCorrupt) && !errors.Is(err, ErrTooLarge) {
				t.Fatalf("Read error %v wraps neither errCorrupt nor ErrTooLarge", err)
			}
		}
	})
}

func FuzzParseFailure(f *testing.F) {
	addSeeds(f, "testdata/failure/*.eml", "$C/*/samples/failure/*.eml", "$C/*/resources/arf/*.eml")
	f.Fuzz(func(t *testing.T, data []byte) {
		rep, warns, err := ParseFailure(data, FailureOptions{MaxSize: 1 << 20})
		if errors.Is(err, errInternal) {
			t.Fatalf("ParseFailure panicked: %v", err)
		}
		if err != nil {
			if rep != nil || !errors.Is(err, ErrNotFailureReport) && !errors.Is(err, ErrTooLarge) {
				t.Fatalf("ParseFailure = %v, %v", rep, err)
			}
			return
		}
		if rep.FeedbackType != "auth-failure" || rep.Incidents < 1 {
			t.Fatalf("Feedback-Type %q, Incidents %d", rep.FeedbackType, rep.Incidents)
		}
		for _, w := range warns {
			if w.Path == "" || w.Message == "" {
				t.Fatalf("empty warning %+v", w)
			}
		}
	})
}
