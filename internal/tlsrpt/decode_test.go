package tlsrpt

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite the .golden files of testdata")

// goldenDecode is what a .golden file holds for one fixture.
type goldenDecode struct {
	Report     *Report  `json:"report,omitempty"`
	Warnings   []string `json:"warnings,omitempty"`
	Validation []string `json:"validation,omitempty"`
	Error      string   `json:"error,omitempty"`
	Path       string   `json:"path,omitempty"`
	Offset     int64    `json:"offset,omitempty"`
	TooLarge   bool     `json:"too-large,omitempty"`
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

// TestDecodeGolden decodes each fixture of testdata/decode, one per
// real-world quirk, and compares the normalized report, the warnings and
// the strict validation (or the error, for error-*.json) with its
// .golden file.
func TestDecodeGolden(t *testing.T) {
	t.Parallel()
	files, err := filepath.Glob("testdata/decode/*.json")
	if err != nil || len(files) == 0 {
		t.Fatalf("no fixtures: %v", err)
	}
	for _, file := range files {
		name := strings.TrimSuffix(filepath.Base(file), ".json")
		t.Run(name, func(t *testing.T) {
			data, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			rep, warns, err := Decode(data)
			var g goldenDecode
			wantErr := strings.HasPrefix(name, "error-")
			switch {
			case wantErr && err == nil:
				t.Fatalf("Decode succeeded; fixtures named error-* must fail")
			case !wantErr && err != nil:
				t.Fatalf("Decode: %v", err)
			case err != nil:
				var de *DecodeError
				if !errors.As(err, &de) || !errors.Is(err, ErrInvalidReport) {
					t.Fatalf("error %v is not a *DecodeError wrapping ErrInvalidReport", err)
				}
				if rep != nil || warns != nil {
					t.Errorf("Decode returned a report or warnings with its error")
				}
				g = goldenDecode{Error: err.Error(), Path: de.Path, Offset: de.Offset, TooLarge: errors.Is(err, ErrTooLarge)}
			default:
				g.Report = rep
				for _, w := range warns {
					g.Warnings = append(g.Warnings, w.String())
				}
				for _, v := range Validate(rep) {
					g.Validation = append(g.Validation, v.Error())
				}
				checkRoundTrip(t, rep)
			}
			checkGolden(t, strings.TrimSuffix(file, ".json")+".golden", marshalGolden(t, g))
		})
	}
}

// marshalGolden writes v as indented JSON without HTML escaping.
func marshalGolden(t *testing.T, v any) []byte {
	t.Helper()
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// checkRoundTrip checks that a decoded report marshals to JSON that
// decodes to the same report.
func checkRoundTrip(t testing.TB, rep *Report) {
	t.Helper()
	out, err := json.Marshal(rep)
	if err != nil {
		t.Fatalf("marshal decoded report: %v", err)
	}
	again, _, err := Decode(out)
	if err != nil {
		t.Fatalf("re-decode %s: %v", out, err)
	}
	if !reflect.DeepEqual(again, rep) {
		t.Fatalf("round trip changed the report:\nfirst  %+v\nsecond %+v\njson %s", rep, again, out)
	}
}

func TestDecodeWarningsOrder(t *testing.T) {
	t.Parallel()
	// Warnings come in document order and are the same on every run.
	data, err := os.ReadFile("testdata/decode/wrong-scalar-types.json")
	if err != nil {
		t.Fatal(err)
	}
	_, first, err := Decode(data)
	if err != nil {
		t.Fatal(err)
	}
	for range 5 {
		_, again, _ := Decode(data)
		if !reflect.DeepEqual(again, first) {
			t.Fatalf("warnings differ between runs:\n%v\n%v", first, again)
		}
	}
	if len(first) < 2 || first[0].Path != "organization-name" {
		t.Fatalf("first warning %v, want organization-name first", first)
	}
}

func TestDecodeNormalizes(t *testing.T) {
	t.Parallel()
	data := []byte(`{"organization-name":"o","date-range":{"start-datetime":"2024-03-01T02:00:00+02:00","end-datetime":"2024-03-01T23:59:59.5-01:00"},
		"contact-info":"a@b.example","report-id":"x","policies":[{"policy":{"policy-type":"sts","policy-domain":" EXAMPLE.com.. ","mx-host":[]},
		"summary":{"total-successful-session-count":1,"total-failure-session-count":1},
		"failure-details":[{"result-type":"starttls-not-supported","sending-mta-ip":"2001:DB8:0::0001","receiving-ip":"::ffff:192.0.2.1","failed-session-count":1}]}]}`)
	rep, _, err := Decode(data)
	if err != nil {
		t.Fatal(err)
	}
	if want := time.Date(2024, 3, 1, 0, 0, 0, 0, time.UTC); !rep.DateRange.Start.Equal(want) || rep.DateRange.Start.Location() != time.UTC {
		t.Errorf("start = %v, want %v in UTC", rep.DateRange.Start, want)
	}
	if want := time.Date(2024, 3, 2, 0, 59, 59, 5e8, time.UTC); !rep.DateRange.End.Equal(want) {
		t.Errorf("end = %v, want %v", rep.DateRange.End, want)
	}
	p := rep.Policies[0]
	if p.Policy.Domain != "example.com" || p.Policy.MXHost != nil || p.Policy.String != nil {
		t.Errorf("policy = %+v, want domain example.com and nil lists", p.Policy)
	}
	fd := p.FailureDetails[0]
	if fd.SendingMTAIP != "2001:db8::1" || fd.ReceivingIP != "::ffff:192.0.2.1" {
		t.Errorf("IPs = %q, %q", fd.SendingMTAIP, fd.ReceivingIP)
	}
	empty, _, err := Decode([]byte(`{"organization-name":"o","policies":[]}`))
	if err != nil {
		t.Fatal(err)
	}
	if empty.Policies == nil {
		t.Errorf("Policies is nil; want an empty slice")
	}
}

func TestDecodeLimits(t *testing.T) {
	t.Parallel()
	var b strings.Builder
	b.WriteString(`{"organization-name":"o","policies":[{"failure-details":[`)
	for i := range MaxArrayLen + 1 {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(`{}`)
	}
	b.WriteString(`]}]}`)
	_, _, err := Decode([]byte(b.String()))
	var de *DecodeError
	if !errors.As(err, &de) || !errors.Is(err, ErrTooLarge) || !errors.Is(err, ErrInvalidReport) {
		t.Fatalf("Decode of %d failure details = %v, want ErrTooLarge", MaxArrayLen+1, err)
	}
	if de.Path != "policies[0].failure-details" || de.Offset != int64(strings.Index(b.String(), `[{}`)) {
		t.Errorf("error at %s byte %d, want policies[0].failure-details at the array", de.Path, de.Offset)
	}
	// MaxArrayLen entries are fine.
	ok := strings.Replace(b.String(), `{},{}`, `{}`, 1)
	if _, _, err := Decode([]byte(ok)); err != nil {
		t.Errorf("Decode of %d failure details: %v", MaxArrayLen, err)
	}
}

func TestReportHelpers(t *testing.T) {
	t.Parallel()
	r := &Report{Policies: []PolicyResult{
		{Policy: Policy{Domain: "b.example"}, Summary: Summary{Successful: 3, Failure: 1}},
		{Policy: Policy{Domain: "a.example"}, Summary: Summary{Successful: 2}},
		{Policy: Policy{Domain: "b.example"}, Summary: Summary{Failure: 4}},
		{Policy: Policy{}, Summary: Summary{Successful: 1 << 62, Failure: 1 << 62}},
		{Policy: Policy{}, Summary: Summary{Successful: 1 << 62, Failure: -5}},
	}}
	if got := r.Domains(); !reflect.DeepEqual(got, []string{"a.example", "b.example"}) {
		t.Errorf("Domains() = %q", got)
	}
	s, f := r.Totals()
	if s != 1<<63-1 || f != 5+1<<62 {
		t.Errorf("Totals() = %d, %d; want saturated success and %d failures", s, f, 5+1<<62)
	}
	if d := (&Report{}).Domains(); d != nil {
		t.Errorf("Domains() of an empty report = %q", d)
	}
}
