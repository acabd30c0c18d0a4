package config

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func TestParseIMAPURL(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in   string
		want IMAPURL
		err  string
	}{
		{in: "imaps://tlsrpt@imap.example.net/INBOX", want: IMAPURL{TLS: true, Host: "imap.example.net", Port: "993", User: "tlsrpt", Folder: "INBOX"}},
		{in: "imap://u:p%40ss@127.0.0.1:1143/Reports/TLS?starttls=1", want: IMAPURL{StartTLS: true, Host: "127.0.0.1", Port: "1143", User: "u", Password: "p@ss", Folder: "Reports/TLS"}},
		{in: "imap://u@[::1]", want: IMAPURL{Host: "::1", Port: "143", User: "u", Folder: "INBOX"}},
		{in: "imaps://tlsrpt@example.net@imap.example.net/", want: IMAPURL{TLS: true, Host: "imap.example.net", Port: "993", User: "tlsrpt@example.net", Folder: "INBOX"}},
		{in: "imap://u@h/INBOX?starttls=0", want: IMAPURL{Host: "h", Port: "143", User: "u", Folder: "INBOX"}},
		{in: "pop3://u@h/INBOX", err: "want imap:// or imaps://"},
		{in: "imap:u@h", err: "no host"},
		{in: "imap://h/INBOX", err: "no user"},
		{in: "imap://u@h:0/INBOX", err: "port"},
		{in: "imap://u@h:99999/INBOX", err: "port"},
		{in: "imaps://u@h/INBOX?starttls=1", err: "imaps is TLS from the start"},
		{in: "imap://u@h/INBOX?tls=1", err: `unknown parameter "tls"`},
		{in: "imap://u@h/INBOX?starttls=maybe", err: "want 1 or 0"},
		{in: "imap://u@h/a//b", err: "empty level"},
		{in: "imap://u@h/a/%2A", err: "wildcards"},
		{in: "imap://u@h/INBOX#x", err: "fragment"},
		{in: "imap://u@h/a%0Ab", err: "control"},
	}
	for _, tt := range tests {
		got, err := ParseIMAPURL(tt.in)
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("%s: err %v, want one saying %q", tt.in, err, tt.err)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("%s: %+v, %v; want %+v", tt.in, got, err, tt.want)
		}
	}
	u, _ := ParseIMAPURL("imap://u:secret@h:1143/Reports/TLS?starttls=1")
	if s := u.String(); s != "imap://u@h:1143/Reports/TLS?starttls=1" || strings.Contains(s, "secret") {
		t.Errorf("String() = %q, want the URL without the password", s)
	}
}

func TestIMAPConfig(t *testing.T) {
	t.Parallel()
	pwFile := writeFile(t, "secret\n")
	c, err := Load(Source{File: writeFile(t, `
intake:
  imap:
    - url: imaps://tlsrpt@imap.example.net/INBOX
      password_file: `+pwFile+`
    - url: imap://dmarc:pw@127.0.0.1:1143/Reports?starttls=1
      processed_folder: Reports/Done
      failed_folder: Reports/Bad
      poll_interval: 30s
`)})
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Intake.IMAP) != 2 {
		t.Fatalf("intake.imap = %+v", c.Intake.IMAP)
	}
	a, b := c.Intake.IMAP[0], c.Intake.IMAP[1]
	if a.ProcessedFolder != DefaultIMAPProcessed || a.FailedFolder != DefaultIMAPFailed || a.PollInterval != DefaultIMAPPollInterval {
		t.Errorf("defaults not applied: %+v", a)
	}
	if b.ProcessedFolder != "Reports/Done" || b.FailedFolder != "Reports/Bad" || b.PollInterval != 30*time.Second {
		t.Errorf("settings not kept: %+v", b)
	}
	r := c.RedactedIMAP()
	if strings.Contains(r[1].URL, "pw@") || c.Intake.IMAP[1].URL != "imap://dmarc:pw@127.0.0.1:1143/Reports?starttls=1" {
		t.Errorf("redacted %q, original %q", r[1].URL, c.Intake.IMAP[1].URL)
	}

	for _, tt := range []struct{ yaml, field string }{
		{"- url: ftp://u@h/INBOX", "intake.imap[0].url"},
		{"- url: imap://u@h/INBOX\n  processed_folder: INBOX", "intake.imap[0].processed_folder"},
		{"- url: imap://u@h/INBOX\n  failed_folder: Moat/Processed", "intake.imap[0].failed_folder"},
		{"- url: imap://u@h/INBOX\n  failed_folder: a//b", "intake.imap[0].failed_folder"},
		{"- url: imap://u:p@h/INBOX\n  password: q", "intake.imap[0].password"},
		{"- url: imap://u@h/INBOX\n  password_file: /nonexistent/pw", "intake.imap[0].password_file"},
		{"- url: imap://u@h/INBOX\n  ca_file: /nonexistent/ca.pem", "intake.imap[0].ca_file"},
		{"- url: imap://u@h/INBOX\n  poll_interval: 100ms", "intake.imap[0].poll_interval"},
		{"- url: imap://u@h/INBOX\n- url: imap://u:pw@h:143/INBOX", "intake.imap[1].url"},
	} {
		text := "intake:\n  imap:\n" + indent(tt.yaml, "    ")
		_, err := Load(Source{File: writeFile(t, text)})
		var fe *FieldError
		if !errors.As(err, &fe) || fe.Field != tt.field || !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: err %v, want a FieldError naming %s", tt.yaml, err, tt.field)
		}
		if err != nil && strings.Contains(err.Error(), ":p@") {
			t.Errorf("%s: the error shows the password: %v", tt.yaml, err)
		}
	}
}

func indent(s, prefix string) string {
	lines := strings.Split(s, "\n")
	for i, l := range lines {
		lines[i] = prefix + l
	}
	return strings.Join(lines, "\n") + "\n"
}
