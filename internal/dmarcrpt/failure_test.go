package dmarcrpt

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// goldenFailure is what a .golden file of testdata/failure holds.
type goldenFailure struct {
	Report   *FailureReport `json:"report,omitempty"`
	Warnings []string       `json:"warnings,omitempty"`
	Error    string         `json:"error,omitempty"`
}

func parseFailureGolden(t *testing.T, data []byte) goldenFailure {
	t.Helper()
	rep, warns, err := ParseFailure(data, FailureOptions{})
	g := goldenFailure{Report: rep, Warnings: warningStrings(warns)}
	if err != nil {
		if !errors.Is(err, ErrNotFailureReport) && !errors.Is(err, ErrTooLarge) {
			t.Errorf("ParseFailure error %v wraps neither ErrNotFailureReport nor ErrTooLarge", err)
		}
		if rep != nil {
			t.Error("a report with an error")
		}
		g.Error = err.Error()
	}
	return g
}

// TestFailureGolden parses each failure report of testdata/failure, one
// quirk each, and compares the report and warnings (or the error) with
// its .golden file.
func TestFailureGolden(t *testing.T) {
	t.Parallel()
	files, err := filepath.Glob("testdata/failure/*.eml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no fixtures: %v", err)
	}
	for _, file := range files {
		name := strings.TrimSuffix(filepath.Base(file), ".eml")
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			data, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			g := parseFailureGolden(t, data)
			if strings.HasPrefix(name, "error-") != (g.Error != "") {
				t.Errorf("error %q; fixtures named error-* and only they must fail", g.Error)
			}
			checkGolden(t, strings.TrimSuffix(file, ".eml")+".golden", marshalGolden(t, g))
		})
	}
}

// TestFailureLineEnds: the CRLF and LF copies of a report parse alike.
func TestFailureLineEnds(t *testing.T) {
	t.Parallel()
	crlf, err := os.ReadFile("testdata/failure/rfc7489-dmarc-failure.eml")
	if err != nil {
		t.Fatal(err)
	}
	lf, err := os.ReadFile("testdata/failure/lf-line-ends.eml")
	if err != nil {
		t.Fatal(err)
	}
	a, b := parseFailureGolden(t, crlf), parseFailureGolden(t, lf)
	if string(marshalGolden(t, a)) != string(marshalGolden(t, b)) {
		t.Errorf("CRLF and LF copies differ:\n%s\n%s", marshalGolden(t, a), marshalGolden(t, b))
	}
	if _, _, err := ParseFailure(crlf, FailureOptions{MaxSize: 100}); !errors.Is(err, ErrTooLarge) {
		t.Errorf("ParseFailure over MaxSize = %v", err)
	}
}
