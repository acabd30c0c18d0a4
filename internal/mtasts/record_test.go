package mtasts_test

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/moatmail/moat/internal/mtasts"
)

const vectorsFile = "../../../shared/corpora/txt-record-vectors.tsv"

// vectorDecisions settles the _mta-sts vectors whose expectation is
// specific to one tool, by the RFC 8461 §3.1 ABNF. A new tool-specific
// vector fails the test until a decision is added here.
var vectorDecisions = map[string]bool{
	// sts-text-record ends with at most one [sts-field-delim]; a second ";"
	// must be followed by an sts-field. mox is right.
	"v=STSv1; id=a;;": false,
	// sts-field-delim = *WSP ";" *WSP allows spaces before ";". The prose
	// "records that do not begin with v=STSv1;" is about discarding other
	// TXT records; the normative ABNF accepts these. go-mtasts is right.
	"v=STSv1  ;    id=foo":              true,
	"v=STSv1  ;    id=foo; unrelated=1": true,
	// "id=bar" is a valid field; RFC 8461 §3.2 (last paragraph, "TXT
	// records and policy files"): for duplicated fields other than mx, all
	// entries except the first SHALL be ignored. checkdmarc is too strict.
	"v=STSv1; id=foo; id=bar": true,
}

func TestRecordVectors(t *testing.T) {
	t.Parallel()
	data, err := os.ReadFile(vectorsFile)
	if err != nil {
		t.Skipf("corpus vectors absent, not run: %v", err)
	}
	in := false
	n := 0
	for _, line := range strings.Split(string(data), "\n") {
		if strings.HasPrefix(line, "# ----") {
			in = strings.Contains(line, "_mta-sts TXT")
			continue
		}
		if !in || line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		cols := strings.Split(line, "\t")
		if len(cols) < 3 {
			t.Fatalf("vector line %q has %d columns", line, len(cols))
		}
		record, expect, note := cols[0], cols[1], cols[2]
		record = strings.ReplaceAll(record, "<TAB>", "\t")
		if record == "(empty)" {
			record = ""
		}
		n++
		t.Run(fmt.Sprintf("%d/%s", n, record), func(t *testing.T) {
			var want bool
			switch expect {
			case "valid":
				want = true
			case "invalid":
				want = false
			case "n/a":
				// Not an MTA-STS record at all: ParseRecord rejects it and
				// LookupRecord discards it (tested in lookup_test.go).
				want = false
			default:
				d, ok := vectorDecisions[record]
				if !ok {
					t.Fatalf("tool-specific expectation %q (%s) has no decision in vectorDecisions", expect, note)
				}
				want = d
			}
			r, err := mtasts.ParseRecord(record)
			if want != (err == nil) {
				t.Fatalf("ParseRecord(%q) = %+v, %v; want valid=%v (%s: %s)", record, r, err, want, expect, note)
			}
			if err != nil {
				var pe *mtasts.ParseError
				if !errors.As(err, &pe) || !errors.Is(err, mtasts.ErrRecordSyntax) {
					t.Fatalf("error %v is not a *ParseError wrapping ErrRecordSyntax", err)
				}
				if pe.Offset < 0 || pe.Offset > len(record) {
					t.Errorf("offset %d outside the record", pe.Offset)
				}
				return
			}
			checkRecordRoundTrip(t, r)
		})
	}
	if n == 0 {
		t.Fatal("no _mta-sts vectors found in the corpus file")
	}
}

func checkRecordRoundTrip(t *testing.T, r *mtasts.Record) {
	t.Helper()
	if !mtasts.ValidID(r.ID) || r.Version != "STSv1" {
		t.Errorf("parsed record %+v has an invalid id or version", r)
	}
	again, err := mtasts.ParseRecord(r.String())
	if err != nil {
		t.Fatalf("String() = %q does not parse: %v", r.String(), err)
	}
	if again.String() != r.String() || again.ID != r.ID || len(again.Extensions) != len(r.Extensions) {
		t.Errorf("round trip %+v -> %q -> %+v", r, r.String(), again)
	}
}

