package main

import (
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
