package main

import (
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/moatmail/moat/internal/config"
)

// TestSystemdUnit checks dist/systemd/moat.service with systemd-analyze
// verify (the binary path pointed at an executable that exists here).
func TestSystemdUnit(t *testing.T) {
	t.Parallel()
	analyze, err := exec.LookPath("systemd-analyze")
	if err != nil {
		if os.Getenv("MOAT_REQUIRE_SYSTEMD") != "" {
			t.Fatal("systemd-analyze not found (Debian package systemd)")
		}
		t.Skip("systemd-analyze not found (Debian package systemd): the unit is not verified")
	}
	b, err := os.ReadFile("../../dist/systemd/moat.service")
	if err != nil {
		t.Fatal(err)
	}
	unit := string(b)
	for _, want := range []string{"DynamicUser=yes", "StateDirectory=moat", "ProtectSystem=strict",
		"CapabilityBoundingSet=CAP_NET_BIND_SERVICE", "AmbientCapabilities=CAP_NET_BIND_SERVICE", "NoNewPrivileges=yes"} {
		if !strings.Contains(unit, "\n"+want+"\n") {
			t.Errorf("the unit lacks %s", want)
		}
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "moat.service")
	os.WriteFile(file, []byte(strings.ReplaceAll(unit, "/usr/local/bin/moat", self)), 0o644)
	out, err := exec.Command(analyze, "verify", file).CombinedOutput()
	if err != nil || len(strings.TrimSpace(string(out))) > 0 {
		t.Errorf("systemd-analyze verify: %v\n%s", err, out)
	}
}

// TestSampleConfigs: every sample configuration loads and is ready to
// serve.
func TestSampleConfigs(t *testing.T) {
	t.Parallel()
	files, err := filepath.Glob("../../dist/config/*.yaml")
	if err != nil || len(files) < 3 {
		t.Fatalf("sample configurations: %v, %v", files, err)
	}
	for _, f := range files {
		c, err := config.Load(config.Source{File: f})
		if err == nil {
			err = c.ValidateServe()
		}
		if err != nil {
			t.Errorf("%s: %v", filepath.Base(f), err)
		}
	}
}

// TestContainerfile pins what dist/Containerfile promises and what the
// binary must match: a pure-Go static build stamped through the variables
// `moat version` reads, a final stage from scratch as a non-root user, and
// an entry point whose command and flags exist. (The image itself is
// checked by dist/check-image.sh, which needs a container builder.)
func TestContainerfile(t *testing.T) {
	t.Parallel()
	b, err := os.ReadFile("../../dist/Containerfile")
	if err != nil {
		t.Fatal(err)
	}
	text := string(b)
	for _, want := range []string{"CGO_ENABLED=0 go build", "-X main.version=${VERSION}", "-X main.commit=${COMMIT}",
		"./cmd/moat", "COPY --from=build /etc/ssl/certs/ca-certificates.crt /etc/ssl/certs/ca-certificates.crt"} {
		if !strings.Contains(text, want) {
			t.Errorf("the Containerfile lacks %q", want)
		}
	}
	var froms []string
	var user, entry string
	for _, line := range strings.Split(text, "\n") {
		switch f := strings.Fields(line); {
		case len(f) >= 2 && f[0] == "FROM":
			froms = append(froms, f[1])
		case len(f) == 2 && f[0] == "USER":
			user = f[1]
		case len(f) >= 2 && f[0] == "ENTRYPOINT":
			entry = strings.TrimSpace(strings.TrimPrefix(line, "ENTRYPOINT"))
		}
	}
	if len(froms) == 0 || froms[len(froms)-1] != "scratch" {
		t.Errorf("the final stage is FROM %v, want scratch", froms)
	}
	if user == "" || strings.HasPrefix(user, "0") || strings.HasPrefix(user, "root") {
		t.Errorf("USER %q: the image must not run as root", user)
	}
	var args []string
	if err := json.Unmarshal([]byte(entry), &args); err != nil || len(args) < 2 || args[0] != "/moat" {
		t.Fatalf("ENTRYPOINT %s: want the exec form starting with /moat (%v)", entry, err)
	}
	// The entry point's arguments must parse as a moat command line.
	root := newRoot(io.Discard, io.Discard)
	cmd, rest, err := root.Find(args[1:])
	if err != nil || cmd == root {
		t.Fatalf("ENTRYPOINT %v: no such command (%v)", args, err)
	}
	if err := cmd.ParseFlags(rest); err != nil {
		t.Errorf("ENTRYPOINT %v: %v", args, err)
	}
}
