package policyserver

import (
	"bytes"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"
)

func TestZapToSlog(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	h := slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelInfo})
	zl := newZapLogger(h).Named("certmagic").Named("obtain").With(zap.String("ca", "https://acme.test/dir"))

	zl.Debug("hidden", zap.String("k", "v"))
	zl.Info("obtaining certificate",
		zap.String("identifier", "mta-sts.example.test"),
		zap.Int("attempt", 2),
		zap.Bool("distributed", true),
		zap.Duration("wait", 1500*time.Millisecond),
		zap.Error(errors.New("boom")),
		zap.Error(nil),
		zap.Strings("names", []string{"a.test", "b.test"}),
		zap.Uint16s("suites", []uint16{4865}),
	)
	zl.Warn("careful")
	zl.Error("failed")

	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 3 {
		t.Fatalf("got %d lines, want 3 (debug filtered out):\n%s", len(lines), buf.String())
	}
	for _, want := range []string{
		"level=INFO", `msg="obtaining certificate"`, "logger=certmagic.obtain", "ca=https://acme.test/dir",
		"identifier=mta-sts.example.test", "attempt=2", "distributed=true", "wait=1.5s", "error=boom",
		"names=", "a.test", "suites=",
	} {
		if !strings.Contains(lines[0], want) {
			t.Errorf("line %q lacks %q", lines[0], want)
		}
	}
	if !strings.Contains(lines[1], "level=WARN") || !strings.Contains(lines[2], "level=ERROR") {
		t.Errorf("levels not mapped: %q", lines[1:])
	}
	if strings.Contains(buf.String(), "hidden") {
		t.Error("debug entry written at info level")
	}
}
