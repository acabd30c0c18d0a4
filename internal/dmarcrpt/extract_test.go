package dmarcrpt

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// goldenExtract is what a .golden file of testdata/extract holds.
type goldenExtract struct {
	Mail     *MailInfo      `json:"mail,omitempty"`
	Warnings []string       `json:"warnings,omitempty"`
	Sources  []goldenSource `json:"sources,omitempty"`
	Error    string         `json:"error,omitempty"`
}

type goldenSource struct {
	Part           string   `json:"part,omitempty"`
	MediaType      string   `json:"media_type,omitempty"`
	Filename       string   `json:"filename,omitempty"`
	Kind           string   `json:"kind"`
	Format         string   `json:"format,omitempty"`
	StreamWarnings []string `json:"stream_warnings,omitempty"`
	ReportID       string   `json:"report_id,omitempty"`
	Records        int64    `json:"records,omitempty"`
	Messages       int64    `json:"messages,omitempty"`
	DecodeWarnings []string `json:"decode_warnings,omitempty"`
	Error          string   `json:"error,omitempty"`
}

// extractAll runs Extract on data and decodes every source found.
func extractAll(t *testing.T, data []byte, opts ExtractOptions) goldenExtract {
	t.Helper()
	var g goldenExtract
	in, err := Extract(data, opts)
	if err != nil {
		if !errors.Is(err, ErrNoReport) && !errors.Is(err, ErrTooLarge) {
			t.Errorf("Extract error %v wraps neither ErrNoReport nor ErrTooLarge", err)
		}
		g.Error = err.Error()
		return g
	}
	if len(in.Sources) == 0 {
		t.Fatal("no sources and no error")
	}
	g.Mail, g.Warnings = in.Mail, warningStrings(in.Warnings)
	for _, s := range in.Sources {
		gs := goldenSource{Part: s.Part, MediaType: s.MediaType, Filename: s.Filename, Kind: s.Kind}
		st, err := s.Open()
		if err != nil {
			gs.Error = err.Error()
			g.Sources = append(g.Sources, gs)
			continue
		}
		rep, warns, err := Decode(st, Options{}, nil)
		gs.Format, gs.StreamWarnings, gs.DecodeWarnings = st.Format(), warningStrings(st.Warnings()), warningStrings(warns)
		if err != nil {
			gs.Error = err.Error()
		} else {
			gs.ReportID, gs.Records, gs.Messages = rep.Metadata.ReportID, rep.Records, rep.Messages
		}
		g.Sources = append(g.Sources, gs)
	}
	return g
}

// TestExtractGolden runs Extract over each input shape of
// testdata/extract (files, bodies and mails, one quirk each) and decodes
// what it finds, with MaxDecompressed at 1 MiB so that the bomb fixture
// is refused.
func TestExtractGolden(t *testing.T) {
	t.Parallel()
	files, err := filepath.Glob("testdata/extract/*")
	if err != nil || len(files) == 0 {
		t.Fatalf("no fixtures: %v", err)
	}
	for _, file := range files {
		if strings.HasSuffix(file, ".golden") || strings.HasSuffix(file, ".got") {
			continue
		}
		name := filepath.Base(file)
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			data, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			g := extractAll(t, data, ExtractOptions{MaxDecompressed: 1 << 20})
			failed := g.Error != ""
			for _, s := range g.Sources {
				failed = failed || s.Error != ""
			}
			if strings.HasPrefix(name, "error-") != failed {
				t.Errorf("failed = %v; fixtures named error-* and only they must fail: %+v", failed, g)
			}
			checkGolden(t, file+".golden", marshalGolden(t, g))
		})
	}
}

func TestExtractLimits(t *testing.T) {
	t.Parallel()
	data, err := os.ReadFile("testdata/extract/gzip.xml.gz")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Extract(data, ExtractOptions{MaxCompressed: 100}); !errors.Is(err, ErrTooLarge) || !strings.Contains(err.Error(), "exceeds 100 bytes") {
		t.Errorf("Extract of an input over MaxCompressed = %v", err)
	}
	in, err := Extract(data, ExtractOptions{MaxDecompressed: 100})
	if err != nil {
		t.Fatal(err)
	}
	st, err := in.Sources[0].Open()
	if err != nil {
		t.Fatal(err)
	}
	_, _, err = Decode(st, Options{}, nil)
	var de *DecodeError
	if !errors.Is(err, ErrTooLarge) || !errors.As(err, &de) || !strings.Contains(err.Error(), "decompressed size exceeds 100 bytes") {
		t.Errorf("Decode of a source over MaxDecompressed = %v", err)
	}
}

// TestExtractHead: with ExtractOptions.Head the sources are those of a
// whole read, each cut to its first bytes, and a cut source is not opened.
func TestExtractHead(t *testing.T) {
	t.Parallel()
	for _, name := range []string{"gzip.xml.gz", "mail-multipart-mixed-gzip.eml", "mail-forwarded-message-rfc822.eml", "mail-base64-without-padding-and-garbage.eml"} {
		data, err := os.ReadFile(filepath.Join("testdata/extract", name))
		if err != nil {
			t.Fatal(err)
		}
		whole, err := Extract(data, ExtractOptions{})
		if err != nil {
			t.Fatal(err)
		}
		in, err := Extract(data, ExtractOptions{Head: 16})
		if err != nil || len(in.Sources) != len(whole.Sources) {
			t.Fatalf("%s: Extract with Head: %v, %d sources; want %d", name, err, len(in.Sources), len(whole.Sources))
		}
		if in.Mail != nil {
			t.Errorf("%s: Extract with Head read the mail's header fields: %+v", name, in.Mail)
		}
		for i, src := range in.Sources {
			w := whole.Sources[i]
			if src.Part != w.Part || src.Kind != w.Kind || len(src.Data) != min(16, len(w.Data)) ||
				!bytes.HasPrefix(w.Data, src.Data) || src.Cut != (len(w.Data) > 16) {
				t.Errorf("%s source %d: part %q kind %q %d bytes cut %v; whole: part %q kind %q %d bytes",
					name, i, src.Part, src.Kind, len(src.Data), src.Cut, w.Part, w.Kind, len(w.Data))
			}
			if _, err := src.Open(); src.Cut && !errors.Is(err, ErrInvalidReport) {
				t.Errorf("%s: Open of a cut source = %v, want ErrInvalidReport", name, err)
			}
		}
	}
}
