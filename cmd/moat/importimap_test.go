package main

import (
	"encoding/json"
	"fmt"
	"log"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
	"github.com/emersion/go-imap/v2/imapserver"
	"github.com/emersion/go-imap/v2/imapserver/imapmemserver"

	"github.com/moatmail/moat/internal/config"
)

// memIMAP starts go-imap's in-memory server on 127.0.0.1 with one user
// and returns its address. (The IMAP intake itself is tested against
// Dovecot in internal/imapintake; this is the command's wiring.)
func memIMAP(t *testing.T, user, password string) string {
	t.Helper()
	mem := imapmemserver.New()
	u := imapmemserver.NewUser(user, password)
	if err := u.Create("INBOX", nil); err != nil {
		t.Fatal(err)
	}
	mem.AddUser(u)
	srv := imapserver.New(&imapserver.Options{
		NewSession: func(*imapserver.Conn) (imapserver.Session, *imapserver.GreetingData, error) {
			return mem.NewSession(), nil, nil
		},
		Caps:         imap.CapSet{imap.CapIMAP4rev1: {}, imap.CapIMAP4rev2: {}},
		InsecureAuth: true,
		Logger:       log.New(t.Output(), "imapmemserver: ", 0),
	})
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(func() { _ = srv.Close() })
	return l.Addr().String()
}

func imapClient(t *testing.T, addr, user, password string) *imapclient.Client {
	t.Helper()
	c, err := imapclient.DialInsecure(addr, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	if err := c.Login(user, password).Wait(); err != nil {
		t.Fatal(err)
	}
	return c
}

func appendMail(t *testing.T, c *imapclient.Client, msg string) {
	t.Helper()
	msg = strings.ReplaceAll(msg, "\n", "\r\n")
	cmd := c.Append("INBOX", int64(len(msg)), nil)
	if _, err := cmd.Write([]byte(msg)); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := cmd.Wait(); err != nil {
		t.Fatal(err)
	}
}

func folderSize(t *testing.T, c *imapclient.Client, folder string) uint32 {
	t.Helper()
	st, err := c.Status(folder, &imap.StatusOptions{NumMessages: true}).Wait()
	if err != nil {
		return 0
	}
	return *st.NumMessages
}

func reportMailText(id string) string {
	return fmt.Sprintf(`From: r@sender.example
To: tlsrpt@reports.example.net
Subject: Report Domain: customer.example Submitter: sender.example Report-ID: <%[1]s>
Message-ID: <%[1]s@sender.example>
MIME-Version: 1.0
Content-Type: multipart/report; report-type=tlsrpt; boundary="B"

--B
Content-Type: text/plain

A report.
--B
Content-Type: application/tlsrpt+json

{"organization-name":"Sender","date-range":{"start-datetime":"2026-03-01T00:00:00Z","end-datetime":"2026-03-01T23:59:59Z"},"contact-info":"tlsrpt@sender.example","report-id":%[1]q,"policies":[{"policy":{"policy-type":"no-policy-found","policy-domain":"customer.example"},"summary":{"total-successful-session-count":3,"total-failure-session-count":0}}]}
--B--
`, id)
}

func TestImportIMAPCLI(t *testing.T) {
	t.Parallel()
	addr := memIMAP(t, "reports", "pw")
	c := imapClient(t, addr, "reports", "pw")
	appendMail(t, c, reportMailText("r1"))
	appendMail(t, c, reportMailText("r2"))
	appendMail(t, c, "From: a@b.example\nSubject: hi\n\nno report\n")
	data := t.TempDir()
	url := fmt.Sprintf("imap://reports:pw@%s/INBOX", addr)

	out := mustMoat(t, "import", "--json", "--data", data, "--processed-folder", "Reports/Done", "--failed-folder", "Reports/Bad", url)
	var imp importJSON
	if err := json.Unmarshal([]byte(out), &imp); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if len(imp.Mailboxes) != 1 {
		t.Fatalf("import --json: %s", out)
	}
	m := imp.Mailboxes[0]
	if m.Mailbox != fmt.Sprintf("imap://reports@%s/INBOX", addr) || m.Messages != 3 || m.Reports != 2 || m.Processed != 2 ||
		m.Failed != 1 || len(m.NotReports) != 1 || len(m.Errors) != 0 || m.Error != "" {
		t.Errorf("import --json: %+v", m)
	}
	if strings.Contains(out, ":pw@") {
		t.Errorf("the output shows the password: %s", out)
	}
	if n, p, f := folderSize(t, c, "INBOX"), folderSize(t, c, "Reports/Done"), folderSize(t, c, "Reports/Bad"); n != 0 || p != 2 || f != 1 {
		t.Errorf("folders: inbox %d, done %d, bad %d; want 0, 2, 1", n, p, f)
	}

	// The same report delivered again: a duplicate, nothing stored twice.
	appendMail(t, c, reportMailText("r1"))
	out = mustMoat(t, "import", "--data", data, url)
	want := fmt.Sprintf("mailbox imap://reports@%s/INBOX: messages 1, reports stored 0 (invalid, kept: 0), duplicates 1, not reports 0, errors 0\n", addr)
	if out != want {
		t.Errorf("import: %q, want %q", out, want)
	}
	if folderSize(t, c, config.DefaultIMAPProcessed) != 1 {
		t.Errorf("the duplicate was not moved to %s", config.DefaultIMAPProcessed)
	}

	// No password, a wrong one: exit 1, saying why.
	if os.Getenv("MOAT_IMAP_PASSWORD") == "" {
		code, _, errs := moat(t, "import", "--data", data, fmt.Sprintf("imap://reports@%s/INBOX", addr))
		if code != exitError || !strings.Contains(errs, "MOAT_IMAP_PASSWORD") {
			t.Errorf("no password: exit %d, %q", code, errs)
		}
	}
	code, _, errs := moat(t, "import", "--data", data, fmt.Sprintf("imap://reports:wrong@%s/INBOX", addr))
	if code != exitError || !strings.Contains(errs, "login refused") || strings.Contains(errs, "wrong") {
		t.Errorf("wrong password: exit %d, %q", code, errs)
	}
}

func TestConfigShowHidesIMAPPasswords(t *testing.T) {
	t.Parallel()
	file := filepath.Join(t.TempDir(), "moat.yaml")
	yaml := "intake:\n  imap:\n    - url: imaps://u:topsecret@imap.example.net/INBOX\n    - url: imap://v@127.0.0.1:1143/R?starttls=1\n      password: alsosecret\n"
	if err := os.WriteFile(file, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{{"config", "show", "--config", file}, {"config", "show", "--json", "--config", file}} {
		out := mustMoat(t, args...)
		if strings.Contains(out, "topsecret") || strings.Contains(out, "alsosecret") || !strings.Contains(out, "imap.example.net") {
			t.Errorf("%v:\n%s", args, out)
		}
	}
}