// describeRecord is the golden form of a ParseRecord result.
func describeRecord(r *mtasts.Record, err error) string {
	if err != nil {
		return "error: " + err.Error() + "\n"
	}
	return fmt.Sprintf("ok: id=%q extensions=%q\n", r.ID, r.Extensions)
}

// TestRecordFixtures parses each testdata/record/<quirk>.txt and compares
// with <quirk>.golden; a mismatch writes <quirk>.got beside it.
func TestRecordFixtures(t *testing.T) {
	t.Parallel()
	runGolden(t, "testdata/record", func(t *testing.T, in []byte) string {
		r, err := mtasts.ParseRecord(string(in))
		if err == nil {
			checkRecordRoundTrip(t, r)
		}
		return describeRecord(r, err)
	})
}

func runGolden(t *testing.T, dir string, f func(*testing.T, []byte) string) {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dir, "*.txt"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no fixtures in %s: %v", dir, err)
	}
	for _, file := range files {
		name := strings.TrimSuffix(filepath.Base(file), ".txt")
		t.Run(name, func(t *testing.T) {
			in, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			got := f(t, in)
			golden := strings.TrimSuffix(file, ".txt") + ".golden"
			want, err := os.ReadFile(golden)
			if err != nil || !bytes.Equal(want, []byte(got)) {
				gotFile := strings.TrimSuffix(file, ".txt") + ".got"
				_ = os.WriteFile(gotFile, []byte(got), 0o644)
				t.Errorf("%s: got\n%s\nwant\n%s\n(written to %s)", name, got, want, gotFile)
			}
		})
	}
}

func TestParseRecordErrorFields(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		record string
		field  string
		offset int
		value  string
	}{
		{"v=STSv1; id=test-123", "id", 16, "test-123"},
		{"v=STSv10; id=a", "v", 0, "v=STSv10"},
		{"id=a; v=STSv1", "v", 0, "id=a"},
		{"v=STSv1; id=a; test==", "test", 20, "="},
		{"v=STSv1; id=a; 1%=a", "1%", 15, "1%"},
		{"v=STSv1; id=a;;", "", 14, ""},
		{"v=STSv1; id=a ", "id", 13, " "},
		{"v=STSv1; xyz=foo", "id", 16, ""},
		{"v=STSv1;    id=foo include=foo.com", "id", 19, "include=foo.com"},
	} {
		_, err := mtasts.ParseRecord(tc.record)
		var pe *mtasts.ParseError
		if !errors.As(err, &pe) {
			t.Errorf("ParseRecord(%q) = %v, want a *ParseError", tc.record, err)
			continue
		}
		if pe.Field != tc.field || pe.Offset != tc.offset || pe.Value != tc.value {
			t.Errorf("ParseRecord(%q): field %q offset %d value %q, want %q %d %q (%v)",
				tc.record, pe.Field, pe.Offset, pe.Value, tc.field, tc.offset, tc.value, err)
		}
		for _, part := range []string{fmt.Sprint(tc.offset), pe.Reason} {
			if !strings.Contains(err.Error(), part) {
				t.Errorf("message %q lacks %q", err, part)
			}
		}
	}
}

func TestValidID(t *testing.T) {
	t.Parallel()
	for id, want := range map[string]bool{
		"a": true, "20160831085700Z": true, strings.Repeat("Z9", 16): true,
		"": false, strings.Repeat("a", 33): false, "2024-01-01": false,
		"T09:09": false, "caf\u00e9": false, "a b": false,
	} {
		if got := mtasts.ValidID(id); got != want {
			t.Errorf("ValidID(%q) = %v, want %v", id, got, want)
		}
	}
}

func TestRecordString(t *testing.T) {
	t.Parallel()
	r := &mtasts.Record{ID: "20261122T101500Z"}
	if got := r.String(); got != "v=STSv1; id=20261122T101500Z" {
		t.Errorf("String() = %q", got)
	}
	r.Extensions = []mtasts.Pair{{Key: "x", Value: "1"}}
	if got := r.String(); got != "v=STSv1; id=20261122T101500Z; x=1" {
		t.Errorf("String() = %q", got)
	}
}
