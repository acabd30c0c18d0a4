package smtpprobe

import (
	"bufio"
	"errors"
	"io"
	"strings"
	"testing"
)

func TestReadReply(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in    string
		code  int
		lines []string
	}{
		// RFC 5321 §4.2.1 and §4.3.1 examples.
		{"220 foo.com Simple Mail Transfer Service Ready\r\n", 220, []string{"foo.com Simple Mail Transfer Service Ready"}},
		{"250-foo.com greets bar.com\r\n250-8BITMIME\r\n250-SIZE\r\n250-DSN\r\n250 HELP\r\n", 250, []string{"foo.com greets bar.com", "8BITMIME", "SIZE", "DSN", "HELP"}},
		{"220\r\n", 220, []string{""}},
		{"221 bye\n", 221, []string{"bye"}},
	}
	for _, tc := range tests {
		r, err := readReply(bufio.NewReader(strings.NewReader(tc.in)))
		if err != nil || r.code != tc.code || strings.Join(r.lines, "|") != strings.Join(tc.lines, "|") {
			t.Errorf("%q: got %+v, %v", tc.in, r, err)
		}
	}
	bad := map[string]string{
		"hello\r\n":          "malformed reply line",
		"22\r\n":             "malformed reply line",
		"120 too low\r\n":    "malformed reply line",
		"250x no sep\r\n":    "want a space",
		"250-a\r\n251 b\r\n": "code changes",
		strings.Repeat("250-x\r\n", 70) + "250 x\r\n": "longer than 64 lines",
	}
	for in, want := range bad {
		_, err := readReply(bufio.NewReader(strings.NewReader(in)))
		if !errors.Is(err, ErrProtocol) || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: got %v, want %q", clip(in), err, want)
		}
	}
	if _, err := readReply(bufio.NewReader(strings.NewReader("250-partial\r\n"))); !errors.Is(err, io.EOF) {
		t.Errorf("truncated: %v", err)
	}
}

func FuzzReadReply(f *testing.F) {
	f.Add("220 foo.com Simple Mail Transfer Service Ready\r\n")
	f.Add("250-foo.com greets bar.com\r\n250-8BITMIME\r\n250-SIZE\r\n250-DSN\r\n250 HELP\r\n")
	f.Add("220\r\n221 bye\n554-no\r\n554 no\r\n")
	f.Add("250-a\r\n251 b\r\n")
	f.Fuzz(func(t *testing.T, in string) {
		br := bufio.NewReader(strings.NewReader(in))
		for i := 0; i < 1000; i++ {
			r, err := readReply(br)
			if err != nil {
				return
			}
			if r.code < 200 || r.code > 599 || len(r.lines) == 0 || len(r.lines) > maxReplyLines {
				t.Fatalf("bad reply %+v", r)
			}
			for _, l := range r.lines {
				if len(l) > maxLine || strings.ContainsAny(l, "\n") {
					t.Fatalf("bad line %q", l)
				}
			}
		}
	})
}
