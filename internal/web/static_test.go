package web

import (
	"crypto/sha256"
	"encoding/hex"
	"strings"
	"testing"
)

// TestVendoredHTMX: the embedded htmx is the file whose checksum `make
// htmx` recorded from the npm registry's package.
func TestVendoredHTMX(t *testing.T) {
	t.Parallel()
	js, err := staticFS.ReadFile("static/htmx.min.js")
	if err != nil {
		t.Fatal(err)
	}
	rec, err := staticFS.ReadFile("static/htmx.min.js.sha256")
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(js)
	want, _, _ := strings.Cut(string(rec), " ")
	if got := hex.EncodeToString(sum[:]); got != want {
		t.Errorf("htmx.min.js has SHA-256 %s, htmx.min.js.sha256 records %s: run make htmx", got, want)
	}
	ver, _ := staticFS.ReadFile("static/htmx.version")
	if !strings.HasPrefix(string(ver), "2.") || !strings.Contains(string(js), `version:"`+strings.TrimSpace(string(ver))+`"`) {
		t.Errorf("htmx.version %q does not match the file", ver)
	}
}
