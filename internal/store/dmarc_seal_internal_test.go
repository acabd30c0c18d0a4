package store

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"filippo.io/age"
)

// TestSealedFailure: on both databases, a failure report of a domain
// whose organization set a failure key is stored as age ciphertext: no
// address or subject of it is anywhere in the database's bytes (SQLite:
// the files; PostgreSQL: the text of every row of dmarc_failures and
// intake_log), the owner of the identity decrypts it whole, and a report
// of another organization's domain stays gzip.
func TestSealedFailure(t *testing.T) {
	t.Parallel()
	id, err := age.GenerateX25519Identity()
	if err != nil {
		t.Fatal(err)
	}
	secrets := []string{"jane.doe@sealed.example", "bob.private@victim.example", "Quarterly payroll for Jane", "mallory@evil.example"}
	raw := []byte("From: dmarc@reporter.example\r\nSubject: DMARC failure\r\n\r\nOriginal-Rcpt-To: bob.private@victim.example\r\n" +
		"From: jane.doe@sealed.example\r\nSubject: Quarterly payroll for Jane\r\nReturn-Path: mallory@evil.example\r\n")
	parsed := []byte(`{"original_mail_from":"mallory@evil.example","original":{"from":"jane.doe@sealed.example",` +
		`"subject":"Quarterly payroll for Jane","to":"bob.private@victim.example"}}`)
	for _, db := range testDatabases() {
		t.Run(db.name, func(t *testing.T) {
			t.Parallel()
			opts := db.opts(t)
			s := openTest(t, opts)
			ctx := t.Context()
			sealedOrg, plainOrg := &Org{Name: "sealed"}, &Org{Name: "plain"}
			for _, o := range []*Org{sealedOrg, plainOrg} {
				if err := s.CreateOrg(ctx, o); err != nil {
					t.Fatal(err)
				}
			}
			for name, org := range map[string]int64{"sealed.example": sealedOrg.ID, "plain.example": plainOrg.ID} {
				if err := s.CreateDomain(ctx, &Domain{Name: name, Mode: "testing", OrgID: org, MaxAge: 86400},
					&PolicyVersion{PolicyID: "1", Mode: "testing", Policy: "version: STSv1"}); err != nil {
					t.Fatal(err)
				}
			}
			// The key: validated, scoped.
			for _, bad := range []string{"age1nope", "AGE-SECRET-KEY-1XYZ", " " + id.Recipient().String(), "ssh-ed25519 AAAA"} {
				if err := s.Scoped(Scope{Operator: true}).SetFailureKey(ctx, sealedOrg.ID, bad); !errors.Is(err, ErrInvalidArg) {
					t.Errorf("SetFailureKey(%q) = %v, want ErrInvalidArg", bad, err)
				}
			}
			if err := s.Scoped(Scope{Orgs: []int64{plainOrg.ID}}).SetFailureKey(ctx, sealedOrg.ID, id.Recipient().String()); !errors.Is(err, ErrNotFound) {
				t.Errorf("SetFailureKey of another organization = %v, want ErrNotFound", err)
			}
			if err := s.Scoped(Scope{Orgs: []int64{sealedOrg.ID}}).SetFailureKey(ctx, sealedOrg.ID, id.Recipient().String()); err != nil {
				t.Fatal(err)
			}
			if o, err := s.Org(ctx, sealedOrg.ID); err != nil || o.FailureKey != id.Recipient().String() {
				t.Fatalf("Org = %+v, %v", o, err)
			}

			fail := func(domain string, raw, parsed []byte) *DMARCFailure {
				return &DMARCFailure{Source: "smtp", SourceDetail: "from=<dmarc@reporter.example>", Raw: raw, Status: ReportOK,
					Domain: domain, Reporter: "reporter.example", FeedbackType: "auth-failure", AuthFailure: "dmarc",
					SourceIP: "192.0.2.7", DKIMDomain: "sealed.example", DKIMSelector: "s1", Incidents: 1, Parsed: parsed}
			}
			res, err := s.InsertDMARC(ctx, DMARCBatch{Failures: []*DMARCFailure{
				fail("sealed.example", raw, parsed), fail("plain.example", []byte("From: other@plain.example\r\n\r\nx"), []byte("{}"))}})
			if err != nil {
				t.Fatal(err)
			}
			got, err := s.DMARCFailureByID(ctx, res.Failures[0].ID)
			if err != nil {
				t.Fatal(err)
			}
			if got.Sealed != id.Recipient().String() || !bytes.HasPrefix(got.Raw, []byte(SealPrefix)) || !bytes.HasPrefix(got.Parsed, []byte(SealPrefix)) {
				t.Fatalf("sealed report: Sealed %q, Raw %.40q, Parsed %.40q", got.Sealed, got.Raw, got.Parsed)
			}
			if got.SourceIP != "192.0.2.7" || got.DKIMSelector != "s1" || got.AuthFailure != "dmarc" {
				t.Errorf("indexed columns of the sealed report: %+v", got)
			}
			for what, pair := range map[string][2][]byte{"raw": {got.Raw, raw}, "parsed": {got.Parsed, parsed}} {
				plain, err := Unseal(pair[0], id)
				if err != nil || !bytes.Equal(plain, pair[1]) {
					t.Errorf("Unseal(%s) = %q, %v", what, plain, err)
				}
			}
			other, err := age.GenerateX25519Identity()
			if err != nil {
				t.Fatal(err)
			}
			if _, err := Unseal(got.Raw, other); err == nil {
				t.Error("Unseal with another identity succeeded")
			}
			plain, err := s.DMARCFailureByID(ctx, res.Failures[1].ID)
			if err != nil || plain.Sealed != "" || string(plain.Raw) != "From: other@plain.example\r\n\r\nx" {
				t.Errorf("plain report: %+v, %v", plain, err)
			}

			// The stored bytes hold none of the sealed report's secrets.
			var dump bytes.Buffer
			if opts.URL != "" {
				for _, q := range []string{`SELECT f::text FROM dmarc_failures f WHERE sealed <> ''`, `SELECT l::text FROM intake_log l`, `SELECT o::text FROM orgs o`} {
					rows, err := s.r.QueryContext(ctx, q)
					if err != nil {
						t.Fatal(err)
					}
					for rows.Next() {
						var line string
						if err := rows.Scan(&line); err != nil {
							t.Fatal(err)
						}
						dump.WriteString(line + "\n")
					}
					if err := rows.Close(); err != nil {
						t.Fatal(err)
					}
				}
				// bytea is hex in the row text: compare the decoded column too.
				var rawCol []byte
				if err := s.r.QueryRowContext(ctx, `SELECT raw FROM dmarc_failures WHERE sealed <> ''`).Scan(&rawCol); err != nil {
					t.Fatal(err)
				}
				dump.Write(rawCol)
			} else {
				if err := s.Close(); err != nil {
					t.Fatal(err)
				}
				files, _ := filepath.Glob(filepath.Join(opts.DataDir, "*"))
				for _, f := range files {
					if b, err := os.ReadFile(f); err == nil {
						dump.Write(b)
					}
				}
			}
			if dump.Len() == 0 {
				t.Fatal("no database bytes read")
			}
			for _, secret := range secrets {
				if bytes.Contains(dump.Bytes(), []byte(secret)) || bytes.Contains(bytes.ToLower(dump.Bytes()), []byte(strings.ToLower(secret))) {
					t.Errorf("the database holds %q in plain text", secret)
				}
			}
			if !bytes.Contains(dump.Bytes(), []byte("sealed.example")) {
				t.Error("the dump lacks the domain: the check reads the wrong bytes")
			}
		})
	}
}
