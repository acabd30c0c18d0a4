package dmarcrpt

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the .golden files of testdata")

// goldenDecode is what a .golden file of testdata/aggregate holds.
type goldenDecode struct {
	Report   *Report   `json:"report,omitempty"`
	Records  []*Record `json:"records,omitempty"`
	Warnings []string  `json:"warnings,omitempty"`
	Error    string    `json:"error,omitempty"`
	Path     string    `json:"path,omitempty"`
	Offset   int64     `json:"offset,omitempty"`
	TooLarge bool      `json:"too_large,omitempty"`
}

// checkGolden compares got with the golden file; on a mismatch it writes
// got beside it as .got (git-ignored), or rewrites the golden with -update.
func checkGolden(t *testing.T, golden string, got []byte) {
	t.Helper()
	if *update {
		if err := os.WriteFile(golden, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	gotFile := strings.TrimSuffix(golden, ".golden") + ".got"
	if !bytes.Equal(got, want) {
		if err := os.WriteFile(gotFile, got, 0o644); err != nil {
			t.Fatal(err)
		}
		t.Errorf("%s differs from %s; compare them, and run go test -update if the new output is right", gotFile, golden)
		return
	}
	os.Remove(gotFile)
}

func marshalGolden(t *testing.T, v any) []byte {
	t.Helper()
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func warningStrings(warns []Warning) []string {
	var out []string
	for _, w := range warns {
		out = append(out, w.String())
	}
	return out
}

// decodeAll decodes data and returns what a golden file holds.
func decodeAll(t *testing.T, data []byte) goldenDecode {
	t.Helper()
	var g goldenDecode
	rep, warns, err := Decode(bytes.NewReader(data), Options{}, func(r *Record) error {
		g.Records = append(g.Records, r)
		return nil
	})
	g.Warnings = warningStrings(warns)
	if err != nil {
		var de *DecodeError
		if !errors.As(err, &de) || !errors.Is(err, ErrInvalidReport) {
			t.Fatalf("error %v is not a *DecodeError wrapping ErrInvalidReport", err)
		}
		if de.Offset < 0 || de.Offset > int64(len(data)) {
			t.Errorf("error offset %d outside the input of %d bytes", de.Offset, len(data))
		}
		g.Error, g.Path, g.Offset, g.TooLarge = err.Error(), de.Path, de.Offset, errors.Is(err, ErrTooLarge)
		g.Records = nil
		return g
	}
	if rep.Records != int64(len(g.Records)) {
		t.Errorf("Report.Records = %d, %d records decoded", rep.Records, len(g.Records))
	}
	g.Report = rep
	return g
}

// TestDecodeGolden decodes each fixture of testdata/aggregate, one per
// real-world quirk, and compares the report, records and warnings (or the
// error, for error-*.xml) with its .golden file.
func TestDecodeGolden(t *testing.T) {
	t.Parallel()
	files, err := filepath.Glob("testdata/aggregate/*.xml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no fixtures: %v", err)
	}
	for _, file := range files {
		name := strings.TrimSuffix(filepath.Base(file), ".xml")
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			data, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			g := decodeAll(t, data)
			if strings.HasPrefix(name, "error-") != (g.Error != "") {
				t.Errorf("error %q; fixtures named error-* and only they must fail", g.Error)
			}
			checkGolden(t, strings.TrimSuffix(file, ".xml")+".golden", marshalGolden(t, g))
		})
	}
}

// TestDecodeStreaming reads records one by one through Header and Next.
func TestDecodeStreaming(t *testing.T) {
	t.Parallel()
	data, err := os.ReadFile("testdata/aggregate/two-records-two-dkim.xml")
	if err != nil {
		t.Fatal(err)
	}
	d := NewDecoder(bytes.NewReader(data), Options{})
	rep, err := d.Header()
	if err != nil || rep.Metadata.ReportID != "r-two" || rep.Records != 0 {
		t.Fatalf("Header = %+v, %v", rep, err)
	}
	var counts []int64
	for {
		r, err := d.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		counts = append(counts, r.Row.Count)
	}
	if len(counts) != 2 || counts[0] != 3 || counts[1] != 0 || d.Report().Messages != 3 || d.Report().Records != 2 {
		t.Errorf("counts %v, report %+v", counts, d.Report())
	}
	if _, err := d.Next(); !errors.Is(err, io.EOF) {
		t.Errorf("Next after the end = %v", err)
	}
}
