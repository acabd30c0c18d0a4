package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"filippo.io/age"

	"github.com/moatmail/moat/internal/api"
)

// TestFailureReportsCLI: failure reports are listed and shown redacted;
// --unredacted and --raw --unredacted show them whole; once the
// organization has a key, new ones are stored encrypted, shown as such,
// and decrypt opens them by id and from an exported file.
func TestFailureReportsCLI(t *testing.T) {
	t.Parallel()
	data, dir := t.TempDir(), t.TempDir()
	fixture, err := os.ReadFile("../../internal/dmarcrpt/testdata/failure/rfc7489-dmarc-failure.eml")
	if err != nil {
		t.Fatal(err)
	}
	mustMoat(t, "orgs", "create", "acme", "--data", data)
	mustMoat(t, "domains", "add", "example.com", "--mx", "mx.example.com", "--org", "acme", "--data", data)
	plainFile := filepath.Join(dir, "plain.eml")
	if err := os.WriteFile(plainFile, fixture, 0o600); err != nil {
		t.Fatal(err)
	}
	mustMoat(t, "import", "--data", data, plainFile)
	secrets := []string{"billing@example.com", "user@receiver.example", "bounce@example.com", "invoice", "Pay now"}
	noSecrets := func(what, out string) {
		t.Helper()
		for _, s := range secrets {
			if strings.Contains(out, s) {
				t.Errorf("%s shows %q:\n%s", what, s, out)
			}
		}
	}
	var list api.DMARCFailureList
	out := mustMoat(t, "reports", "dmarc", "failures", "example.com", "--json", "--data", data)
	noSecrets("failures --json", out)
	if err := json.Unmarshal([]byte(out), &list); err != nil || len(list.Failures) != 1 {
		t.Fatalf("failures --json: %s, %v", out, err)
	}
	id := itoa(list.Failures[0].ID)
	out = mustMoat(t, "reports", "dmarc", "failures", "--data", data)
	if !strings.Contains(out, "example.com") || !strings.Contains(out, "plain") || !strings.Contains(out, "192.0.2.25") {
		t.Errorf("failures:\n%s", out)
	}
	out = mustMoat(t, "reports", "dmarc", "failure", id, "--data", data)
	noSecrets("failure ID", out)
	for _, want := range []string{"b***@example.com", "[redacted]", "<***@attacker.example>", "--unredacted"} {
		if !strings.Contains(out, want) {
			t.Errorf("failure ID lacks %q:\n%s", want, out)
		}
	}
	noSecrets("failure ID --json", mustMoat(t, "reports", "dmarc", "failure", id, "--json", "--data", data))
	if code, out, errs := moat(t, "reports", "dmarc", "failure", id, "--raw", "--data", data); code == exitOK || !strings.Contains(errs, "--unredacted") {
		t.Errorf("--raw without --unredacted: exit %d\n%s%s", code, out, errs)
	}
	if out := mustMoat(t, "reports", "dmarc", "failure", id, "--raw", "--unredacted", "--data", data); out != string(fixture) {
		t.Errorf("--raw --unredacted: %.80q", out)
	}
	if out := mustMoat(t, "reports", "dmarc", "failure", id, "--unredacted", "--data", data); !strings.Contains(out, "billing@example.com") {
		t.Errorf("--unredacted:\n%s", out)
	}

	// The key.
	ident, err := age.GenerateX25519Identity()
	if err != nil {
		t.Fatal(err)
	}
	keyFile := filepath.Join(dir, "key.txt")
	if err := os.WriteFile(keyFile, []byte("# a comment\n"+ident.String()+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if code, _, errs := moat(t, "orgs", "set", "acme", "--failure-report-key", "age1nope", "--data", data); code == exitOK || !strings.Contains(errs, "age1") {
		t.Errorf("a bad key: exit %d, %s", code, errs)
	}
	mustMoat(t, "orgs", "set", "acme", "--failure-report-key", ident.Recipient().String(), "--data", data)
	second := bytes.Replace(fixture, []byte("<ruf-1@receiver.example>"), []byte("<ruf-2@receiver.example>"), 1)
	sealedFile := filepath.Join(dir, "sealed.eml")
	if err := os.WriteFile(sealedFile, second, 0o600); err != nil {
		t.Fatal(err)
	}
	mustMoat(t, "import", "--data", data, sealedFile)
	out = mustMoat(t, "reports", "dmarc", "failures", "--json", "--data", data)
	if err := json.Unmarshal([]byte(out), &list); err != nil || len(list.Failures) != 2 || list.Failures[0].SealedTo != ident.Recipient().String() {
		t.Fatalf("failures --json after the key: %s, %v", out, err)
	}
	sid := itoa(list.Failures[0].ID)
	out = mustMoat(t, "reports", "dmarc", "failure", sid, "--data", data)
	if !strings.Contains(out, "encrypted to "+ident.Recipient().String()) || !strings.Contains(out, "moat reports dmarc decrypt --identity KEYFILE "+sid) {
		t.Errorf("sealed failure ID:\n%s", out)
	}
	noSecrets("sealed failure --unredacted", mustMoat(t, "reports", "dmarc", "failure", sid, "--unredacted", "--data", data))
	cipher := mustMoat(t, "reports", "dmarc", "failure", sid, "--raw", "--data", data)
	noSecrets("sealed --raw", cipher)
	cipherFile := filepath.Join(dir, "sealed.eml.age")
	if err := os.WriteFile(cipherFile, []byte(cipher), 0o600); err != nil {
		t.Fatal(err)
	}
	if out := mustMoat(t, "reports", "dmarc", "decrypt", "--identity", keyFile, sid, "--data", data); out != string(second) {
		t.Errorf("decrypt ID: %.80q", out)
	}
	if out := mustMoat(t, "reports", "dmarc", "decrypt", "--identity", keyFile, cipherFile); out != string(second) {
		t.Errorf("decrypt FILE: %.80q", out)
	}
	other, _ := age.GenerateX25519Identity()
	otherFile := filepath.Join(dir, "other.txt")
	if err := os.WriteFile(otherFile, []byte(other.String()+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if code, _, errs := moat(t, "reports", "dmarc", "decrypt", "--identity", otherFile, cipherFile); code == exitOK || errs == "" {
		t.Errorf("decrypt with another key: exit %d, %s", code, errs)
	}
	if code, _, errs := moat(t, "reports", "dmarc", "decrypt", "--identity", keyFile, plainFile); code == exitOK || !strings.Contains(errs, "not an age-encrypted file") {
		t.Errorf("decrypt of a plain file: exit %d, %s", code, errs)
	}
	mustMoat(t, "orgs", "set", "acme", "--failure-report-key", "none", "--data", data)
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }
