package dkim

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/moatmail/moat/internal/dnsname"
	"github.com/moatmail/moat/internal/dnstest"
)

// readKey returns the base64 public key of testdata/<name>.b64; the
// files were made with openssl genpkey | openssl pkey -pubout -outform DER.
func readKey(t testing.TB, name string) string {
	t.Helper()
	b, err := os.ReadFile("testdata/" + name + ".b64")
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}

func TestParseKeyRSASizes(t *testing.T) {
	t.Parallel()
	for _, bits := range []int{512, 1024, 2048, 4096} {
		p := readKey(t, "rsa"+strconv.Itoa(bits)+".spki")
		k, err := ParseKey("v=DKIM1; k=rsa; p=" + p)
		if err != nil {
			t.Fatalf("%d bits: %v", bits, err)
		}
		if k.Bits != bits || k.KeyType != "rsa" || k.Version != "DKIM1" || k.Revoked {
			t.Errorf("%d bits: got %+v", bits, k)
		}
		if _, ok := k.Public.(*rsa.PublicKey); !ok {
			t.Errorf("%d bits: Public is %T", bits, k.Public)
		}
		if len(k.Warnings) != 0 {
			t.Errorf("%d bits: warnings %q", bits, k.Warnings)
		}
	}
}

func TestParseKeyGeneratedForms(t *testing.T) {
	t.Parallel()
	priv, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	spki, err := x509.MarshalPKIXPublicKey(&priv.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	pkcs1 := x509.MarshalPKCS1PublicKey(&priv.PublicKey)
	for name, der := range map[string][]byte{"spki": spki, "pkcs1": pkcs1} {
		b64 := base64.StdEncoding.EncodeToString(der)
		// RFC 6376 §3.6.1: the p= value may be folded with white space.
		folded := b64[:40] + " \r\n\t" + b64[40:]
		k, err := ParseKey("k=rsa;\r\n p=" + folded + ";")
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if k.Bits != 1024 || !k.Public.(*rsa.PublicKey).Equal(&priv.PublicKey) {
			t.Errorf("%s: wrong key %+v", name, k)
		}
		if warned := len(k.Warnings) > 0; warned != (name == "pkcs1") {
			t.Errorf("%s: warnings %q", name, k.Warnings)
		}
	}

	pub, _, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	k, err := ParseKey("v=DKIM1; k=ed25519; p=" + base64.StdEncoding.EncodeToString(pub))
	if err != nil {
		t.Fatal(err)
	}
	if k.KeyType != "ed25519" || k.Bits != 256 || !k.Public.(ed25519.PublicKey).Equal(pub) {
		t.Errorf("ed25519: got %+v", k)
	}
}

func TestParseKeyFields(t *testing.T) {
	t.Parallel()
	p := readKey(t, "rsa2048.spki")
	tests := []struct {
		name, txt string
		check     func(*Key) bool
		warn      string // substring of a warning, "" for none
	}{
		{"no version", "p=" + p, func(k *Key) bool { return k.Version == "" && k.KeyType == "rsa" && k.Bits == 2048 }, ""},
		{"revoked", "v=DKIM1; p=", func(k *Key) bool { return k.Revoked && k.Public == nil && k.Bits == 0 }, ""},
		{"revoked ed25519", "v=DKIM1; k=ed25519; p=;", func(k *Key) bool { return k.Revoked && k.KeyType == "ed25519" }, ""},
		{"testing", "v=DKIM1; t=y; p=" + p, func(k *Key) bool { return k.Testing && !k.Strict }, ""},
		{"testing strict", "v=DKIM1; t=y:s; p=" + p, func(k *Key) bool { return k.Testing && k.Strict }, ""},
		{"unknown flag", "t=s:x; p=" + p, func(k *Key) bool { return k.Strict && !k.Testing }, `unknown flag "x"`},
		{"hashes", "h=sha256; p=" + p, func(k *Key) bool { return slices.Equal(k.Hashes, []string{"sha256"}) }, ""},
		{"sha1 only", "h=sha1; p=" + p, func(k *Key) bool { return slices.Equal(k.Hashes, []string{"sha1"}) }, "RFC 8301"},
		{"sha1 and sha256", "h=sha1:sha256; p=" + p, func(k *Key) bool { return len(k.Hashes) == 2 }, "MUST NOT"},
		{"unknown hash only", "h=md5; p=" + p, func(k *Key) bool { return true }, "no algorithm"},
		{"services", "s=email; p=" + p, func(k *Key) bool { return slices.Equal(k.Services, []string{"email"}) }, ""},
		{"services no email", "s=tlsrpt; p=" + p, func(k *Key) bool { return true }, "does not include email"},
		{"notes", "n=rotated 2026; p=" + p, func(k *Key) bool { return k.Notes == "rotated 2026" }, ""},
		{"unknown tag", "v=DKIM1; x=whatever; p=" + p, func(k *Key) bool { return k.Bits == 2048 }, ""},
		{"upper-case key type", "k=RSA; p=" + p, func(k *Key) bool { return k.KeyType == "rsa" }, "case-sensitive"},
		{"double semicolon", "v=DKIM1;; p=" + p, func(k *Key) bool { return k.Bits == 2048 }, "empty tag-spec"},
	}
	for _, tc := range tests {
		k, err := ParseKey(tc.txt)
		if err != nil {
			t.Errorf("%s: %v", tc.name, err)
			continue
		}
		if !tc.check(k) {
			t.Errorf("%s: unexpected %+v", tc.name, k)
		}
		joined := strings.Join(k.Warnings, "\n")
		if tc.warn == "" && joined != "" || !strings.Contains(joined, tc.warn) {
			t.Errorf("%s: warnings %q, want %q", tc.name, k.Warnings, tc.warn)
		}
	}
}

func TestParseKeyErrors(t *testing.T) {
	t.Parallel()
	p := readKey(t, "rsa2048.spki")
	tests := []struct {
		name, txt, tag, reason string
	}{
		{"empty", "", "", "empty record"},
		{"only spaces", "  ; ", "", "empty record"},
		{"no p", "v=DKIM1; k=rsa", "p", "missing p="},
		{"upper-case P", "v=DKIM1; P=" + p, "p", `"P=" is not "p="`},
		{"version not first", "k=rsa; v=DKIM1; p=" + p, "v", "first tag"},
		{"bad version", "v=DKIM2; p=" + p, "v", "DKIM1"},
		{"unknown key type", "k=dsa; p=" + p, "k", "unknown key type"},
		{"not base64", "p=@@@@", "p", "not base64"},
		{"base64 of junk", "p=" + base64.StdEncoding.EncodeToString([]byte("junk junk junk")), "p", "SubjectPublicKeyInfo nor an RSAPublicKey"},
		{"ecdsa key", "p=" + readKey(t, "p256.spki"), "p", "k=rsa but the key is"},
		{"ed25519 as rsa", "k=rsa; p=" + readKey(t, "ed25519.spki"), "p", "k=ed25519"},
		{"ed25519 spki", "k=ed25519; p=" + readKey(t, "ed25519.spki"), "p", "SubjectPublicKeyInfo"},
		{"ed25519 short", "k=ed25519; p=" + base64.StdEncoding.EncodeToString(make([]byte, 31)), "p", "31 bytes"},
		{"duplicate", "p=; p=" + p, "p", "duplicate"},
		{"no equals", "v=DKIM1; junk; p=", "", "no \"=\""},
		{"bad tag name", "v=DKIM1; 1x=2; p=", "1x", "invalid tag name"},
		{"control char", "v=DKIM1; n=a\x00b; p=", "n", "control character"},
	}
	for _, tc := range tests {
		k, err := ParseKey(tc.txt)
		if err == nil {
			t.Errorf("%s: no error, got %+v", tc.name, k)
			continue
		}
		var te *TagError
		if !errors.As(err, &te) || !errors.Is(err, ErrSyntax) {
			t.Errorf("%s: error %T %v is not a *TagError wrapping ErrSyntax", tc.name, err, err)
			continue
		}
		if te.Tag != tc.tag || !strings.Contains(te.Reason, tc.reason) {
			t.Errorf("%s: got tag %q reason %q, want tag %q reason containing %q", tc.name, te.Tag, te.Reason, tc.tag, tc.reason)
		}
	}
}

// zoneTXT writes a TXT record of zone-file text, split into strings of
// at most 255 bytes as DNS requires.
func zoneTXT(name, value string) string {
	var parts []string
	for len(value) > 255 {
		parts = append(parts, `"`+value[:255]+`"`)
		value = value[255:]
	}
	parts = append(parts, `"`+value+`"`)
	return name + " 300 IN TXT " + strings.Join(parts, " ") + "\n"
}

func TestLookup(t *testing.T) {
	t.Parallel()
	p := readKey(t, "rsa4096.spki")
	long := "v=DKIM1; k=rsa; p=" + p
	zone := zoneTXT("s1._domainkey.example.com.", long) +
		zoneTXT("two._domainkey.example.com.", "v=DKIM1; p=") +
		zoneTXT("two._domainkey.example.com.", "v=DKIM1; k=ed25519; p=") +
		"a._domainkey.example.com. 300 IN A 192.0.2.1\n"
	srv := dnstest.Start(t, zone, nil)
	r := srv.Resolver()
	ctx := context.Background()

	txt, err := Lookup(ctx, r, "S1", "Example.com.")
	if err != nil {
		t.Fatal(err)
	}
	if txt != long {
		t.Fatalf("strings not joined: got %d bytes, want %d", len(txt), len(long))
	}
	if k, err := ParseKey(txt); err != nil || k.Bits != 4096 {
		t.Fatalf("4096-bit key from DNS: %v, %+v", err, k)
	}
	if _, err := Lookup(ctx, r, "two", "example.com"); !errors.Is(err, ErrMultipleRecords) {
		t.Errorf("two records: got %v", err)
	}
	for _, sel := range []string{"missing", "a"} { // NXDOMAIN and NODATA
		_, err := Lookup(ctx, r, sel, "example.com")
		if !errors.Is(err, ErrNoKey) || !strings.Contains(err.Error(), sel+"._domainkey.example.com") {
			t.Errorf("%s: got %v", sel, err)
		}
	}
	for _, bad := range [][2]string{{"", "example.com"}, {"a b", "example.com"}, {"a..b", "example.com"}, {"s1", "exa mple.com"}, {"s1", ""}} {
		if _, err := Lookup(ctx, r, bad[0], bad[1]); !errors.Is(err, ErrLookup) || !errors.Is(err, dnsname.ErrInvalid) {
			t.Errorf("selector %q, domain %q: got %v, want ErrLookup and dnsname.ErrInvalid", bad[0], bad[1], err)
		}
	}
	// Underscores are allowed in selectors (owner names).
	if _, err := Lookup(ctx, r, "s_1", "example.com"); !errors.Is(err, ErrNoKey) {
		t.Errorf("s_1: got %v, want ErrNoKey", err)
	}
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := Lookup(cancelled, r, "s1", "example.com"); !errors.Is(err, ErrLookup) {
		t.Errorf("cancelled: got %v", err)
	}
}

func TestCommonSelectorsFresh(t *testing.T) {
	t.Parallel()
	a := CommonSelectors()
	if len(a) < 10 || !slices.Contains(a, "selector1") || !slices.Contains(a, "google") {
		t.Fatalf("list %q", a)
	}
	a[0] = "changed"
	if CommonSelectors()[0] == "changed" {
		t.Error("CommonSelectors shares its slice")
	}
	seen := map[string]bool{}
	for _, s := range CommonSelectors() {
		if seen[s] {
			t.Errorf("duplicate %q", s)
		}
		seen[s] = true
	}
}

func FuzzParseKey(f *testing.F) {
	// RFC 6376 appendix C and RFC 8463 appendix A examples, and variants.
	f.Add("v=DKIM1; p=MIGfMA0GCSqGSIb3DQEBAQUAA4GNADCBiQKBgQDwIRP/UC3SBsEmGqZ9ZJW3/DkMoGeLnQg1fWn7/zYtIxN2SnFCjxOCKG9v3b4jYfcTNh5ijSsq631uBItLa7od+v/RtdC2UzJ1lWT947qR+Rcac2gbto/NMqJ0fzfVjH4OuKhitdY9tf6mcwGjaNBcWToIMmPSPDdQPNUYckcQ2QIDAQAB")
	f.Add("v=DKIM1; k=ed25519; p=11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=")
	f.Add("v=DKIM1; k=rsa; t=y:s; h=sha1:sha256; s=email; n=note; p=")
	f.Add("k=rsa;; p=MIGJAoGBAPAhE/9QLdIGwSYapn1klbf8OQygZ4udCDV9afv/Ni0jE3ZKcUKPE4Iob2/dvwA=")
	f.Add("P=; V=DKIM1")
	f.Fuzz(func(t *testing.T, txt string) {
		k, err := ParseKey(txt)
		if err != nil {
			if !errors.Is(err, ErrSyntax) {
				t.Fatalf("error %v does not wrap ErrSyntax", err)
			}
			return
		}
		if k.Revoked != (k.Public == nil) {
			t.Fatalf("revoked %v with key %T", k.Revoked, k.Public)
		}
		if !k.Revoked && k.Bits <= 0 {
			t.Fatalf("key without size: %+v", k)
		}
	})
}
