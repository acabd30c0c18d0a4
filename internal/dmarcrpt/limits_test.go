package dmarcrpt

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"testing"
	"unicode/utf16"
)

func fixture(t *testing.T, name string) []byte {
	t.Helper()
	data, err := os.ReadFile("testdata/aggregate/" + name)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// TestDecodeCallbackError: an error of the callback stops the decoding
// and is returned as is.
func TestDecodeCallbackError(t *testing.T) {
	t.Parallel()
	stop := errors.New("stop")
	calls := 0
	rep, _, err := Decode(bytes.NewReader(fixture(t, "two-records-two-dkim.xml")), Options{}, func(*Record) error {
		calls++
		return stop
	})
	if err != stop || rep != nil || calls != 1 { //nolint:errorlint // returned as is
		t.Errorf("Decode = %v, %v after %d calls", rep, err, calls)
	}
}

// TestDecodeSticky: after an error, Header and Next return it again.
func TestDecodeSticky(t *testing.T) {
	t.Parallel()
	d := NewDecoder(bytes.NewReader(fixture(t, "error-count-negative.xml")), Options{})
	if _, err := d.Header(); err != nil {
		t.Fatal(err)
	}
	_, err := d.Next()
	if !errors.Is(err, ErrInvalidReport) {
		t.Fatalf("Next = %v", err)
	}
	if _, err2 := d.Next(); err2 != err { //nolint:errorlint // the same error
		t.Errorf("second Next = %v, want %v", err2, err)
	}
	if _, err2 := d.Header(); err2 != err { //nolint:errorlint // the same error
		t.Errorf("Header after the error = %v", err2)
	}
}

func TestDecodeLimits(t *testing.T) {
	t.Parallel()
	many := func(n int) []byte {
		var b bytes.Buffer
		g := newGenerator(n)
		io.Copy(&b, g)
		return b.Bytes()
	}
	t.Run("records", func(t *testing.T) {
		_, _, err := Decode(bytes.NewReader(many(5)), Options{MaxRecords: 4}, nil)
		if !errors.Is(err, ErrTooLarge) || !errors.Is(err, ErrInvalidReport) || !strings.Contains(err.Error(), "more than 4 records") {
			t.Errorf("Decode = %v", err)
		}
	})
	t.Run("token", func(t *testing.T) {
		data := bytes.Replace(fixture(t, "rfc7489-plain.xml"), []byte("receiver.example</org_name>"), []byte(strings.Repeat("x", 5000)+"</org_name>"), 1)
		_, _, err := Decode(bytes.NewReader(data), Options{MaxTokenSize: 4096}, nil)
		var de *DecodeError
		if !errors.Is(err, ErrTooLarge) || !errors.As(err, &de) || de.Offset < 4096 || de.Offset > 4500 {
			t.Errorf("Decode = %v", err)
		}
	})
	t.Run("list", func(t *testing.T) {
		dkim := "<dkim><domain>example.com</domain><result>pass</result></dkim>"
		data := bytes.Replace(fixture(t, "rfc7489-plain.xml"), []byte("<auth_results>"), []byte("<auth_results>"+strings.Repeat(dkim, 5)), 1)
		var got *Record
		_, warns, err := Decode(bytes.NewReader(data), Options{MaxListLen: 3}, func(r *Record) error { got = r; return nil })
		if err != nil || len(got.AuthResults.DKIM) != 3 || len(warns) != 3 || !strings.Contains(warns[0].Message, "more than 3 DKIM results") {
			t.Errorf("Decode = %v, %d DKIM results, warnings %v", err, len(got.AuthResults.DKIM), warns)
		}
	})
	t.Run("warnings", func(t *testing.T) {
		// Each record has an empty header_from: ten warnings of the kind,
		// then one summary; MaxWarnings bounds all kinds together.
		var b strings.Builder
		b.WriteString("<feedback><report_metadata><org_name>x</org_name><email>e</email><report_id>r</report_id><date_range><begin>1</begin><end>2</end></date_range></report_metadata><policy_published><domain>example.com</domain><p>none</p></policy_published>")
		for i := range 50 {
			fmt.Fprintf(&b, "<record><row><source_ip>192.0.2.1</source_ip><count>1</count><policy_evaluated><disposition>none</disposition><dkim>pass</dkim><spf>pass</spf></policy_evaluated></row><identifiers><header_from></header_from></identifiers><auth_results/><x%d/></record>", i)
		}
		b.WriteString("</feedback>")
		_, warns, err := Decode(strings.NewReader(b.String()), Options{MaxWarnings: 15}, nil)
		if err != nil {
			t.Fatal(err)
		}
		last := warns[len(warns)-1].Message
		if len(warns) != 17 || warns[15].Path != "feedback/record[0]/identifiers/header_from" || !strings.Contains(warns[15].Message, "40 more warnings like this one") || last != "45 more warnings left out" {
			t.Errorf("%d warnings: %v", len(warns), warns)
		}
	})
}

// TestDecodeCharsets reads UTF-16 (with a byte order mark) and
// windows-1252 input.
func TestDecodeCharsets(t *testing.T) {
	t.Parallel()
	plain := string(fixture(t, "rfc7489-plain.xml"))
	with := strings.Replace(plain, "<org_name>receiver.example</org_name>", "<org_name>Réception “€” 𝄞</org_name>", 1)
	for _, tc := range []struct {
		name string
		data []byte
		want string
	}{
		{"utf-16le", utf16Bytes(with, false), "Réception “€” 𝄞"},
		{"utf-16be", utf16Bytes(with, true), "Réception “€” 𝄞"},
		{"windows-1252", []byte(strings.Replace(strings.Replace(plain, `encoding="UTF-8"`, `encoding="windows-1252"`, 1), "receiver.example</org_name>", "R\xe9ception \x93\x80\x94</org_name>", 1)), "Réception “€”"},
		{"iso-8859-15", []byte(strings.Replace(strings.Replace(plain, `encoding="UTF-8"`, `encoding="ISO-8859-15"`, 1), "receiver.example</org_name>", "\xa4\xbd</org_name>", 1)), "€œ"},
		{"unknown encoding read as UTF-8", []byte(strings.Replace(plain, `encoding="UTF-8"`, `encoding="x-mac-roman"`, 1)), "receiver.example"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rep, warns, err := Decode(bytes.NewReader(tc.data), Options{}, nil)
			if err != nil {
				t.Fatal(err)
			}
			if rep.Metadata.OrgName != tc.want || rep.Messages != 3 {
				t.Errorf("org_name %q, %d messages; warnings %v", rep.Metadata.OrgName, rep.Messages, warns)
			}
			if strings.HasPrefix(tc.name, "unknown") != (len(warns) == 1) {
				t.Errorf("warnings %v", warns)
			}
		})
	}
}

func utf16Bytes(s string, be bool) []byte {
	out := []byte{0xff, 0xfe}
	if be {
		out = []byte{0xfe, 0xff}
	}
	for _, u := range utf16.Encode([]rune(s)) {
		if be {
			out = append(out, byte(u>>8), byte(u))
		} else {
			out = append(out, byte(u), byte(u>>8))
		}
	}
	return out
}

// TestRepairOffsets: the offsets of warnings and errors are those of the
// input, before the repairs that changed lengths.
func TestRepairOffsets(t *testing.T) {
	t.Parallel()
	in := "<feedback><report_metadata><org_name>\x91\x92 & <x</org_name></report_metadata><record><row><count>-1</count></row></record></feedback>"
	_, warns, err := Decode(strings.NewReader(in), Options{}, nil)
	var de *DecodeError
	if !errors.As(err, &de) {
		t.Fatal(err)
	}
	if want := int64(strings.Index(in, "</count>") + len("</count>")); de.Offset != want {
		t.Errorf("error at byte %d, want %d: %v", de.Offset, want, err)
	}
	var offsets []string
	for _, w := range warns {
		if i := strings.LastIndex(w.Message, "(byte"); i >= 0 {
			offsets = append(offsets, w.Message[i:])
		} else {
			t.Logf("warning without offset: %s", w)
		}
	}
	i := strings.Index(in, "\x91")
	want := []string{fmt.Sprintf("(byte %d)", i), fmt.Sprintf("(byte %d)", i+1), fmt.Sprintf("(byte %d)", i+3), fmt.Sprintf("(byte %d)", i+5)}
	if strings.Join(offsets, " ") != strings.Join(want, " ") {
		t.Errorf("warnings at %v, want %v: %v", offsets, want, warns)
	}
}
